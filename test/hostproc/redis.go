package hostproc

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// RedisOptions configure a redis-server.
type RedisOptions struct {
	// Name of the process in its Group (default "redis").
	Name string
	// Dir is the server's data directory (--dir, also its working
	// directory), created if missing. Required: restarting on the same
	// Dir is what keeps a server's data and cluster identity.
	Dir string
	// Port to listen on, on 127.0.0.1 (0: a free port).
	Port int
	// Cluster enables cluster mode: the node keeps its identity and view
	// of the cluster in Dir/nodes.conf and talks to its peers on
	// ClusterPort (0: a free port; Redis' default, Port+10000, may be
	// taken).
	Cluster     bool
	ClusterPort int
	// Password, when set, is the server's requirepass and masterauth (a
	// replica authenticates to its master with it); WaitPing and Restart
	// authenticate with it.
	Password string
	// Args are further configuration as command-line options, for example
	// "--appendonly", "yes".
	Args []string
}

// RedisServer is a running redis-server.
type RedisServer struct {
	*Proc
	// Addr is host:port of the server.
	Addr string
	// Port and ClusterPort (0 without cluster mode) it listens on.
	Port, ClusterPort int
	// Dir is its data directory.
	Dir string
	// Password is its requirepass ("" for none).
	Password string

	group *Group
	bin   Binary
	opts  RedisOptions
}

// StartRedis starts a redis-server with bin (see FindRedisServer) and
// waits until it answers PING.
func StartRedis(g *Group, bin Binary, o RedisOptions) (*RedisServer, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("hostproc: StartRedis needs a data directory")
	}
	if o.Name == "" {
		o.Name = "redis"
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	s := &RedisServer{group: g, bin: bin}
	return s, s.start(o)
}

// start runs the server with o, choosing the free ports o leaves open.
func (s *RedisServer) start(o RedisOptions) error {
	need := 0
	if o.Port == 0 {
		need++
	}
	if o.Cluster && o.ClusterPort == 0 {
		need++
	}
	ports, err := FreePorts(need)
	if err != nil {
		return err
	}
	if o.Port == 0 {
		o.Port, ports = ports[0], ports[1:]
	}
	args := []string{"--port", strconv.Itoa(o.Port), "--bind", "127.0.0.1", "--dir", o.Dir}
	if o.Cluster {
		if o.ClusterPort == 0 {
			o.ClusterPort = ports[0]
		}
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(o.ClusterPort))
	} else {
		o.ClusterPort = 0
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password, "--masterauth", o.Password)
	}
	spec := s.bin.Spec(o.Name, append(args, o.Args...)...)
	spec.Dir = o.Dir
	p, err := s.group.Start(spec)
	if err != nil {
		return err
	}
	s.Proc, s.opts = p, o
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))
	s.Port, s.ClusterPort, s.Dir, s.Password = o.Port, o.ClusterPort, o.Dir, o.Password
	return s.WaitPing(30 * time.Second)
}

// WaitPing waits until the server answers PING with PONG (after AUTH
// with its password, if it has one).
func (s *RedisServer) WaitPing(timeout time.Duration) error {
	return s.WaitReady(timeout, func() error { return RedisPingAuth(s.Addr, s.Password) })
}

// Restart stops the server if it runs (SIGTERM, then SIGKILL after grace),
// starts it again on the same port, cluster port and data directory, and
// waits until it answers PING.
func (s *RedisServer) Restart(grace time.Duration) error {
	if err := s.Proc.Restart(grace); err != nil {
		return err
	}
	return s.WaitPing(30 * time.Second)
}

// RestartOn stops the server if it runs (see Restart) and starts it again
// with the same name, data directory and configuration, but listening on
// port and clusterPort (0: a free port, which may happen to be the old
// one), as a pod that comes back with a new IP address. Addr, Port and
// ClusterPort change accordingly.
func (s *RedisServer) RestartOn(grace time.Duration, port, clusterPort int) error {
	s.Stop(grace)
	o := s.opts
	o.Port, o.ClusterPort = port, clusterPort
	return s.start(o)
}

// RedisPing sends PING to the server at addr and checks that it answers
// +PONG (and not something else that happens to listen there).
func RedisPing(addr string) error { return RedisPingAuth(addr, "") }

// RedisPingAuth is RedisPing after AUTH with password ("" for none).
func RedisPingAuth(addr, password string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(conn)
	if password != "" {
		auth := fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(password), password)
		if _, err := conn.Write([]byte(auth)); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("AUTH %s: %w", addr, err)
		}
		if line != "+OK\r\n" {
			return fmt.Errorf("AUTH %s answered %q", addr, line)
		}
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("PING %s: %w", addr, err)
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING %s answered %q", addr, line)
	}
	return nil
}

// Binary is a program and how to run it.
type Binary struct {
	// Path is what is executed; Args come before the program's own
	// arguments (for a program unpacked from Debian packages, the
	// dynamic loader of those packages runs it: Path is that loader and
	// Args its --library-path and the program).
	Path string
	Args []string
	// Source says where the program was found, for messages.
	Source string
	// Version is what the program reported (for redis-server, the x.y.z
	// of "Redis server v=x.y.z").
	Version string
}

// Spec is the command line that runs the program with args.
func (b Binary) Spec(name string, args ...string) Spec {
	return Spec{Name: name, Path: b.Path, Args: append(append([]string(nil), b.Args...), args...)}
}

// unpackedProgram runs prog from a tree of unpacked Debian packages (root)
// with that tree's dynamic loader and shared libraries, so that it needs
// nothing from the machine's own libraries.
func unpackedProgram(root, prog string) (Binary, error) {
	arch, ok := debianArch[goarch]
	if !ok {
		return Binary{}, fmt.Errorf("no Debian loader known for %s", goarch)
	}
	exe := filepath.Join(root, prog)
	if _, err := os.Stat(exe); err != nil {
		return Binary{}, err
	}
	loader, err := resolveIn(root, arch.loader)
	if err != nil {
		return Binary{}, fmt.Errorf("loader of %s: %w", root, err)
	}
	libPath := ""
	for _, d := range []string{"lib/" + arch.triplet, "usr/lib/" + arch.triplet, "lib", "usr/lib"} {
		if libPath != "" {
			libPath += ":"
		}
		libPath += filepath.Join(root, d)
	}
	return Binary{Path: loader, Args: []string{"--library-path", libPath, exe}, Source: exe}, nil
}

// resolveIn follows the symbolic links of the file rel in the tree root,
// taking absolute link targets relative to root, and returns the host path
// of the file at the end.
func resolveIn(root, rel string) (string, error) {
	p := filepath.Join(root, rel)
	for range 40 {
		info, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		if info.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			p = filepath.Join(root, target)
		} else {
			p = filepath.Join(filepath.Dir(p), target)
		}
	}
	return "", fmt.Errorf("%s: too many symbolic links", filepath.Join(root, rel))
}

type debianLoader struct{ loader, triplet string }

var debianArch = map[string]debianLoader{
	"amd64": {loader: "lib64/ld-linux-x86-64.so.2", triplet: "x86_64-linux-gnu"},
	"arm64": {loader: "lib/ld-linux-aarch64.so.1", triplet: "aarch64-linux-gnu"},
}

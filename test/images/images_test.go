package images_test

// These tests check the archives that `make images` wrote into bin/images
// (make test runs it first): each one loads back with go-containerregistry
// under its ref, has the expected config and files, and, when the tests run
// as root, its programs run chrooted into the unpacked file system as the
// image's user: pause, http-echo answering, the manager, both etcd
// versions serving etcdctl, Redis answering redis-cli, busybox's shell.
// TestImportIntoContainerd imports every archive into a throwaway
// containerd.

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"opsmith.io/opsmith/test/images"
)

// expected is what each image must be.
var expected = []struct {
	name, ref  string
	entrypoint []string
	cmd        []string
	workingDir string
	// files are paths every image of this kind has, besides the base ones.
	files []string
}{
	{"pause", images.PauseRef, []string{"/pause"}, nil, "/", []string{"/pause"}},
	{"http-echo", images.HTTPEchoRef, []string{"/http-echo"}, nil, "/", []string{"/http-echo"}},
	{"manager", images.ManagerRef, []string{"/manager"}, nil, "/", []string{"/manager"}},
	{"etcd-v" + images.Etcd36Version, images.Etcd36Ref, nil, []string{"/usr/local/bin/etcd"}, "/var/lib/etcd",
		[]string{"/usr/local/bin/etcd", "/usr/local/bin/etcdctl"}},
	{"etcd-v" + images.Etcd35Version, images.Etcd35Ref, nil, []string{"/usr/local/bin/etcd"}, "/var/lib/etcd",
		[]string{"/usr/local/bin/etcd", "/usr/local/bin/etcdctl"}},
	{"busybox", images.BusyboxRef, nil, []string{"sh"}, "/",
		[]string{"/bin/busybox", "/bin/sh", "/bin/ls", "/bin/cat", "/bin/sleep", "/usr/bin/wget", "/usr/bin/nc"}},
	{"redis", images.RedisRef, nil, []string{"redis-server", "--protected-mode", "no"}, "/data",
		[]string{"/usr/bin/redis-server", "/usr/bin/redis-sentinel", "/usr/bin/redis-cli", "/usr/bin/redis-check-rdb", "/usr/bin/redis-check-aof", "/lib64/ld-linux-x86-64.so.2"}},
}

var (
	indexOnce sync.Once
	index     []images.Result
	indexErr  error
)

// imagesDir is bin/images of the repository, or of $OPSMITH_BIN_DIR.
func imagesDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("OPSMITH_BIN_DIR"); d != "" {
		return filepath.Join(d, "images")
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module opsmith.io/opsmith\n")) {
			return filepath.Join(dir, "bin", "images")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod of opsmith.io/opsmith) not found")
		}
		dir = parent
	}
}

// entry returns the index entry of ref; the index must exist: run
// `make images` (make test does) before these tests.
func entry(t *testing.T, ref string) images.Result {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the image archives are checked by the full tests")
	}
	indexOnce.Do(func() { index, indexErr = images.ReadIndex(imagesDir(t)) })
	if indexErr != nil {
		t.Fatalf("reading the image index: %v (run `make images` first; `make test` does)", indexErr)
	}
	e, ok := images.Lookup(index, ref)
	if !ok {
		t.Fatalf("%s is not in %s (run `make images`)", ref, filepath.Join(imagesDir(t), images.IndexFile))
	}
	return e
}

func load(t *testing.T, ref string) (v1.Image, images.Result) {
	t.Helper()
	e := entry(t, ref)
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(e.Archive, &tag)
	if err != nil {
		t.Fatalf("loading %s from %s: %v", ref, e.Archive, err)
	}
	return img, e
}

// rootfs unpacks the image into a temporary directory.
func rootfs(t *testing.T, ref string) string {
	t.Helper()
	img, _ := load(t, ref)
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := images.ExtractRootfs(img, dir); err != nil {
		t.Fatalf("unpacking %s: %v", ref, err)
	}
	return dir
}

func TestArchivesHaveRefConfigAndFiles(t *testing.T) {
	for _, want := range expected {
		t.Run(want.name, func(t *testing.T) {
			img, e := load(t, want.ref)
			if e.Name != want.name || filepath.Base(e.Archive) != want.name+".tar" {
				t.Errorf("index entry %+v, want name %s and archive %s.tar", e, want.name, want.name)
			}
			if d, err := img.Digest(); err != nil || d.String() != e.Digest {
				t.Errorf("manifest digest %v (%v), index says %s", d, err, e.Digest)
			}
			if id, err := img.ConfigName(); err != nil || id.String() != e.ID {
				t.Errorf("config digest %v (%v), index says %s", id, err, e.ID)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
				t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
			}
			c := cf.Config
			if !reflect.DeepEqual(c.Entrypoint, want.entrypoint) || !reflect.DeepEqual(c.Cmd, want.cmd) {
				t.Errorf("entrypoint %q cmd %q, want %q %q", c.Entrypoint, c.Cmd, want.entrypoint, want.cmd)
			}
			if c.User != "65532:65532" || c.WorkingDir != want.workingDir {
				t.Errorf("user %q working dir %q, want 65532:65532 and %s", c.User, c.WorkingDir, want.workingDir)
			}
			if len(c.Env) == 0 || c.Env[0] != images.DefaultPath {
				t.Errorf("env %q, want PATH first", c.Env)
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != 1 {
				t.Errorf("%d layers (%v), want 1", len(layers), err)
			}

			root := rootfs(t, want.ref)
			for _, p := range append([]string{"/etc/passwd", "/etc/group", "/tmp", "/home/nonroot"}, want.files...) {
				if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s missing: %v", p, err)
				}
			}
			passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
			if !bytes.HasPrefix(passwd, []byte("root:x:0:0:")) || !bytes.Contains(passwd, []byte("\nnonroot:x:65532:65532:")) ||
				!bytes.Contains(group, []byte("nonroot:x:65532:")) {
				t.Errorf("/etc/passwd %q /etc/group %q, want root and nonroot (65532)", passwd, group)
			}
			if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil || fi.Mode() != fs.ModeDir|fs.ModeSticky|0o777 {
				t.Errorf("/tmp is %v (%v), want drwxrwxrwt", fi.Mode(), err)
			}
			if want.workingDir != "/" {
				assertOwner(t, filepath.Join(root, want.workingDir), images.NonRootUID)
			}
		})
	}
}

func assertOwner(t *testing.T, path string, uid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
		t.Errorf("%s is not owned by %d", path, uid)
	}
}

// requireRoot skips tests that chroot into an image's file system.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("running an image's programs needs chroot, so root (make test runs as root; make test-unit skips these tests)")
	}
}

// process is a program running chrooted into an unpacked image as the
// image's user, killed when the test ends.
type process struct {
	cmd    *exec.Cmd
	out    syncBuffer
	waited chan error
}

// command is args run in root as 65532 with the image's PATH and env.
func command(root, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(args[0], args[1:]...)
	// exec.Command looked the program up on the host; look in the image.
	cmd.Path, cmd.Err = lookPathIn(root, args[0])
	cmd.Dir = dir
	cmd.Env = append([]string{images.DefaultPath, "HOME=/home/nonroot"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: images.NonRootUID, Gid: images.NonRootUID},
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// lookPathIn finds a program the way a shell of the image would, in the
// directories of the image's PATH, and returns its path in the image.
func lookPathIn(root, prog string) (string, error) {
	if strings.Contains(prog, "/") {
		return prog, nil
	}
	for _, dir := range filepath.SplitList(strings.TrimPrefix(images.DefaultPath, "PATH=")) {
		p := filepath.Join(dir, prog)
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in the image's PATH", prog)
}

// run runs a short command in the image and returns its combined output.
func run(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := command(root, "/", nil, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func start(t *testing.T, root, dir string, env []string, args ...string) *process {
	t.Helper()
	return startCmd(t, command(root, dir, env, args...))
}

func startCmd(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, waited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	go func() { p.waited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		err := <-p.waited
		if t.Failed() {
			t.Logf("%s (%v) printed:\n%s", strings.Join(cmd.Args, " "), err, p.out.String())
		}
	})
	return p
}

// stop sends sig and waits for the exit, failing unless the process
// exits 0 within 15 s, or, when diesBySignal, ends by sig after cleaning
// up (etcd re-raises the signal it handled, as shells expect).
func (p *process) stop(t *testing.T, sig syscall.Signal, diesBySignal bool) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.waited:
		p.waited <- err
		if err == nil {
			return
		}
		var exit *exec.ExitError
		if diesBySignal && errors.As(err, &exit) {
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == sig {
				return
			}
		}
		t.Errorf("%s exited with %v after %v", p.cmd.Path, err, sig)
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not exit within 15 s of %v", p.cmd.Path, sig)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually retries f every 200 ms for up to 30 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestPauseExitsOnSignal(t *testing.T) {
	root := rootfs(t, images.PauseRef)
	assertStatic(t, root, "/pause")
	requireRoot(t)
	if out := run(t, root, "/pause", "-v"); !strings.Contains(out, "3.10") {
		t.Errorf("pause -v = %q", out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		p := start(t, root, "/", nil, "/pause")
		// Still running: it waits for a signal.
		time.Sleep(300 * time.Millisecond)
		select {
		case err := <-p.waited:
			t.Fatalf("pause exited by itself: %v\n%s", err, p.out.String())
		default:
		}
		p.stop(t, sig, false)
	}
}

// TestPauseReapsOrphans runs pause as PID 1 of a new PID namespace, as in
// a pod, leaves an orphan in that namespace and checks that pause reaps it
// once it exits instead of leaving a zombie.
func TestPauseReapsOrphans(t *testing.T) {
	root := rootfs(t, images.PauseRef)
	requireRoot(t)
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Fatal("nsenter (util-linux, essential in Debian) is not installed")
	}
	cmd := command(root, "/", nil, "/pause")
	cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	p := startCmd(t, cmd)
	pid := p.cmd.Process.Pid
	// The shell runs in pause's PID namespace and exits at once; its
	// background sleep becomes pause's child and exits 0.5 s later.
	if out, err := exec.Command(nsenter, "--target", strconv.Itoa(pid), "--pid", "--", "/bin/sh", "-c", "sleep 0.5 >/dev/null 2>&1 &").CombinedOutput(); err != nil {
		t.Fatalf("nsenter: %v\n%s", err, out)
	}
	if n := len(childrenOf(t, pid)); n != 1 {
		t.Fatalf("pause has %d children after the shell exited, want the orphaned sleep", n)
	}
	eventually(t, "the orphan reaped", func() error {
		if c := childrenOf(t, pid); len(c) > 0 {
			return fmt.Errorf("pause still has children (states %v)", c)
		}
		return nil
	})
	p.stop(t, syscall.SIGTERM, false)
}

// childrenOf returns the state (R, S, Z, ...) of each child of pid.
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) >= 2 && fields[1] == strconv.Itoa(pid) {
			states = append(states, fields[0])
		}
	}
	return states
}

func TestHTTPEchoAnswersWithHostname(t *testing.T) {
	root := rootfs(t, images.HTTPEchoRef)
	assertStatic(t, root, "/http-echo")
	requireRoot(t)
	port := freePort(t)
	p := start(t, root, "/", []string{"PORT=" + strconv.Itoa(port), "HOSTNAME=echo-pod-7"}, "/http-echo")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, "GET /healthz", func() error {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ Hostname, Path string }
	err = json.NewDecoder(resp.Body).Decode(&reply)
	_ = resp.Body.Close()
	if err != nil || reply.Hostname != "echo-pod-7" || reply.Path != "/" {
		t.Errorf("GET / = %+v, %v; want hostname echo-pod-7", reply, err)
	}
	p.stop(t, syscall.SIGTERM, false)
}

func TestManagerRuns(t *testing.T) {
	root := rootfs(t, images.ManagerRef)
	assertStatic(t, root, "/manager")
	requireRoot(t)
	// -h prints the flags and exits without contacting a cluster.
	out, _ := command(root, "/", nil, "/manager", "-h").CombinedOutput()
	if !strings.Contains(string(out), "leader-elect") {
		t.Errorf("/manager -h printed %q, want its flags", out)
	}
}

func TestEtcdServesBothVersions(t *testing.T) {
	for _, c := range []struct{ ref, version string }{
		{images.Etcd36Ref, images.Etcd36Version},
		{images.Etcd35Ref, images.Etcd35Version},
	} {
		t.Run(c.version, func(t *testing.T) {
			root := rootfs(t, c.ref)
			assertStatic(t, root, "/usr/local/bin/etcd")
			assertStatic(t, root, "/usr/local/bin/etcdctl")
			requireRoot(t)
			if out := run(t, root, "etcd", "--version"); !strings.Contains(out, "etcd Version: "+c.version+"\n") {
				t.Errorf("etcd --version = %q, want %s", out, c.version)
			}
			if out := run(t, root, "etcdctl", "version"); !strings.Contains(out, "etcdctl version: "+c.version+"\n") {
				t.Errorf("etcdctl version = %q, want %s", out, c.version)
			}
			client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
			// No flags for the data directory: etcd writes t.etcd in the
			// working directory, which the image gives to nonroot.
			p := start(t, root, "/var/lib/etcd", nil, "etcd", "--name", "t",
				"--listen-client-urls", client, "--advertise-client-urls", client,
				"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
				"--initial-cluster", "t="+peer)
			ctl := func(args ...string) (string, error) {
				out, err := command(root, "/", nil, append([]string{"etcdctl", "--endpoints", client}, args...)...).CombinedOutput()
				return string(out), err
			}
			eventually(t, "etcdctl endpoint health", func() error {
				out, err := ctl("endpoint", "health")
				if err != nil {
					return fmt.Errorf("%w: %s", err, out)
				}
				return nil
			})
			if out, err := ctl("put", "opsmith", "v"+c.version); err != nil || out != "OK\n" {
				t.Fatalf("put: %q %v", out, err)
			}
			if out, err := ctl("get", "--print-value-only", "opsmith"); err != nil || out != "v"+c.version+"\n" {
				t.Errorf("get: %q %v", out, err)
			}
			if out, err := ctl("endpoint", "status", "-w", "json"); err != nil || !strings.Contains(out, `"version":"`+c.version+`"`) {
				t.Errorf("endpoint status: %q %v, want server version %s", out, err, c.version)
			}
			if _, err := os.Stat(filepath.Join(root, "var/lib/etcd/t.etcd/member")); err != nil {
				t.Errorf("data directory in the working directory: %v", err)
			}
			p.stop(t, syscall.SIGTERM, true)
			if out := p.out.String(); !strings.Contains(out, "closed etcd server") {
				t.Errorf("etcd did not report a clean shutdown:\n%s", out)
			}
		})
	}
}

func TestRedisServesRedisCLI(t *testing.T) {
	root := rootfs(t, images.RedisRef)
	requireRoot(t)
	for _, prog := range []string{"redis-server", "redis-sentinel"} {
		if out := run(t, root, prog, "--version"); !strings.Contains(out, "v="+images.RedisVersion+" ") {
			t.Errorf("%s --version = %q, want v=%s", prog, out, images.RedisVersion)
		}
	}
	port := strconv.Itoa(freePort(t))
	p := start(t, root, "/data", nil, "redis-server", "--port", port, "--bind", "127.0.0.1", "--appendonly", "yes")
	cli := func(args ...string) (string, error) {
		out, err := command(root, "/", nil, append([]string{"redis-cli", "-p", port}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	eventually(t, "redis-cli ping", func() error {
		out, err := cli("ping")
		if err != nil || out != "PONG" {
			return fmt.Errorf("%q %v", out, err)
		}
		return nil
	})
	if out, err := cli("set", "opsmith", "redis"); err != nil || out != "OK" {
		t.Errorf("set: %q %v", out, err)
	}
	if out, err := cli("get", "opsmith"); err != nil || out != "redis" {
		t.Errorf("get: %q %v", out, err)
	}
	// Lua scripting is built in.
	if out, err := cli("eval", "return redis.call('get', KEYS[1]) .. '!'", "1", "opsmith"); err != nil || out != "redis!" {
		t.Errorf("eval: %q %v", out, err)
	}
	if out, err := cli("info", "server"); err != nil || !strings.Contains(out, "redis_version:"+images.RedisVersion) {
		t.Errorf("info server: %q %v", out, err)
	}
	p.stop(t, syscall.SIGTERM, false)
	// The append-only file was written into the working directory by
	// nonroot.
	if matches, _ := filepath.Glob(filepath.Join(root, "data/appendonlydir/*")); len(matches) == 0 {
		t.Errorf("no append-only file in /data")
	}
}

func TestBusyboxShell(t *testing.T) {
	root := rootfs(t, images.BusyboxRef)
	assertStatic(t, root, "/bin/busybox")
	requireRoot(t)
	out := run(t, root, "sh", "-c", "id -u; echo hello | cat; which ls sleep wget nc; ls -ld /tmp")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"65532", "hello", "/bin/ls", "/bin/sleep", "/usr/bin/wget", "/usr/bin/nc"}
	if len(lines) != len(want)+1 || !reflect.DeepEqual(lines[:len(want)], want) || !strings.HasPrefix(lines[len(want)], "drwxrwxrwt") {
		t.Errorf("busybox sh printed %q, want %q and /tmp drwxrwxrwt", lines, want)
	}
}

// assertStatic fails unless the program at p in root is a static ELF
// executable (no program interpreter).
func assertStatic(t *testing.T, root, p string) {
	t.Helper()
	f, err := elf.Open(filepath.Join(root, p))
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	defer func() { _ = f.Close() }()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", p)
		}
	}
}

// TestImportIntoContainerd imports every archive into a containerd of its
// own (containerd 1.6 as Debian ships it, from PATH or downloaded into
// bin/images/debian) and checks that each ref is listed.
func TestImportIntoContainerd(t *testing.T) {
	for _, want := range expected {
		entry(t, want.ref)
	}
	requireRoot(t)
	containerd, ctr := containerdBinaries(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	cmd := exec.Command(containerd, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("containerd log:\n%s", log.String())
		}
	})
	ctrRun := func(args ...string) (string, error) {
		out, err := exec.Command(ctr, append([]string{"-a", sock, "-n", "k8s.io"}, args...)...).CombinedOutput()
		return string(out), err
	}
	eventually(t, "containerd answering", func() error {
		out, err := ctrRun("version")
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	for _, want := range expected {
		e := entry(t, want.ref)
		// The native snapshotter unpacks anywhere (no overlay mounts).
		if out, err := ctrRun("images", "import", "--snapshotter", "native", e.Archive); err != nil {
			t.Errorf("importing %s: %v\n%s", e.Archive, err, out)
		}
	}
	out, err := ctrRun("images", "ls")
	if err != nil {
		t.Fatalf("ctr images ls: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, want := range expected {
		if !listed[want.ref] {
			t.Errorf("%s not listed after the import:\n%s", want.ref, out)
		}
	}
}

// containerdBinaries returns containerd and ctr from PATH, or else from
// Debian's containerd package, downloaded and unpacked into
// bin/images/debian like the packages of the images.
func containerdBinaries(t *testing.T) (string, string) {
	t.Helper()
	containerd, err1 := exec.LookPath("containerd")
	ctr, err2 := exec.LookPath("ctr")
	if err1 == nil && err2 == nil {
		return containerd, ctr
	}
	debDir := filepath.Join(imagesDir(t), "debian")
	apt := &images.Apt{CacheDir: filepath.Join(debDir, "cache"), Log: testLog{t}}
	pkgs, err := apt.Download("containerd")
	if err != nil {
		t.Fatalf("containerd is not installed and downloading it failed: %v", err)
	}
	root := filepath.Join(debDir, "containerd")
	if err := images.Unpack(pkgs, root); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "usr/bin/containerd"), filepath.Join(root, "usr/bin/ctr")
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

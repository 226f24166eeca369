package images

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options says where the inputs are and where the archives go.
type Options struct {
	// BinDir is the repository's bin/ directory, where `make images` puts
	// the Go binaries: images/bin/{pause,http-echo,manager} and
	// etcd-v<version>/{etcd,etcdctl}.
	BinDir string
	// OutDir receives the archives and images.json (default
	// BinDir/images); Debian packages are downloaded and unpacked in
	// OutDir/debian.
	OutDir string
	// ManagerRef overrides the manager image's reference (default
	// ManagerRef).
	ManagerRef string
	// Log receives progress messages (default io.Discard).
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.OutDir == "" {
		o.OutDir = filepath.Join(o.BinDir, "images")
	}
	if o.ManagerRef == "" {
		o.ManagerRef = ManagerRef
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// GoBinary is where `make images` puts the static Go program of an image.
func GoBinary(binDir, program string) string {
	return filepath.Join(binDir, "images", "bin", program)
}

// EtcdBinary is where `make images` puts etcd or etcdctl of a version.
func EtcdBinary(binDir, version, program string) string {
	return filepath.Join(binDir, "etcd-v"+version, program)
}

// Image is one image the project builds: its name and how to describe it
// from the inputs.
type Image struct {
	Name string
	Spec func(o Options) (Spec, error)
}

// All lists every image, in build order.
func All() []Image {
	return []Image{
		{Name: "pause", Spec: pauseSpec},
		{Name: "http-echo", Spec: httpEchoSpec},
		{Name: "manager", Spec: managerSpec},
		{Name: "etcd-v" + Etcd36Version, Spec: etcdSpec(Etcd36Ref, Etcd36Version)},
		{Name: "etcd-v" + Etcd35Version, Spec: etcdSpec(Etcd35Ref, Etcd35Version)},
		{Name: "busybox", Spec: busyboxSpec},
		{Name: "redis", Spec: redisSpec},
	}
}

// BuildAll builds the images of All whose names are in only (every image
// when only is empty) and writes the index, keeping the entries of the
// images not built this time.
func BuildAll(o Options, only ...string) ([]Result, error) {
	o = o.withDefaults()
	unlock, err := lockDir(o.OutDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	known := map[string]bool{}
	for _, img := range All() {
		known[img.Name] = true
	}
	for _, n := range only {
		if !known[n] {
			return nil, fmt.Errorf("no image named %q", n)
		}
	}
	byName := map[string]Result{}
	if old, err := ReadIndex(o.OutDir); err == nil {
		for _, r := range old {
			if known[r.Name] {
				byName[r.Name] = r
			}
		}
	}
	var built []Result
	for _, img := range All() {
		if len(only) > 0 && !contains(only, img.Name) {
			continue
		}
		start := time.Now()
		spec, err := img.Spec(o)
		if err != nil {
			return built, fmt.Errorf("image %s: %w", img.Name, err)
		}
		res, err := Build(spec, o.OutDir)
		if err != nil {
			return built, err
		}
		state := "up to date"
		if res.Built {
			state = "built"
		}
		fmt.Fprintf(o.Log, "%-16s %-42s %s %-10s %s\n", res.Name, res.Ref, res.ID[:19], state, time.Since(start).Round(time.Millisecond))
		byName[res.Name] = res
		built = append(built, res)
	}
	all := make([]Result, 0, len(byName))
	for _, r := range byName {
		all = append(all, r)
	}
	return built, WriteIndex(o.OutDir, all)
}

// lockDir takes an exclusive lock on dir (creating it), so that two runs
// at once (make images of two shells) do not write the same files; it
// returns the unlock function.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { _ = f.Close() }, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var nonRootUser = strconv.Itoa(NonRootUID) + ":" + strconv.Itoa(NonRootUID)

// baseFiles are the accounts and directories every image has: root and
// nonroot (65532) with the given login shell, their home directories and
// a world-writable /tmp.
func baseFiles(shell string) []File {
	return []File{
		Text("/etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:%[1]s\nnonroot:x:%[2]d:%[2]d:nonroot:/home/nonroot:%[1]s\n", shell, NonRootUID), 0o644),
		Text("/etc/group", fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID), 0o644),
		Dir("/root", 0o700, 0),
		Dir("/home/nonroot", 0o700, NonRootUID),
		Dir("/tmp", fs.ModeSticky|0o777, 0),
	}
}

// staticProgram is the file of a static Go executable at p in the image.
func staticProgram(p, src string) (File, error) {
	if err := requireStatic(src); err != nil {
		return File{}, err
	}
	return FromHost(p, src, 0o755), nil
}

func pauseSpec(o Options) (Spec, error) {
	f, err := staticProgram("/pause", GoBinary(o.BinDir, "pause"))
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Name:   "pause",
		Ref:    PauseRef,
		Config: Config{Entrypoint: []string{"/pause"}, User: nonRootUser, WorkingDir: "/"},
		Files:  append(baseFiles("/sbin/nologin"), f),
	}, nil
}

func httpEchoSpec(o Options) (Spec, error) {
	f, err := staticProgram("/http-echo", GoBinary(o.BinDir, "http-echo"))
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Name: "http-echo",
		Ref:  HTTPEchoRef,
		Config: Config{
			Entrypoint:   []string{"/http-echo"},
			Env:          []string{"PORT=8080"},
			User:         nonRootUser,
			WorkingDir:   "/",
			ExposedPorts: []string{"8080/tcp"},
		},
		Files: append(baseFiles("/sbin/nologin"), f),
	}, nil
}

func managerSpec(o Options) (Spec, error) {
	f, err := staticProgram("/manager", GoBinary(o.BinDir, "manager"))
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Name:   "manager",
		Ref:    o.ManagerRef,
		Config: Config{Entrypoint: []string{"/manager"}, User: nonRootUser, WorkingDir: "/"},
		Files:  append(baseFiles("/sbin/nologin"), f),
	}, nil
}

// etcdSpec is the upstream image's layout: etcd and etcdctl in
// /usr/local/bin, command etcd, ports 2379 and 2380, data in
// /var/lib/etcd (the working directory, so that etcd without --data-dir
// works too), here owned by and run as nonroot.
func etcdSpec(ref, version string) func(o Options) (Spec, error) {
	return func(o Options) (Spec, error) {
		files := baseFiles("/sbin/nologin")
		type program struct{ src, versionArg, want string }
		var programs []program
		for _, p := range []struct{ name, versionArg, want string }{
			{"etcd", "--version", "etcd Version: " + version + "\n"},
			{"etcdctl", "version", "etcdctl version: " + version + "\n"},
		} {
			src := EtcdBinary(o.BinDir, version, p.name)
			f, err := staticProgram("/usr/local/bin/"+p.name, src)
			if err != nil {
				return Spec{}, err
			}
			files = append(files, f)
			programs = append(programs, program{src, p.versionArg, p.want})
		}
		// The binaries must be of the version the ref says.
		check := func() error {
			for _, p := range programs {
				out, err := exec.Command(p.src, p.versionArg).Output()
				if err != nil {
					return fmt.Errorf("%s %s: %w", p.src, p.versionArg, err)
				}
				if !strings.Contains(string(out), p.want) {
					return fmt.Errorf("%s is not version %s: %s", p.src, version, out)
				}
			}
			return nil
		}
		files = append(files, Dir("/var/lib/etcd", 0o700, NonRootUID), Dir("/var/etcd", 0o700, NonRootUID))
		return Spec{
			Name: "etcd-v" + version,
			Ref:  ref,
			Config: Config{
				Cmd:          []string{"/usr/local/bin/etcd"},
				User:         nonRootUser,
				WorkingDir:   "/var/lib/etcd",
				ExposedPorts: []string{"2379/tcp", "2380/tcp"},
			},
			Files: files,
			Check: check,
		}, nil
	}
}

func (o Options) apt() *Apt {
	return &Apt{CacheDir: filepath.Join(o.OutDir, "debian", "cache"), Log: o.Log}
}

// busyboxSpec is Debian's busybox-static at /bin/busybox with a symlink
// for every applet at the path busybox --list-full gives it.
func busyboxSpec(o Options) (Spec, error) {
	pkgs, err := o.apt().Download("busybox-static")
	if err != nil {
		return Spec{}, err
	}
	if v := pkgs[0].UpstreamVersion(); !strings.HasPrefix(v, BusyboxVersion+".") {
		return Spec{}, fmt.Errorf("busybox-static is version %s, not %s.x: change BusyboxVersion", pkgs[0].Version, BusyboxVersion)
	}
	root := filepath.Join(o.OutDir, "debian", "busybox")
	if err := Unpack(pkgs, root); err != nil {
		return Spec{}, err
	}
	bb, err := staticProgram("/bin/busybox", filepath.Join(root, "bin", "busybox"))
	if err != nil {
		return Spec{}, err
	}
	out, err := exec.Command(bb.Source, "--list-full").Output()
	if err != nil {
		return Spec{}, fmt.Errorf("%s --list-full: %w", bb.Source, err)
	}
	files := append(baseFiles("/bin/sh"), bb)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		applet := path.Clean("/" + strings.TrimSpace(sc.Text()))
		if applet == "/" || applet == bb.Path {
			continue
		}
		files = append(files, Symlink(applet, bb.Path))
	}
	if len(files) < 100 {
		return Spec{}, fmt.Errorf("%s --list-full listed only %d applets", bb.Source, len(files))
	}
	return Spec{
		Name:   "busybox",
		Ref:    BusyboxRef,
		Config: Config{Cmd: []string{"sh"}, User: nonRootUser, WorkingDir: "/"},
		Files:  files,
	}, nil
}

// redisPrograms are the programs of the Redis image, as Debian's
// redis-tools and redis-server install them (redis-server is a symlink to
// redis-check-rdb: the binary picks its role from the name it is run by).
var redisPrograms = []string{"redis-server", "redis-check-rdb", "redis-check-aof", "redis-cli"}

// redisSpec is Debian's Redis: redis-server, redis-tools and the library
// packages they depend on are downloaded and unpacked; the image holds the
// programs, a redis-sentinel symlink (as Debian's redis-sentinel package
// makes it) and the loader and every shared library the programs load.
func redisSpec(o Options) (Spec, error) {
	apt := o.apt()
	roots := []string{"redis-server", "redis-tools"}
	libs, err := apt.LibraryClosure(roots...)
	if err != nil {
		return Spec{}, err
	}
	pkgs, err := apt.Download(append(roots, libs...)...)
	if err != nil {
		return Spec{}, err
	}
	if v := pkgs[0].UpstreamVersion(); v != RedisVersion {
		return Spec{}, fmt.Errorf("redis-server is version %s, not %s: change RedisVersion", pkgs[0].Version, RedisVersion)
	}
	root := filepath.Join(o.OutDir, "debian", "redis")
	if err := Unpack(pkgs, root); err != nil {
		return Spec{}, err
	}

	files := append(baseFiles("/usr/sbin/nologin"),
		Text("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n", 0o644),
		Symlink("/usr/bin/redis-sentinel", "redis-check-rdb"),
		Dir("/data", 0o755, NonRootUID),
	)
	byPath := map[string]bool{}
	add := func(entries ...File) {
		for _, f := range entries {
			if !byPath[f.Path] {
				byPath[f.Path] = true
				files = append(files, f)
			}
		}
	}
	for _, prog := range redisPrograms {
		chain, err := packagedChain(root, "/usr/bin/"+prog)
		if err != nil {
			return Spec{}, err
		}
		add(chain...)
		exe := chain[len(chain)-1]
		libs, err := sharedLibraries(root, exe.Path)
		if err != nil {
			return Spec{}, err
		}
		add(libs...)
	}
	return Spec{
		Name: "redis",
		Ref:  RedisRef,
		Config: Config{
			Cmd:          []string{"redis-server", "--protected-mode", "no"},
			User:         nonRootUser,
			WorkingDir:   "/data",
			ExposedPorts: []string{"6379/tcp"},
		},
		Files: files,
	}, nil
}

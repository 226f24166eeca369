package hostproc

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL,
// when the Group stops its processes at the end of a test.
const StopGrace = 10 * time.Second

// Spec is a program to run.
type Spec struct {
	// Name identifies the process in its Group and names its log file.
	Name string
	// Path is the program to execute; Args its arguments (without argv[0]).
	Path string
	Args []string
	// Env is added to the test's environment.
	Env []string
	// Dir is the working directory ("" for the test's).
	Dir string
}

// String is the command line, for logs and messages.
func (s Spec) String() string { return strings.Join(append([]string{s.Path}, s.Args...), " ") }

// Group is the set of processes one test started. NewGroup registers a
// cleanup that stops them all and, when the test failed, prints the end of
// each one's log.
type Group struct {
	t      testing.TB
	dir    string
	mu     sync.Mutex
	procs  []*Proc
	byName map[string]*Proc
}

// NewGroup returns an empty group whose logs go to a new directory of
// t.TempDir().
func NewGroup(t testing.TB) *Group {
	t.Helper()
	g := &Group{t: t, dir: t.TempDir(), byName: map[string]*Proc{}}
	// Registered after TempDir's own cleanup, so it runs before it: the
	// processes stop before their directories are removed.
	t.Cleanup(func() {
		g.StopAll(StopGrace)
		if t.Failed() {
			g.DumpLogs(30)
		}
	})
	return g
}

// LogDir is where the processes' logs are.
func (g *Group) LogDir() string { return g.dir }

// Start runs spec. A name may be reused once the process that had it has
// exited (its log is appended to); starting a name that still runs is an
// error.
func (g *Group) Start(spec Spec) (*Proc, error) {
	if spec.Name == "" {
		return nil, errors.New("hostproc: a process needs a name")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old := g.byName[spec.Name]; old != nil {
		if done, _ := old.Exited(); !done {
			return nil, fmt.Errorf("hostproc: %s is already running (pid %d)", spec.Name, old.Pid())
		}
	}
	p := &Proc{Spec: spec, LogPath: filepath.Join(g.dir, logName(spec.Name))}
	if err := p.start(); err != nil {
		return nil, err
	}
	g.procs = append(g.procs, p)
	g.byName[spec.Name] = p
	return p, nil
}

// MustStart is Start that fails the test on error.
func (g *Group) MustStart(spec Spec) *Proc {
	g.t.Helper()
	p, err := g.Start(spec)
	if err != nil {
		g.t.Fatal(err)
	}
	return p
}

// Get returns the process last started under name, or nil.
func (g *Group) Get(name string) *Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byName[name]
}

// StopAll stops every process of the group at once (see Proc.Stop).
func (g *Group) StopAll(grace time.Duration) {
	g.mu.Lock()
	procs := append([]*Proc(nil), g.procs...)
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.Stop(grace) })
	}
	wg.Wait()
}

// DumpLogs prints the last n lines of each process' log to the test log.
func (g *Group) DumpLogs(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range g.procs {
		if seen[p.LogPath] {
			continue
		}
		seen[p.LogPath] = true
		g.t.Logf("--- last %d lines of %s (%s):\n%s", n, p.Spec.Name, p.LogPath, p.Tail(n))
	}
}

// logName makes a file name of a process name ("etcd m-1" -> "etcd_m-1.log").
func logName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' || r == os.PathSeparator {
			return '_'
		}
		return r
	}, name) + ".log"
}

// Proc is a process of a Group. Its methods are safe for concurrent use.
type Proc struct {
	Spec Spec
	// LogPath holds the output of every run.
	LogPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // exit status of the current run, valid once done is closed
	starts int
}

// start runs the process once more (the caller holds no lock on p).
func (p *Proc) start() error {
	log, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("hostproc: log of %s: %w", p.Spec.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	fmt.Fprintf(log, "=== hostproc: run %d of %s at %s: %s\n", p.starts, p.Spec.Name, time.Now().Format(time.RFC3339Nano), p.Spec)
	cmd := exec.Command(p.Spec.Path, p.Spec.Args...)
	cmd.Dir = p.Spec.Dir
	cmd.Env = append(os.Environ(), p.Spec.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group (Kill and Stop reach its children), killed by
	// the kernel if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("hostproc: starting %s (%s): %w", p.Spec.Name, p.Spec, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		_ = log.Close()
		p.mu.Lock()
		if p.done == done {
			p.err = err
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *Proc) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// Pid is the process ID of the current run.
func (p *Proc) Pid() int {
	cmd, _ := p.current()
	return cmd.Process.Pid
}

// Done is closed when the current run has exited.
func (p *Proc) Done() <-chan struct{} {
	_, done := p.current()
	return done
}

// Exited reports whether the current run has ended, and how.
func (p *Proc) Exited() (bool, error) {
	_, done := p.current()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Kill ends the process group at once with SIGKILL, as a crash would, and
// waits until the process has exited.
func (p *Proc) Kill() {
	cmd, done := p.current()
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Stop sends SIGTERM to the process group, waits up to grace for the
// process to exit, then kills the group.
func (p *Proc) Stop(grace time.Duration) {
	cmd, done := p.current()
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Restart stops the process if it still runs (see Stop) and runs the same
// Spec again: same command line, so same ports and data directory.
func (p *Proc) Restart(grace time.Duration) error {
	p.Stop(grace)
	return p.start()
}

// Starts is how many times the process was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// WaitReady polls check every 100 ms until it succeeds. It fails when
// timeout passes or the process exits first, with the end of its log.
func (p *Proc) WaitReady(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v) before it was ready; last lines of %s:\n%s", p.Spec.Name, err, p.LogPath, p.Tail(20))
		}
		last := check()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; last lines of %s:\n%s", p.Spec.Name, timeout, last, p.LogPath, p.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Tail returns the last n lines of the process' log.
func (p *Proc) Tail(n int) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that nothing listens
// on now. Each listener is held until all are chosen, so no port is
// returned twice.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// RepoRoot returns the root of the opsmith repository, found by walking up
// from the working directory.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.HasPrefix(string(data), "module opsmith.io/opsmith\n") {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// BinDir is where the project's binaries are: $OPSMITH_BIN_DIR, or bin/ in
// the repository.
func BinDir() string {
	if d := os.Getenv("OPSMITH_BIN_DIR"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "bin")
}

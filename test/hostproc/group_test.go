package hostproc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"opsmith.io/opsmith/test/hostproc"
)

func sh(name, script string) hostproc.Spec {
	return hostproc.Spec{Name: name, Path: "/bin/sh", Args: []string{"-c", script}}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKillReachesChildren: Kill ends the whole process group at once, the
// children of the process too.
func TestKillReachesChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	g := hostproc.NewGroup(t)
	pidFile := filepath.Join(t.TempDir(), "child")
	p := g.MustStart(sh("parent", "sleep 60 & echo $! > "+pidFile+"; wait"))
	child := readPid(t, pidFile)
	p.Kill()
	done, err := p.Exited()
	if !done || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("after Kill: exited %v, %v; want killed", done, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(child) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(child) {
		t.Fatalf("child %d of the killed process still runs", child)
	}
}

// TestStopEscalates: Stop sends SIGTERM, and SIGKILL once the grace period
// passed without an exit.
func TestStopEscalates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	g := hostproc.NewGroup(t)
	polite := g.MustStart(hostproc.Spec{Name: "polite", Path: "/bin/sleep", Args: []string{"60"}})
	stubborn := g.MustStart(sh("stubborn", `trap "" TERM; sleep 60 & wait; sleep 60`))
	time.Sleep(200 * time.Millisecond) // let the shell install its trap

	start := time.Now()
	polite.Stop(5 * time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a process that exits on SIGTERM took %s to stop", d)
	}
	start = time.Now()
	stubborn.Stop(500 * time.Millisecond)
	d := time.Since(start)
	if done, err := stubborn.Exited(); !done || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("a process ignoring SIGTERM: exited %v, %v; want killed", done, err)
	}
	if d < 400*time.Millisecond || d > 5*time.Second {
		t.Errorf("a process ignoring SIGTERM stopped after %s, want about the 500ms grace", d)
	}
}

// TestRestartKeepsSpecAndLog: Restart runs the same command line again,
// the log holds both runs, and a name can be started again once its
// process exited, not while it runs.
func TestRestartKeepsSpecAndLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	g := hostproc.NewGroup(t)
	// The marker line it prints (r42) is not in its command line, which
	// the log's run headers show.
	p := g.MustStart(sh("server", "echo r$((40+2)); exec sleep 60"))
	if _, err := g.Start(sh("server", "true")); err == nil {
		t.Fatal("a second process named server started while the first runs")
	}
	printed := func(want int) func() error {
		return func() error {
			if n := strings.Count(p.Tail(10), "r42"); n != want {
				return errors.New(p.Tail(10))
			}
			return nil
		}
	}
	if err := p.WaitReady(5*time.Second, printed(1)); err != nil {
		t.Fatal(err)
	}
	first := p.Pid()
	p.Kill()
	if err := p.Restart(time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Pid() == first || p.Starts() != 2 {
		t.Fatalf("pid %d -> %d, %d starts", first, p.Pid(), p.Starts())
	}
	if err := p.WaitReady(5*time.Second, printed(2)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(p.Tail(10), "=== hostproc: run"); n != 2 {
		t.Errorf("log has %d run headers, want 2:\n%s", n, p.Tail(10))
	}

	// WaitReady gives up, with the log, when the process dies.
	dying := g.MustStart(sh("dying", "echo about to fail; exit 3"))
	err := dying.WaitReady(5*time.Second, func() error { return errors.New("never ready") })
	if err == nil || !strings.Contains(err.Error(), "about to fail") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("WaitReady on a dying process: %v", err)
	}
	again := g.MustStart(sh("dying", "exec sleep 60"))
	if again == dying || g.Get("dying") != again {
		t.Error("starting an exited name again did not make a new process")
	}
	g.StopAll(time.Second)
	if done, _ := p.Exited(); !done {
		t.Error("StopAll left a process running")
	}
}

// TestFreePortsDistinct: the ports FreePorts returns at once differ.
func TestFreePortsDistinct(t *testing.T) {
	ports, err := hostproc.FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p <= 0 {
			t.Fatalf("ports %v: %d repeated or invalid", ports, p)
		}
		seen[p] = true
	}
}

package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"opsmith.io/opsmith/test/hostproc"
)

// Process is a program started by the testbed: a cluster component, or an
// operator binary under test.
type Process struct {
	Name string
	// LogPath is the file that holds the process' output ("" when it
	// writes to this process' stdout and stderr).
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // exit status, valid after done is closed
}

// StartProcess runs bin with args, its output appended to logPath (or to
// this process' stdout and stderr when logPath is ""). The child gets its
// own process group (so Stop reaches its children too) and dies with
// SIGKILL if the process that started it dies first.
func StartProcess(name, bin string, args []string, logPath string) (*Process, error) {
	return startProcess(name, bin, args, logPath, nil)
}

// startProcess is StartProcess that, when cpus is not empty, runs the
// process (and every thread and child it starts) on those CPUs only.
func startProcess(name, bin string, args []string, logPath string, cpus []int) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	var logFile *os.File
	if logPath != "" {
		var err error
		if logFile, err = os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, fmt.Errorf("creating log file of %s: %w", name, err)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	closeLog := func() {
		if logFile != nil {
			_ = logFile.Close()
		}
	}
	if err := startOnCPUs(cmd, cpus); err != nil {
		closeLog()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		closeLog()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits up to grace, then kills
// it.
func (p *Process) Stop(grace time.Duration) {
	if done, _ := p.Exited(); done {
		return
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}

// Kill ends the process group at once with SIGKILL, as a crash would.
func (p *Process) Kill() {
	if done, _ := p.Exited(); done {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that nothing listens
// on now.
func FreePorts(n int) ([]int, error) { return hostproc.FreePorts(n) }

func itoa(i int) string { return strconv.Itoa(i) }

// errProcessExited is returned when a component dies while the testbed
// waits for it.
var errProcessExited = errors.New("process exited")

// startOnCPUs starts cmd with its CPU affinity set to cpus (all CPUs when
// empty). The child inherits the affinity of the thread that forks it, so
// the calling goroutine is locked to its thread, the thread's affinity set
// for the fork and restored after it: the process is bound from its first
// instruction (a Go program sizes GOMAXPROCS from it), which setting the
// affinity of a started process could not do for the threads it has
// already made. (The thread must outlive the fork: a child started with
// Pdeathsig is killed when the thread that forked it exits.)
func startOnCPUs(cmd *exec.Cmd, cpus []int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var orig, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		return fmt.Errorf("reading the CPU affinity: %w", err)
	}
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("setting the CPU affinity to %v: %w", cpus, err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &orig); rerr != nil {
		if err == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		return fmt.Errorf("restoring the CPU affinity: %w", rerr)
	}
	return err
}

package operator

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// ManagerEntrypoint is the manager image's program (test/images): how the
// manager's container processes are recognised on the node.
const ManagerEntrypoint = "/manager"

// KillManager sends SIGKILL to every opsmith manager process that runs in
// a container of the real node, as a crash would; the kubelet restarts
// them. The test must run on the node, as root (test/e2enode does). It
// fails the test when no manager process is found.
func KillManager(t testing.TB) {
	t.Helper()
	killed, err := KillManagerProcesses()
	if err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no manager process found on the node")
	}
	t.Logf("SIGKILL sent to %d manager process(es)", killed)
}

// KillManagerProcesses sends SIGKILL to every process on this machine
// whose argv[0] is ManagerEntrypoint and returns how many there were.
func KillManagerProcesses() (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	killed := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		if args := bytes.Split(cmdline, []byte{0}); string(args[0]) == ManagerEntrypoint {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				return killed, fmt.Errorf("killing the manager (pid %d): %w", pid, err)
			}
			killed++
		}
	}
	return killed, nil
}

package testbed

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A process started on some CPUs runs on those only, and the starting
// process keeps its own affinity.
func TestStartProcessOnCPUs(t *testing.T) {
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	if before.Count() < 2 {
		t.Skip("needs 2 CPUs to tell a bound process from a free one")
	}
	last := -1
	for c := range runtime.NumCPU() * 4 {
		if before.IsSet(c) {
			last = c
		}
	}
	logPath := filepath.Join(t.TempDir(), "out.log")
	p, err := startProcess("grep", "/bin/grep", []string{"Cpus_allowed_list", "/proc/self/status"}, logPath, []int{last})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("grep did not end")
	}
	out, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(out)); len(f) != 2 || f[1] != itoa(last) {
		t.Errorf("child's allowed CPUs: %q, want %d", out, last)
	}
	// Every thread of this process, the one that forked among them.
	for range 2 * runtime.GOMAXPROCS(0) {
		var after unix.CPUSet
		if err := unix.SchedGetaffinity(0, &after); err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Fatalf("this process' affinity changed: %d CPUs, was %d", after.Count(), before.Count())
		}
		runtime.Gosched()
	}
}

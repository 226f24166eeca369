package bench

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"
)

//go:noinline
func spin(until time.Time) int {
	n := 0
	for time.Now().Before(until) {
		n++
	}
	return n
}

// secondsIn attributes a CPU profile's samples to the function on their
// stack: a profile of this process while it spins holds spin, and nothing
// of a function that never ran.
func TestSecondsInAttributesSamplesToAFunction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	spin(time.Now().Add(500 * time.Millisecond))
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := secondsIn(path, "opsmith.io/opsmith/test/bench.spin")
	if err != nil {
		t.Fatal(err)
	}
	// The spin ran for 0.5 s of wall time; on a loaded machine it gets
	// less CPU, but some.
	if got <= 0.05 || got > 0.6 {
		t.Errorf("%.2f CPU seconds in spin, want about 0.5", got)
	}
	if none, err := secondsIn(path, ipCountFunction); err != nil || none != 0 {
		t.Errorf("%.2f CPU seconds in a function that never ran (err %v), want 0", none, err)
	}
	if _, err := secondsIn(filepath.Join(t.TempDir(), "missing"), "x"); err == nil {
		t.Error("a missing profile gave no error")
	}
}

// The scale table gets the profiled column only when the API server was
// profiled.
func TestScaleTableShowsProfiledIPCount(t *testing.T) {
	rep := &Report{N: 10}
	rep.Scale.Step = 10
	rep.Scale.Steps = []ScaleStep{{Added: 10, Total: 20, Seconds: 3}}
	if md := rep.Markdown("x"); strings.Contains(md, "counting Service IPs") {
		t.Errorf("unprofiled run has the profiled column:\n%s", md)
	}
	rep.Scale.Steps[0].APIServerIPCountSeconds = ptr.To(12.34)
	md := rep.Markdown("x")
	if !strings.Contains(md, "| API server CPU counting Service IPs |") || !strings.Contains(md, " 12.3 s |") {
		t.Errorf("profiled run lacks the column or its figure:\n%s", md)
	}
}

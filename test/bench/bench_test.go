package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"opsmith.io/opsmith/test/testbed"
)

// smokeN is the smoke tests' N: as small as still catches an idle write
// (every object converged, then reconciled again by at least one resync in
// the idle window) and exercises every step, so that `make test` stays
// short.
const smokeN = 20

// TestBenchSmoke runs the whole benchmark at N = smokeN so that it cannot
// rot, and holds the operator to the targets that do not depend on the
// machine: no write while idle and none after a restart.
func TestBenchSmoke(t *testing.T) {
	testbed.RequireCluster(t)
	// Paired needs 2 CPUs; on 1, the sequential smoke test below still
	// covers the comparison.
	cpus, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	paired := len(cpus) >= 2
	rep, err := Run(context.Background(), Config{
		N: smokeN, Workers: 8, Nodes: 2, IdleWindow: 20 * time.Second, SyncPeriod: 8 * time.Second,
		Changed: smokeN / 5, Unrelated: smokeN, ScaleTo: 2 * smokeN, ScaleStep: smokeN, ScaleBaseline: true, Paired: paired, Log: os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Markdown("go test ./test/bench"))
	if rep.Convergence.Ratio <= 0 || rep.Memory.Ready.CachedObjects < smokeN*9 || rep.Memory.Ready.HeapLiveBytes <= 0 {
		t.Errorf("implausible report: ratio %v, %d cached objects, live heap %d", rep.Convergence.Ratio, rep.Memory.Ready.CachedObjects, rep.Memory.Ready.HeapLiveBytes)
	}
	if c := rep.Convergence; paired && (len(c.Runs) != 1 || len(c.OperatorCPUs) == 0 || len(c.BaselineCPUs) == 0 || c.Alone == nil || c.Alone.OperatorSeconds <= 0) {
		t.Errorf("paired convergence: %+v, want 1 run with the CPUs of each side, and the operator alone after it", c)
	}
	if len(rep.Scale.Steps) != 1 || rep.Scale.Steps[0].Total != 2*smokeN || rep.Scale.Steps[0].Memory.CachedObjects <= rep.Memory.Ready.CachedObjects {
		t.Errorf("scale step: %+v", rep.Scale.Steps)
	} else if b := rep.Scale.Steps[0].Baseline; b == nil || b.Seconds <= 0 || !b.First || rep.Scale.Steps[0].Ratio <= 0 {
		t.Errorf("scale step: baseline %+v, ratio %v: want the baseline's step, taken first, and a ratio", b, rep.Scale.Steps[0].Ratio)
	}
	// A resync reconciles each of the N AppServices and N
	// MicroServiceDeploys once.
	if rep.Idle.Reconciles < 2*smokeN {
		t.Errorf("only %v reconciles in the idle window: no resync happened", rep.Idle.Reconciles)
	}
	if n := rep.Idle.Writes.Total(); n != 0 {
		t.Errorf("%d writes while idle: %s", n, rep.Idle.Writes)
	}
	if n := rep.Restart.Writes.Total(); n != 0 {
		t.Errorf("%d writes after a restart: %s", n, rep.Restart.Writes)
	}
	if rep.SpecChange.WritesPerChange == 0 {
		t.Error("a spec change caused no write")
	}
}

// TestBenchSequentialSmoke runs the convergence comparison the other way,
// the baseline before the operator, each on the whole machine, twice.
func TestBenchSequentialSmoke(t *testing.T) {
	testbed.RequireCluster(t)
	rep, err := Run(context.Background(), Config{
		N: smokeN / 2, Workers: 8, Nodes: 2, IdleWindow: 20 * time.Second, SyncPeriod: 8 * time.Second,
		Repeat: 2, Steps: []string{"baseline", "converge"}, Log: os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Convergence
	if len(c.Runs) != 2 || c.Runs[0].Ratio <= 0 || c.Runs[1].Ratio <= 0 || c.Paired || c.Alone != nil || c.RatioEstimate <= 0 {
		t.Errorf("sequential convergence: %+v, want 2 runs with a ratio each", c)
	}
}

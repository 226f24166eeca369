package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestSummarizeConvergence(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	rep := &Report{}
	// CPU 1 is 1.5 times slower than CPU 0: the true ratio, 1.2, shows
	// as 1.8 with the operator on CPU 1 and as 0.8 with it on CPU 0.
	rep.Convergence.Runs = []ConvergenceRun{
		{OperatorCPUs: []int{1}, OperatorSeconds: 180, BaselineSeconds: 100, Ratio: 1.8, OperatorP50: 1},
		{OperatorCPUs: []int{0}, OperatorSeconds: 80, BaselineSeconds: 100, Ratio: 0.8, OperatorP50: 2},
		{OperatorCPUs: []int{1}, OperatorSeconds: 216, BaselineSeconds: 120, Ratio: 1.8, OperatorP50: 3},
	}
	rep.summarizeConvergence()
	c := rep.Convergence
	if !near(c.RatioEstimate, 1.2) {
		t.Errorf("ratio estimate %v, want 1.2: the two CPU assignments weigh the same however many runs each had", c.RatioEstimate)
	}
	if c.OperatorMedian != 180 || c.BaselineMedian != 100 {
		t.Errorf("medians: operator %v, baseline %v; want 180, 100", c.OperatorMedian, c.BaselineMedian)
	}
	// Every ratio is as far from 1.2 in log terms (up to rounding).
	if c.OperatorP50 != 1 && c.OperatorP50 != 2 {
		t.Errorf("headline run has p50 %v, want one of the runs'", c.OperatorP50)
	}

	// Of one assignment (sequential runs): the plain geometric mean, and
	// the figures of the run nearest to it; of an even count the mean of
	// the middle times.
	rep.Convergence.Runs = []ConvergenceRun{
		{OperatorSeconds: 150, BaselineSeconds: 100, Ratio: 1.5, OperatorP50: 1},
		{OperatorSeconds: 117, BaselineSeconds: 90, Ratio: 1.3, OperatorP50: 2},
		{OperatorSeconds: 168, BaselineSeconds: 120, Ratio: 1.4, OperatorP50: 3},
		{OperatorSeconds: 0, BaselineSeconds: 0, Ratio: 0, OperatorP50: 4}, // failed: no ratio
	}
	rep.summarizeConvergence()
	c = rep.Convergence
	if want := math.Cbrt(1.5 * 1.3 * 1.4); !near(c.RatioEstimate, want) || c.OperatorP50 != 3 {
		t.Errorf("sequential: estimate %v (want %v), headline p50 %v (want the third run's)", c.RatioEstimate, want, c.OperatorP50)
	}
	if c.OperatorMedian != 133.5 || c.BaselineMedian != 95 {
		t.Errorf("medians %v / %v, want 133.5 / 95", c.OperatorMedian, c.BaselineMedian)
	}

	// The run figures keep their JSON names, next to the estimate and the runs.
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"ratio_operator_to_baseline":1.4`, `"runs":[{`, `"operator_seconds_median":133.5`, `"ratio_estimate":1.39`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON report lacks %s: %s", key, data)
		}
	}
	if md := rep.Markdown("x"); !strings.Contains(md, "1: 150.0 s / 100.0 s = 1.50; 2: 117.0 s / 90.0 s = 1.30") || !strings.Contains(md, "**1.40** (4 runs;") {
		t.Errorf("Markdown does not give the estimate and list the runs:\n%s", md)
	}
}

// The growth figures compare the time per added resource at the last step
// with the first's, on each side, along the fitted line, and the table
// shows both curves.
func TestScaleGrowthAndBaselineTable(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// Operator: 0.1 s per resource at 2,000, growing by 0.05 s per
	// 1,000 (exactly on a line); baseline: flat at 0.08 s but for a
	// noisy middle step, which the fit averages out evenly.
	s := Scale{Step: 1000, Steps: []ScaleStep{
		{Added: 1000, Total: 2000, Seconds: 100, Ratio: 1.25, Baseline: &ScaleBaselineStep{Seconds: 80, First: true}},
		{Added: 1000, Total: 3000, Seconds: 150, Ratio: 1.5, Baseline: &ScaleBaselineStep{Seconds: 100}},
		// A shorter last step: growth is per added resource.
		{Added: 500, Total: 4000, Seconds: 100, Ratio: 2.5, Baseline: &ScaleBaselineStep{Seconds: 40, First: true}},
	}}
	s.summarize()
	if !near(s.Growth, 2) || !near(s.BaselineGrowth, 1) {
		t.Errorf("growth: operator %v, baseline %v; want 2 and 1", s.Growth, s.BaselineGrowth)
	}
	if g := fittedGrowth([]float64{1, 2}, []float64{2, 3}); !near(g, 1.5) {
		t.Errorf("two points: growth %v, want their ratio 1.5", g)
	}
	if g := fittedGrowth([]float64{1, 2}, []float64{0, 3}); g != 0 {
		t.Errorf("a line through 0 at the first step: growth %v, want 0 (none)", g)
	}
	one := Scale{Steps: s.Steps[:1]}
	one.summarize()
	if one.Growth != 0 || one.BaselineGrowth != 0 {
		t.Errorf("one step gives growth %v / %v, want none", one.Growth, one.BaselineGrowth)
	}
	rep := &Report{N: 1000, Scale: s}
	md := rep.Markdown("x")
	for _, want := range []string{
		"| scale: time per added MicroServiceDeploy, last step (4000 in all) / first step (2000 in all), on the fitted line | **2.00** |",
		"| scale: the same for the baseline, on its own cluster with as many objects | 1.00 |",
		"| 1.25 → **2.50** |",
		"| 2000 | 100.0 s | 80.0 s | 1.25 | baseline |",
		"| 3000 | 150.0 s | 100.0 s | 1.50 | operator |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Without a baseline curve, neither its rows nor its table.
	for i := range s.Steps {
		s.Steps[i].Baseline, s.Steps[i].Ratio = nil, 0
	}
	s.summarize()
	if md := (&Report{N: 1000, Scale: s}).Markdown("x"); strings.Contains(md, "baseline step time") || strings.Contains(md, "the same for the baseline") {
		t.Errorf("report without a baseline curve shows one:\n%s", md)
	}
}

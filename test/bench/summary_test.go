package bench

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSummarizeConvergence(t *testing.T) {
	rep := &Report{}
	rep.Convergence.Runs = []ConvergenceRun{
		{OperatorSeconds: 150, BaselineSeconds: 100, Ratio: 1.5, OperatorP50: 1},
		{OperatorSeconds: 117, BaselineSeconds: 90, Ratio: 1.3, OperatorP50: 2},
		{OperatorSeconds: 168, BaselineSeconds: 120, Ratio: 1.4, OperatorP50: 3},
	}
	rep.summarizeConvergence()
	c := rep.Convergence
	if c.Ratio != 1.4 || c.OperatorP50 != 3 {
		t.Errorf("headline run: ratio %v, p50 %v; want the third run (ratio 1.4)", c.Ratio, c.OperatorP50)
	}
	if c.OperatorMedian != 150 || c.BaselineMedian != 100 {
		t.Errorf("medians: operator %v, baseline %v; want 150, 100", c.OperatorMedian, c.BaselineMedian)
	}

	// Of an even count: the lower middle ratio; the mean of the middle times.
	rep.Convergence.Runs = rep.Convergence.Runs[:2]
	rep.summarizeConvergence()
	c = rep.Convergence
	if c.Ratio != 1.3 || c.OperatorMedian != 133.5 || c.BaselineMedian != 95 {
		t.Errorf("two runs: ratio %v, medians %v / %v; want 1.3, 133.5 / 95", c.Ratio, c.OperatorMedian, c.BaselineMedian)
	}

	// The headline figures keep their JSON names, next to the runs.
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"ratio_operator_to_baseline":1.3`, `"runs":[{`, `"operator_seconds_median":133.5`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON report lacks %s: %s", key, data)
		}
	}
	if md := rep.Markdown("x"); !strings.Contains(md, "1: 150.0 s / 100.0 s = 1.50; 2: 117.0 s / 90.0 s = 1.30") {
		t.Errorf("Markdown does not list the runs:\n%s", md)
	}
}

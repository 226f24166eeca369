package bench

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the report as the body of BENCHMARKS.md; command is the
// command that produced it.
func (rep *Report) Markdown(command string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	c := rep.Convergence
	w("# Benchmarks")
	w("")
	w("Measured by `%s` on %s (%d cores; load average %s at the start, %s at the end),", command, rep.Date, rep.Cores, rep.LoadStart, rep.LoadEnd)
	w("N = %d AppServices and %d MicroServiceDeploys, on a simulated cluster (real kube-apiserver, kube-controller-manager,", rep.N, rep.N)
	w("kube-scheduler; kwok nodes) on the same machine. API requests are counted by the API server's audit log (user = the")
	w("operator's ServiceAccount); memory is read from the operator process, heap figures right after a forced garbage")
	w("collection, the smallest of %d samples (RSS: the median). The raw report is `bench/report.json`, the run's output `bench/output.log`.", memSamples)
	if c.Paired {
		w("Convergence: each side runs on a fresh cluster of its own, started the same way (the baseline's without an operator process);")
		w("both sides run at the same time, each cluster (and the operator) bound to half of the CPUs, the halves swapped from one run to")
		w("the next, so that both meet the same moments of a machine whose speed drifts. Readiness is observed through watches on both sides.")
	} else {
		w("Convergence: each side runs on a fresh cluster of its own, started the same way (the baseline's, without an operator process,")
		w("is stopped before the operator's starts). Readiness is observed through watches on both sides.")
	}
	if len(c.Runs) > 1 {
		w("The comparison ran %d times, each time on fresh clusters. The ratio is the geometric mean of the runs' ratios, balanced over the CPU", len(c.Runs))
		w("assignments (a steadily faster half of the CPUs favours each side equally); the other convergence figures are those of the run")
		w("whose ratio is nearest to it (every run: %s).", formatRuns(c.Runs))
	}
	w("Operator settings: client QPS %.0f, burst %d, %d concurrent reconciles per controller, progress-only statuses held up to %s (the defaults); %d creating workers on both sides.",
		rep.Config.OperatorQPS, rep.Config.OperatorBurst, rep.Config.ConcurrentRecons,
		time.Duration(rep.Config.StatusProgressDelaySecs*float64(time.Second)), rep.Config.Workers)
	w("")
	if rep.Failed != "" {
		w("**The step %q failed in this run; its figures and those of later steps are missing (zero) below.**", rep.Failed)
		w("")
	}
	w("| figure | result | target |")
	w("| --- | --- | --- |")
	w("| convergence: operator time / baseline time (baseline: a plain client applying the same child objects, built by the operator's builders, waiting for the same readiness) | **%.2f**%s | ≤ 1.25 |", c.RatioEstimate, medians(c))
	if a := c.Alone; a != nil {
		w("| operator alone on the whole machine (the cluster of the later steps): time, p50 / p99 create-to-ready, CPU seconds by process | %.1f s, %.1f s / %.1f s, %s | |", a.OperatorSeconds, a.OperatorP50, a.OperatorP99, formatCPU(a.OperatorCPU))
	}
	w("| create-to-ready latency per resource, operator p50 / p99 | %.1f s / %.1f s | |", c.OperatorP50, c.OperatorP99)
	w("| create-to-ready latency per resource, baseline p50 / p99 | %.1f s / %.1f s | |", c.BaselineP50, c.BaselineP99)
	w("| operator while converging: writes per resource (events included) | %.1f %s| |", c.WritesPerResource, paren(c.OperatorTraffic.Writes))
	w("| operator while converging: reads, CPU time | %d %s, %.1f s CPU | |", c.OperatorTraffic.Reads.Total(), paren(c.OperatorTraffic.Reads), c.OperatorCPUSeconds)
	w("| CPU busy while converging (of the CPUs each side had), operator / baseline | %.0f %% / %.0f %% | |", 100*c.OperatorMachineBusy, 100*c.BaselineMachineBusy)
	w("| CPU seconds by process while converging, operator side | %s | |", formatCPU(c.OperatorCPU))
	w("| CPU seconds by process while converging, baseline side | %s | |", formatCPU(c.BaselineCPU))
	i := rep.Idle
	w("| idle: operator write requests in %.0f s with everything Ready, including a full resync (%d reconciles) | **%d** %s| 0 |", rep.Config.IdleWindowSecs, int(i.Reconciles), i.Writes.Total(), paren(i.Writes))
	w("| idle: leader-election writes in the same window | %d %s| (reported apart) |", i.LeaderElection.Total(), paren(i.LeaderElection))
	w("| reads reaching the API server per steady-state reconcile | **%.3f** %s| 0 |", i.ReadsPerReconcile, paren(i.Reads))
	s := rep.SpecChange
	w("| writes per spec change (new image on %d AppServices) | %.1f %s| only what changed |", s.Changed, s.WritesPerChange, paren(s.Writes))
	rs := rep.Restart
	w("| operator restart: writes until every resource was reconciled once | **%d** %s| 0 |", rs.Writes.Total(), paren(rs.Writes))
	w("| operator restart: statuses that differ before the stop and after the new process reconciled everything | %d %s| |", rs.StatusChanged, paren(rs.StatusFields))
	w("| operator restart: time until every resource was reconciled once | %.1f s | |", rs.SecondsToResync)
	m := rep.Memory
	w("| memory: live heap / heap in use / RSS with %d cached objects | %.0f MiB / %.0f MiB / %.0f MiB | |", m.Ready.CachedObjects, mib(m.Ready.HeapLiveBytes), mib(m.Ready.HeapInuseBytes), mib(m.Ready.RSSBytes))
	w("| memory: live heap per cached object (N = %d) | **%.0f B** | ≤ 10 KB |", rep.N, m.Ready.HeapLivePerObject)
	if n := len(rep.Scale.Steps); n > 0 {
		last := rep.Scale.Steps[n-1]
		w("| memory: live heap per cached object with %d MicroServiceDeploys (%d cached objects; heap %.0f MiB, RSS %.0f MiB) | **%.0f B** | ≤ 10 KB |",
			last.Total, last.Memory.CachedObjects, mib(last.Memory.HeapLiveBytes), mib(last.Memory.RSSBytes), last.Memory.HeapLivePerObject)
	}
	w("| memory: increase after %d unrelated ConfigMaps and Secrets, live heap / RSS | **%+.1f %%** / **%+.1f %%** | < 5 %% |", m.UnrelatedObjects, m.UnrelatedHeapPct, m.UnrelatedRSSPct)
	if sc := rep.Scale; len(sc.Steps) > 1 {
		first, last := sc.Steps[0], sc.Steps[len(sc.Steps)-1]
		w("| scale: time per added MicroServiceDeploy, last step (%d in all) / first step (%d in all), on the fitted line | **%.2f** | flat (1) |", last.Total, first.Total, sc.Growth)
		if sc.BaselineGrowth > 0 {
			w("| scale: the same for the baseline, on its own cluster with as many objects | %.2f | |", sc.BaselineGrowth)
			w("| scale: operator step time / baseline step time, first step → last step | %.2f → **%.2f** | flat |", first.Ratio, last.Ratio)
		}
	}
	w("")
	if len(rep.Scale.Steps) > 0 {
		w("Scale curve: MicroServiceDeploys added %d at a time (each step in a namespace of its own) to the %d of the convergence step;", rep.Scale.Step, rep.N)
		w("the time is from the first create of the step until all of its instances are Running. The operator is the process the restart")
		w("step started, with the shipped resync period (%s; the first process resyncs every %s for the idle step).",
			time.Duration(rep.Config.RestartedSyncPeriodSecs*float64(time.Second)), time.Duration(rep.Config.SyncPeriodSecs*float64(time.Second)))
		if rep.Scale.Stopped != "" {
			w("**The curve %s.**", rep.Scale.Stopped)
		}
		profiled := rep.Scale.Steps[0].APIServerIPCountSeconds != nil
		head, rule := "", ""
		if profiled {
			w("The last column is the API server's CPU time (from its CPU profiles) in counting the Service IPs in use, which")
			w("kube-apiserver does by listing every IPAddress object each time it allocates a Service's cluster IP.")
			head, rule = " API server CPU counting Service IPs |", " --- |"
		}
		w("")
		w("| MicroServiceDeploys | step time | p50 / p99 create-to-Running | operator writes per resource | cached objects | live heap | heap per object | RSS | CPU seconds by process |%s", head)
		w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |%s", rule)
		for _, st := range rep.Scale.Steps {
			cell := ""
			if profiled && st.APIServerIPCountSeconds != nil {
				cell = fmt.Sprintf(" %.1f s |", *st.APIServerIPCountSeconds)
			}
			w("| %d | %.1f s | %.1f s / %.1f s | %.1f | %d | %.0f MiB | %.0f B | %.0f MiB | %s |%s", st.Total, st.Seconds, st.P50, st.P99,
				st.WritesPerResource, st.Memory.CachedObjects, mib(st.Memory.HeapLiveBytes), st.Memory.HeapLivePerObject, mib(st.Memory.RSSBytes), formatCPU(st.CPU), cell)
		}
		w("")
		if rep.Scale.Steps[0].Baseline != nil {
			rep.Scale.baselineMarkdown(w, profiled)
		}
	}
	return b.String()
}

func paren(r Requests) string {
	if len(r) == 0 {
		return ""
	}
	return "(" + strings.TrimSpace(r.String()) + ") "
}

// formatRuns lists each convergence run's times and ratio.
func formatRuns(runs []ConvergenceRun) string {
	var parts []string
	for i, x := range runs {
		cpus := ""
		if len(x.OperatorCPUs) > 0 {
			cpus = fmt.Sprintf(" (operator on CPUs %v)", x.OperatorCPUs)
		}
		parts = append(parts, fmt.Sprintf("%d: %.1f s / %.1f s = %.2f%s", i+1, x.OperatorSeconds, x.BaselineSeconds, x.Ratio, cpus))
	}
	return strings.Join(parts, "; ")
}

// medians gives the times behind the ratio: of the one run, or each
// side's median over the runs.
func medians(c Convergence) string {
	if len(c.Runs) < 2 {
		return fmt.Sprintf(" (%.1f s / %.1f s)", c.OperatorSeconds, c.BaselineSeconds)
	}
	return fmt.Sprintf(" (%d runs; median times: operator %.1f s, baseline %.1f s)", len(c.Runs), c.OperatorMedian, c.BaselineMedian)
}

// baselineMarkdown renders the scale curve's comparison with the baseline.
func (s Scale) baselineMarkdown(w func(string, ...any), profiled bool) {
	w("The baseline took every step too, on a cluster of its own started the same way and given, before the first step, the")
	w("children of as many resources as the operator's cluster held: each step, a plain client applied the children of the step's")
	w("MicroServiceDeploys (built by the operator's builders) and waited for every Deployment's pods to be ready. The two clusters")
	w("took turns on the whole machine, each after it settled, the baseline first in odd steps: growth that is the cluster's (the")
	w("API server, etcd, the controller manager) shows on both curves; growth that is the operator's, in the ratio.")
	head, rule := "", ""
	if profiled {
		head, rule = " baseline API server CPU counting Service IPs |", " --- |"
	}
	w("")
	w("| MicroServiceDeploys | operator step time | baseline step time | operator / baseline | side first | baseline p50 / p99 create-to-ready | baseline CPU seconds by process |%s", head)
	w("| --- | --- | --- | --- | --- | --- | --- |%s", rule)
	for _, st := range s.Steps {
		b := st.Baseline
		if b == nil {
			continue
		}
		first := "operator"
		if b.First {
			first = "baseline"
		}
		cell := ""
		if profiled && b.APIServerIPCountSeconds != nil {
			cell = fmt.Sprintf(" %.1f s |", *b.APIServerIPCountSeconds)
		}
		w("| %d | %.1f s | %.1f s | %.2f | %s | %.1f s / %.1f s | %s |%s", st.Total, st.Seconds, b.Seconds, st.Ratio, first, b.P50, b.P99, formatCPU(b.CPU), cell)
	}
	w("")
}

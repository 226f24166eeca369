package bench

import (
	"fmt"
	"strings"
)

// Markdown renders the report as the body of BENCHMARKS.md; command is the
// command that produced it.
func (rep *Report) Markdown(command string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	c := rep.Convergence
	w("# Benchmarks")
	w("")
	w("Measured by `%s` on %s (%d cores), N = %d AppServices and %d MicroServiceDeploys,", command, rep.Date, rep.Cores, rep.N, rep.N)
	w("on a simulated cluster (real kube-apiserver, kube-controller-manager, kube-scheduler; kwok nodes).")
	w("API requests are counted by the API server's audit log (user = the operator's ServiceAccount);")
	w("memory is read from the operator process. The raw report is `bench/report.json`, the run's output `bench/output.log`.")
	w("Operator settings: client QPS %.0f, burst %d, %d concurrent reconciles per controller; %d creating workers on both sides.",
		rep.Config.OperatorQPS, rep.Config.OperatorBurst, rep.Config.ConcurrentRecons, rep.Config.Workers)
	w("")
	if rep.Failed != "" {
		w("**The step %q failed in this run; its figures and those of later steps are missing (zero) below.**", rep.Failed)
		w("")
	}
	w("| figure | result | target |")
	w("| --- | --- | --- |")
	w("| convergence: operator time / baseline time (baseline: a plain client applying the same child objects, built by the operator's builders, waiting for the same readiness) | **%.2f** (%.1f s / %.1f s) | ≤ 1.25 |", c.Ratio, c.OperatorSeconds, c.BaselineSeconds)
	w("| create-to-ready latency per resource, operator p50 / p99 | %.1f s / %.1f s | |", c.OperatorP50, c.OperatorP99)
	w("| create-to-ready latency per resource, baseline p50 / p99 | %.1f s / %.1f s | |", c.BaselineP50, c.BaselineP99)
	i := rep.Idle
	w("| idle: operator write requests in %.0f s with everything Ready, including a full resync (%d reconciles) | **%d** %s| 0 |", rep.Config.IdleWindowSecs, int(i.Reconciles), i.Writes.Total(), paren(i.Writes))
	w("| idle: leader-election writes in the same window | %d %s| (reported apart) |", i.LeaderElection.Total(), paren(i.LeaderElection))
	w("| reads reaching the API server per steady-state reconcile | **%.3f** %s| 0 |", i.ReadsPerReconcile, paren(i.Reads))
	s := rep.SpecChange
	w("| writes per spec change (new image on %d AppServices) | %.1f %s| only what changed |", s.Changed, s.WritesPerChange, paren(s.Writes))
	rs := rep.Restart
	w("| operator restart: writes until every resource was reconciled once | **%d** %s| 0 |", rs.Writes.Total(), paren(rs.Writes))
	w("| operator restart: time until every resource was reconciled once | %.1f s | |", rs.SecondsToResync)
	m := rep.Memory
	w("| memory: operator RSS / Go heap in use with %d cached objects | %d MiB / %d MiB | |", m.CachedObjects, m.RSSBytes>>20, m.HeapInuseBytes>>20)
	w("| memory: heap in use per cached object | **%.0f B** | ≤ 10 KB |", m.HeapPerObjectBytes)
	w("| memory: RSS increase after %d unrelated ConfigMaps and Secrets | **%+.1f %%** | < 5 %% |", m.UnrelatedObjects, m.UnrelatedRSSPct)
	w("")
	return b.String()
}

func paren(r Requests) string {
	if len(r) == 0 {
		return ""
	}
	return "(" + strings.TrimSpace(r.String()) + ") "
}

package bench

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
)

// ScaleStep is one step of the scale curve: Added more MicroServiceDeploys
// (Total with those of earlier steps) created at once and run to Running.
type ScaleStep struct {
	Added   int     `json:"added"`
	Total   int     `json:"total_microservicedeploys"`
	Seconds float64 `json:"seconds_until_all_running"`
	P50     float64 `json:"create_to_running_p50_seconds"`
	P99     float64 `json:"create_to_running_p99_seconds"`
	// Writes are the operator's writes in the step, per added resource.
	WritesPerResource float64 `json:"operator_writes_per_resource"`
	Memory            Memory  `json:"memory"`
	// CPU is the CPU seconds each process of the cluster (and the
	// operator) used during the step, to tell which one a slower step
	// spent its time in.
	CPU map[string]float64 `json:"cpu_seconds_by_process"`
	// APIServerIPCountSeconds is, when the API server was profiled
	// (-profile-dir), its CPU time in counting the Service IPs in use
	// (which it does on every Service it creates, by listing every
	// IPAddress: a cost per Service that grows with the cluster's
	// Services). Profiles are 10-second chunks counted when complete, so
	// a step's figure may include up to one chunk of its neighbours'.
	APIServerIPCountSeconds *float64 `json:"apiserver_service_ip_count_cpu_seconds,omitempty"`
	// Baseline is the same step taken by the baseline on its own cluster,
	// when the curve has one.
	Baseline *ScaleBaselineStep `json:"baseline,omitempty"`
	// Ratio is Seconds / Baseline.Seconds.
	Ratio float64 `json:"ratio_operator_to_baseline,omitempty"`
}

// ScaleBaselineStep is a step of the baseline's scale curve: the child
// objects of the step's MicroServiceDeploys applied by a plain client, on
// a cluster of its own that holds the children of as many resources as the
// operator's.
type ScaleBaselineStep struct {
	Seconds float64            `json:"seconds_until_all_ready"`
	P50     float64            `json:"create_to_ready_p50_seconds"`
	P99     float64            `json:"create_to_ready_p99_seconds"`
	CPU     map[string]float64 `json:"cpu_seconds_by_process"`
	// First says the baseline took the step before the operator (the
	// sides alternate from one step to the next).
	First                   bool     `json:"first"`
	APIServerIPCountSeconds *float64 `json:"apiserver_service_ip_count_cpu_seconds,omitempty"`
}

// Scale is the scale curve.
type Scale struct {
	Step  int         `json:"step"`
	Steps []ScaleStep `json:"steps"`
	// Stopped says why the curve ends before ScaleTo, if it does.
	Stopped string `json:"stopped,omitempty"`
	// Growth is how much the time per added resource grew from the first
	// step to the last (1: flat), read from the least-squares line of the
	// time per added resource against the total, so that one noisy step
	// does not make the figure; BaselineGrowth the same for the baseline.
	Growth         float64 `json:"growth_last_to_first_step"`
	BaselineGrowth float64 `json:"baseline_growth_last_to_first_step,omitempty"`
}

// summarize sets the growth figures from the steps.
func (s *Scale) summarize() {
	s.Growth, s.BaselineGrowth = 0, 0
	var x, op, base []float64
	for _, st := range s.Steps {
		x = append(x, float64(st.Total))
		op = append(op, st.Seconds/float64(st.Added))
		if st.Baseline != nil {
			base = append(base, st.Baseline.Seconds/float64(st.Added))
		}
	}
	s.Growth = fittedGrowth(x, op)
	if len(base) == len(x) {
		s.BaselineGrowth = fittedGrowth(x, base)
	}
}

// fittedGrowth fits y = a + b·x by least squares and returns the fitted y
// at the last x over the fitted y at the first; 0 with fewer than 2
// points or a fitted first value that is not positive.
func fittedGrowth(x, y []float64) float64 {
	n := float64(len(x))
	if len(x) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	b := (n*sxy - sx*sy) / d
	a := (sy - b*sx) / n
	first, last := a+b*x[0], a+b*x[len(x)-1]
	if first <= 0 {
		return 0
	}
	return last / first
}

// scale adds MicroServiceDeploys, ScaleStep at a time, each step in a
// namespace of its own, until there are ScaleTo (counting those the
// earlier steps created), timing every step and reading the operator's
// memory after it. A namespace per step keeps each namespace's
// ResourceQuota at ScaleStep owners (it is owned by every instance of its
// namespace, and an object's size is bounded).
//
// With ScaleBaseline, the baseline takes every step too, on a cluster of
// its own started with the children of as many resources as the
// operator's cluster holds: each step's child objects applied by a plain
// client, timed to the same readiness. The two clusters take turns on the
// whole machine, the baseline first in odd steps, the operator in even
// ones, each after the machine settled, so that growth that is the
// cluster's shows on both curves.
func (r *run) scale(ctx context.Context) (err error) {
	rep := &r.report.Scale
	rep.Step = r.cfg.ScaleStep
	apps, total, err := r.resources(ctx)
	if err != nil {
		return err
	}
	var base *run
	if r.cfg.ScaleBaseline {
		base = &run{cfg: r.cfg, report: r.report}
		// Keep the cluster's files after a failure.
		defer func() { base.stopCluster(err != nil) }()
		if err := base.startScaleBaseline(ctx, apps, total); err != nil {
			return err
		}
		stopProfiling := base.profile(ctx, "scale-baseline")
		defer stopProfiling()
	}
	begin := time.Now()
	var last time.Duration
	for k := 0; total < r.cfg.ScaleTo; k++ {
		if b := r.cfg.ScaleBudget; b > 0 && time.Since(begin)+last > b {
			rep.Stopped = fmt.Sprintf("stopped at %d MicroServiceDeploys: one more step (the last took %s) would exceed the time budget of %s",
				total, last.Round(time.Second), b)
			r.logf("bench: scale: %s", rep.Stopped)
			break
		}
		stepStart := time.Now()
		add := min(r.cfg.ScaleStep, r.cfg.ScaleTo-total)
		ns := fmt.Sprintf("bench-scale-%02d", k)
		st := ScaleStep{Added: add, Total: total + add}
		sides := []func() error{func() error { return r.scaleOperator(ctx, ns, total, &st) }}
		if base != nil {
			st.Baseline = &ScaleBaselineStep{First: k%2 == 0}
			b := func() error { return base.scaleBaseline(ctx, ns, total, add, st.Baseline) }
			if st.Baseline.First {
				sides = append([]func() error{b}, sides...)
			} else {
				sides = append(sides, b)
			}
		}
		for _, side := range sides {
			if err = side(); err != nil {
				return fmt.Errorf("step %d: %w", k+1, err)
			}
		}
		total += add
		if st.Baseline != nil && st.Baseline.Seconds > 0 {
			st.Ratio = st.Seconds / st.Baseline.Seconds
			r.logf("bench: scale: %d in all: operator %.1fs, baseline %.1fs: ratio %.2f", total, st.Seconds, st.Baseline.Seconds, st.Ratio)
		}
		rep.Steps = append(rep.Steps, st)
		rep.summarize()
		last = time.Since(stepStart)
	}
	return nil
}

// resources counts the AppServices and MicroServiceDeploys in the cluster.
func (r *run) resources(ctx context.Context) (apps, msds int, err error) {
	var al appsv1alpha1.AppServiceList
	if err := r.k8s.List(ctx, &al); err != nil {
		return 0, 0, err
	}
	var ml appsv1alpha1.MicroServiceDeployList
	if err := r.k8s.List(ctx, &ml); err != nil {
		return 0, 0, err
	}
	return len(al.Items), len(ml.Items), nil
}

// startScaleBaseline starts the cluster of the baseline's scale curve and
// applies the children of apps AppServices and msds MicroServiceDeploys,
// as the operator's cluster holds, to start from the same state.
func (r *run) startScaleBaseline(ctx context.Context, apps, msds int) error {
	if err := r.startCluster(ctx, "scale-baseline"); err != nil {
		return err
	}
	out, err := r.applyBaseline(ctx, baselineNS, baselineItems(apps, msds))
	if err != nil {
		return err
	}
	r.logf("bench: scale: the baseline's cluster holds the children of %d AppServices and %d MicroServiceDeploys (applied in %.1fs)", apps, msds, out.seconds)
	return nil
}

// scaleOperator takes a step of the scale curve on the operator's side:
// st.Added MicroServiceDeploys, numbered from first, created in namespace
// ns and run to Running.
func (r *run) scaleOperator(ctx context.Context, ns string, first int, st *ScaleStep) error {
	if err := r.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	rd := newReadiness()
	defer rd.stopWatches() // also when a step fails before waitAll
	err := rd.watch(ctx, r.watcher, ns, func() client.ObjectList { return &appsv1alpha1.MicroServiceDeployList{} }, func(o client.Object) (string, bool) {
		m, ok := o.(*appsv1alpha1.MicroServiceDeploy)
		return o.GetName(), ok && m.Status.Phase == appsv1alpha1.PhaseRunning
	})
	if err != nil {
		return err
	}
	r.settle(ctx)
	cpu := r.startCPUMeter()
	ipCount := r.ipCount.total()
	start := time.Now()
	err = r.parallel(st.Added, func(i int) error {
		m := microServiceDeploy(ns, first+i)
		m.SetUID("")
		rd.creating(m.Name)
		if err := r.k8s.Create(ctx, m); err != nil {
			return err
		}
		rd.created(m.Name)
		return nil
	})
	if err != nil {
		return err
	}
	if st.Seconds, err = rd.waitAll(ctx, start, st.Added, r.timeout()); err != nil {
		return err
	}
	st.CPU = cpu.perProcess()
	if r.cfg.ProfileDir != "" {
		st.APIServerIPCountSeconds = ptr.To(r.ipCount.total() - ipCount)
	}
	st.P50, st.P99 = rd.percentiles()
	tr, err := r.traffic(start, time.Now())
	if err != nil {
		return err
	}
	st.WritesPerResource = float64(tr.Writes.Total()) / float64(st.Added)
	time.Sleep(5 * time.Second) // the last status writes land
	if st.Memory, err = r.settledMemory(ctx); err != nil {
		return err
	}
	r.logf("bench: scale: %d more MicroServiceDeploys (%d in all) Running in %.1fs (p50 %.1fs, p99 %.1fs), %.1f operator writes each; memory: %s; CPU seconds: %s",
		st.Added, st.Total, st.Seconds, st.P50, st.P99, st.WritesPerResource, st.Memory, formatCPU(st.CPU))
	if st.APIServerIPCountSeconds != nil {
		r.logf("bench: scale: the API server spent %.1f CPU seconds counting Service IPs in this step (profiled)", *st.APIServerIPCountSeconds)
	}
	return nil
}

// scaleBaseline takes a step of the scale curve on the baseline's side:
// the children of add MicroServiceDeploys, numbered from first, applied in
// namespace ns.
func (r *run) scaleBaseline(ctx context.Context, ns string, first, add int, st *ScaleBaselineStep) error {
	if err := r.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	items := make([]baselineItem, add)
	for i := range items {
		items[i] = baselineItem{1, first + i}
	}
	r.settle(ctx)
	ipCount := r.ipCount.total()
	out, err := r.applyBaseline(ctx, ns, items)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	st.Seconds, st.P50, st.P99, st.CPU = out.seconds, out.p50, out.p99, out.cpu
	if r.cfg.ProfileDir != "" {
		st.APIServerIPCountSeconds = ptr.To(r.ipCount.total() - ipCount)
	}
	r.logf("bench: scale: baseline: the children of %d more MicroServiceDeploys (%d in all) ready in %.1fs (p50 %.1fs, p99 %.1fs); CPU seconds: %s",
		add, first+add, st.Seconds, st.P50, st.P99, formatCPU(st.CPU))
	return nil
}

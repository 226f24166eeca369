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
}

// scale adds MicroServiceDeploys, ScaleStep at a time, each step in a
// namespace of its own, until there are ScaleTo (counting the N of the
// convergence step), timing every step and reading the operator's memory
// after it. A namespace per step keeps each namespace's ResourceQuota at
// ScaleStep owners (it is owned by every instance of its namespace, and
// an object's size is bounded).
func (r *run) scale(ctx context.Context) error {
	rep := &r.report.Scale
	rep.Step = r.cfg.ScaleStep
	total := r.cfg.N
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
		cpu := r.startCPUMeter()
		ipCount := r.ipCount.total()
		start := time.Now()
		first := total
		err = r.parallel(add, func(i int) error {
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
		secs, err := rd.waitAll(ctx, start, add, r.timeout())
		if err != nil {
			return fmt.Errorf("step %d: %w", k+1, err)
		}
		total += add
		st := ScaleStep{Added: add, Total: total, Seconds: secs, CPU: cpu.perProcess()}
		if r.cfg.ProfileDir != "" {
			st.APIServerIPCountSeconds = ptr.To(r.ipCount.total() - ipCount)
		}
		st.P50, st.P99 = rd.percentiles()
		tr, err := r.traffic(start, time.Now())
		if err != nil {
			return err
		}
		st.WritesPerResource = float64(tr.Writes.Total()) / float64(add)
		time.Sleep(5 * time.Second) // the last status writes land
		if st.Memory, err = r.settledMemory(ctx); err != nil {
			return err
		}
		rep.Steps = append(rep.Steps, st)
		last = time.Since(stepStart)
		r.logf("bench: scale: %d more MicroServiceDeploys (%d in all) Running in %.1fs (p50 %.1fs, p99 %.1fs), %.1f operator writes each; memory: %s; CPU seconds: %s",
			add, total, secs, st.P50, st.P99, st.WritesPerResource, st.Memory, formatCPU(st.CPU))
		if st.APIServerIPCountSeconds != nil {
			r.logf("bench: scale: the API server spent %.1f CPU seconds counting Service IPs in this step (profiled)", *st.APIServerIPCountSeconds)
		}
	}
	return nil
}

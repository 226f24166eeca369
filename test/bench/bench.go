// Package bench measures opsmith on a simulated cluster (real
// kube-apiserver, controller-manager and scheduler; kwok nodes): how fast it
// converges against a plain client that creates the same objects, what it
// sends to the API server when nothing changes and after a restart, and
// what it costs in memory. Every figure comes from one run on one machine:
// API requests from the API server's audit log, memory from the operator
// process itself.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/appservice"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

// Config of a benchmark run.
type Config struct {
	// N AppServices and N MicroServiceDeploys are created.
	N int
	// Workers create objects in parallel, on both sides.
	Workers int
	// Nodes of the simulated cluster.
	Nodes int
	// IdleWindow is how long writes are counted with everything Ready; it
	// must be longer than SyncPeriod so that it includes a full resync.
	IdleWindow, SyncPeriod time.Duration
	// Changed is how many AppServices get a new image to measure the
	// writes per spec change.
	Changed int
	// Unrelated ConfigMaps and as many Secrets are created to show the
	// operator does not cache what it does not own.
	Unrelated int
	// ScaleTo is the total of MicroServiceDeploys the scale step adds
	// resources up to, ScaleStep at a time; 0 skips the step.
	ScaleTo, ScaleStep int
	// ScaleBudget bounds the time of the scale step: no step starts that
	// would, at the pace of the one before, end after it. 0: no bound.
	ScaleBudget time.Duration
	// ScaleBaseline has the baseline take every step of the scale curve
	// too, on a cluster of its own (see scale).
	ScaleBaseline bool
	// Repeat is how many times the convergence comparison (baseline, then
	// operator, each on a fresh cluster) runs; the report gives the
	// median. The later steps run on the operator's cluster of the last
	// repeat. 0 means 1.
	Repeat int
	// Paired runs both sides of each repeat at the same time, each
	// cluster bound to half of the machine's CPUs (swapped from one repeat
	// to the next), so that both meet the same moments of the machine;
	// otherwise the baseline runs first, on the whole machine, then the
	// operator. After paired repeats the operator converges once more,
	// alone on the whole machine, on the cluster the later steps use.
	Paired bool
	// Steps, when not empty, limits the run to the steps named (see
	// StepNames), for tuning; a report of a partial run says which ran.
	Steps []string
	// ProfileDir, when set, receives CPU profiles of the API server and of
	// the operator, taken back to back while each step runs
	// (<step>-<component>-<k>.pb.gz; merge them with go tool pprof).
	ProfileDir string
	// ClusterDir, when set, is where the simulated cluster keeps its data
	// and logs (the API server's audit log among them); it is left in
	// place after the run, for analysis.
	ClusterDir string
	Log        io.Writer
}

// StepNames are the steps of a run, in order.
var StepNames = []string{"baseline", "converge", "idle", "memory", "spec-change", "restart", "scale"}

// Report is the outcome of a run. Durations are in seconds.
type Report struct {
	Date   string `json:"date"`
	N      int    `json:"n"`
	Cores  int    `json:"cores"`
	Config struct {
		Workers        int     `json:"workers"`
		IdleWindowSecs float64 `json:"idle_window_seconds"`
		SyncPeriodSecs float64 `json:"sync_period_seconds"`
		// RestartedSyncPeriodSecs is the resync period of the operator
		// process started by the restart step, which the scale curve
		// measures: the shipped default.
		RestartedSyncPeriodSecs float64 `json:"restarted_sync_period_seconds"`
		OperatorQPS             float64 `json:"operator_client_qps"`
		OperatorBurst           int     `json:"operator_client_burst"`
		ConcurrentRecons        int     `json:"max_concurrent_reconciles"`
		// StatusProgressDelaySecs is how long the operator may hold back
		// a status that reports only progress (the shipped default).
		StatusProgressDelaySecs float64 `json:"status_progress_delay_seconds"`
	} `json:"config"`
	Convergence Convergence `json:"convergence"`
	Idle        struct {
		Traffic
		Reconciles        float64 `json:"reconciles"`
		ReadsPerReconcile float64 `json:"reads_per_reconcile"`
	} `json:"idle"`
	Restart struct {
		Traffic
		SecondsToResync float64 `json:"seconds_until_every_resource_reconciled"`
		// StatusChanged counts the resources whose status differs between
		// before the stop and after the new process reconciled them;
		// StatusFields counts them per changed field.
		StatusChanged int      `json:"status_changed"`
		StatusFields  Requests `json:"status_changed_fields"`
	} `json:"restart"`
	SpecChange struct {
		Traffic
		Changed         int     `json:"changed"`
		WritesPerChange float64 `json:"writes_per_change"`
	} `json:"spec_change"`
	// Scale adds MicroServiceDeploys in steps up to a total and records
	// the time and memory of each step.
	Scale Scale `json:"scale"`
	// Load is the machine's load average (1, 5, 15 minutes) at the start
	// and at the end of the run: other work on the machine slows both
	// sides.
	LoadStart string `json:"load_average_start"`
	LoadEnd   string `json:"load_average_end"`
	// Failed names the step that failed, when one did; the figures of the
	// steps before it are still valid.
	Failed string `json:"failed_step,omitempty"`
	// Steps lists the steps that ran when not all of them did.
	Steps  []string `json:"steps,omitempty"`
	Memory struct {
		// Ready is the memory with every benchmark resource ready.
		Ready Memory `json:"ready"`
		// AfterUnrelated is the memory after UnrelatedObjects ConfigMaps
		// and Secrets that opsmith does not manage were created.
		AfterUnrelated   Memory  `json:"after_unrelated"`
		UnrelatedObjects int     `json:"unrelated_objects"`
		UnrelatedRSSPct  float64 `json:"unrelated_rss_increase_percent"`
		UnrelatedHeapPct float64 `json:"unrelated_live_heap_increase_percent"`
	} `json:"memory"`
}

// Convergence is the outcome of the convergence comparison.
type Convergence struct {
	// The figures of the run whose ratio is nearest to RatioEstimate.
	ConvergenceRun
	// RatioEstimate is the operator-to-baseline ratio the runs give:
	// their geometric mean, balanced over CPU assignments (see
	// ratioEstimate).
	RatioEstimate float64 `json:"ratio_estimate"`
	// Runs are all repeats of the comparison, in order.
	Runs []ConvergenceRun `json:"runs"`
	// OperatorMedian and BaselineMedian are the medians of each side's
	// times over Runs.
	OperatorMedian float64 `json:"operator_seconds_median"`
	BaselineMedian float64 `json:"baseline_seconds_median"`
	// Paired says the sides of each run ran at the same time, each on
	// half of the CPUs.
	Paired bool `json:"paired"`
	// Alone is, after paired runs, the operator converging by itself on
	// the whole machine, on the cluster the later steps use.
	Alone *ConvergenceRun `json:"operator_alone,omitempty"`
}

// ConvergenceRun is one repeat of the convergence comparison: the
// baseline on a fresh cluster, then the operator on another.
type ConvergenceRun struct {
	// BaselineCPUs and OperatorCPUs are the CPUs each side's cluster was
	// bound to (empty: all).
	BaselineCPUs    []int   `json:"baseline_cpus,omitempty"`
	OperatorCPUs    []int   `json:"operator_cpus,omitempty"`
	OperatorSeconds float64 `json:"operator_seconds"`
	BaselineSeconds float64 `json:"baseline_seconds"`
	Ratio           float64 `json:"ratio_operator_to_baseline"`
	OperatorP50     float64 `json:"operator_create_to_ready_p50_seconds"`
	OperatorP99     float64 `json:"operator_create_to_ready_p99_seconds"`
	BaselineP50     float64 `json:"baseline_create_to_ready_p50_seconds"`
	BaselineP99     float64 `json:"baseline_create_to_ready_p99_seconds"`
	// OperatorTraffic is what the operator sent while converging.
	OperatorTraffic Traffic `json:"operator_traffic"`
	// WritesPerResource are the operator's writes (events included)
	// per AppService or MicroServiceDeploy while converging.
	WritesPerResource float64 `json:"operator_writes_per_resource"`
	// OperatorCPUSeconds is the CPU time the operator process used
	// while converging.
	OperatorCPUSeconds float64 `json:"operator_cpu_seconds"`
	// BaselineMachineBusy and OperatorMachineBusy are the fractions of
	// the machine's CPU time (all cores, every process) that was busy
	// while each side converged: near 1, the side was bound by the CPU
	// the whole cluster shares; well below, by waiting.
	BaselineMachineBusy float64 `json:"baseline_machine_cpu_busy"`
	OperatorMachineBusy float64 `json:"operator_machine_cpu_busy"`
	// BaselineCPU and OperatorCPU are the CPU seconds each process of
	// the cluster (and the operator) used while each side converged.
	BaselineCPU map[string]float64 `json:"baseline_cpu_seconds_by_process"`
	OperatorCPU map[string]float64 `json:"operator_cpu_seconds_by_process"`
}

// summarizeConvergence sets the headline figures from the runs: the ratio
// estimate, the figures of the run whose ratio is nearest to it, and each
// side's median time.
func (rep *Report) summarizeConvergence() {
	c := &rep.Convergence
	if len(c.Runs) == 0 {
		return
	}
	c.RatioEstimate = ratioEstimate(c.Runs)
	c.ConvergenceRun = c.Runs[len(c.Runs)-1]
	best := math.Inf(1)
	for _, x := range c.Runs {
		if x.Ratio <= 0 || c.RatioEstimate <= 0 {
			continue
		}
		if d := math.Abs(math.Log(x.Ratio / c.RatioEstimate)); d < best {
			best, c.ConvergenceRun = d, x
		}
	}
	c.OperatorMedian = medianOf(c.Runs, func(x ConvergenceRun) float64 { return x.OperatorSeconds })
	c.BaselineMedian = medianOf(c.Runs, func(x ConvergenceRun) float64 { return x.BaselineSeconds })
}

// ratioEstimate is the geometric mean of the runs' ratios, balanced over
// the CPU assignments: the runs are grouped by the CPUs the operator had,
// each group's ratios averaged (geometrically), then the groups averaged
// with equal weight. When one half of the CPUs is steadily faster by a
// factor f, a run with the operator on it measures r/f and one with the
// baseline on it r·f; this mean gives r. Runs without a ratio are left
// out; with none, it is 0.
func ratioEstimate(runs []ConvergenceRun) float64 {
	groups := map[string][]float64{}
	var order []string
	for _, x := range runs {
		if x.Ratio <= 0 {
			continue
		}
		k := fmt.Sprint(x.OperatorCPUs)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], math.Log(x.Ratio))
	}
	if len(order) == 0 {
		return 0
	}
	var sum float64
	for _, k := range order {
		var g float64
		for _, l := range groups[k] {
			g += l
		}
		sum += g / float64(len(groups[k]))
	}
	return math.Exp(sum / float64(len(order)))
}

// medianOf is the median of f over xs (of an even count, the mean of the
// two middle values).
func medianOf[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

const (
	baselineNS = "bench-baseline"
	operatorNS = "bench-operator"
	unrelNS    = "bench-unrelated"
)

type run struct {
	cfg     Config
	cluster *testbed.Cluster
	k8s     client.Client
	// watcher watches for readiness, with the same identity as k8s.
	watcher client.WithWatch
	mgr     *operator.Manager
	report  *Report
	token   string
	// pprofAddr is where the running manager serves net/http/pprof.
	pprofAddr string
	// conv receives the figures of the convergence repeat that runs.
	conv *ConvergenceRun
	// cpus are the CPUs the cluster is bound to (all when empty).
	cpus []int
	// settled makes settle a no-op: the caller waited for a quiet
	// machine.
	settled bool
	// ipCount sums the API server's profiled CPU time in counting the
	// Service IPs in use (see ipCountFunction).
	ipCount apiserverHotspot
}

// Run performs the whole benchmark and returns its report. When a step
// fails, the report holds the figures of the steps before it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	for _, name := range cfg.Steps {
		if !slices.Contains(StepNames, name) {
			return nil, fmt.Errorf("unknown step %q (steps: %s)", name, strings.Join(StepNames, ", "))
		}
	}
	r := &run{cfg: cfg, report: &Report{N: cfg.N, Date: time.Now().UTC().Format(time.RFC3339), LoadStart: loadAverage()}}
	defer func() { r.report.LoadEnd = loadAverage() }()
	defaults := manager.DefaultOptions()
	r.report.Config.Workers = cfg.Workers
	r.report.Config.IdleWindowSecs = cfg.IdleWindow.Seconds()
	r.report.Config.SyncPeriodSecs = cfg.SyncPeriod.Seconds()
	r.report.Config.RestartedSyncPeriodSecs = defaults.SyncPeriod.Seconds()
	r.report.Config.OperatorQPS = float64(defaults.ClientQPS)
	r.report.Config.OperatorBurst = defaults.ClientBurst
	r.report.Config.ConcurrentRecons = defaults.MaxConcurrentReconciles
	r.report.Config.StatusProgressDelaySecs = defaults.StatusProgressDelay.Seconds()
	r.report.Steps = cfg.Steps

	want := func(step string) bool { return len(cfg.Steps) == 0 || slices.Contains(cfg.Steps, step) }
	failed := true
	defer func() { r.stopCluster(failed) }()
	if err := r.convergence(ctx, want); err != nil {
		return r.report, err
	}
	steps := map[string]func(context.Context) error{
		"idle": r.idle, "memory": r.memory,
		"spec-change": r.specChange, "restart": r.restart, "scale": r.scale,
	}
	for _, name := range StepNames[2:] {
		if !want(name) {
			continue
		}
		if err := r.step(ctx, name, steps[name]); err != nil {
			return r.report, err
		}
	}
	failed = false
	return r.report, nil
}

// convergence runs the convergence comparison, repeated, and leaves the
// operator's cluster of the last repeat running, with the operator, for the
// steps after it.
func (r *run) convergence(ctx context.Context, want func(string) bool) error {
	// The baseline runs on a cluster of its own, which is stopped before
	// the operator's cluster starts, and each side waits for a quiet
	// machine before it starts: both sides start from the same state by
	// construction, not because the first side cleaned up after itself.
	// The comparison is repeated on fresh clusters (the machine's noise
	// moves a side's time by 10 % from one run to the next); the later
	// steps go on with the operator's cluster of the last repeat.
	repeat := max(r.cfg.Repeat, 1)
	if !want("baseline") && !want("converge") {
		repeat = 1
	}
	for k := 1; k <= repeat; k++ {
		suffix := ""
		if k > 1 {
			suffix = fmt.Sprint("-", k)
		}
		if repeat > 1 {
			r.logf("bench: convergence, run %d of %d", k, repeat)
		}
		run := r.convergenceRun
		if r.cfg.Paired {
			run = r.pairedRun
		}
		if err := run(ctx, want, k, suffix); err != nil {
			return err
		}
		if want("baseline") || want("converge") {
			r.recordRun()
		}
		if k < repeat && !r.cfg.Paired {
			r.stopCluster(false)
		}
	}
	if repeat > 1 {
		c := r.report.Convergence
		r.logf("bench: convergence over %d runs: ratio %.2f (geometric mean, balanced over CPU assignments); medians operator %.1fs, baseline %.1fs", repeat, c.RatioEstimate, c.OperatorMedian, c.BaselineMedian)
	}
	if !r.cfg.Paired {
		return nil
	}
	r.report.Convergence.Paired = true
	if !slices.ContainsFunc(StepNames[2:], want) {
		return nil
	}
	return r.convergeAlone(ctx, want)
}

// recordRun adds the convergence run that ended to the report.
func (r *run) recordRun() {
	if c := r.conv; c.BaselineSeconds > 0 && c.OperatorSeconds > 0 {
		c.Ratio = c.OperatorSeconds / c.BaselineSeconds
		r.logf("bench: operator %.1fs, baseline %.1fs: ratio %.2f", c.OperatorSeconds, c.BaselineSeconds, c.Ratio)
	}
	r.report.Convergence.Runs = append(r.report.Convergence.Runs, *r.conv)
	r.report.summarizeConvergence()
}

// convergeAlone starts the cluster of the steps after paired convergence
// runs, which has the whole machine, and has the operator converge on it
// once more, by itself.
func (r *run) convergeAlone(ctx context.Context, want func(string) bool) error {
	if err := r.startCluster(ctx, "operator"); err != nil {
		return err
	}
	if err := r.startManager(ctx, "manager", r.cfg.SyncPeriod); err != nil {
		return err
	}
	if want("converge") {
		r.conv = &ConvergenceRun{}
		// Its own name: the profiles of the first repeat's step are
		// called "converge" too.
		if err := r.step(ctx, "converge-alone", r.converge); err != nil {
			return err
		}
		r.report.Convergence.Alone = r.conv
	}
	return nil
}

// pairedRun is one repeat of the comparison with both sides at the same
// time, each on a cluster of its own bound to half of the CPUs: the first
// half for the baseline in odd repeats, for the operator in even ones.
func (r *run) pairedRun(ctx context.Context, want func(string) bool, k int, suffix string) error {
	cpus, err := allowedCPUs()
	if err != nil {
		return err
	}
	if len(cpus) < 2 {
		return fmt.Errorf("a paired run needs at least 2 CPUs, this process may use %v", cpus)
	}
	first, second := cpus[:len(cpus)/2], cpus[len(cpus)/2:]
	if k%2 == 0 {
		first, second = second, first
	}
	r.conv = &ConvergenceRun{}
	side := func(cpus []int) *run {
		return &run{cfg: r.cfg, report: r.report, conv: r.conv, cpus: cpus, settled: true}
	}
	base, op := side(first), side(second)
	failed := true
	defer func() {
		base.stopCluster(failed)
		op.stopCluster(failed)
	}()
	if want("baseline") {
		r.conv.BaselineCPUs = first
		if err := base.startCluster(ctx, "baseline"+suffix); err != nil {
			return err
		}
	}
	r.conv.OperatorCPUs = second
	if err := op.startCluster(ctx, "operator"+suffix); err != nil {
		return err
	}
	if err := op.startManager(ctx, "manager", r.cfg.SyncPeriod); err != nil {
		return err
	}
	r.settle(ctx)
	r.logf("bench: baseline on CPUs %v, operator on CPUs %v, at the same time", first, second)
	var wg sync.WaitGroup
	var baseErr, opErr error
	if want("baseline") {
		wg.Go(func() { baseErr = base.step(ctx, "baseline"+suffix, base.baseline) })
	}
	if want("converge") {
		wg.Go(func() { opErr = op.step(ctx, "converge"+suffix, op.converge) })
	}
	wg.Wait()
	if err := errors.Join(baseErr, opErr); err != nil {
		return err
	}
	failed = false
	return nil
}

// allowedCPUs lists the CPUs this process may run on.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("reading the CPU affinity: %w", err)
	}
	var cpus []int
	for c := 0; len(cpus) < set.Count(); c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// convergenceRun is one repeat of the comparison: the baseline on a fresh
// cluster, stopped after it, then the operator's cluster, with the operator
// started, converging. suffix tells the repeat's step names apart.
func (r *run) convergenceRun(ctx context.Context, want func(string) bool, _ int, suffix string) error {
	r.conv = &ConvergenceRun{}
	if want("baseline") {
		if err := r.startCluster(ctx, "baseline"+suffix); err != nil {
			return err
		}
		err := r.step(ctx, "baseline"+suffix, r.baseline)
		r.stopCluster(err != nil)
		if err != nil {
			return err
		}
	}
	if err := r.startCluster(ctx, "operator"+suffix); err != nil {
		return err
	}
	if err := r.startManager(ctx, "manager", r.cfg.SyncPeriod); err != nil {
		return err
	}
	if want("converge") {
		if err := r.step(ctx, "converge"+suffix, r.converge); err != nil {
			return err
		}
	}
	return nil
}

// step runs the step called name, profiled when profiles are asked for.
func (r *run) step(ctx context.Context, name string, f func(context.Context) error) error {
	r.logf("bench: %s", name)
	stopProfiling := r.profile(ctx, name)
	err := f(ctx)
	stopProfiling()
	if err != nil {
		r.report.Failed = name
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// startCluster starts a simulated cluster for one side (name) of the
// benchmark, with opsmith's CRDs, RBAC and the benchmark's namespaces,
// but no operator process.
func (r *run) startCluster(ctx context.Context, name string) error {
	dir := r.cfg.ClusterDir
	if dir != "" {
		dir = filepath.Join(dir, name)
	}
	c, err := testbed.Start(ctx, testbed.Options{Mode: testbed.Simulated, Dir: dir, Nodes: r.cfg.Nodes, Audit: true, Profiling: r.cfg.ProfileDir != "", Log: r.cfg.Log, CPUs: r.cpus})
	if err != nil {
		return err
	}
	r.cluster = c
	if err := r.prepareCluster(ctx); err != nil {
		r.stopCluster(true)
		return err
	}
	return nil
}

// prepareCluster makes the clients of a started cluster and installs what
// both sides share.
func (r *run) prepareCluster(ctx context.Context) error {
	c := r.cluster
	rc := rest.CopyConfig(c.Config)
	rc.QPS, rc.Burst = 1000, 2000
	var err error
	if r.k8s, err = client.New(rc, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	if r.watcher, err = client.NewWithWatch(rc, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	r.token = c.Config.BearerToken
	if err := operator.Deploy(ctx, c, r.k8s, "Deployment"); err != nil {
		return err
	}
	for _, ns := range []string{baselineNS, operatorNS, unrelNS} {
		if err := r.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	return nil
}

// stopCluster stops the operator, if it runs, and the cluster; keep
// leaves the cluster's files for a look after a failure.
func (r *run) stopCluster(keep bool) {
	if r.mgr != nil {
		r.mgr.Stop(30 * time.Second)
		r.mgr, r.pprofAddr = nil, ""
	}
	if r.cluster != nil {
		r.cluster.Stop(keep)
		r.cluster = nil
	}
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, format+"\n", args...)
	}
}

// startManager starts the operator as process name, with resync period
// syncPeriod.
func (r *run) startManager(ctx context.Context, name string, syncPeriod time.Duration) error {
	ports, err := testbed.FreePorts(1)
	if err != nil {
		return err
	}
	r.pprofAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	r.mgr, err = operator.StartManager(ctx, r.cluster, r.k8s, name,
		// The controllers measured, and only those.
		"--controllers="+appservice.Name+","+microservicedeploy.Name,
		"--sync-period="+syncPeriod.String(),
		"--microservice-auth-url=https://auth.bench.test/verify",
		"--pprof-bind-address="+r.pprofAddr,
	)
	if err != nil {
		return err
	}
	return r.mgr.WaitReady(ctx, 60*time.Second)
}

// parallel runs f(i) for i < n on the configured number of workers.
func (r *run) parallel(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, r.cfg.Workers)
	next := make(chan int)
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (r *run) timeout() time.Duration { return 5*time.Minute + time.Duration(r.cfg.N)*time.Second }

func appService(ns string, i int) *appsv1alpha1.AppService {
	return &appsv1alpha1.AppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%05d", i), UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))},
		Spec: appsv1alpha1.AppServiceSpec{
			Size:  ptr.To[int32](1),
			Image: "registry.local/app:1",
			Ports: []appsv1alpha1.AppServicePort{{Port: 80, TargetPort: 8080}},
		},
	}
}

func microServiceDeploy(ns string, i int) *appsv1alpha1.MicroServiceDeploy {
	return &appsv1alpha1.MicroServiceDeploy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("ms-%05d-v1s0", i), UID: types.UID(fmt.Sprintf("00000000-0000-0000-0001-%012d", i))},
		Spec: appsv1alpha1.MicroServiceDeploySpec{
			MsName: fmt.Sprintf("ms-%05d", i), Version: "1.0", Path: "v1", Image: "registry.local/ms:1", Replicas: 1,
			Config: "mode=bench",
			ResourceRequirements: appsv1alpha1.ResourceRequirements{
				Requests: appsv1alpha1.ResourceAmounts{CPU: ptr.To(intQuantity("10m"))},
				Limits:   appsv1alpha1.ResourceAmounts{CPU: ptr.To(intQuantity("100m"))},
			},
		},
	}
}

// metric returns the sum of a metric's samples whose labels contain match.
func metric(body, name, match string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name) || (match != "" && !strings.Contains(line, match)) {
			continue
		}
		rest := strings.TrimPrefix(line, name)
		if rest != "" && rest[0] != '{' && rest[0] != ' ' {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

func (r *run) metrics(ctx context.Context) (string, error) {
	code, body, err := r.mgr.Metrics(ctx, r.token)
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("metrics: HTTP %d", code)
	}
	return body, nil
}

func (r *run) reconciles(ctx context.Context) (float64, error) {
	body, err := r.metrics(ctx)
	if err != nil {
		return 0, err
	}
	return metric(body, "controller_runtime_reconcile_total", ""), nil
}

// cpuSeconds reads the CPU time (user and system) a process has used.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// contain spaces; utime and stime are fields 14 and 15 of the line.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, err
	}
	return (utime + stime) / clockTicks, nil
}

// settle waits until the machine is quiet (under a quarter of its CPU
// busy over 5 seconds), at most a minute, so that each side of the
// convergence starts on a cluster done with its own start-up work (the
// controller manager's first syncs, the operator's first lists).
func (r *run) settle(ctx context.Context) {
	if r.settled {
		return
	}
	const window = 5 * time.Second
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		m := r.startCPUMeter()
		select {
		case <-ctx.Done():
			return
		case <-time.After(window):
		}
		if f := m.fraction(); f < 0.25 {
			r.logf("bench: machine settled (%.0f %% busy)", 100*f)
			return
		}
	}
	r.logf("bench: machine still busy after a minute; going on")
}

// machineCPU reads the CPU time counters of cpus (all CPUs when empty):
// busy and total, in USER_HZ ticks.
func machineCPU(cpus []int) (busy, total float64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	want := map[string]bool{}
	for _, c := range cpus {
		want[fmt.Sprint("cpu", c)] = true
	}
	if len(want) == 0 {
		want["cpu"] = true // the sum over all CPUs
	}
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !want[f[0]] {
			continue
		}
		found++
		for i, v := range f[1:] {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, err
			}
			// guest and guest_nice (fields 9 and 10) are included in user and nice.
			if i >= 8 {
				break
			}
			total += x
			// idle and iowait are fields 4 and 5.
			if i != 3 && i != 4 {
				busy += x
			}
		}
	}
	if found != len(want) {
		return 0, 0, fmt.Errorf("/proc/stat has %d of the CPU lines %v", found, cpus)
	}
	return busy, total, nil
}

// cpuMeter measures, from its start, the busy fraction of the machine's
// CPU and the CPU time of each component of the cluster and of the
// operator.
type cpuMeter struct {
	// cpus are the CPUs whose busy fraction is measured (all when empty).
	cpus        []int
	busy, total float64
	pids        map[string]int
	start       map[string]float64
}

func (r *run) startCPUMeter() *cpuMeter {
	m := &cpuMeter{cpus: r.cpus, pids: map[string]int{}, start: map[string]float64{}}
	if r.cluster != nil {
		m.pids = r.cluster.Components()
	}
	if _, ok := m.pids["manager"]; !ok && r.mgr != nil {
		m.pids["manager"] = r.mgr.Pid()
	}
	m.busy, m.total, _ = machineCPU(m.cpus)
	for name, pid := range m.pids {
		m.start[name], _ = cpuSeconds(pid)
	}
	return m
}

// fraction is the machine's busy fraction since the start.
func (m *cpuMeter) fraction() float64 {
	b, t, err := machineCPU(m.cpus)
	if err != nil || t <= m.total {
		return 0
	}
	return (b - m.busy) / (t - m.total)
}

// perProcess is the CPU seconds each process used since the start.
func (m *cpuMeter) perProcess() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range m.pids {
		if s, err := cpuSeconds(pid); err == nil {
			out[name] = s - m.start[name]
		}
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times, 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// loadAverage reads the machine's load averages over 1, 5 and 15 minutes.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// rss reads a process' resident set size.
func rss(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func conditionTrue(conds []metav1.Condition, typ string) bool {
	c := meta.FindStatusCondition(conds, typ)
	return c != nil && c.Status == metav1.ConditionTrue
}

// traffic is what the operator sent between from and to.
func (r *run) traffic(from, to time.Time) (Traffic, error) {
	return auditTraffic(r.cluster.AuditLog, r.mgr.User, operator.Namespace, from, to)
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/appservice"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/internal/manager"
)

func intQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// baselineObjects are, for the resource it of namespace ns, the objects
// opsmith would create, built by opsmith's own builders, without owner
// references (the baseline has no custom resources, and the garbage
// collector deletes objects whose owners do not exist).
func baselineObjects(ns string, it baselineItem) []runtime.ApplyConfiguration {
	if it.kind == 0 {
		as := appService(ns, it.i)
		d, s := appservice.Deployment(as), appservice.Service(as)
		d.OwnerReferences, s.OwnerReferences = nil, nil
		return []runtime.ApplyConfiguration{d, s}
	}
	m := microServiceDeploy(ns, it.i)
	cfg := microservicedeploy.DefaultConfig()
	p := microservicedeploy.Path{Namespace: ns, MsName: m.Spec.MsName, Path: m.Spec.Path, Instances: []*appsv1alpha1.MicroServiceDeploy{m}}
	sa, cm, md, ms := microservicedeploy.ServiceAccount(m), microservicedeploy.ConfigMap(m), microservicedeploy.Deployment(m, m.Spec.Replicas), microservicedeploy.Service(m)
	ss, ing := microservicedeploy.SharedService(p), microservicedeploy.Ingress(p, cfg)
	sa.OwnerReferences, cm.OwnerReferences, md.OwnerReferences, ms.OwnerReferences = nil, nil, nil, nil
	ss.OwnerReferences, ing.OwnerReferences = nil, nil
	return []runtime.ApplyConfiguration{sa, cm, md, ms, ss, ing}
}

// baselineItem is one resource whose children the baseline creates:
// AppService (kind 0) or MicroServiceDeploy (kind 1) number i.
type baselineItem struct{ kind, i int }

func (it baselineItem) key() string { return fmt.Sprint(it.kind, "/", it.i) }

// baselineOutcome is how long the baseline took to create a set of
// resources' children and see them ready, and what it cost the machine.
type baselineOutcome struct {
	seconds, p50, p99 float64
	// busy is the busy fraction of the CPUs the cluster had; cpu the CPU
	// seconds of each of its processes.
	busy float64
	cpu  map[string]float64
}

// applyBaseline applies, as fast as the API server takes them, exactly the
// child objects the operator would create for items in namespace ns (and
// the objects the namespace's microservices share), and waits for the same
// readiness: every Deployment's pods ready.
func (r *run) applyBaseline(ctx context.Context, ns string, items []baselineItem) (baselineOutcome, error) {
	// The objects shared by all microservices of the namespace, once.
	var all []*appsv1alpha1.MicroServiceDeploy
	for _, it := range items {
		if it.kind == 1 {
			all = append(all, microServiceDeploy(ns, it.i))
		}
	}
	quota := microservicedeploy.ResourceQuota(ns, all)
	quota.OwnerReferences = nil
	rd := newReadiness()
	defer rd.stopWatches() // also when a step fails before waitAll
	if err := rd.watch(ctx, r.watcher, ns, func() client.ObjectList { return &appsv1.DeploymentList{} }, baselineReady); err != nil {
		return baselineOutcome{}, err
	}
	busy := r.startCPUMeter()
	start := time.Now()
	for _, obj := range []runtime.ApplyConfiguration{microservicedeploy.PriorityClass(), quota} {
		if err := r.k8s.Apply(ctx, obj, client.FieldOwner("bench-baseline"), client.ForceOwnership); err != nil {
			return baselineOutcome{}, err
		}
	}
	err := r.parallel(len(items), func(j int) error {
		it := items[j]
		rd.creating(it.key())
		for _, obj := range baselineObjects(ns, it) {
			if err := r.k8s.Apply(ctx, obj, client.FieldOwner("bench-baseline"), client.ForceOwnership); err != nil {
				return err
			}
		}
		rd.created(it.key())
		return nil
	})
	if err != nil {
		return baselineOutcome{}, err
	}
	secs, err := rd.waitAll(ctx, start, len(items), r.timeout())
	if err != nil {
		return baselineOutcome{}, err
	}
	out := baselineOutcome{seconds: secs, busy: busy.fraction(), cpu: busy.perProcess()}
	out.p50, out.p99 = rd.percentiles()
	return out, nil
}

// baselineItems are the AppServices and MicroServiceDeploys numbered below
// apps and msds, interleaved.
func baselineItems(apps, msds int) []baselineItem {
	var items []baselineItem
	for i := range max(apps, msds) {
		if i < apps {
			items = append(items, baselineItem{0, i})
		}
		if i < msds {
			items = append(items, baselineItem{1, i})
		}
	}
	return items
}

// baseline creates, as fast as the API server takes them, exactly the child
// objects the operator would create for N AppServices and N
// MicroServiceDeploys, and waits for the same readiness: every Deployment's
// pods ready.
func (r *run) baseline(ctx context.Context) error {
	n := r.cfg.N
	r.settle(ctx)
	out, err := r.applyBaseline(ctx, baselineNS, baselineItems(n, n))
	if err != nil {
		return err
	}
	rep := r.conv
	rep.BaselineSeconds = out.seconds
	rep.BaselineMachineBusy = out.busy
	rep.BaselineCPU = out.cpu
	rep.BaselineP50, rep.BaselineP99 = out.p50, out.p99
	r.logf("bench: baseline: %d resources ready in %.1fs (CPU %.0f%% busy); p50 %.1fs p99 %.1fs", 2*n, out.seconds, 100*out.busy, out.p50, out.p99)
	r.logf("bench: baseline side, CPU seconds by process: %s", formatCPU(out.cpu))
	return nil
}

// baselineReady keys a baseline Deployment whose pods are all ready.
func baselineReady(obj client.Object) (string, bool) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || d.Status.ReadyReplicas != ptr.Deref(d.Spec.Replicas, 1) || d.Status.ObservedGeneration < d.Generation {
		return "", false
	}
	var i int
	if _, err := fmt.Sscanf(d.Name, "app-%05d", &i); err == nil {
		return fmt.Sprint(0, "/", i), true
	}
	if _, err := fmt.Sscanf(d.Name, "ms-%05d-v1s0", &i); err == nil {
		return fmt.Sprint(1, "/", i), true
	}
	return "", false
}

// converge creates N AppServices and N MicroServiceDeploys and waits until
// every one reports Available (AppService) or Running (MicroServiceDeploy).
func (r *run) converge(ctx context.Context) error {
	n := r.cfg.N
	r.settle(ctx)
	rd := newReadiness()
	defer rd.stopWatches() // also when a step fails before waitAll
	if err := r.watchOperatorReady(ctx, rd, operatorNS); err != nil {
		return err
	}
	cpu0, err := cpuSeconds(r.mgr.Pid())
	if err != nil {
		return err
	}
	busy := r.startCPUMeter()
	start := time.Now()
	err = r.parallel(2*n, func(j int) error {
		var obj client.Object = appService(operatorNS, j/2)
		if j%2 == 1 {
			obj = microServiceDeploy(operatorNS, j/2)
		}
		obj.SetUID("")
		key := fmt.Sprint(j%2, "/", j/2)
		rd.creating(key)
		if err := r.k8s.Create(ctx, obj); err != nil {
			return err
		}
		rd.created(key)
		return nil
	})
	if err != nil {
		return err
	}
	secs, err := rd.waitAll(ctx, start, 2*n, r.timeout())
	if err != nil {
		return err
	}
	rep := r.conv
	rep.OperatorSeconds = secs
	rep.OperatorMachineBusy = busy.fraction()
	rep.OperatorCPU = busy.perProcess()
	rep.OperatorP50, rep.OperatorP99 = rd.percentiles()
	if rep.OperatorTraffic, err = r.traffic(start, time.Now()); err != nil {
		return err
	}
	rep.WritesPerResource = float64(rep.OperatorTraffic.Writes.Total()) / float64(2*n)
	cpu1, err := cpuSeconds(r.mgr.Pid())
	if err != nil {
		return err
	}
	rep.OperatorCPUSeconds = cpu1 - cpu0
	r.logf("bench: operator: %d resources ready in %.1fs (CPU %.0f%% busy); p50 %.1fs p99 %.1fs",
		2*n, secs, 100*rep.OperatorMachineBusy, rep.OperatorP50, rep.OperatorP99)
	r.logf("bench: operator side, CPU seconds by process: %s", formatCPU(rep.OperatorCPU))
	r.logf("bench: operator while converging: %.1f s CPU, %.1f writes per resource [%s], reads [%s]",
		rep.OperatorCPUSeconds, rep.WritesPerResource, rep.OperatorTraffic.Writes, rep.OperatorTraffic.Reads)
	return nil
}

// idle counts what the operator sends while everything is ready, over a
// window that includes a full resync (every object reconciled again).
func (r *run) idle(ctx context.Context) error {
	time.Sleep(5 * time.Second) // let the last status writes land
	before, err := r.reconciles(ctx)
	if err != nil {
		return err
	}
	from := time.Now()
	time.Sleep(r.cfg.IdleWindow)
	to := time.Now()
	after, err := r.reconciles(ctx)
	if err != nil {
		return err
	}
	rep := &r.report.Idle
	if rep.Traffic, err = r.traffic(from, to); err != nil {
		return err
	}
	rep.Reconciles = after - before
	if rep.Reconciles > 0 {
		rep.ReadsPerReconcile = float64(rep.Reads.Total()) / rep.Reconciles
	}
	r.logf("bench: idle %s: %d reconciles, writes [%s], leader election [%s], reads [%s]",
		r.cfg.IdleWindow, int(rep.Reconciles), rep.Writes, rep.LeaderElection, rep.Reads)
	return nil
}

// memory reads the operator's memory per cached object, then creates
// unrelated ConfigMaps and Secrets and reads it again.
func (r *run) memory(ctx context.Context) error {
	rep := &r.report.Memory
	var err error
	if rep.Ready, err = r.settledMemory(ctx); err != nil {
		return err
	}
	rep.UnrelatedObjects = 2 * r.cfg.Unrelated
	err = r.parallel(rep.UnrelatedObjects, func(i int) error {
		om := metav1.ObjectMeta{Namespace: unrelNS, Name: fmt.Sprintf("unrelated-%05d", i/2)}
		data := map[string]string{"payload": fmt.Sprintf("%01024d", i)}
		if i%2 == 0 {
			return r.k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: om, Data: data})
		}
		return r.k8s.Create(ctx, &corev1.Secret{ObjectMeta: om, StringData: data})
	})
	if err != nil {
		return err
	}
	time.Sleep(10 * time.Second)
	if rep.AfterUnrelated, err = r.settledMemory(ctx); err != nil {
		return err
	}
	rep.UnrelatedRSSPct = 100 * float64(rep.AfterUnrelated.RSSBytes-rep.Ready.RSSBytes) / float64(rep.Ready.RSSBytes)
	rep.UnrelatedHeapPct = 100 * float64(rep.AfterUnrelated.HeapLiveBytes-rep.Ready.HeapLiveBytes) / float64(rep.Ready.HeapLiveBytes)
	r.logf("bench: memory: %s", rep.Ready)
	r.logf("bench: memory after %d unrelated ConfigMaps and Secrets: %s (live heap %+.1f%%, RSS %+.1f%%)",
		rep.UnrelatedObjects, rep.AfterUnrelated, rep.UnrelatedHeapPct, rep.UnrelatedRSSPct)
	return nil
}

// specChange gives some AppServices a new image and counts the writes until
// their Deployments carry it.
func (r *run) specChange(ctx context.Context) error {
	k := min(r.cfg.Changed, r.cfg.N)
	rd := newReadiness()
	defer rd.stopWatches() // also when a step fails before waitAll
	err := rd.watch(ctx, r.watcher, operatorNS, func() client.ObjectList { return &appsv1alpha1.AppServiceList{} }, func(o client.Object) (string, bool) {
		a, ok := o.(*appsv1alpha1.AppService)
		if !ok {
			return "", false
		}
		pr := meta.FindStatusCondition(a.Status.Conditions, appsv1alpha1.ConditionProgressing)
		return a.Name, a.Spec.Image == "registry.local/app:2" && a.Status.ObservedGeneration == a.Generation &&
			pr != nil && pr.Reason == appservice.ReasonRolloutComplete && conditionTrue(a.Status.Conditions, appsv1alpha1.ConditionAvailable)
	})
	if err != nil {
		return err
	}
	from := time.Now()
	err = r.parallel(k, func(i int) error {
		name := fmt.Sprintf("app-%05d", i)
		rd.creating(name)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			as := &appsv1alpha1.AppService{}
			if err := r.k8s.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: name}, as); err != nil {
				return err
			}
			as.Spec.Image = "registry.local/app:2"
			return r.k8s.Update(ctx, as)
		})
		rd.created(name)
		return err
	})
	if err != nil {
		return err
	}
	if _, err := rd.waitAll(ctx, from, k, r.timeout()); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	rep := &r.report.SpecChange
	rep.Changed = k
	if rep.Traffic, err = r.traffic(from, time.Now()); err != nil {
		return err
	}
	rep.WritesPerChange = float64(rep.Writes.Total()) / float64(k)
	r.logf("bench: spec change of %d AppServices: writes [%s] (%.1f per change)", k, rep.Writes, rep.WritesPerChange)
	return nil
}

// restart replaces the operator with a new process and measures the time
// until it has reconciled every resource once, and what it wrote. The new
// process resyncs at the shipped default period, not the short one the
// idle step needs: the scale curve that follows measures it, and a full
// resync every few minutes of tens of thousands of objects would be a cost
// of the benchmark's setting, not of the operator.
func (r *run) restart(ctx context.Context) error {
	before, err := r.statuses(ctx)
	if err != nil {
		return err
	}
	r.mgr.Stop(30 * time.Second)
	from := time.Now()
	if err := r.startManager(ctx, "manager-restarted", manager.DefaultOptions().SyncPeriod); err != nil {
		return err
	}
	deadline := time.Now().Add(r.timeout())
	for {
		n, err := r.reconciles(ctx)
		if err != nil {
			return err
		}
		if n >= float64(2*r.cfg.N) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v of %d resources reconciled after restart", n, 2*r.cfg.N)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep := &r.report.Restart
	rep.SecondsToResync = time.Since(from).Seconds()
	if done, err := r.mgr.Exited(); done {
		return fmt.Errorf("the restarted manager exited (%v); log %s", err, r.mgr.LogPath)
	}
	time.Sleep(5 * time.Second) // writes caused by the first reconciles land
	if rep.Traffic, err = r.traffic(from, time.Now()); err != nil {
		return err
	}
	after, err := r.statuses(ctx)
	if err != nil {
		return err
	}
	var example string
	rep.StatusFields, rep.StatusChanged, example = statusChanges(before, after)
	r.logf("bench: restart: every resource reconciled %.1fs after start, writes [%s]", rep.SecondsToResync, rep.Writes)
	if rep.StatusChanged > 0 {
		r.logf("bench: restart: %d statuses changed, fields [%s]; for example %s", rep.StatusChanged, rep.StatusFields, example)
	}
	return nil
}

// watchOperatorReady watches the resources of the operator's side in ns
// for readiness: AppServices Available at their size, MicroServiceDeploys
// Running.
func (r *run) watchOperatorReady(ctx context.Context, rd *readiness, ns string) error {
	if err := rd.watch(ctx, r.watcher, ns, func() client.ObjectList { return &appsv1alpha1.AppServiceList{} }, func(o client.Object) (string, bool) {
		a, ok := o.(*appsv1alpha1.AppService)
		var i int
		if !ok || !conditionTrue(a.Status.Conditions, appsv1alpha1.ConditionAvailable) || a.Status.ObservedGeneration != a.Generation ||
			a.Status.ReadyReplicas != ptr.Deref(a.Spec.Size, 0) {
			return "", false
		}
		if _, err := fmt.Sscanf(a.Name, "app-%05d", &i); err != nil {
			return "", false
		}
		return fmt.Sprint(0, "/", i), true
	}); err != nil {
		return err
	}
	return rd.watch(ctx, r.watcher, ns, func() client.ObjectList { return &appsv1alpha1.MicroServiceDeployList{} }, func(o client.Object) (string, bool) {
		m, ok := o.(*appsv1alpha1.MicroServiceDeploy)
		var i int
		if !ok || m.Status.Phase != appsv1alpha1.PhaseRunning {
			return "", false
		}
		if _, err := fmt.Sscanf(m.Name, "ms-%05d-v1s0", &i); err != nil {
			return "", false
		}
		return fmt.Sprint(1, "/", i), true
	})
}

// formatCPU lists CPU seconds by process, largest first.
func formatCPU(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1f", n, m[n])
	}
	return strings.Join(parts, ", ")
}

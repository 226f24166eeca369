package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Memory is the operator's memory at one point, from several samples. Heap figures are read right after a garbage collection
// that the sample forces (the pprof heap endpoint with gc=1), so they do
// not depend on where in its collection cycle the process happens to be.
type Memory struct {
	CachedObjects int `json:"cached_objects"`
	// HeapLiveBytes is the heap allocated to reachable objects after a
	// collection (runtime.MemStats.HeapAlloc).
	HeapLiveBytes int64 `json:"heap_live_bytes"`
	// HeapInuseBytes are the heap spans in use after a collection, live
	// objects plus fragmentation (runtime.MemStats.HeapInuse).
	HeapInuseBytes int64 `json:"heap_inuse_bytes"`
	RSSBytes       int64 `json:"rss_bytes"`
	// HeapLivePerObject is HeapLiveBytes / CachedObjects.
	HeapLivePerObject float64 `json:"heap_live_per_cached_object_bytes"`
	Samples           int     `json:"samples"`
}

// memSamples is how many samples a memory figure is the median of.
const memSamples = 5

// cachedKinds are every kind the operator caches; children only with
// opsmith's label (see internal/manager).
var cachedKinds = []struct {
	list     func() client.ObjectList
	labelled bool
}{
	{func() client.ObjectList { return &appsv1alpha1.AppServiceList{} }, false},
	{func() client.ObjectList { return &appsv1alpha1.MicroServiceDeployList{} }, false},
	{func() client.ObjectList { return &appsv1.DeploymentList{} }, true},
	{func() client.ObjectList { return &corev1.ServiceList{} }, true},
	{func() client.ObjectList { return &corev1.ServiceAccountList{} }, true},
	{func() client.ObjectList { return &corev1.ConfigMapList{} }, true},
	{func() client.ObjectList { return &autoscalingv2.HorizontalPodAutoscalerList{} }, true},
	{func() client.ObjectList { return &networkingv1.NetworkPolicyList{} }, true},
	{func() client.ObjectList { return &networkingv1.IngressList{} }, true},
	{func() client.ObjectList { return &corev1.ResourceQuotaList{} }, true},
	{func() client.ObjectList { return &schedulingv1.PriorityClassList{} }, true},
}

// cachedObjects counts the objects the operator's cache holds: its custom
// resources and every object of the other cached kinds that carries
// opsmith's label.
func (r *run) cachedObjects(ctx context.Context) (int, error) {
	n := 0
	for _, k := range cachedKinds {
		l := k.list()
		var opts []client.ListOption
		if k.labelled {
			opts = append(opts, client.MatchingLabels{apply.LabelManagedBy: apply.ManagedByValue})
		}
		if err := r.k8s.List(ctx, l, opts...); err != nil {
			return 0, err
		}
		n += meta.LenList(l)
	}
	return n, nil
}

// heapAfterGC forces a collection in the operator and returns its heap
// statistics: GET /debug/pprof/heap?gc=1&debug=1 runs runtime.GC and
// prints runtime.MemStats as "# Name = value" lines.
func (r *run) heapAfterGC(ctx context.Context) (alloc, inuse int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.pprofAddr+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("pprof heap: HTTP %d", resp.StatusCode)
	}
	stat := func(name string) (int64, error) {
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "# "+name+" = "); ok {
				return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		return 0, fmt.Errorf("pprof heap: no %s", name)
	}
	if alloc, err = stat("HeapAlloc"); err != nil {
		return 0, 0, err
	}
	inuse, err = stat("HeapInuse")
	return alloc, inuse, err
}

// measureMemory samples the operator's memory memSamples times, a second
// apart, and returns the smallest heap figures and the median RSS. The
// heap is read after a forced collection, but the statistics are printed
// after the heap profile is built, and whatever the process allocates in
// between (hundreds of MB/s during a resync) is counted as well: a sample
// can only overstate the live heap, so the smallest is the best estimate.
func (r *run) measureMemory(ctx context.Context) (Memory, error) {
	m := Memory{Samples: memSamples}
	var err error
	if m.CachedObjects, err = r.cachedObjects(ctx); err != nil {
		return m, err
	}
	var allocs, inuses, rsss []int64
	for i := range memSamples {
		if i > 0 {
			time.Sleep(time.Second)
		}
		alloc, inuse, err := r.heapAfterGC(ctx)
		if err != nil {
			return m, err
		}
		rs, err := rss(r.mgr.Pid())
		if err != nil {
			return m, err
		}
		allocs, inuses, rsss = append(allocs, alloc), append(inuses, inuse), append(rsss, rs)
	}
	m.HeapLiveBytes, m.HeapInuseBytes, m.RSSBytes = slices.Min(allocs), slices.Min(inuses), median(rsss)
	m.HeapLivePerObject = float64(m.HeapLiveBytes) / float64(m.CachedObjects)
	return m, nil
}

// settledMemory measures until two measurements a quarter of a minute
// apart agree on the live heap within 5 % (at most five times), so that
// work still finishing (queues draining, a resync) does not count as what
// the operator holds, and returns the last one.
func (r *run) settledMemory(ctx context.Context) (Memory, error) {
	prev, err := r.measureMemory(ctx)
	if err != nil {
		return prev, err
	}
	for range 4 {
		time.Sleep(15 * time.Second)
		m, err := r.measureMemory(ctx)
		if err != nil {
			return m, err
		}
		d := float64(m.HeapLiveBytes - prev.HeapLiveBytes)
		if d < 0 {
			d = -d
		}
		if d <= 0.05*float64(prev.HeapLiveBytes) {
			return m, nil
		}
		r.logf("bench: memory not settled yet: live heap %.1f MiB, then %.1f MiB", mib(prev.HeapLiveBytes), mib(m.HeapLiveBytes))
		prev = m
	}
	return prev, nil
}

// median is the median of the samples (memSamples, an odd count).
func median(v []int64) int64 {
	return int64(medianOf(v, func(x int64) float64 { return float64(x) }))
}

func (m Memory) String() string {
	return fmt.Sprintf("%d cached objects, live heap %.1f MiB (%.0f B/object), heap in use %.1f MiB, RSS %.1f MiB",
		m.CachedObjects, mib(m.HeapLiveBytes), m.HeapLivePerObject, mib(m.HeapInuseBytes), mib(m.RSSBytes))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// readiness tracks when each of a set of resources was created and first
// seen ready.
//
// Readiness is observed through watches, on both sides, not by listing:
// a list of every resource of a side each second costs the API server in
// proportion to the number of resources (and a list of custom resources,
// served as JSON, costs several times a list of Deployments, served as
// protobuf from the same cache), which loaded the side being measured
// unevenly. A watch costs each side the same per change, and times
// readiness to the event, not to the next poll.
//
// A resource counts as ready once it was seen ready and the client that
// created it had also finished its requests for it: the baseline's
// Deployment can be ready before the same client has created the
// resource's Service and route.
type readiness struct {
	mu sync.Mutex
	// began is when the first request for a resource was sent, sent
	// when the client's last request for it was answered.
	began, sent map[string]time.Time
	ready       map[string]time.Time
	stop        []context.CancelFunc
}

func newReadiness() *readiness {
	return &readiness{began: map[string]time.Time{}, sent: map[string]time.Time{}, ready: map[string]time.Time{}}
}

// creating records that the client starts creating the resource key.
func (rd *readiness) creating(key string) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.began[key] = time.Now()
}

// created records that the client has sent its last request for key.
func (rd *readiness) created(key string) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.sent[key] = time.Now()
}

// doneAt is when key was both sent and seen ready (false: not yet).
// Callers hold mu.
func (rd *readiness) doneAt(key string) (time.Time, bool) {
	s, sent := rd.sent[key]
	r, ready := rd.ready[key]
	if !sent || !ready {
		return time.Time{}, false
	}
	if s.After(r) {
		return s, true
	}
	return r, true
}

func (rd *readiness) markReady(key string) {
	now := time.Now()
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if _, seen := rd.ready[key]; !seen {
		rd.ready[key] = now
	}
}

// watch starts watching the objects of list's kind in namespace ns, and
// marks an object's key ready the first time readyKey returns it with
// true. Call it before the objects are created; stopWatches ends it.
func (rd *readiness) watch(ctx context.Context, c client.WithWatch, ns string, list func() client.ObjectList,
	readyKey func(client.Object) (string, bool)) error {
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			l := list()
			return l, c.List(ctx, l, client.InNamespace(ns), &client.ListOptions{Raw: &opts})
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, list(), client.InNamespace(ns), &client.ListOptions{Raw: &opts})
		},
	}
	item, err := listItem(c.Scheme(), list())
	if err != nil {
		return err
	}
	inf := toolscache.NewSharedIndexInformer(lw, item, 0, toolscache.Indexers{})
	observe := func(obj any) {
		if o, ok := obj.(client.Object); ok {
			if key, ok := readyKey(o); ok {
				rd.markReady(key)
			}
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	rd.mu.Lock()
	rd.stop = append(rd.stop, cancel)
	rd.mu.Unlock()
	go inf.RunWithContext(ctx)
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("watching %T in %s: not synced", item, ns)
	}
	return nil
}

// listItem returns an empty object of the kind of list's items.
func listItem(scheme *runtime.Scheme, list client.ObjectList) (runtime.Object, error) {
	gvk, err := apiutil.GVKForObject(list, scheme)
	if err != nil {
		return nil, err
	}
	gvk.Kind = gvk.Kind[:len(gvk.Kind)-len("List")]
	return scheme.New(gvk)
}

// stopWatches ends the watches.
func (rd *readiness) stopWatches() {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	for _, cancel := range rd.stop {
		cancel()
	}
	rd.stop = nil
}

// waitAll waits until total keys are ready, and returns the time from
// start to the last one.
func (rd *readiness) waitAll(ctx context.Context, start time.Time, total int, timeout time.Duration) (float64, error) {
	defer rd.stopWatches()
	deadline := time.Now().Add(timeout)
	for {
		rd.mu.Lock()
		n := 0
		var last time.Time
		for key := range rd.ready {
			if t, ok := rd.doneAt(key); ok {
				n++
				if t.After(last) {
					last = t
				}
			}
		}
		rd.mu.Unlock()
		if n >= total {
			return last.Sub(start).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d ready after %s", n, total, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// percentiles of create-to-ready latency, in seconds.
func (rd *readiness) percentiles() (p50, p99 float64) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	var d []float64
	for k, b := range rd.began {
		if t, ok := rd.doneAt(k); ok {
			d = append(d, t.Sub(b).Seconds())
		}
	}
	if len(d) == 0 {
		return 0, 0
	}
	sort.Float64s(d)
	at := func(q float64) float64 { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return at(0.50), at(0.99)
}

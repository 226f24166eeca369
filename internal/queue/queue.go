// Package queue sets the priority of reconciles in controller-runtime's
// priority queue.
//
// A burst of new resources fills a controller's queue with creation work.
// The reconcile that finishes a resource (its Deployment became available,
// so its status can say Ready) is woken by a change to a child, and in a
// first-in first-out queue it waits behind the creation of every resource
// created after it: every resource then reports ready at the end of the
// burst. Giving the wake-ups from children a higher priority lets each
// resource report ready as soon as it is, without changing the total work.
package queue

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// ChildPriority is the priority of a reconcile woken by a change to a
// child object. New and changed resources get the default, 0; resyncs and
// the initial list get handler.LowPriority.
const ChildPriority = 10

// Prioritized makes the reconciles h requests default to priority p when
// the controller uses a priority queue. A priority h sets itself wins: the
// low priority of resyncs stays low.
func Prioritized[T client.Object](h handler.TypedEventHandler[T, reconcile.Request], p int) handler.TypedEventHandler[T, reconcile.Request] {
	return prioritized[T]{inner: h, priority: p}
}

type prioritized[T client.Object] struct {
	inner    handler.TypedEventHandler[T, reconcile.Request]
	priority int
}

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func (p prioritized[T]) wrap(q queue) queue {
	pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request])
	if !ok {
		return q
	}
	return withPriority{PriorityQueue: pq, priority: p.priority}
}

func (p prioritized[T]) Create(ctx context.Context, e event.TypedCreateEvent[T], q queue) {
	p.inner.Create(ctx, e, p.wrap(q))
}

func (p prioritized[T]) Update(ctx context.Context, e event.TypedUpdateEvent[T], q queue) {
	p.inner.Update(ctx, e, p.wrap(q))
}

func (p prioritized[T]) Delete(ctx context.Context, e event.TypedDeleteEvent[T], q queue) {
	p.inner.Delete(ctx, e, p.wrap(q))
}

func (p prioritized[T]) Generic(ctx context.Context, e event.TypedGenericEvent[T], q queue) {
	p.inner.Generic(ctx, e, p.wrap(q))
}

// withPriority adds items at a default priority.
type withPriority struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	priority int
}

func (w withPriority) opts(o priorityqueue.AddOpts) priorityqueue.AddOpts {
	if o.Priority == nil {
		p := w.priority
		o.Priority = &p
	}
	return o
}

func (w withPriority) Add(item reconcile.Request) {
	w.PriorityQueue.AddWithOpts(w.opts(priorityqueue.AddOpts{}), item)
}

func (w withPriority) AddAfter(item reconcile.Request, after time.Duration) {
	w.PriorityQueue.AddWithOpts(w.opts(priorityqueue.AddOpts{After: after}), item)
}

func (w withPriority) AddRateLimited(item reconcile.Request) {
	w.PriorityQueue.AddWithOpts(w.opts(priorityqueue.AddOpts{RateLimited: true}), item)
}

func (w withPriority) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	w.PriorityQueue.AddWithOpts(w.opts(o), items...)
}

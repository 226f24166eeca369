package queue

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func request(name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
}

func deployment(name, rv string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
}

// TestChildWakeUpsGoFirst: a reconcile woken by a child's change is served
// before creation work queued earlier, and a resync stays last.
func TestChildWakeUpsGoFirst(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	h := Prioritized(handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{request(o.GetName())}
	}), ChildPriority)
	ctx := context.Background()

	q.Add(request("created-earlier"))
	h.Update(ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: deployment("resynced", "7"), ObjectNew: deployment("resynced", "7")}, q)
	h.Update(ctx, event.TypedUpdateEvent[client.Object]{ObjectOld: deployment("became-ready", "8"), ObjectNew: deployment("became-ready", "9")}, q)

	for _, want := range []string{"became-ready", "created-earlier", "resynced"} {
		got, _, shutdown := q.GetWithPriority()
		if shutdown {
			t.Fatal("queue shut down")
		}
		if got.Name != want {
			t.Fatalf("got %s, want %s", got.Name, want)
		}
		q.Done(got)
	}
}

// TestWithoutAPriorityQueue: a plain queue gets the requests unchanged.
func TestWithoutAPriorityQueue(t *testing.T) {
	if w := (prioritized[client.Object]{priority: 1}).wrap(nil); w != nil {
		t.Errorf("a plain queue was wrapped: %T", w)
	}
}

package apply

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// pacedObject is a Deployment standing for a custom resource: its status
// is written through the status subresource of a fake client that counts
// the writes.
func pacedObject(t *testing.T) (client.Client, *appsv1.Deployment, *int) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "uid-1"}}
	writes := 0
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(dep).WithStatusSubresource(dep).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				writes++
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	live := &appsv1.Deployment{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(dep), live); err != nil {
		t.Fatal(err)
	}
	return c, live, &writes
}

func TestPacerHoldsProgressUpToDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	c, obj, writes := pacedObject(t)
	p := &Pacer{Delay: delay}
	ctx := context.Background()
	write := func(replicas int32, progress bool) time.Duration {
		t.Helper()
		held, err := WriteStatusPaced(ctx, c, p, obj, &obj.Status, appsv1.DeploymentStatus{Replicas: replicas}, progress)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}

	start := time.Now()
	if held := write(1, true); held != delay || *writes != 0 {
		t.Fatalf("first progress status: held %s with %d writes, want held %s and no write", held, *writes, delay)
	}
	// Further progress within the delay is held for what is left of it,
	// not for a new delay.
	if held := write(2, true); held <= 0 || held > delay-time.Since(start)+time.Millisecond || *writes != 0 {
		t.Fatalf("second progress status: held %s with %d writes", held, *writes)
	}
	time.Sleep(delay)
	if held := write(2, true); held != 0 || *writes != 1 || obj.Status.Replicas != 2 {
		t.Fatalf("after the delay: held %s, %d writes, replicas %d; want the status written once", held, *writes, obj.Status.Replicas)
	}

	// An outcome is written at once, and ends the holding: the next
	// progress status is held for a whole delay again.
	if held := write(3, true); held != delay || *writes != 1 {
		t.Fatalf("progress after a write: held %s with %d writes", held, *writes)
	}
	if held := write(3, false); held != 0 || *writes != 2 || obj.Status.Replicas != 3 {
		t.Fatalf("outcome: held %s, %d writes, replicas %d; want it written at once", held, *writes, obj.Status.Replicas)
	}
	if held := write(4, true); held != delay {
		t.Fatalf("progress after an outcome: held %s, want a new delay of %s", held, delay)
	}
	// Back to the stored status: nothing to write, nothing held.
	if held := write(3, true); held != 0 || *writes != 2 {
		t.Fatalf("unchanged status: held %s, %d writes", held, *writes)
	}
	if held := write(4, true); held != delay {
		t.Fatalf("progress after the status settled: held %s, want a new delay of %s", held, delay)
	}

	// A new object of the same name starts afresh.
	obj.UID = "uid-2"
	if held := write(5, true); held != delay {
		t.Fatalf("new object of the same name: held %s, want %s", held, delay)
	}
	p.Forget(client.ObjectKeyFromObject(obj))
	if len(p.held) != 0 {
		t.Fatalf("Forget left %v", p.held)
	}
}

func TestPacerWithoutDelayWritesAtOnce(t *testing.T) {
	for _, p := range []*Pacer{nil, {}} {
		c, obj, writes := pacedObject(t)
		held, err := WriteStatusPaced(context.Background(), c, p, obj, &obj.Status, appsv1.DeploymentStatus{Replicas: 1}, true)
		if err != nil || held != 0 || *writes != 1 {
			t.Fatalf("pacer %+v: held %s, %d writes, err %v; want one write", p, held, *writes, err)
		}
	}
}

// The pacer measures the delay with its clock, not the machine's.
func TestPacerUsesItsClock(t *testing.T) {
	const delay = time.Hour
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, obj, writes := pacedObject(t)
	p := &Pacer{Delay: delay, Now: func() time.Time { return now }}
	write := func(replicas int32) time.Duration {
		t.Helper()
		held, err := WriteStatusPaced(context.Background(), c, p, obj, &obj.Status, appsv1.DeploymentStatus{Replicas: replicas}, true)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	if held := write(1); held != delay || *writes != 0 {
		t.Fatalf("first progress status: held %s with %d writes, want %s and none", held, *writes, delay)
	}
	now = now.Add(delay - time.Minute)
	if held := write(2); held != time.Minute || *writes != 0 {
		t.Fatalf("a minute before the delay is over: held %s with %d writes", held, *writes)
	}
	now = now.Add(time.Minute)
	if held := write(2); held != 0 || *writes != 1 || obj.Status.Replicas != 2 {
		t.Fatalf("when the delay is over: held %s, %d writes, replicas %d; want it written", held, *writes, obj.Status.Replicas)
	}
}

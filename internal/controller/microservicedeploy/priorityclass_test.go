package microservicedeploy

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
)

// Concurrent reconciles that all find the priority class missing (as at
// start-up, before the first write reaches the cache) write it once.
func TestConcurrentReconcilesWritePriorityClassOnce(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var applies atomic.Int32
	// The cache and the API server both answer "not found" throughout:
	// the write is counted and held until every reconcile has started.
	c := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Apply: func(_ context.Context, _ client.WithWatch, _ runtime.ApplyConfiguration, _ ...client.ApplyOption) error {
			if applies.Add(1) == 1 {
				close(entered)
			}
			<-release
			return nil
		},
	}).Build()
	r := &Reconciler{Client: c, APIReader: c}

	const reconciles = 16
	var wg sync.WaitGroup
	errs := make(chan error, reconciles)
	run := func() {
		defer wg.Done()
		errs <- r.ensurePriorityClass(context.Background(), &appsv1alpha1.MicroServiceDeploy{})
	}
	wg.Add(1)
	go run()
	<-entered
	for range reconciles - 1 {
		wg.Add(1)
		go run()
	}
	time.Sleep(200 * time.Millisecond) // the others reach the shared write
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := applies.Load(); n != 1 {
		t.Errorf("%d writes of the priority class by %d concurrent reconciles, want 1", n, reconciles)
	}
}

package appservice_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"opsmith.io/opsmith/internal/controller/appservice"
	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/testbed"
)

// The tests of this package share one API server (etcd + kube-apiserver, no
// controller manager: Deployment status is written by the tests) and one
// opsmith manager running the AppService controller, as shipped.
var (
	k8s client.Client // uncached, as cluster admin
	// managerWrites counts the requests other than GET/LIST/WATCH that the
	// manager sent to the API server.
	managerWrites atomic.Int64
)

// syncPeriod makes the manager reconcile every AppService again this often
// without any change, so that tests can prove idle reconciles write nothing.
const syncPeriod = 3 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, setup))
}

func setup(ctx context.Context, c *testbed.Cluster) error {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))))
	var err error
	if k8s, err = client.New(c.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	if err := testbed.InstallCRDs(ctx, k8s, filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")); err != nil {
		return err
	}

	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countWrites{rt} })
	opts := manager.DefaultOptions()
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.SyncPeriod = syncPeriod
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		return err
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(mgrCtx); err != nil {
			panic(err)
		}
	}()
	c.OnStop(func() { cancel(); <-done })
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return context.Cause(ctx)
	}
	return nil
}

type countWrites struct{ next http.RoundTripper }

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		managerWrites.Add(1)
	}
	return c.next.RoundTrip(r)
}

// zapLevel keeps controller logs quiet unless OPSMITH_TEST_VERBOSE is set.
func zapLevel() int8 {
	if os.Getenv("OPSMITH_TEST_VERBOSE") != "" {
		return -1
	}
	return 2 // errors only
}

// reconcileCount is the number of reconciles the AppService controller has
// finished, from controller-runtime's metrics.
func reconcileCount(t *testing.T) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == appservice.Name {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

package appservice_test

import (
	"context"
	"fmt"
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
	cluster *testbed.Cluster
	k8s     client.Client // uncached, as cluster admin
)

// syncPeriod makes the manager reconcile every AppService again this often
// without any change, so that tests can prove idle reconciles write nothing.
const syncPeriod = 3 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, setup))
}

func setup(ctx context.Context, c *testbed.Cluster) error {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))))
	cluster = c
	var err error
	if k8s, err = client.New(c.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	if err := testbed.InstallCRDs(ctx, k8s, filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")); err != nil {
		return err
	}
	stop, err := startManager(ctx, nil, nil)
	if err != nil {
		return err
	}
	c.OnStop(stop)
	return nil
}

// startManager runs a manager as shipped (with a short sync period) in this
// process, watching namespaces (nil: all). When writes is not nil it counts
// the manager's requests other than GET. The returned function stops it.
func startManager(ctx context.Context, namespaces []string, writes *atomic.Int64) (stop func(), err error) {
	cfg := rest.CopyConfig(cluster.Config)
	if writes != nil {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countWrites{rt, writes} })
	}
	opts := manager.DefaultOptions()
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.SyncPeriod = syncPeriod
	opts.Namespaces = namespaces
	opts.AllowDuplicateControllers = true
	mgr, err := manager.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	if !mgr.GetCache().WaitForCacheSync(mgrCtx) {
		cancel()
		return nil, fmt.Errorf("manager cache did not sync: %w", <-done)
	}
	return func() { cancel(); <-done }, nil
}

type countWrites struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		c.n.Add(1)
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

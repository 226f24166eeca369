// Package managertest runs the opsmith manager in a test process, as
// shipped (internal/manager.New), and measures what it does: the write
// requests it sends and the reconciles it runs.
package managertest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/testbed"
)

// Start runs a manager with opts against cfg until the returned stop
// function is called. Metrics and probes are off. When writes is not nil,
// it counts every request the manager sends other than GET (watches and
// lists are GETs).
func Start(ctx context.Context, cfg *rest.Config, opts manager.Options, writes *atomic.Int64) (stop func(), err error) {
	cfg = rest.CopyConfig(cfg)
	if writes != nil {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countWrites{rt, writes} })
	}
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
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
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(os.Stderr, "manager stopped with error: %v\n", err)
		}
	}, nil
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

// ReconcileCount is the number of reconciles the named controller has
// finished in this process, from controller-runtime's metrics.
func ReconcileCount(t testing.TB, controller string) float64 {
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
				if l.GetName() == "controller" && l.GetValue() == controller {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// ExpectIdle runs a manager scoped to namespace for d while its sync period
// makes it reconcile everything again and again, and fails the test if it
// sent any write request or ran fewer than minReconciles of controller.
// versions is called before and after and must return the same value:
// typically the resourceVersions of the objects under test.
func ExpectIdle(t testing.TB, cfg *rest.Config, opts manager.Options, namespace, controller string,
	d time.Duration, minReconciles float64, versions func() string) {
	t.Helper()
	var writes atomic.Int64
	opts.Namespaces = []string{namespace}
	stop, err := Start(context.Background(), cfg, opts, &writes)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	before := versions()
	reconciles := ReconcileCount(t, controller)
	time.Sleep(d)
	if after := versions(); after != before {
		t.Errorf("resourceVersions changed while idle:\n%s\n->\n%s", before, after)
	}
	if n := ReconcileCount(t, controller) - reconciles; n < minReconciles {
		t.Errorf("only %v reconciles in %s; the test must see the controller keep reconciling", n, d)
	}
	if w := writes.Load(); w != 0 {
		t.Errorf("the manager sent %d write requests for converged objects", w)
	}
}

// Suite is the shared state of a controller test package: one API server
// (etcd + kube-apiserver) with the CRDs installed, an uncached admin
// client, and one manager running the controllers under test, as shipped.
type Suite struct {
	// Options of the shared manager; also the base of the managers that
	// ExpectIdle starts.
	Options manager.Options
	// CRDDirs are installed besides config/crd/bases.
	CRDDirs []string
	Cluster *testbed.Cluster
	Client  client.Client

	mu   sync.Mutex
	stop func() // stops the shared manager; nil while it is paused
}

// Main is the body of TestMain for a Suite.
func (s *Suite) Main(m *testing.M) int {
	return testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, func(ctx context.Context, c *testbed.Cluster) error {
		level := zapcore.ErrorLevel // controller logs only on errors...
		if os.Getenv("OPSMITH_TEST_VERBOSE") != "" {
			level = zapcore.DebugLevel // ...unless asked for
		}
		ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(level)))
		s.Cluster = c
		var err error
		if s.Client, err = client.New(c.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
			return err
		}
		for _, dir := range append([]string{filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")}, s.CRDDirs...) {
			if err := testbed.InstallCRDs(ctx, s.Client, dir); err != nil {
				return err
			}
		}
		if err := s.startShared(ctx); err != nil {
			return err
		}
		c.OnStop(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.stop != nil {
				s.stop()
				s.stop = nil
			}
		})
		return nil
	})
}

func (s *Suite) startShared(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stop, err := Start(ctx, s.Cluster.Config, s.Options, nil)
	if err != nil {
		return err
	}
	s.stop = stop
	return nil
}

// PauseShared stops the shared manager until the test ends, so that only
// a manager of the test's own reconciles its objects. Tests that pause it
// must not run in parallel with others of the package.
func (s *Suite) PauseShared(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	stop := s.stop
	s.stop = nil
	s.mu.Unlock()
	if stop == nil {
		t.Fatal("the shared manager is not running")
	}
	stop()
	t.Cleanup(func() {
		if err := s.startShared(context.Background()); err != nil {
			t.Fatalf("restarting the shared manager: %v", err)
		}
	})
}

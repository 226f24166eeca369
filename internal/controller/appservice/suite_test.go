package appservice_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/managertest"
	"opsmith.io/opsmith/test/testbed"
)

// The tests of this package share one API server (etcd + kube-apiserver, no
// controller manager: Deployment status is written by the tests, and nothing
// garbage collects) and one opsmith manager, as shipped. A test that needs
// its objects reconciled by a manager of its own pauses the shared one
// (pauseSharedManager); the tests of this package do not run in parallel.
var suite = &managertest.Suite{Options: managerOptions()}

// syncPeriod makes the manager reconcile every object again this often
// without any change, so that tests can prove idle reconciles write nothing.
const syncPeriod = 3 * time.Second

// shared is the running shared manager.
var shared struct {
	mu   sync.Mutex
	stop func() // nil while paused
}

// TestMain is managertest.Suite.Main, keeping the shared manager's stop
// function so that a test can pause it.
func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, func(ctx context.Context, c *testbed.Cluster) error {
		level := zapcore.ErrorLevel // controller logs only on errors...
		if os.Getenv("OPSMITH_TEST_VERBOSE") != "" {
			level = zapcore.DebugLevel // ...unless asked for
		}
		ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(level)))
		suite.Cluster = c
		var err error
		if suite.Client, err = client.New(c.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
			return err
		}
		if err := testbed.InstallCRDs(ctx, suite.Client, filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")); err != nil {
			return err
		}
		if err := startSharedManager(); err != nil {
			return err
		}
		c.OnStop(func() {
			shared.mu.Lock()
			defer shared.mu.Unlock()
			if shared.stop != nil {
				shared.stop()
				shared.stop = nil
			}
		})
		return nil
	}))
}

func startSharedManager() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	stop, err := managertest.Start(context.Background(), suite.Cluster.Config, suite.Options, nil)
	if err != nil {
		return err
	}
	shared.stop = stop
	return nil
}

// pauseSharedManager stops the shared manager until the test ends, so that
// only the test's own manager reconciles its objects.
func pauseSharedManager(t *testing.T) {
	t.Helper()
	shared.mu.Lock()
	stop := shared.stop
	shared.stop = nil
	shared.mu.Unlock()
	if stop == nil {
		t.Fatal("the shared manager is not running")
	}
	stop()
	t.Cleanup(func() {
		if err := startSharedManager(); err != nil {
			t.Fatalf("restarting the shared manager: %v", err)
		}
	})
}

func managerOptions() manager.Options {
	opts := manager.DefaultOptions()
	opts.Controllers = []string{"appservice"}
	opts.SyncPeriod = syncPeriod
	return opts
}

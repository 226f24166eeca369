package appservice_test

import (
	"os"
	"testing"
	"time"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/managertest"
)

// The tests of this package share one API server (etcd + kube-apiserver, no
// controller manager: Deployment status is written by the tests, and nothing
// garbage collects) and one opsmith manager, as shipped. A test that needs
// its objects reconciled by a manager of its own pauses the shared one
// (suite.PauseShared); the tests of this package do not run in parallel.
var suite = &managertest.Suite{Options: managerOptions()}

// syncPeriod makes the manager reconcile every object again this often
// without any change, so that tests can prove idle reconciles write nothing.
const syncPeriod = 3 * time.Second

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

func managerOptions() manager.Options {
	opts := manager.DefaultOptions()
	opts.Controllers = []string{"appservice"}
	opts.SyncPeriod = syncPeriod
	return opts
}

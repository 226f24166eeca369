package etcdcluster_test

import (
	"os"
	"testing"
	"time"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/managertest"
)

// The tests of this package share one API server (etcd + kube-apiserver;
// no kubelet, so member pods never run and etcd never answers: these tests
// cover the Kubernetes side, internal/etcd's tests the membership side
// against real etcd processes, test/e2enode both on a real node) and one
// opsmith manager, as shipped.
var suite = &managertest.Suite{Options: managerOptions()}

const timeout = 20 * time.Second

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

func managerOptions() manager.Options {
	opts := manager.DefaultOptions()
	opts.Controllers = []string{"etcdcluster"}
	opts.SyncPeriod = 3 * time.Second
	return opts
}

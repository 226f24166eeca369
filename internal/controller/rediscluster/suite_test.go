package rediscluster_test

import (
	"os"
	"testing"
	"time"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/managertest"
)

// The tests of this package share one API server (etcd + kube-apiserver;
// no kubelet, so node pods never run and Redis never answers: these tests
// cover the Kubernetes side, internal/redis's tests the cluster side
// against real redis-server processes, test/e2enode both on a real node)
// and one opsmith manager, as shipped.
var suite = &managertest.Suite{Options: managerOptions()}

const timeout = 20 * time.Second

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

func managerOptions() manager.Options {
	opts := manager.DefaultOptions()
	opts.Controllers = []string{"rediscluster"}
	opts.SyncPeriod = 3 * time.Second
	return opts
}

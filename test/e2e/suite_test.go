package e2e

import (
	"context"
	"os"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

var (
	cluster *testbed.Cluster
	k8s     client.Client // uncached, cluster admin
	// mgr is the manager under test.
	mgr *operator.Manager
)

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.Simulated, Nodes: 2}, setup))
}

func setup(ctx context.Context, c *testbed.Cluster) error {
	cluster = c
	var err error
	if k8s, err = client.New(c.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	if err := operator.Deploy(ctx, c, k8s); err != nil {
		return err
	}
	mgr, err = operator.StartManager(ctx, c, k8s, "manager",
		"--zap-log-level=debug",
		"--microservice-base-domain=e2e.test",
		"--microservice-auth-url=https://auth.e2e.test/verify",
	)
	return err
}

// kubectl runs the kubectl the testbed built, as cluster admin.
func kubectl(args ...string) (string, error) { return operator.Kubectl(cluster, args...) }

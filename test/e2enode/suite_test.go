//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/images"
	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

// Images `make images` builds and the testbed imports into the node.
const (
	managerImage  = images.ManagerRef
	httpEchoImage = images.HTTPEchoRef
	httpEchoPort  = 8080
	busyboxImage  = images.BusyboxRef
)

// The manager Deployment `make deploy` creates, and the external
// authentication URL the suite gives it.
const (
	managerDeployment = "opsmith-controller-manager"
	authURL           = "http://auth.opsmith.local/verify"
)

var (
	cluster *testbed.Cluster
	k8s     client.Client // uncached, cluster admin
	cs      kubernetes.Interface
)

// TestMain brings up the real node, deploys opsmith into it, runs the
// tests, tears everything down and then checks that nothing the cluster
// created is left on the machine: no process, mount, network link,
// iptables rule or nftables table.
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the real-node end-to-end tests need root (containerd, kubelet, kube-proxy)")
		os.Exit(1)
	}
	before, err := testbed.SnapshotHost()
	if err != nil {
		fmt.Fprintf(os.Stderr, "snapshot of the host: %v\n", err)
		os.Exit(1)
	}
	code := testbed.RunMain(m, testbed.Options{Mode: testbed.RealNode}, setup)
	if cluster != nil {
		after, err := testbed.SnapshotHost()
		if err != nil {
			fmt.Fprintf(os.Stderr, "snapshot of the host after the tests: %v\n", err)
			os.Exit(1)
		}
		left := append(before.Added(after), cluster.LeftoverProcesses()...)
		if len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: the real-node cluster left %d things behind:\n  %s\n", len(left), strings.Join(left, "\n  "))
			code = 1
		} else {
			fmt.Fprintln(os.Stderr, "testbed: teardown left no process, mount, link, iptables rule or nftables table behind")
		}
	}
	os.Exit(code)
}

func setup(ctx context.Context, c *testbed.Cluster) error {
	cluster = c
	var err error
	if k8s, err = client.New(c.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	if cs, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}
	// Exactly what a user runs: `make deploy IMG=...` against the cluster.
	cmd := exec.CommandContext(ctx, "make", "-C", testbed.RepoRoot(), "deploy", "IMG="+managerImage)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make deploy: %w\n%s", err, out)
	}
	// An external authentication URL, as a cluster with an auth service
	// sets it: without one, a needAuth MicroServiceDeploy is not routed.
	if _, err := operator.Kubectl(c, "-n", operator.Namespace, "patch", "deployment", managerDeployment, "--type=json", "-p",
		`[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--microservice-auth-url=`+authURL+`"}]`); err != nil {
		return err
	}
	return waitManager(ctx)
}

// waitManager waits until the manager Deployment `make deploy` created is
// available with all its replicas, and one of them leads.
func waitManager(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var last error
	for {
		last = managerAvailable(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			out, _ := operator.Kubectl(cluster, "-n", operator.Namespace, "describe", "pods")
			return fmt.Errorf("manager not available: %v\n%s", last, out)
		case <-time.After(time.Second):
		}
	}
}

func managerAvailable(ctx context.Context) error {
	var deps appsv1.DeploymentList
	if err := k8s.List(ctx, &deps, client.InNamespace(operator.Namespace)); err != nil {
		return err
	}
	if len(deps.Items) != 1 {
		return fmt.Errorf("%d Deployments in %s, want 1", len(deps.Items), operator.Namespace)
	}
	d := deps.Items[0]
	if d.Status.ObservedGeneration != d.Generation {
		return fmt.Errorf("deployment %s: generation %d not observed yet", d.Name, d.Generation)
	}
	if d.Spec.Replicas == nil || d.Status.AvailableReplicas != *d.Spec.Replicas || d.Status.UpdatedReplicas != *d.Spec.Replicas {
		return fmt.Errorf("deployment %s: %d of %d replicas available", d.Name, d.Status.AvailableReplicas, ptrOr(d.Spec.Replicas))
	}
	lease, err := cs.CoordinationV1().Leases(operator.Namespace).Get(ctx, "opsmith.opsmith.io", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("leader election lease: %w", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return fmt.Errorf("no manager holds the leader election lease")
	}
	return nil
}

func ptrOr(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// dumpOnFailure prints, when the test failed, what a person needs to see
// why: events and pod logs of the test's namespace and of opsmith's, the
// pods' descriptions and the tails of the node components' logs.
func dumpOnFailure(t *testing.T, ns string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []string{ns, operator.Namespace} {
			for _, args := range [][]string{
				{"-n", n, "get", "events", "--sort-by=.lastTimestamp"},
				{"-n", n, "describe", "pods"},
			} {
				out, err := operator.Kubectl(cluster, args...)
				t.Logf("kubectl %s:\n%s%v", strings.Join(args, " "), out, errOrEmpty(err))
			}
			pods, err := cs.CoreV1().Pods(n).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Logf("listing pods of %s: %v", n, err)
				continue
			}
			for _, p := range pods.Items {
				out, err := operator.Kubectl(cluster, "-n", n, "logs", "--all-containers", "--tail=100", p.Name)
				t.Logf("logs of pod %s/%s:\n%s%v", n, p.Name, out, errOrEmpty(err))
			}
		}
		for _, comp := range []string{"kubelet", "containerd", "kube-proxy", "coredns", "kube-network-policies", "kube-controller-manager"} {
			t.Logf("last lines of %s.log:\n%s", comp, testbed.Tail(filepath.Join(cluster.LogDir, comp+".log"), 40))
		}
	})
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

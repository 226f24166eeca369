package testbed

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KwokNodeLabel marks the simulated nodes; KwokNodeAnnotation makes kwok
// manage them.
const (
	KwokNodeLabel      = "type"
	KwokNodeLabelValue = "kwok"
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
)

// kwokStages are the kwok Stage definitions the simulated nodes run with,
// copied from the kwok module into bin/kwok-stages by `make testbed`: nodes
// become Ready at once and keep their lease, pods become Running and Ready
// as soon as they are bound, and terminate as soon as they are deleted.
var kwokStages = []string{
	"node-initialize.yaml",
	"node-heartbeat-with-lease.yaml",
	"pod-ready.yaml",
	"pod-complete.yaml",
	"pod-delete.yaml",
}

// startControllers starts kube-controller-manager and kube-scheduler.
func (c *Cluster) startControllers(_ context.Context) error {
	saKey := filepath.Join(c.pki, "sa.key")
	kcmArgs := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--controllers=*",
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file=" + saKey,
		// Publishes kube-root-ca.crt in every namespace; pods that mount a
		// ServiceAccount token do not start without it.
		"--root-ca-file=" + filepath.Join(c.pki, "apiserver.crt"),
		"--cluster-name=opsmith-testbed",
		// HPAs have no metrics server to ask; keep the log quiet.
		"--horizontal-pod-autoscaler-sync-period=60s",
		"--kube-api-qps=200", "--kube-api-burst=400",
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
		"--v=1",
	}
	if c.opts.Mode == RealNode {
		kcmArgs = append(kcmArgs,
			// Each controller with its own ServiceAccount, as in production.
			"--use-service-account-credentials",
			// No --enable-hostpath-provisioner: the default StorageClass's
			// volumes come from the testbed's own provisioner (volumes.go).
		)
	}
	if err := c.start("kube-controller-manager", "kube-controller-manager", kcmArgs...); err != nil {
		return err
	}
	return c.start("kube-scheduler", "kube-scheduler",
		"--kubeconfig="+c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--kube-api-qps=200", "--kube-api-burst=400",
		"--v=1",
	)
}

// startSimulation starts kube-controller-manager, kube-scheduler and kwok,
// registers the simulated nodes and waits until they are Ready and the
// controller manager has created the default ServiceAccount.
func (c *Cluster) startSimulation(ctx context.Context) error {
	ports, err := FreePorts(1)
	if err != nil {
		return err
	}
	kwokPort := ports[0]
	if err := c.startControllers(ctx); err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + KwokNodeAnnotation + "=fake",
		"--server-address=127.0.0.1:" + itoa(kwokPort),
		"--node-ip=127.0.0.1",
		"--node-port=" + itoa(kwokPort),
		"--cidr=10.244.0.0/16",
		// Keep each node's Lease fresh, as a kubelet does; without it the
		// node lifecycle controller marks the nodes unreachable after 40 s
		// and taints them.
		"--node-lease-duration-seconds=40",
	}
	for _, s := range kwokStages {
		args = append(args, "--config="+filepath.Join(c.binDir, "kwok-stages", s))
	}
	if err := c.start("kwok", "kwok", args...); err != nil {
		return err
	}

	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	for i := range c.opts.Nodes {
		if err := createNode(ctx, cs, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return err
		}
	}
	if err := c.waitFor(ctx, "kwok nodes to be Ready", 60*time.Second, func(ctx context.Context) error {
		return nodesReady(ctx, cs, c.opts.Nodes)
	}); err != nil {
		return err
	}
	return c.waitFor(ctx, "kube-controller-manager to create the default ServiceAccount", 60*time.Second,
		func(ctx context.Context) error {
			_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		})
}

func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("256"),
		corev1.ResourceMemory: resource.MustParse("1Ti"),
		corev1.ResourcePods:   resource.MustParse("10000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				KwokNodeAnnotation:             "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				KwokNodeLabel:            KwokNodeLabelValue,
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node %s: %w", name, err)
	}
	return nil
}

func nodesReady(ctx context.Context, cs kubernetes.Interface, want int) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: KwokNodeLabel + "=" + KwokNodeLabelValue})
	if err != nil {
		return err
	}
	var notReady []string
	for _, n := range nodes.Items {
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			notReady = append(notReady, n.Name)
		}
	}
	sort.Strings(notReady)
	if len(nodes.Items) < want || len(notReady) > 0 {
		return fmt.Errorf("%d of %d nodes registered, not ready: %v", len(nodes.Items), want, notReady)
	}
	return nil
}

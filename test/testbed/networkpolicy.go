package testbed

// The node's NetworkPolicy agent: sigs.k8s.io/kube-network-policies as a
// host process (built by `make testbed-node` from
// hack/tools/kube-network-policies, whose main.go explains how packets
// reach it on a kernel without nftables' queue expression).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// networkPolicyAgent is the agent's binary in the bin directory, its
	// component name and its directory under the node's.
	networkPolicyAgent = "kube-network-policies"
	networkPolicyUser  = "system:opsmith-testbed:kube-network-policies"
	// NetworkPolicyQueue is the NFQUEUE number the agent reads packets
	// from.
	NetworkPolicyQueue = 100
	// networkPolicyTable is the nftables table (family inet) upstream
	// writes where the kernel has nftables' queue expression.
	networkPolicyTable = "kube-network-policies"
	// networkPolicyChain is the iptables chain (mangle table) of the
	// agent's diversion elsewhere; keep it equal to DivertChain in
	// hack/tools/kube-network-policies/main.go.
	networkPolicyChain = "OPSMITH-NETPOL-QUEUE"
	// nftQueueProbeTable is the table (family inet) the agent loads for a
	// moment to learn whether the kernel has nftables' queue expression.
	nftQueueProbeTable = "opsmith-nft-queue-probe"
	nfqueueProc        = "/proc/net/netfilter/nfnetlink_queue"
)

// startNetworkPolicyAgent gives the agent its identity (what upstream's
// DaemonSet RBAC grants) and starts it; it returns once the agent listens
// on its queue and the packets of the pod network are diverted to it, so
// NetworkPolicies are enforced from the first pod on.
func (c *Cluster) startNetworkPolicyAgent(ctx context.Context, nodeDir string) error {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	if err := createNetworkPolicyRBAC(ctx, cs); err != nil {
		return err
	}
	kubeconfig := filepath.Join(nodeDir, networkPolicyAgent, "kubeconfig")
	if err := c.writeTokenKubeconfig(kubeconfig, c.componentTokens[networkPolicyUser]); err != nil {
		return err
	}
	ports, err := FreePorts(1)
	if err != nil {
		return err
	}
	if err := c.start(networkPolicyAgent, networkPolicyAgent,
		"--kubeconfig="+kubeconfig,
		"--hostname-override="+NodeName,
		"--nfqueue-id="+itoa(NetworkPolicyQueue),
		"--divert-cidr="+PodCIDR,
		"--metrics-bind-address=127.0.0.1:"+itoa(ports[0]),
		"--v=1",
	); err != nil {
		return err
	}
	return c.waitFor(ctx, "the NetworkPolicy agent to listen on its queue and divert the pod network", 60*time.Second,
		func(context.Context) error {
			if !nfqueueBound(NetworkPolicyQueue) {
				return fmt.Errorf("nothing listens on nfqueue %d", NetworkPolicyQueue)
			}
			if !networkPolicyDiverted() {
				return errors.New("no diversion to the queue (neither the nftables table inet " + networkPolicyTable +
					" nor the iptables chain " + networkPolicyChain + ")")
			}
			return nil
		})
}

func createNetworkPolicyRBAC(ctx context.Context, cs kubernetes.Interface) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "opsmith-testbed:kube-network-policies"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
		},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the NetworkPolicy agent's ClusterRole: %w", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: networkPolicyUser}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the NetworkPolicy agent's ClusterRoleBinding: %w", err)
	}
	return nil
}

// nfqueueBound reports whether a process listens on the queue (the kernel
// lists a queue once a socket has bound it).
func nfqueueBound(queue int) bool {
	f, err := os.Open(nfqueueProc)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 1 && fields[0] == itoa(queue) {
			return true
		}
	}
	return false
}

// networkPolicyDiverted reports whether packets reach the agent's queue:
// upstream's nftables table has its postrouting chain, or the iptables
// chain is jumped to from mangle POSTROUTING.
func networkPolicyDiverted() bool {
	if out, err := exec.Command("nft", "list", "chain", "inet", networkPolicyTable, "postrouting").CombinedOutput(); err == nil &&
		strings.Contains(string(out), "queue") {
		return true
	}
	out, err := exec.Command("iptables", "-w", "5", "-t", "mangle", "-S", "POSTROUTING").CombinedOutput()
	return err == nil && strings.Contains(string(out), "-j "+networkPolicyChain)
}

// NetworkPolicyDiverted reports whether the real node's NetworkPolicy
// agent listens on its queue and packets of the pod network are sent to it.
func NetworkPolicyDiverted() bool {
	return nfqueueBound(NetworkPolicyQueue) && networkPolicyDiverted()
}

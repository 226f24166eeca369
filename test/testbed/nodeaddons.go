package testbed

// The node's add-ons and agents: the objects they need in the API, CoreDNS,
// the kubelet and kube-proxy.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// freePortOn returns a port free for both TCP and UDP on ip.
func freePortOn(ip string) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, itoa(port)))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for TCP and UDP on %s", ip)
}

// createNodeObjects creates what the node's add-ons need in the API: CoreDNS'
// RBAC, the kube-dns Service (ClusterIP ClusterDNSIP) whose endpoint is
// CoreDNS on the node, and the default StorageClass.
func createNodeObjects(ctx context.Context, cs kubernetes.Interface, nodeIP string, dnsPort int) error {
	create := func(what string, err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s: %w", what, err)
		}
		return nil
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "opsmith-testbed:coredns"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	_, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
	if err := create("CoreDNS ClusterRole", err); err != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "opsmith-testbed:coredns"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: coreDNSUser}},
	}
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	if err := create("CoreDNS ClusterRoleBinding", err); err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: ClusterDNSIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(int32(dnsPort))},     //nolint:gosec // a port
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(int32(dnsPort))}, //nolint:gosec // a port
			},
		},
	}
	_, err = cs.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, svc, metav1.CreateOptions{})
	if err := create("kube-dns Service", err); err != nil {
		return err
	}
	port := int32(dnsPort) //nolint:gosec // a port
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-node", Namespace: metav1.NamespaceSystem, Labels: map[string]string{
			discoveryv1.LabelServiceName: "kube-dns",
			discoveryv1.LabelManagedBy:   "testbed.opsmith.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{nodeIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Protocol: ptr.To(corev1.ProtocolUDP), Port: &port},
			{Name: ptr.To("dns-tcp"), Protocol: ptr.To(corev1.ProtocolTCP), Port: &port},
		},
	}
	_, err = cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).Create(ctx, slice, metav1.CreateOptions{})
	if err := create("kube-dns EndpointSlice", err); err != nil {
		return err
	}
	_, err = cs.StorageV1().StorageClasses().Create(ctx, defaultStorageClass(), metav1.CreateOptions{})
	return create("default StorageClass", err)
}

const coreDNSUser = "system:opsmith-testbed:coredns"

// startDNS creates the node's objects in the API (see createNodeObjects)
// and starts CoreDNS beside the node, on a free port of the node's address.
func (c *Cluster) startDNS(ctx context.Context, nodeDir string, cs kubernetes.Interface) error {
	dnsPort, err := freePortOn(c.NodeIP)
	if err != nil {
		return err
	}
	if err := createNodeObjects(ctx, cs, c.NodeIP, dnsPort); err != nil {
		return err
	}
	return c.startCoreDNS(ctx, nodeDir, dnsPort)
}

func (c *Cluster) startCoreDNS(ctx context.Context, nodeDir string, dnsPort int) error {
	dir := filepath.Join(nodeDir, "coredns")
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := c.writeTokenKubeconfig(kubeconfig, c.componentTokens[coreDNSUser]); err != nil {
		return err
	}
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	health, ready := ports[0], ports[1]
	corefile := fmt.Sprintf(`.:%d {
    bind %s
    errors
    health 127.0.0.1:%d
    ready 127.0.0.1:%d
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s opsmith-testbed
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    forward . /etc/resolv.conf
    cache 5
    loadbalance
}
`, dnsPort, c.NodeIP, health, ready, kubeconfig)
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o600); err != nil {
		return err
	}
	if err := c.start("coredns", "coredns", "-conf", path); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/ready", ready)
	return c.waitFor(ctx, "CoreDNS", 60*time.Second, func(ctx context.Context) error { return httpOK(ctx, url) })
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts need this since Kubernetes 1.35.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{{sock}}
# This VM lacks CAP_SYS_RESOURCE: the kubelet cannot lower its own OOM score.
oomScoreAdj: 0
failSwapOn: false
address: {{nodeIP}}
port: {{port}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {{healthz}}
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {{clientCA}}
authorization:
  mode: Webhook
clusterDNS:
- ` + ClusterDNSIP + `
clusterDomain: cluster.local
podLogsDir: {{node}}/pod-logs
# Test machines have small, busy disks: evict only when really full, never
# garbage-collect the locally imported images (they cannot be pulled back).
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
`

func (c *Cluster) startKubelet(ctx context.Context, nodeDir string, cs kubernetes.Interface) error {
	dir := filepath.Join(nodeDir, "kubelet")
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	port, err := freePortOn(c.NodeIP)
	if err != nil {
		return err
	}
	cfg := strings.NewReplacer(
		"{{sock}}", c.node.sock, "{{nodeIP}}", c.NodeIP, "{{port}}", itoa(port), "{{healthz}}", itoa(ports[0]),
		"{{clientCA}}", filepath.Join(c.pki, "kubelet-client-ca.crt"), "{{node}}", nodeDir,
	).Replace(kubeletConfig)
	cfgPath := filepath.Join(nodeDir, "kubelet-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	kubeconfig := filepath.Join(nodeDir, "kubelet.kubeconfig")
	if err := c.writeTokenKubeconfig(kubeconfig, c.componentTokens[kubeletUser]); err != nil {
		return err
	}
	if err := c.start("kubelet", "kubelet",
		"--config="+cfgPath,
		"--kubeconfig="+kubeconfig,
		"--root-dir="+dir,
		"--cert-dir="+filepath.Join(dir, "pki"),
		"--hostname-override="+NodeName,
		"--node-ip="+c.NodeIP,
		"--v=1",
	); err != nil {
		return err
	}
	return c.waitFor(ctx, "the kubelet's node to be Ready", 120*time.Second, func(ctx context.Context) error {
		node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s: %s", cond.Reason, cond.Message)
			}
		}
		return errors.New("node has no Ready condition yet")
	})
}

const kubeletUser = "system:node:" + NodeName

const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: ` + PodCIDR + `
hostnameOverride: ` + NodeName + `
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:{{healthz}}
metricsBindAddress: 127.0.0.1:{{metrics}}
nodePortAddresses:
- primary
clientConnection:
  kubeconfig: {{kubeconfig}}
# The VM does not let kube-proxy change the conntrack sysctls.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`

const kubeProxyUser = "system:kube-proxy"

func (c *Cluster) startKubeProxy(ctx context.Context, nodeDir string) error {
	dir := filepath.Join(nodeDir, "kube-proxy")
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := c.writeTokenKubeconfig(kubeconfig, c.componentTokens[kubeProxyUser]); err != nil {
		return err
	}
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	cfg := strings.NewReplacer("{{healthz}}", itoa(ports[0]), "{{metrics}}", itoa(ports[1]),
		"{{kubeconfig}}", kubeconfig).Replace(kubeProxyConfig)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	if err := c.start("kube-proxy", "kube-proxy", "--config="+path, "--v=1"); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[0])
	return c.waitFor(ctx, "kube-proxy", 60*time.Second, func(ctx context.Context) error { return httpOK(ctx, url) })
}

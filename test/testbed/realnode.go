package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	criclient "k8s.io/cri-client/pkg"
	"k8s.io/utils/ptr"

	"opsmith.io/opsmith/test/images"
)

// Fixed addresses and names of the real-node cluster. Only one real node
// runs on a machine at a time (kube-proxy's iptables chains are global), so
// they need not be unique.
const (
	// NodeName is the name the kubelet registers.
	NodeName = "opsmith-node"
	// PodCIDR is the range pod IPs come from (the CNI bridge network).
	PodCIDR = "10.244.0.0/16"
	// ClusterDNSIP is the ClusterIP of the kube-system/kube-dns Service,
	// which sends queries to CoreDNS.
	ClusterDNSIP = "10.0.0.10"
	// DefaultStorageClass provisions host-path volumes on the node.
	DefaultStorageClass = "standard"
	// NodeBridge is the Linux bridge the pods are attached to.
	NodeBridge = "opsmith0"

	serviceCIDR   = "10.0.0.0/16"
	nodeLockPath  = "/run/opsmith-realnode.lock"
	nodeStatePath = "/run/opsmith-realnode.json"
	// hostPathPVDir is where kube-controller-manager's host-path
	// provisioner creates volumes (fixed in its code).
	hostPathPVDir = "/tmp/hostpath_pv"
	cniBinDir     = "/usr/lib/cni"
)

// nodeCommands are the programs the real node needs from the machine, with
// the Debian package that provides them.
var nodeCommands = map[string]string{
	"containerd":    "containerd",
	"ctr":           "containerd",
	"runc":          "runc",
	"iptables":      "iptables",
	"iptables-save": "iptables",
	"ip":            "iproute2",
	"conntrack":     "conntrack",
	"nft":           "nftables",
}

// realNode is the node part of a RealNode cluster: containerd, the CNI
// bridge, CoreDNS, kubelet and kube-proxy, and what they changed on the
// machine.
type realNode struct {
	state     nodeState
	lock      *os.File
	sock      string
	container *Process // containerd
}

// nodeState is written to nodeStatePath while a real node runs, so that the
// next Start can clean up after a test process that died without Stop.
type nodeState struct {
	Dir    string    `json:"dir"`
	Socket string    `json:"socket"`
	Bridge string    `json:"bridge"`
	Before HostState `json:"before"`
	// NewCgroups are the kubepods cgroup directories that did not exist
	// before the kubelet created them.
	NewCgroups []string `json:"newCgroups"`
	// HostPathPVsBefore are the entries of hostPathPVDir at start.
	HostPathPVsBefore []string `json:"hostPathPVsBefore"`
	HostPathPVDirNew  bool     `json:"hostPathPVDirNew"`
	KubeProxy         string   `json:"kubeProxy"`
}

// checkNodePrerequisites explains what is missing for a real node.
func (c *Cluster) checkNodePrerequisites() error {
	if runtime.GOOS != "linux" {
		return errors.New("the real-node testbed runs on Linux only")
	}
	if os.Geteuid() != 0 {
		return errors.New("the real-node testbed needs root (it runs containerd, a kubelet and kube-proxy)")
	}
	var missing []string
	for cmd, pkg := range nodeCommands {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", cmd, pkg))
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			missing = append(missing, fmt.Sprintf("%s/%s (Debian package containernetworking-plugins)", cniBinDir, plugin))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("the real-node testbed needs %s: run hack/install-node-deps.sh (or `make testbed-node`)",
			strings.Join(missing, ", "))
	}
	if _, err := os.Stat(c.imageIndex()); err != nil {
		return fmt.Errorf("no local images (%s): run `make images` first", c.imageIndex())
	}
	return nil
}

// imageIndex is the list of image archives `make images` builds.
func (c *Cluster) imageIndex() string { return filepath.Join(c.binDir, "images", images.IndexFile) }

// primaryIPv4 is the IPv4 address of the interface that holds the default
// route: pods reach the API server and the host's services there.
func primaryIPv4() (string, error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return "", err
	}
	iface := ""
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 7 && f[1] == "00000000" && f[7] == "00000000" {
			iface = f[0]
			break
		}
	}
	if iface == "" {
		return "", errors.New("no default route: cannot choose the node IP")
	}
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		return "", err
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", fmt.Errorf("interface %s has no IPv4 address", iface)
}

// acquireNodeLock takes the machine-wide real-node lock, waiting while
// another real node runs.
func acquireNodeLock(ctx context.Context, log func(string)) (*os.File, error) {
	f, err := os.OpenFile(nodeLockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	warned := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("locking %s: %w", nodeLockPath, err)
		}
		if !warned {
			log("testbed: another real-node cluster runs on this machine; waiting for " + nodeLockPath)
			warned = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for %s (another real-node cluster runs here): %w", nodeLockPath, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opts.Log, "testbed: "+format+"\n", args...)
}

// startNode brings up the node: containerd with the local images, the CNI
// network, CoreDNS, the kubelet and kube-proxy, and the cluster objects they
// need; it returns when the node is Ready and Services route.
func (c *Cluster) startNode(ctx context.Context) error {
	lock, err := acquireNodeLock(ctx, func(s string) { fmt.Fprintln(c.opts.Log, s) })
	if err != nil {
		return err
	}
	n := &realNode{lock: lock}
	c.node = n
	if err := recoverStaleNode(c.binDir, c.logf); err != nil {
		return fmt.Errorf("cleaning up after an earlier real node: %w", err)
	}

	dir := filepath.Join(c.Dir, "node")
	n.sock = filepath.Join(dir, "containerd", "containerd.sock")
	if err := n.recordHostState(dir, c.binDir); err != nil {
		return err
	}
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "kube-proxy", "coredns"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return err
		}
	}

	if err := c.startContainerd(ctx, dir); err != nil {
		return err
	}
	if err := c.importImages(ctx); err != nil {
		return err
	}
	if err := writeCNIConfig(dir); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	if err := c.startDNS(ctx, dir, cs); err != nil {
		return err
	}
	if err := c.startKubelet(ctx, dir, cs); err != nil {
		return err
	}
	if err := c.startKubeProxy(ctx, dir); err != nil {
		return err
	}
	return c.waitFor(ctx, "kube-controller-manager to publish kube-root-ca.crt and the default ServiceAccount", 60*time.Second,
		func(ctx context.Context) error {
			if _, err := cs.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
				return err
			}
			_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		})
}

// recordHostState snapshots what the node will change on the machine and
// writes it to nodeStatePath before anything changes.
func (n *realNode) recordHostState(dir, binDir string) error {
	n.state = nodeState{Dir: dir, Socket: n.sock, Bridge: NodeBridge, KubeProxy: filepath.Join(binDir, "kube-proxy")}
	var err error
	if n.state.Before, err = SnapshotHost(); err != nil {
		return err
	}
	for _, cg := range kubepodsCgroups() {
		if _, err := os.Stat(cg); os.IsNotExist(err) {
			n.state.NewCgroups = append(n.state.NewCgroups, cg)
		}
	}
	if entries, err := os.ReadDir(hostPathPVDir); err == nil {
		for _, e := range entries {
			n.state.HostPathPVsBefore = append(n.state.HostPathPVsBefore, e.Name())
		}
	} else {
		n.state.HostPathPVDirNew = true
	}
	return writeNodeState(n.state)
}

func writeNodeState(s nodeState) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(nodeStatePath, data, 0o600)
}

// containerdConfig is a private containerd: its own root, state and
// sockets, so no other containerd on the machine is touched.
const containerdConfig = `version = 2
root = "{{dir}}/root"
state = "{{dir}}/state"
oom_score = 0

[grpc]
  address = "{{dir}}/containerd.sock"

[ttrpc]
  address = "{{dir}}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{{dir}}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{pause}}"
  # This VM lacks CAP_SYS_RESOURCE: without it runc fails to apply the
  # pause container's oom_score_adj of -998.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  netns_mounts_under_state_dir = true
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "` + cniBinDir + `"
    conf_dir = "{{node}}/cni/net.d"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
`

// PauseImage is the pod sandbox image; `make images` builds it.
const PauseImage = images.PauseRef

func (c *Cluster) startContainerd(ctx context.Context, nodeDir string) error {
	dir := filepath.Join(nodeDir, "containerd")
	cfg := strings.NewReplacer("{{dir}}", dir, "{{node}}", nodeDir, "{{pause}}", PauseImage).Replace(containerdConfig)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return err
	}
	c.logf("starting containerd")
	p, err := c.StartProcess("containerd", bin, "--config="+path, "--log-level=info")
	if err != nil {
		return err
	}
	c.node.container = p
	return c.waitFor(ctx, "containerd", 30*time.Second, func(ctx context.Context) error {
		return exec.CommandContext(ctx, "ctr", "--address", c.node.sock, "version").Run()
	})
}

// importImages loads every archive of bin/images into containerd's k8s.io
// namespace, where the kubelet finds them.
func (c *Cluster) importImages(ctx context.Context) error {
	imgs, err := images.ReadIndex(filepath.Join(c.binDir, "images"))
	if err != nil {
		return err
	}
	havePause := false
	for _, img := range imgs {
		if len(c.opts.Images) > 0 && !slices.Contains(c.opts.Images, img.Ref) && img.Ref != PauseImage {
			continue
		}
		havePause = havePause || img.Ref == PauseImage
		out, err := exec.CommandContext(ctx, "ctr", "--address", c.node.sock, "--namespace", "k8s.io",
			"images", "import", "--no-unpack=false", img.Archive).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s (%s): %w: %s", img.Ref, img.Archive, err, out)
		}
	}
	if !havePause {
		return fmt.Errorf("%s lists no %s image: run `make images`", c.imageIndex(), PauseImage)
	}
	return nil
}

func writeCNIConfig(nodeDir string) error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "opsmith",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      NodeBridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": PodCIDR}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(nodeDir, "cni", "ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(nodeDir, "cni", "net.d", "10-opsmith.conflist"), data, 0o600)
}

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
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultStorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       "kubernetes.io/host-path",
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
	_, err = cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
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

// removePodSandboxes stops and removes every pod sandbox through the CRI
// (which tears down each pod's network with CNI DEL), once the kubelet is
// gone so it cannot start them again.
func (n *realNode) removePodSandboxes() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := criclient.NewRemoteRuntimeServiceBuilder().WithEndpoint("unix://" + n.sock).
		WithConnectionTimeout(10 * time.Second).Build(ctx)
	if err != nil {
		return err
	}
	sandboxes, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range sandboxes {
		if err := rs.StopPodSandbox(ctx, sb.Id); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox of %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
		}
		if err := rs.RemovePodSandbox(ctx, sb.Id); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox of %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// stopNode runs when Stop reaches containerd (the kubelet, kube-proxy and
// CoreDNS are stopped already): it removes the pods, stops containerd and
// removes what the node added to the machine.
func (c *Cluster) stopNode() {
	n := c.node
	if n.container != nil {
		if done, _ := n.container.Exited(); !done {
			if err := n.removePodSandboxes(); err != nil {
				c.logf("removing pods: %v", err)
			}
		}
		n.container.Stop(20 * time.Second)
	}
	for _, err := range cleanHost(n.state) {
		fmt.Fprintf(os.Stderr, "testbed: cleaning up the real node: %v\n", err)
	}
	_ = os.Remove(nodeStatePath)
	if n.lock != nil {
		_ = n.lock.Close()
	}
}

// recoverStaleNode cleans up after a real node whose test process died
// without Stop (its components died with it, but container shims, mounts,
// the bridge and firewall rules outlive it).
func recoverStaleNode(binDir string, logf func(string, ...any)) error {
	data, err := os.ReadFile(nodeStatePath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var s nodeState
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%s: %w", nodeStatePath, err)
	}
	if s.KubeProxy == "" {
		s.KubeProxy = filepath.Join(binDir, "kube-proxy")
	}
	logf("cleaning up after a real node that was not stopped (%s)", s.Dir)
	if errs := cleanHost(s); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if strings.Contains(s.Dir, "opsmith-testbed-") {
		_ = os.RemoveAll(s.Dir)
	}
	return os.Remove(nodeStatePath)
}

// cleanHost removes what a real node added to the machine: container
// processes and shims, mounts, kube-proxy's and CNI's firewall rules, the
// bridge, the kubepods cgroups and provisioned host-path volumes.
func cleanHost(s nodeState) []error {
	// Container processes, then their shims.
	killCgroupProcesses(kubepodsCgroups())
	for _, pid := range processesReferring(s.Socket, s.Dir+"/") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(processesReferring(s.Socket, s.Dir+"/"), 10*time.Second)

	errs := unmountUnder(s.Dir)
	errs = append(errs, removeNodeNetwork(s)...)
	// Cgroups the kubelet created, deepest first.
	for _, cg := range s.NewCgroups {
		errs = append(errs, removeCgroupTree(cg)...)
	}
	removeNewHostPathPVs(s)
	return errs
}

// unmountUnder detaches the mounts under dir (container root filesystems,
// network namespaces, pod volumes), deepest first.
func unmountUnder(dir string) []error {
	mounts, err := mountPoints()
	if err != nil {
		return []error{err}
	}
	var errs []error
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		if strings.HasPrefix(m, dir+"/") {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
			}
		}
	}
	return errs
}

// removeNodeNetwork removes the bridge and the firewall rules: kube-proxy
// removes its own iptables (and nftables) rules; whatever else Kubernetes
// or CNI added goes by comparison with the snapshot taken at start.
func removeNodeNetwork(s nodeState) []error {
	var errs []error
	if _, err := os.Stat(s.KubeProxy); err == nil {
		if out, err := exec.Command(s.KubeProxy, "--cleanup", "--v=0").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %w: %s", err, lastLines(string(out), 5)))
		}
	}
	if _, err := net.InterfaceByName(s.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", s.Bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("deleting bridge %s: %w: %s", s.Bridge, err, out))
		}
	}
	errs = append(errs, removeAddedIptables(s.Before, s.Bridge)...)
	errs = append(errs, removeNewEmptyTables(s.Before)...)
	now, err := nftTables()
	if err != nil {
		return append(errs, err)
	}
	had := map[string]bool{}
	for _, t := range s.Before.Nftables {
		had[t] = true
	}
	for _, t := range now {
		if !had[t] && strings.HasSuffix(t, " kube-proxy") {
			f := strings.Fields(t)
			if out, err := exec.Command("nft", "delete", "table", f[0], f[1]).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("nft delete table %s: %w: %s", t, err, out))
			}
		}
	}
	return errs
}

// removeNewHostPathPVs deletes the volumes the host-path provisioner
// created while the node ran.
func removeNewHostPathPVs(s nodeState) {
	had := map[string]bool{}
	for _, e := range s.HostPathPVsBefore {
		had[e] = true
	}
	entries, err := os.ReadDir(hostPathPVDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !had[e.Name()] {
			_ = os.RemoveAll(filepath.Join(hostPathPVDir, e.Name()))
		}
	}
	if s.HostPathPVDirNew {
		_ = os.Remove(hostPathPVDir)
	}
}

// kubepodsCgroups are the directories the kubelet (cgroupfs driver) puts
// pods under, one per mounted cgroup hierarchy.
func kubepodsCgroups() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup/kubepods"} // cgroup v2
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		info, err := os.Lstat(filepath.Join("/sys/fs/cgroup", e.Name()))
		if err != nil || !info.IsDir() { // skip cpu -> cpu,cpuacct symlinks
			continue
		}
		out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), "kubepods"))
	}
	return out
}

func killCgroupProcesses(roots []string) {
	for _, root := range roots {
		var procFiles []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == "cgroup.procs" {
				procFiles = append(procFiles, path)
			}
			return nil // best effort: a cgroup may vanish while walking
		})
		for _, path := range procFiles {
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			for f := range strings.FieldsSeq(string(data)) {
				var pid int
				if _, err := fmt.Sscanf(f, "%d", &pid); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
}

func removeCgroupTree(root string) []error {
	var dirs []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var errs []error
	deadline := time.Now().Add(10 * time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := syscall.Rmdir(dirs[i])
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
				break
			}
			time.Sleep(100 * time.Millisecond) // its last processes are still exiting
		}
	}
	return errs
}

func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

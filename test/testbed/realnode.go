package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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
	// DefaultStorageClass is the default StorageClass: local volumes on the
	// node that a non-root pod with fsGroup can write (see volumes.go).
	DefaultStorageClass = "standard"
	// NodeBridge is the Linux bridge the pods are attached to.
	NodeBridge = "opsmith0"

	serviceCIDR   = "10.0.0.0/16"
	nodeLockPath  = "/run/opsmith-realnode.lock"
	nodeStatePath = "/run/opsmith-realnode.json"
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
	volumes   *volumeProvisioner
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
	// VolumeDir holds the directories of the provisioned volumes.
	VolumeDir string `json:"volumeDir"`
	KubeProxy string `json:"kubeProxy"`
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
	if _, err := os.Stat(nfqueueProc); err != nil {
		return fmt.Errorf("the real node's NetworkPolicy agent needs a kernel with nfnetlink_queue (CONFIG_NETFILTER_NETLINK_QUEUE): no %s", nfqueueProc)
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
// network, CoreDNS, the kubelet, kube-proxy and the NetworkPolicy agent
// (networkpolicy.go), and the cluster objects they need; it returns when
// the node is Ready and Services route.
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
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "kube-proxy", "coredns", networkPolicyAgent} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return err
		}
	}

	if err := c.startRuntime(ctx, dir); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	if err := c.startNodeAgents(ctx, dir, cs); err != nil {
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

// startRuntime starts containerd with the local images and writes the
// CNI network's configuration.
func (c *Cluster) startRuntime(ctx context.Context, dir string) error {
	if err := c.startContainerd(ctx, dir); err != nil {
		return err
	}
	if err := c.importImages(ctx); err != nil {
		return err
	}
	return writeCNIConfig(dir)
}

// startNodeAgents starts, in order, CoreDNS, the volume provisioner, the
// kubelet, kube-proxy and the NetworkPolicy agent.
func (c *Cluster) startNodeAgents(ctx context.Context, dir string, cs kubernetes.Interface) error {
	n := c.node
	if err := c.startDNS(ctx, dir, cs); err != nil {
		return err
	}
	var err error
	if n.volumes, err = startVolumeProvisioner(ctx, cs, n.state.VolumeDir, NodeName, c.logf); err != nil {
		return err
	}
	c.onStop = append(c.onStop, n.volumes.stop)
	if err := c.startKubelet(ctx, dir, cs); err != nil {
		return err
	}
	if err := c.startKubeProxy(ctx, dir); err != nil {
		return err
	}
	return c.startNetworkPolicyAgent(ctx, dir)
}

// recordHostState snapshots what the node will change on the machine and
// writes it to nodeStatePath before anything changes.
func (n *realNode) recordHostState(dir, binDir string) error {
	n.state = nodeState{Dir: dir, Socket: n.sock, Bridge: NodeBridge, KubeProxy: filepath.Join(binDir, "kube-proxy"),
		VolumeDir: filepath.Join(dir, "volumes")}
	var err error
	if n.state.Before, err = SnapshotHost(); err != nil {
		return err
	}
	for _, cg := range kubepodsCgroups() {
		if _, err := os.Stat(cg); os.IsNotExist(err) {
			n.state.NewCgroups = append(n.state.NewCgroups, cg)
		}
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

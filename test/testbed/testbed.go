package testbed

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"opsmith.io/opsmith/test/hostproc"
)

// Mode selects which components a cluster runs.
type Mode int

const (
	// APIServer runs etcd and kube-apiserver.
	APIServer Mode = iota
	// Simulated adds kube-controller-manager, kube-scheduler and kwok nodes.
	Simulated
	// RealNode adds kube-controller-manager, kube-scheduler and one real
	// node: containerd, runc, a CNI bridge, a kubelet, kube-proxy and
	// CoreDNS. Linux and root only; one per machine at a time.
	RealNode
)

func (m Mode) String() string {
	switch m {
	case Simulated:
		return "simulated"
	case RealNode:
		return "real-node"
	default:
		return "apiserver"
	}
}

// Options configure a cluster.
type Options struct {
	Mode Mode
	// BinDir holds the component binaries; defaults to BinDir().
	BinDir string
	// Dir is where the cluster keeps its data, certificates, kubeconfig and
	// logs; defaults to a new temporary directory, removed by Stop unless
	// logs are kept.
	Dir string
	// Nodes is the number of kwok nodes in Simulated mode (default 1).
	Nodes int
	// Log receives progress messages; nil discards them.
	Log io.Writer
	// Audit makes the API server write an audit log (metadata of every
	// request) to Cluster.AuditLog, for measuring what clients send.
	Audit bool
	// Profiling serves net/http/pprof on the API server (/debug/pprof,
	// cluster administrators only), for finding where its time goes.
	Profiling bool
	// CPUs, when not empty, binds every process of the cluster (and every
	// process started with Cluster.StartProcess, such as an operator) to
	// these CPUs, so that two clusters on one machine do not share cores.
	CPUs []int
	// Images limits the local images (refs listed in bin/images/images.json)
	// imported into a real node's containerd; empty imports all of them.
	Images []string
}

// Cluster is a running control plane.
type Cluster struct {
	// Config authenticates as a cluster administrator (group
	// system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same
	// credentials.
	Kubeconfig string
	// Dir is the cluster's directory; LogDir holds one log per component.
	Dir, LogDir string
	// AuditLog is the API server's audit log (JSON lines), with
	// Options.Audit.
	AuditLog string
	// NodeIP is the address of the real node (the machine's primary IPv4
	// address) in RealNode mode, where NodePort Services answer.
	NodeIP string

	opts    Options
	ownsDir bool
	onStop  []func()
	procs   []*Process
	token   string
	binDir  string
	pki     string
	apiURL  string
	stopped bool
	// node is the real node, in RealNode mode.
	node *realNode
	// componentTokens are the static tokens of the node's components, by
	// user name.
	componentTokens map[string]string
}

// Start brings up a cluster and waits until it serves requests (and, in
// Simulated mode, until its nodes are Ready and the controller manager
// works). On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.BinDir == "" {
		opts.BinDir = BinDir()
	}
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	c := &Cluster{opts: opts, binDir: opts.BinDir}
	if err := c.checkBinaries(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "opsmith-testbed-"); err != nil {
			return nil, err
		}
		c.ownsDir = true
	} else {
		c.Dir = opts.Dir
		if err := os.MkdirAll(c.Dir, 0o750); err != nil {
			return nil, err
		}
	}
	if err := c.makeDirs(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (component logs: %s)", err, c.LogDir)
			c.Stop(true)
		}
	}()

	if opts.Mode == RealNode {
		if c.NodeIP, err = primaryIPv4(); err != nil {
			return nil, err
		}
	}
	if err := c.startControlPlane(ctx); err != nil {
		return nil, err
	}
	if err := c.startNodes(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// startNodes starts what runs pods in the cluster's mode: nothing, kwok's
// simulated nodes, or a real node (each with the controller manager and the
// scheduler).
func (c *Cluster) startNodes(ctx context.Context) error {
	switch c.opts.Mode {
	case Simulated:
		return c.startSimulation(ctx)
	case RealNode:
		if err := c.startControllers(ctx); err != nil {
			return err
		}
		return c.startNode(ctx)
	default:
		return nil
	}
}

func (c *Cluster) makeDirs() error {
	c.LogDir = filepath.Join(c.Dir, "logs")
	c.pki = filepath.Join(c.Dir, "pki")
	for _, d := range []string{c.LogDir, c.pki} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) checkBinaries() error {
	need := []string{"etcd", "kube-apiserver"}
	switch c.opts.Mode {
	case Simulated:
		need = append(need, "kube-controller-manager", "kube-scheduler", "kwok")
	case RealNode:
		need = append(need, "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns", networkPolicyAgent)
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(c.binDir, b)); err != nil {
			return fmt.Errorf("testbed binary %s missing in %s: run `make testbed` first", b, c.binDir)
		}
	}
	if c.opts.Mode == RealNode {
		return c.checkNodePrerequisites()
	}
	return nil
}

// startControlPlane starts etcd and kube-apiserver and writes the
// kubeconfig.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]

	etcdURL := "http://127.0.0.1:" + itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + itoa(etcdPeer)
	if err := c.start("etcd", "etcd",
		"--name=testbed",
		"--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=testbed="+peerURL,
		// Test data need not survive a power cut; fsync dominates the
		// API server's write latency on small VMs.
		"--unsafe-no-fsync",
		"--log-level=warn",
	); err != nil {
		return err
	}

	c.token = randomHex(16)
	tokenLines := c.token + `,admin,admin-uid,"system:masters"` + "\n"
	if c.opts.Mode == RealNode {
		// The node's components, each with its own identity: the Node
		// authorizer and the default RBAC roles (system:node-proxier for
		// kube-proxy) apply to them as in a real cluster.
		c.componentTokens = map[string]string{}
		for user, group := range map[string]string{
			kubeletUser: "system:nodes", kubeProxyUser: "", coreDNSUser: "", networkPolicyUser: "",
		} {
			t := randomHex(16)
			c.componentTokens[user] = t
			tokenLines += fmt.Sprintf("%s,%s,%s,%q\n", t, user, user, group)
		}
	}
	tokens := filepath.Join(c.pki, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(tokenLines), 0o600); err != nil {
		return err
	}
	saKey := filepath.Join(c.pki, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return err
	}
	c.apiURL = "https://127.0.0.1:" + itoa(apiPort)
	// Where the API server listens and what it advertises: loopback only,
	// without endpoints for the kubernetes Service; on a real node, the
	// node's address, so pods reach it through that Service.
	netArgs := []string{"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--authorization-mode=RBAC", "--endpoint-reconciler-type=none"}
	if c.opts.Mode == RealNode {
		c.apiURL = "https://" + net.JoinHostPort(c.NodeIP, itoa(apiPort))
		ca, err := newCertAuthority("opsmith-testbed-kubelet-client-ca", filepath.Join(c.pki, "kubelet-client-ca.crt"))
		if err != nil {
			return err
		}
		clientCert, clientKey := filepath.Join(c.pki, "apiserver-kubelet-client.crt"), filepath.Join(c.pki, "apiserver-kubelet-client.key")
		if err := ca.issueClient("kube-apiserver-kubelet-client", []string{"system:masters"}, clientCert, clientKey); err != nil {
			return err
		}
		netArgs = []string{"--bind-address=0.0.0.0", "--advertise-address=" + c.NodeIP,
			"--authorization-mode=Node,RBAC",
			"--kubelet-client-certificate=" + clientCert, "--kubelet-client-key=" + clientKey,
			"--kubelet-preferred-address-types=InternalIP,Hostname"}
	}
	var auditArgs []string
	if c.opts.Audit {
		policy := filepath.Join(c.pki, "audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return err
		}
		c.AuditLog = filepath.Join(c.LogDir, "audit.log")
		auditArgs = []string{"--audit-policy-file=" + policy, "--audit-log-path=" + c.AuditLog,
			"--audit-log-format=json", "--audit-log-mode=blocking", "--audit-log-maxsize=0"}
	}
	if err := c.start("kube-apiserver", "kube-apiserver", append([]string{
		"--etcd-servers=" + etcdURL,
		"--secure-port=" + itoa(apiPort),
		"--cert-dir=" + c.pki,
		"--token-auth-file=" + tokens,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--service-node-port-range=30000-32767",
		"--allow-privileged=true",
		"--profiling=" + fmt.Sprint(c.opts.Profiling),
		"--v=1",
	}, append(netArgs, auditArgs...)...)...); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "kube-apiserver", 90*time.Second, c.apiReady); err != nil {
		return err
	}
	return c.writeKubeconfig()
}

// auditPolicy records the metadata of every request once, when its
// response is complete.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
`

// apiReady checks /readyz with the admin token.
func (c *Cluster) apiReady(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.apiURL+"/readyz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// The serving certificate is created by the API server at start;
		// readiness is all this probe checks. Clients use the kubeconfig,
		// which trusts that certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback readiness probe only
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

func (c *Cluster) writeKubeconfig() error {
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := c.writeTokenKubeconfig(c.Kubeconfig, c.token); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = 200, 400
	c.Config = rc
	return nil
}

// writeTokenKubeconfig writes a kubeconfig for the API server that
// authenticates with a static token.
func (c *Cluster) writeTokenKubeconfig(path, token string) error {
	ca, err := os.ReadFile(filepath.Join(c.pki, "apiserver.crt"))
	if err != nil {
		return fmt.Errorf("reading API server certificate: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["opsmith-testbed"] = &clientcmdapi.Cluster{Server: c.apiURL, CertificateAuthorityData: ca}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["opsmith-testbed"] = &clientcmdapi.Context{Cluster: "opsmith-testbed", AuthInfo: "user"}
	cfg.CurrentContext = "opsmith-testbed"
	return clientcmd.WriteToFile(*cfg, path)
}

// start launches a component from the bin directory.
func (c *Cluster) start(name, bin string, args ...string) error {
	fmt.Fprintf(c.opts.Log, "testbed: starting %s\n", name)
	_, err := c.StartProcess(name, filepath.Join(c.binDir, bin), args...)
	return err
}

// StartProcess runs a program (for example an operator under test) as part
// of the cluster: its output goes to LogDir/<name>.log and Stop ends it
// before the cluster's own components.
func (c *Cluster) StartProcess(name, bin string, args ...string) (*Process, error) {
	p, err := startProcess(name, bin, args, filepath.Join(c.LogDir, name+".log"), c.opts.CPUs)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// waitFor polls check until it succeeds, the timeout passes, or a component
// dies.
func (c *Cluster) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		for _, p := range c.procs {
			if done, err := p.Exited(); done {
				return fmt.Errorf("waiting for %s: %s %w (%v); last lines of its log:\n%s",
					what, p.Name, errProcessExited, err, tail(p.LogPath, 15))
			}
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop ends every component, newest first. keepLogs keeps the cluster's
// directory (and says where it is); otherwise a directory Start created is
// removed. Stop is safe to call more than once.
func (c *Cluster) Stop(keepLogs bool) {
	if c.stopped {
		return
	}
	c.stopped = true
	for i := len(c.onStop) - 1; i >= 0; i-- {
		c.onStop[i]()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		if c.node != nil && c.procs[i] == c.node.container {
			// Everything started after containerd (kubelet, kube-proxy,
			// CoreDNS, operators under test) is stopped: remove the pods,
			// then containerd, then what the node left on the machine.
			c.stopNode()
			continue
		}
		c.procs[i].Stop(20 * time.Second)
	}
	if c.node != nil && c.node.container == nil {
		c.stopNode() // Start failed before containerd ran
	}
	if keepLogs {
		fmt.Fprintf(os.Stderr, "testbed: kept cluster directory with component logs: %s\n", c.Dir)
		return
	}
	if c.ownsDir {
		_ = os.RemoveAll(c.Dir)
	}
}

// OnStop registers f to run when Stop begins, before any component stops:
// for example to stop an in-process manager that would otherwise log
// errors about the vanished API server.
func (c *Cluster) OnStop(f func()) { c.onStop = append(c.onStop, f) }

// Running reports an error if a component has died.
func (c *Cluster) Running() error {
	for _, p := range c.procs {
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s %w (%v)", p.Name, errProcessExited, err)
		}
	}
	return nil
}

// Pids returns the process IDs of the running components, for tests that
// check nothing is left behind.
func (c *Cluster) Pids() []int {
	pids := make([]int, 0, len(c.procs))
	for _, p := range c.procs {
		pids = append(pids, p.Pid())
	}
	return pids
}

// Components returns the process ID of each running component by name.
func (c *Cluster) Components() map[string]int {
	pids := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		pids[p.Name] = p.Pid()
	}
	return pids
}

// RepoRoot returns the root of the opsmith repository, found by walking up
// from the working directory.
func RepoRoot() string { return hostproc.RepoRoot() }

// BinDir is where the testbed binaries are: $OPSMITH_BIN_DIR, or bin/ in the
// repository.
func BinDir() string { return hostproc.BinDir() }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1024*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// Tail returns the last n lines of a file (empty when it cannot be read).
func Tail(path string, n int) string { return tail(path, n) }

// LeftoverProcesses lists, after Stop, the processes of the cluster that
// still run: its components, and any process whose command line names the
// cluster's directory (container shims and containers of a real node).
func (c *Cluster) LeftoverProcesses() []string {
	var out []string
	for _, p := range c.procs {
		if err := syscall.Kill(p.Pid(), 0); err == nil {
			out = append(out, fmt.Sprintf("process %s (pid %d)", p.Name, p.Pid()))
		}
	}
	for _, pid := range processesReferring(c.Dir + "/") {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("process %d: %s", pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
	}
	if c.node != nil {
		for _, cg := range kubepodsCgroups() {
			if _, err := os.Stat(cg); err == nil && slices.Contains(c.node.state.NewCgroups, cg) {
				out = append(out, "cgroup "+cg)
			}
		}
	}
	return out
}

// Command kube-network-policies is the NetworkPolicy agent of the real-node
// testbed: sigs.k8s.io/kube-network-policies' controller (its informers,
// its NetworkPolicy evaluation and its NFQUEUE verdicts, unchanged) run as a
// host process with a kubeconfig, as the testbed runs kube-proxy, instead
// of the upstream DaemonSet's in-cluster configuration.
//
// Upstream sends the first packet of each connection to its queue with an
// nftables `queue` rule. Kernels built without CONFIG_NFT_QUEUE (such as
// the testbed machines') reject that rule, while they have nfnetlink_queue
// and the xtables NFQUEUE target. On such a kernel this command installs
// the same diversion with iptables: in the mangle table's POSTROUTING
// (before source NAT, like upstream's chain), the first packet of every
// connection from or to --divert-cidr (the pod network) goes to the queue,
// except packets of root's sockets on the host (kubelet probes; upstream
// accepts skuid 0 too). Upstream limits the diversion to the pods that
// policies select, which iptables cannot track without ipset; here the
// controller judges every pod connection and accepts those no policy
// restricts. Where the kernel has nft_queue, upstream's own table does it
// and nothing is added. Either way a diverted packet that finds no
// listener on the queue is dropped (fail closed, as upstream by default),
// and the rules are removed on SIGTERM or SIGINT (the testbed's cleanup
// removes them after a crash).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

// DivertChain is the iptables chain (mangle table) of the diversion; the
// testbed's cleanup knows the name.
const DivertChain = "OPSMITH-NETPOL-QUEUE"

func main() { os.Exit(run()) }

func run() int {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the agent's identity (required)")
	nodeName := flag.String("hostname-override", "", "name of the node whose pods are judged (default: the host name)")
	queueID := flag.Int("nfqueue-id", 100, "number of the nfqueue")
	metrics := flag.String("metrics-bind-address", "127.0.0.1:9080", "address of the metrics server")
	divertCIDR := flag.String("divert-cidr", "", "pod network whose connections iptables diverts to the queue when the kernel lacks nftables' queue expression (required)")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" || *divertCIDR == "" {
		fmt.Fprintln(os.Stderr, "kube-network-policies: --kubeconfig and --divert-cidr are required")
		return 2
	}
	if _, _, err := net.ParseCIDR(*divertCIDR); err != nil {
		fmt.Fprintf(os.Stderr, "kube-network-policies: --divert-cidr: %v\n", err)
		return 2
	}
	if *nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			klog.Errorf("host name: %v", err)
			return 1
		}
		*nodeName = strings.ToLower(h)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Errorf("kubeconfig: %v", err)
		return 1
	}
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.Errorf("client: %v", err)
		return 1
	}

	iptablesDivert := !kernelHasNftQueue()
	if iptablesDivert {
		klog.Infof("the kernel has no nftables queue expression (CONFIG_NFT_QUEUE): diverting new connections of %s to queue %d with iptables (mangle %s)",
			*divertCIDR, *queueID, DivertChain)
	}

	informersFactory := informers.NewSharedInformerFactory(cs, 0)
	controller, err := networkpolicy.NewController(cs,
		informersFactory.Networking().V1().NetworkPolicies(),
		informersFactory.Core().V1().Namespaces(),
		informersFactory.Core().V1().Pods(),
		nil, nil, nil, nil,
		networkpolicy.Config{
			QueueID:  *queueID,
			NodeName: *nodeName,
			// Fixed in the kernel since 6.12; the testbed's is newer.
			NetfilterBug1766Fix: false,
			// NRI stays on, as upstream runs it by default: containerd 1.6
			// has no NRI, so the plugin fails to connect and pod IPs come
			// from the API. (v0.8.0 with NRI disabled dereferences its nil
			// plugin for the first packet of an address no pod has.)
		})
	if err != nil {
		klog.Errorf("creating the network policy controller: %v", err)
		return 1
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	srv := &http.Server{Addr: *metrics, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			utilruntime.HandleError(err)
		}
	}()

	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx) }()
	informersFactory.Start(ctx.Done())

	if iptablesDivert {
		if err := installDivert(*divertCIDR, *queueID); err != nil {
			klog.Errorf("installing the iptables diversion: %v", err)
			removeDivert()
			cancel()
			<-done
			return 1
		}
	}

	code := 0
	select {
	case <-ctx.Done():
	case err := <-done:
		// Run ended on its own: no listener on the queue any more.
		klog.Errorf("network policy controller stopped: %v", err)
		code = 1
	}
	cancel()
	if iptablesDivert {
		removeDivert()
	}
	select {
	case <-done: // Run deletes upstream's nftables table on its way out
	case <-time.After(10 * time.Second):
		klog.Error("network policy controller did not stop in 10s")
		code = 1
	}
	_ = srv.Close()
	klog.Flush()
	return code
}

// kernelHasNftQueue reports whether the kernel accepts an nftables rule
// with the queue expression, by loading one into a table that is deleted
// again.
func kernelHasNftQueue() bool {
	nft, err := nftables.New()
	if err != nil {
		return false
	}
	// The testbed's cleanup knows the name (nftQueueProbeTable).
	table := &nftables.Table{Name: "opsmith-nft-queue-probe", Family: nftables.TableFamilyINet}
	nft.AddTable(table)
	chain := nft.AddChain(&nftables.Chain{Name: "probe", Table: table})
	nft.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
		&expr.Queue{Num: 65535, Flag: expr.QueueFlagBypass},
	}})
	ok := nft.Flush() == nil // one transaction: nothing stays when it fails
	if ok {
		nft.DelTable(table)
		if err := nft.Flush(); err != nil {
			klog.Errorf("deleting the probe table inet %s: %v", table.Name, err)
		}
	}
	return ok
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "5", "-t", "mangle"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables -t mangle %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// installDivert sends the first packet of each connection from or to cidr
// to the queue (see the package comment).
func installDivert(cidr string, queueID int) error {
	removeDivert() // left by an agent that was killed
	if err := iptables("-N", DivertChain); err != nil {
		return err
	}
	q := []string{"-j", "NFQUEUE", "--queue-num", fmt.Sprint(queueID)}
	for _, rule := range [][]string{
		{"-m", "owner", "--uid-owner", "0", "-j", "RETURN"},
		{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		append([]string{"-s", cidr}, q...),
		append([]string{"-d", cidr}, q...),
	} {
		if err := iptables(append([]string{"-A", DivertChain}, rule...)...); err != nil {
			return err
		}
	}
	return iptables("-I", "POSTROUTING", "1", "-j", DivertChain)
}

// removeDivert deletes the jump and the chain, whatever of them exists.
func removeDivert() {
	for iptables("-D", "POSTROUTING", "-j", DivertChain) == nil {
	}
	if iptables("-F", DivertChain) == nil {
		if err := iptables("-X", DivertChain); err != nil {
			klog.Error(err)
		}
	}
}

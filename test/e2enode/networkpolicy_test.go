//go:build realnode

package e2enode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/test/testbed"
)

// ingressNamespace is the manager's --microservice-ingress-namespace (its
// default: config/manager sets none).
const ingressNamespace = "ingress-nginx"

// fetchTimeout bounds one request inside the client pod (busybox timeout;
// busybox-static's wget -T crashes); the kubectl exec around it gets its own
// deadline too.
const fetchTimeout = 5 * time.Second

// fetch runs `wget -q -O- url` in a client pod and returns the reply. A
// request that the network drops ends with errBlocked after fetchTimeout;
// any other failure is returned as it is.
func fetch(ctx context.Context, ns, pod, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout+15*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(fetchTimeout / time.Second))
	cmd := exec.CommandContext(ctx, filepath.Join(testbed.BinDir(), "kubectl"), "--kubeconfig="+cluster.Kubeconfig,
		"-n", ns, "exec", pod, "--", "timeout", secs, "wget", "-q", "-O-", url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	var exit *exec.ExitError
	// kubectl exec exits with the remote command's status: 143 is timeout's
	// SIGTERM of a wget that got no answer.
	if errors.As(err, &exit) && exit.ExitCode() == 143 && ctx.Err() == nil {
		return "", errBlocked
	}
	return "", fmt.Errorf("wget %s in %s/%s: %w: %s%s", url, ns, pod, err, stdout.String(), stderr.String())
}

var errBlocked = errors.New("no answer")

// mustReach requests url from the client pod until the echo server of pod
// answers (at most tries times), and fails the test otherwise.
func mustReach(t *testing.T, ctx context.Context, ns, client, url, pod string, tries int) {
	t.Helper()
	var last error
	for i := range tries {
		body, err := fetch(ctx, ns, client, url)
		if err == nil && strings.Contains(body, `"hostname":"`+pod+`"`) {
			t.Logf("%s/%s reached %s (try %d): %s", ns, client, url, i+1, strings.TrimSpace(body))
			return
		}
		last = err
		if err == nil {
			last = fmt.Errorf("reply %q is not pod %s's echo", body, pod)
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s/%s could not reach %s in %d tries: %v", ns, client, url, tries, last)
}

// mustNotReach requests url from the client pod tries times and fails the
// test unless every request goes unanswered (dropped, not refused by a
// closed port: the server listens, as mustReach shows before and after).
func mustNotReach(t *testing.T, ctx context.Context, ns, client, url string, tries int) {
	t.Helper()
	for i := range tries {
		body, err := fetch(ctx, ns, client, url)
		if !errors.Is(err, errBlocked) {
			t.Fatalf("%s/%s requested %s (try %d): want no answer within %s, got %q, %v", ns, client, url, i+1, fetchTimeout, body, err)
		}
	}
	t.Logf("%s/%s: %d requests to %s unanswered", ns, client, tries, url)
}

// queuedPackets is the last packet number of the NetworkPolicy agent's
// queue: it grows with every packet the agent judges.
func queuedPackets(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// queue, peer port ID, queued, copy mode, copy range, dropped,
		// dropped by user space, last packet ID, 1
		if fields := strings.Fields(sc.Text()); len(fields) == 9 && fields[0] == strconv.Itoa(testbed.NetworkPolicyQueue) {
			n, err := strconv.ParseUint(fields[7], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("nothing listens on nfqueue %d", testbed.NetworkPolicyQueue)
	return 0
}

// sleeper starts a busybox pod that waits for kubectl exec, and returns
// once it runs.
func sleeper(t *testing.T, ctx context.Context, ns, name string) {
	t.Helper()
	pod := busyboxPod(ns, name, "sleep 3600", "", nil, nil)
	pod.Spec.TerminationGracePeriodSeconds = new(int64)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 2*time.Minute, "pod "+ns+"/"+name+" running", func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			return fmt.Errorf("pod %s is %s", name, p.Status.Phase)
		}
		return nil
	})
}

// TestNetworkPolicyOfNeedAuth: the NetworkPolicy of a needAuth
// MicroServiceDeploy is enforced on the real node (by kube-network-policies):
// a client pod in the ingress namespace reaches the instance's pod and
// Service, one in another namespace gets no answer; with needAuth turned
// off the policy goes and the other namespace gets through, so the policy
// is what blocked it. Costs ~1 min: three pods, and three 5 s requests that
// must go unanswered.
func TestNetworkPolicyOfNeedAuth(t *testing.T) {
	ctx := context.Background()
	if !testbed.NetworkPolicyDiverted() {
		t.Fatal("the real node's NetworkPolicy agent does not listen on its queue, or no packets are diverted to it")
	}
	ns := testbed.Namespace(t, k8s)
	other := testbed.Namespace(t, k8s)
	ingress := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ingressNamespace}}
	if err := k8s.Create(ctx, ingress); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ingress) })
	dumpOnFailure(t, ns)

	m := echoInstance(ns, "guarded")
	m.Spec.NeedAuth = true
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	sleeper(t, ctx, ingressNamespace, "ingress-client")
	sleeper(t, ctx, other, "client")
	pod := waitInstanceRunning(t, ctx, ns, m.Name)
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, m.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the NetworkPolicy of needAuth: %v", err)
	}
	route, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, microservicedeploy.SharedName(m.Spec.MsName, m.Spec.Path), metav1.GetOptions{})
	if err != nil || route.Annotations["nginx.ingress.kubernetes.io/auth-url"] != authURL {
		t.Fatalf("the needAuth instance is not routed through %s: %v %v", authURL, err, route.GetAnnotations())
	}
	podURL := fmt.Sprintf("http://%s:%d/", pod.Status.PodIP, httpEchoPort)
	svcURL := fmt.Sprintf("http://%s.%s.svc.cluster.local/", m.Name, ns)

	mustReach(t, ctx, ingressNamespace, "ingress-client", podURL, pod.Name, 10)
	mustReach(t, ctx, ingressNamespace, "ingress-client", svcURL, pod.Name, 10)
	judged := queuedPackets(t)
	mustNotReach(t, ctx, other, "client", podURL, 2)
	mustNotReach(t, ctx, other, "client", svcURL, 1)
	if n := queuedPackets(t); n <= judged {
		t.Fatalf("the NetworkPolicy agent judged no packet (queue's last packet %d, before %d): what dropped them?", n, judged)
	}

	// needAuth off: the policy goes, and the other namespace gets through.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(m), m); err != nil {
			return err
		}
		m.Spec.NeedAuth = false
		return k8s.Update(ctx, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, time.Minute, "the NetworkPolicy to be removed", func() error {
		_, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, m.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("NetworkPolicy %s/%s still there (%v)", ns, m.Name, err)
	})
	pod = waitInstanceRunning(t, ctx, ns, m.Name)
	podURL = fmt.Sprintf("http://%s:%d/", pod.Status.PodIP, httpEchoPort)
	mustReach(t, ctx, other, "client", podURL, pod.Name, 10)
	mustReach(t, ctx, other, "client", svcURL, pod.Name, 10)
}

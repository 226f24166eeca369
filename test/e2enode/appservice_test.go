//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/test/testbed"
)

// runningPods returns the names of the AppService's pods whose containers
// really run and pass their readiness (not terminating).
func runningPods(ctx context.Context, ns, app string) ([]string, int, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	var ready []string
	total := 0
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Name, app+"-") {
			continue
		}
		total++
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		st := p.Status.ContainerStatuses[0]
		if st.State.Running != nil && st.Ready && st.ContainerID != "" {
			ready = append(ready, p.Name)
		}
	}
	sort.Strings(ready)
	return ready, total, nil
}

// hostnamesBehind asks the NodePort from the host until it has heard from
// want distinct pods (or tries runs out), and returns the pod names that
// answered. A reply only counts if it is the echo server's (an intercepting
// proxy could answer a TCP connection too): the echo server's reply names
// the pod (its host name).
func hostnamesBehind(addr string, tries int, want int, pods []string) (map[string]bool, error) {
	seen := map[string]bool{}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	var last error
	for i := 0; i < tries && len(seen) < want; i++ {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			last = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		host := ""
		for _, p := range pods {
			if strings.Contains(string(body), p) {
				host = p
			}
		}
		if resp.StatusCode != http.StatusOK || host == "" {
			last = fmt.Errorf("%s answered %s: %q, which names none of the pods %v", addr, resp.Status, body, pods)
			continue
		}
		seen[host] = true
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no echo reply from %s: %v", addr, last)
	}
	return seen, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestAppServiceOnRealContainers: an AppService runs a real HTTP server in
// real containers, reachable from the host on its NodePort, and scaling it
// up and down changes the number of real pods answering.
func TestAppServiceOnRealContainers(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, k8s)
	dumpOnFailure(t, ns)

	app := &appsv1alpha1.AppService{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec: appsv1alpha1.AppServiceSpec{
			Size:  ptr.To[int32](2),
			Image: httpEchoImage,
			Ports: []appsv1alpha1.AppServicePort{{Port: 80, TargetPort: httpEchoPort}},
		},
	}
	if err := k8s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}

	nodePortAddr := func() (string, error) {
		svc, err := cs.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].NodePort == 0 {
			return "", fmt.Errorf("service has no node port yet: %+v", svc.Spec.Ports)
		}
		return net.JoinHostPort(cluster.NodeIP, fmt.Sprint(svc.Spec.Ports[0].NodePort)), nil
	}

	for _, size := range []int32{2, 3, 1} {
		if size != 2 {
			patch := client.MergeFrom(app.DeepCopy())
			app.Spec.Size = ptr.To(size)
			if err := k8s.Patch(ctx, app, patch); err != nil {
				t.Fatal(err)
			}
		}
		var pods []string
		testbed.Eventually(t, 3*time.Minute, fmt.Sprintf("%d running pods and status Ready", size), func() error {
			ready, total, err := runningPods(ctx, ns, "echo")
			if err != nil {
				return err
			}
			if len(ready) != int(size) || total != int(size) {
				return fmt.Errorf("%d running and ready of %d pods, want %d", len(ready), total, size)
			}
			var cur appsv1alpha1.AppService
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(app), &cur); err != nil {
				return err
			}
			if cur.Status.ReadyReplicas != size || cur.Status.ObservedGeneration != cur.Generation {
				return fmt.Errorf("status: %d ready, observed generation %d of %d", cur.Status.ReadyReplicas, cur.Status.ObservedGeneration, cur.Generation)
			}
			pods = ready
			return nil
		})
		addr, err := nodePortAddr()
		if err != nil {
			t.Fatal(err)
		}
		// Every running pod answers through the NodePort, and only those.
		testbed.Eventually(t, time.Minute, fmt.Sprintf("replies from all %d pods on %s", size, addr), func() error {
			seen, err := hostnamesBehind(addr, 60, int(size), pods)
			if err != nil {
				return err
			}
			got := keys(seen)
			if strings.Join(got, ",") != strings.Join(pods, ",") {
				return fmt.Errorf("pods that answered %v, running pods %v", got, pods)
			}
			return nil
		})
		t.Logf("size %d: pods %v answered on %s", size, pods, addr)
	}
}

//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

// TestClusterDNSAndVolumes checks what stateful workloads rely on: a pod
// reaches another pod by its stable name under a headless Service
// (<pod>.<service>.<ns>.svc.cluster.local), a ClusterIP Service by name,
// and a PersistentVolumeClaim of the default StorageClass gets a real
// volume on the node whose data outlives the pod that wrote it.
func TestClusterDNSAndVolumes(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, k8s)
	dumpOnFailure(t, ns)

	labels := map[string]string{"app": "web"}
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			Hostname:  "web-0",
			Subdomain: "web",
			Containers: []corev1.Container{{
				Name: "echo", Image: httpEchoImage,
				Ports: []corev1.ContainerPort{{ContainerPort: httpEchoPort}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(httpEchoPort)}},
					PeriodSeconds: 1},
			}},
		},
	}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: httpEchoPort}}},
	}
	clusterIP := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-svc", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(httpEchoPort)}}},
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("64Mi")}},
		},
	}
	for _, o := range []interface{ GetName() string }{web, headless, clusterIP, pvc} {
		var err error
		switch o := o.(type) {
		case *corev1.Pod:
			_, err = cs.CoreV1().Pods(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = cs.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.PersistentVolumeClaim:
			_, err = cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}

	// A headless Service publishes DNS records of ready pods only.
	testbed.Eventually(t, 2*time.Minute, "web-0 to be ready", func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "web-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("web-0 is %s, not ready", p.Status.Phase)
	})

	// The client writes what it resolved and fetched into the volume, then
	// prints it: the log shows both, the volume keeps the file.
	script := fmt.Sprintf(`set -e
wget -q -O /data/by-pod-name http://web-0.web.%[1]s.svc.cluster.local:%[2]d/
wget -q -O /data/by-service http://web-svc.%[1]s.svc.cluster.local/
echo "pod name: $(cat /data/by-pod-name)"
echo "service: $(cat /data/by-service)"
`, ns, httpEchoPort)
	runToCompletion(t, ctx, ns, "client", script, true)

	out, err := operator.Kubectl(cluster, "-n", ns, "logs", "client")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pod name: ", "service: "} {
		line := ""
		for l := range strings.SplitSeq(out, "\n") {
			if strings.HasPrefix(l, want) {
				line = l
			}
		}
		if !strings.Contains(line, "web-0") {
			t.Errorf("client log has no reply from web-0 after %q:\n%s", want, out)
		}
	}

	// The claim is bound to a local volume on the node, which holds the
	// files; a second pod reads them back.
	pv := boundVolume(t, ctx, ns, "data")
	data, err := os.ReadFile(filepath.Join(pv.Spec.Local.Path, "by-pod-name"))
	if err != nil || !strings.Contains(string(data), "web-0") {
		t.Fatalf("file on the node's volume %s: %q, %v", pv.Spec.Local.Path, data, err)
	}
	runToCompletion(t, ctx, ns, "reader", `grep -q web-0 /data/by-pod-name && grep -q web-0 /data/by-service`, true)
}

// runToCompletion runs a busybox pod as root with script (and the claim
// "data" at /data when withVolume) and waits until it succeeds.
func runToCompletion(t *testing.T, ctx context.Context, ns, name, script string, withVolume bool) {
	t.Helper()
	claim := ""
	if withVolume {
		claim = "data"
	}
	pod := busyboxPod(ns, name, script, claim, &corev1.SecurityContext{RunAsUser: ptr.To[int64](0)}, nil)
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if phase, out := waitPodDone(t, ctx, ns, name); phase != corev1.PodSucceeded {
		t.Fatalf("pod %s failed:\n%s", name, out)
	}
}

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/appservice"
	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

const timeout = 60 * time.Second

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	testbed.Eventually(t, timeout, what, cond)
}

// namespace makes a test namespace and, if the test fails, logs what is in
// it and the end of the manager's log.
func namespace(t *testing.T) string {
	ns := testbed.Namespace(t, k8s)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		out, _ := kubectl("get", "appservices,deployments,replicasets,services,pods", "-n", ns, "-o", "wide")
		t.Logf("objects in %s:\n%s", ns, out)
		out, _ = kubectl("get", "events", "-n", ns, "--sort-by=.lastTimestamp")
		t.Logf("events in %s:\n%s", ns, out)
		out, _ = kubectl("get", "appservices", "-n", ns, "-o", "yaml")
		t.Logf("AppServices:\n%s", out)
		t.Logf("manager log: %s", filepath.Join(cluster.LogDir, "manager.log"))
	})
	return ns
}

// readyPods lists the pods of an AppService that are Running and Ready on
// a kwok node.
func readyPods(ns, name string) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(ns),
		client.MatchingLabels{appservice.LabelAppService: name}); err != nil {
		return nil, err
	}
	var ready []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !strings.HasPrefix(p.Spec.NodeName, "kwok-node-") {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = append(ready, p)
			}
		}
	}
	return ready, nil
}

// waitReady waits until the AppService reports size ready replicas, is
// Available, its rollout is complete, and exactly size ready pods exist.
func waitReady(t *testing.T, ns, name string, size int32, image string) {
	t.Helper()
	start := time.Now()
	defer func() {
		t.Logf("%s/%s: %d ready pods of %s after %s", ns, name, size, image, time.Since(start).Round(time.Millisecond))
	}()
	eventually(t, fmt.Sprintf("%s/%s ready with %d pods of %s", ns, name, size, image), func() error {
		as := &appsv1alpha1.AppService{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, as); err != nil {
			return err
		}
		av := meta.FindStatusCondition(as.Status.Conditions, appsv1alpha1.ConditionAvailable)
		pr := meta.FindStatusCondition(as.Status.Conditions, appsv1alpha1.ConditionProgressing)
		if as.Status.ReadyReplicas != size || av == nil || av.Status != metav1.ConditionTrue ||
			pr == nil || pr.Reason != appservice.ReasonRolloutComplete || as.Status.ObservedGeneration != as.Generation {
			return fmt.Errorf("status %+v", as.Status)
		}
		pods, err := readyPods(ns, name)
		if err != nil {
			return err
		}
		if len(pods) != int(size) {
			return fmt.Errorf("%d ready pods, want %d", len(pods), size)
		}
		for _, p := range pods {
			if img := p.Spec.Containers[0].Image; img != image {
				return fmt.Errorf("pod %s runs %s, want %s", p.Name, img, image)
			}
		}
		return nil
	})
}

// TestSeedSampleRunsPods applies config/samples as `make run` does and
// checks the seed's nginx-app ends up with 2 ready pods behind NodePort
// 30002, visible with kubectl's printer columns.
func TestSeedSampleRunsPods(t *testing.T) {
	ns := namespace(t)
	objs, err := testbed.ReadManifestFile(filepath.Join(testbed.RepoRoot(), "config", "samples", "apps_v1alpha1_appservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o.SetNamespace(ns)
	}
	if err := testbed.Apply(context.Background(), k8s, objs...); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "nginx-app", 2, "nginx:1.7.9")

	svc := &corev1.Service{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "nginx-app"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort != 30002 {
		t.Errorf("Service %+v, want NodePort 30002", svc.Spec)
	}

	out, err := kubectl("get", "appservice", "nginx-app", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME SIZE READY AVAILABLE IMAGE AGE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "nginx-app 2 2 True nginx:1.7.9 ") {
		t.Errorf("kubectl get appservice printed:\n%s", out)
	}
}

// TestScaleRollOutAndDelete changes size and image the way a user does and
// follows the real pods, then deletes the AppService and sees everything it
// owned garbage collected.
func TestScaleRollOutAndDelete(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	as := &appsv1alpha1.AppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1alpha1.AppServiceSpec{
			Size:  ptr.To[int32](2),
			Image: "nginx:1.7.9",
			Ports: []appsv1alpha1.AppServicePort{{Port: 80}},
		},
	}
	if err := k8s.Create(ctx, as); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "web", 2, "nginx:1.7.9")

	update := func(mutate func(*appsv1alpha1.AppService)) {
		t.Helper()
		eventually(t, "update AppService", func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(as), as); err != nil {
				return err
			}
			mutate(as)
			return k8s.Update(ctx, as)
		})
	}

	update(func(a *appsv1alpha1.AppService) { a.Spec.Size = ptr.To[int32](5) })
	waitReady(t, ns, "web", 5, "nginx:1.7.9")

	update(func(a *appsv1alpha1.AppService) { a.Spec.Image = "nginx:1.9.1" })
	waitReady(t, ns, "web", 5, "nginx:1.9.1")

	// kubectl scale works through the scale subresource.
	if _, err := kubectl("scale", "appservice/web", "-n", ns, "--replicas=1"); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ns, "web", 1, "nginx:1.9.1")

	update(func(a *appsv1alpha1.AppService) { a.Spec.Size = ptr.To[int32](0) })
	eventually(t, "scaled to zero", func() error {
		pods := &corev1.PodList{}
		if err := k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{appservice.LabelAppService: "web"}); err != nil {
			return err
		}
		if len(pods.Items) != 0 {
			return fmt.Errorf("%d pods left", len(pods.Items))
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(as), as); err != nil {
			return err
		}
		if av := meta.FindStatusCondition(as.Status.Conditions, appsv1alpha1.ConditionAvailable); av == nil || av.Reason != appservice.ReasonScaledToZero {
			return fmt.Errorf("Available = %+v", av)
		}
		return nil
	})

	if err := k8s.Delete(ctx, as); err != nil {
		t.Fatal(err)
	}
	eventually(t, "children garbage collected", func() error {
		for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T still there (err %v)", obj, err)
			}
		}
		return nil
	})
}

// TestManagerDeploymentMeetsRestrictedPSS: config/default's namespace
// enforces the restricted Pod Security Standard, so the manager's pods are
// only created (and become available on the kwok nodes) if its pod spec
// meets it.
func TestManagerDeploymentMeetsRestrictedPSS(t *testing.T) {
	testbed.RequireCluster(t)
	eventually(t, "manager Deployment available", func() error {
		dep := &appsv1.Deployment{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: operator.Namespace, Name: operator.ServiceAccount}, dep); err != nil {
			return err
		}
		if dep.Status.AvailableReplicas != ptr.Deref(dep.Spec.Replicas, 1) {
			out, _ := kubectl("get", "events", "-n", operator.Namespace)
			return fmt.Errorf("%d of %d replicas available; events:\n%s", dep.Status.AvailableReplicas, ptr.Deref(dep.Spec.Replicas, 1), out)
		}
		return nil
	})
}

// TestMetricsNeedAuthorization: the metrics endpoint refuses anonymous
// callers and serves an authorized one.
func TestMetricsNeedAuthorization(t *testing.T) {
	testbed.RequireCluster(t)
	if err := mgr.WaitReady(context.Background(), timeout); err != nil {
		t.Fatal(err)
	}
	get := func(token string) (int, string, error) { return mgr.Metrics(context.Background(), token) }
	code, _, err := get("")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("anonymous GET /metrics = %d, want 401", code)
	}
	code, body, err := get(cluster.Config.BearerToken)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || !strings.Contains(body, `controller_runtime_reconcile_total{controller="appservice"`) {
		t.Errorf("authorized GET /metrics = %d, body without reconcile counter:\n%.500s", code, body)
	}
}

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/test/testbed"
)

// msdPods counts the Running and Ready pods of an instance on kwok nodes,
// and all its pods.
func msdPods(ns, name string) (ready, all int, err error) {
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(ns),
		client.MatchingLabels{microservicedeploy.LabelInstance: name}); err != nil {
		return 0, 0, err
	}
	for _, p := range pods.Items {
		all++
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready, all, nil
}

func waitMSD(t *testing.T, ns, name, phase string, readyPods int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s %s with %d ready pods", name, phase, readyPods), func() error {
		m := &appsv1alpha1.MicroServiceDeploy{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		if m.Status.Phase != phase || m.Status.ObservedGeneration != m.Generation {
			return fmt.Errorf("status %+v", m.Status)
		}
		ready, all, err := msdPods(ns, name)
		if err != nil {
			return err
		}
		if ready != readyPods || all != readyPods {
			return fmt.Errorf("%d ready of %d pods, want %d", ready, all, readyPods)
		}
		return nil
	})
}

func setIdle(t *testing.T, ns, name string, idle bool) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m := &appsv1alpha1.MicroServiceDeploy{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		m.Spec.Idle = idle
		return k8s.Update(context.Background(), m)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMicroServiceLifecycle takes the seed's MicroServiceDeploy through its
// life on real controllers: pods Ready, idle (pods gone, route kept), awake
// again, a second minor version beside it on the same domain, and deletion
// of both, which removes what they owned and nothing else.
func TestMicroServiceLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	unrelated := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unrelated"}}
	if err := k8s.Create(ctx, unrelated); err != nil {
		t.Fatal(err)
	}

	objs, err := testbed.ReadManifestFile(filepath.Join(testbed.RepoRoot(), "config", "samples", "apps_v1alpha1_microservicedeploy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs[0].SetNamespace(ns)
	if err := testbed.Apply(ctx, k8s, objs...); err != nil {
		t.Fatal(err)
	}
	const v0 = "ms-sample-v1s0"
	waitMSD(t, ns, v0, appsv1alpha1.PhaseRunning, 3)

	setIdle(t, ns, v0, true)
	waitMSD(t, ns, v0, appsv1alpha1.PhaseIdle, 0)
	for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}} {
		name := v0
		if _, ok := obj.(*networkingv1.Ingress); ok {
			name = "ms-sample-v1"
		}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			t.Errorf("%T %s gone while idle: %v", obj, name, err)
		}
	}

	setIdle(t, ns, v0, false)
	waitMSD(t, ns, v0, appsv1alpha1.PhaseRunning, 3)

	// A new minor version beside the old one, on the same path.
	v1 := objs[0].DeepCopy()
	v1.SetName("ms-sample-v1s1")
	spec := v1.Object["spec"].(map[string]any)
	spec["fullName"], spec["version"], spec["replicas"], spec["autoscaling"] = "ms-sample-v1s1", "1.1", int64(2), false
	if err := testbed.Apply(ctx, k8s, v1); err != nil {
		t.Fatal(err)
	}
	waitMSD(t, ns, "ms-sample-v1s1", appsv1alpha1.PhaseRunning, 2)
	eventually(t, "shared Service selects the pods of both versions", func() error {
		shared := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ms-sample-v1"}, shared); err != nil {
			return err
		}
		pods := &corev1.PodList{}
		if err := k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(shared.Spec.Selector)); err != nil {
			return err
		}
		if len(pods.Items) != 5 || len(shared.OwnerReferences) != 2 {
			return fmt.Errorf("%d pods behind the shared Service, %d owners", len(pods.Items), len(shared.OwnerReferences))
		}
		return nil
	})

	// The old version goes; the domain keeps being served by the new one.
	if err := k8s.Delete(ctx, &appsv1alpha1.MicroServiceDeploy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v0}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old version's objects are garbage collected", func() error {
		for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}, &corev1.ServiceAccount{},
			&autoscalingv2.HorizontalPodAutoscaler{}, &networkingv1.NetworkPolicy{}} {
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: v0}, obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s still there (%v)", obj, v0, err)
			}
		}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: v0 + "-config"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("ConfigMap still there (%v)", err)
		}
		ing := &networkingv1.Ingress{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ms-sample-v1"}, ing); err != nil {
			return fmt.Errorf("route gone with the old version: %w", err)
		}
		if len(ing.OwnerReferences) != 1 {
			return fmt.Errorf("route owners %+v", ing.OwnerReferences)
		}
		return nil
	})

	// The last instance goes: the shared objects go with it, the unrelated
	// ConfigMap stays.
	if err := k8s.Delete(ctx, &appsv1alpha1.MicroServiceDeploy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ms-sample-v1s1"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "shared objects garbage collected with the last instance", func() error {
		for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}} {
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ms-sample-v1"}, obj); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T still there (%v)", obj, err)
			}
		}
		return nil
	})
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(unrelated), &corev1.ConfigMap{}); err != nil {
		t.Errorf("unrelated ConfigMap: %v", err)
	}
}

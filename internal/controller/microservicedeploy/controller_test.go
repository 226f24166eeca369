package microservicedeploy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/test/managertest"
	"opsmith.io/opsmith/test/testbed"
)

const timeout = 20 * time.Second

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	testbed.Eventually(t, timeout, what, cond)
}

func get[T client.Object](t *testing.T, ns, name string, obj T) T {
	t.Helper()
	if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("getting %T %s/%s: %v", obj, ns, name, err)
	}
	return obj
}

func absent(ns, name string, obj client.Object) error {
	err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if obj.GetDeletionTimestamp() != nil {
		return nil
	}
	return fmt.Errorf("%T %s still exists", obj, name)
}

func update(t *testing.T, ns, name string, mutate func(*appsv1alpha1.MicroServiceDeploy)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m := get(t, ns, name, &appsv1alpha1.MicroServiceDeploy{})
		mutate(m)
		return suite.Client.Update(context.Background(), m)
	})
	if err != nil {
		t.Fatalf("updating %s: %v", name, err)
	}
}

// seedSample reads config/samples' MicroServiceDeploy (the seed's sample)
// into namespace ns, with an image a node could pull.
func seedSample(t *testing.T, ns string) *appsv1alpha1.MicroServiceDeploy {
	t.Helper()
	sample := testbed.Sample(t, "apps_v1alpha1_microservicedeploy.yaml", ns)
	if err := suite.Client.Create(context.Background(), sample); err != nil {
		t.Fatal(err)
	}
	return get(t, ns, sample.GetName(), &appsv1alpha1.MicroServiceDeploy{})
}

func instance(ns, name, path string) *appsv1alpha1.MicroServiceDeploy {
	return &appsv1alpha1.MicroServiceDeploy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1alpha1.MicroServiceDeploySpec{
			MsName: "ms-sample", Version: "1.0", Path: path, Image: "registry.local/ms:1", Replicas: 2,
		},
	}
}

// markReady writes the Deployment status a Deployment controller writes once
// every pod of the current spec is available.
func markReady(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "Deployment status written", func() error {
		dep := &appsv1.Deployment{}
		if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return err
		}
		n := ptr.Deref(dep.Spec.Replicas, 1)
		dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation,
			Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
		return suite.Client.Status().Update(context.Background(), dep)
	})
}

func waitPhase(t *testing.T, ns, name, phase string) *appsv1alpha1.MicroServiceDeploy {
	t.Helper()
	m := &appsv1alpha1.MicroServiceDeploy{}
	eventually(t, name+" in phase "+phase, func() error {
		if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		if m.Status.Phase != phase || m.Status.ObservedGeneration != m.Generation {
			return fmt.Errorf("phase %q, status %+v", m.Status.Phase, m.Status)
		}
		return nil
	})
	return m
}

func ownerUIDs(obj client.Object) []string {
	var uids []string
	for _, r := range obj.GetOwnerReferences() {
		uids = append(uids, string(r.UID))
	}
	return uids
}

// TestSeedSampleCreatesEveryObject: the seed's sample becomes the objects
// the seed lists, each with what the fields ask for.
func TestSeedSampleCreatesEveryObject(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	m := seedSample(t, ns)
	name := m.Name // ms-sample-v1s0

	// The objects are written in parallel chains: wait for the last of
	// each (the autoscaler after the Deployment, the route after the
	// shared Service, the instance's Service).
	eventually(t, "every object created", func() error {
		for _, o := range []struct {
			name string
			obj  client.Object
		}{
			{"ms-sample-v1", &networkingv1.Ingress{}},
			{name, &autoscalingv2.HorizontalPodAutoscaler{}},
			{name, &corev1.Service{}},
		} {
			if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: o.name}, o.obj); err != nil {
				return err
			}
		}
		return nil
	})
	dep := get(t, ns, name, &appsv1.Deployment{})
	if ref := metav1.GetControllerOf(dep); ref == nil || ref.UID != m.UID {
		t.Errorf("Deployment controller reference %+v", ref)
	}
	if ptr.Deref(dep.Spec.Replicas, 0) != 3 {
		t.Errorf("replicas %d, want 3", ptr.Deref(dep.Spec.Replicas, 0))
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v must keep capacity (maxUnavailable 0)", ru)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if pod.ServiceAccountName != name || ptr.Deref(pod.AutomountServiceAccountToken, true) {
		t.Errorf("pods use ServiceAccount %q, automount %v", pod.ServiceAccountName, pod.AutomountServiceAccountToken)
	}
	if c.Image != "just a image url" || c.Resources.Limits.Cpu().String() != "2" || c.Resources.Requests.Memory().String() != "4Gi" {
		t.Errorf("container %+v", c)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef.Name != name+"-config" || c.VolumeMounts[0].MountPath != microservicedeploy.ConfigMountPath {
		t.Errorf("config not exposed as env and files: %+v %+v", c.EnvFrom, c.VolumeMounts)
	}
	if dep.Labels["app.kubernetes.io/version"] != "1.0" || dep.Spec.Template.Annotations[microservicedeploy.AnnotationConfigHash] == "" {
		t.Errorf("labels %v annotations %v", dep.Labels, dep.Spec.Template.Annotations)
	}

	sa := get(t, ns, name, &corev1.ServiceAccount{})
	if ptr.Deref(sa.AutomountServiceAccountToken, true) {
		t.Error("ServiceAccount token is automounted")
	}
	if cm := get(t, ns, name+"-config", &corev1.ConfigMap{}); cm.Data["password"] != "88888888" {
		t.Errorf("ConfigMap data %v", cm.Data)
	}
	if svc := get(t, ns, name, &corev1.Service{}); svc.Spec.Ports[0].Port != 80 || svc.Spec.Selector[microservicedeploy.LabelInstance] != name {
		t.Errorf("Service %+v", svc.Spec)
	}
	hpa := get(t, ns, name, &autoscalingv2.HorizontalPodAutoscaler{})
	if ptr.Deref(hpa.Spec.MinReplicas, 0) != 3 || hpa.Spec.MaxReplicas != 10 ||
		*hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 80 || hpa.Spec.ScaleTargetRef.Name != name {
		t.Errorf("HPA %+v", hpa.Spec)
	}
	np := get(t, ns, name, &networkingv1.NetworkPolicy{})
	if np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != "gateway" {
		t.Errorf("NetworkPolicy %+v", np.Spec)
	}

	shared := get(t, ns, "ms-sample-v1", &corev1.Service{})
	if shared.Spec.Selector[microservicedeploy.LabelMicroService] != "ms-sample" || shared.Spec.Selector[microservicedeploy.LabelPath] != "v1" {
		t.Errorf("shared Service selector %v", shared.Spec.Selector)
	}
	ing := get(t, ns, "ms-sample-v1", &networkingv1.Ingress{})
	if ing.Spec.Rules[0].Host != "v1.ms-sample.ms.test" || ing.Annotations["nginx.ingress.kubernetes.io/auth-url"] != "https://auth.ms.test/verify" {
		t.Errorf("Ingress %+v annotations %v", ing.Spec.Rules, ing.Annotations)
	}
	for _, obj := range []client.Object{shared, ing} {
		if uids := ownerUIDs(obj); len(uids) != 1 || uids[0] != string(m.UID) || metav1.GetControllerOf(obj) != nil {
			t.Errorf("%T owners %v, want only %s and no controller", obj, uids, m.UID)
		}
	}

	// One autoscaled instance: at most 10 pods plus one during a rollout,
	// each 2 CPUs and 4Gi.
	quota := get(t, ns, microservicedeploy.QuotaName, &corev1.ResourceQuota{})
	wantHard := map[corev1.ResourceName]string{
		corev1.ResourcePods: "11", corev1.ResourceLimitsCPU: "22", corev1.ResourceRequestsCPU: "22",
		corev1.ResourceLimitsMemory: "44Gi", corev1.ResourceRequestsMemory: "44Gi",
	}
	for k, v := range wantHard {
		if q := quota.Spec.Hard[k]; q.String() != v {
			t.Errorf("quota %s = %s, want %s", k, q.String(), v)
		}
	}
	if sel := quota.Spec.ScopeSelector.MatchExpressions[0]; sel.ScopeName != corev1.ResourceQuotaScopePriorityClass ||
		sel.Values[0] != microservicedeploy.PriorityClassName || pod.PriorityClassName != microservicedeploy.PriorityClassName {
		t.Errorf("quota scope %+v, pod priority class %q", sel, pod.PriorityClassName)
	}

	markReady(t, ns, name)
	got := waitPhase(t, ns, name, appsv1alpha1.PhaseRunning)
	if got.Status.URL != "http://v1.ms-sample.ms.test/" || got.Status.CreatedAt != "2018-08-29T12:45:18Z" ||
		got.Status.ReadyReplicas != 3 || got.Status.Version != "1.0" {
		t.Errorf("status %+v", got.Status)
	}
}

// TestFieldChanges changes config, autoscaling, needAuth, version and image
// and checks each object follows.
func TestFieldChanges(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	m := seedSample(t, ns)
	name := m.Name
	eventually(t, "HPA and NetworkPolicy created", func() error {
		if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &autoscalingv2.HorizontalPodAutoscaler{}); err != nil {
			return err
		}
		return suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &networkingv1.NetworkPolicy{})
	})
	hash := get(t, ns, name, &appsv1.Deployment{}).Spec.Template.Annotations[microservicedeploy.AnnotationConfigHash]

	update(t, ns, name, func(m *appsv1alpha1.MicroServiceDeploy) {
		m.Spec.Config = "password=99999999\nmode=blue\n"
	})
	eventually(t, "config change rolls the pods", func() error {
		cm := get(t, ns, name+"-config", &corev1.ConfigMap{})
		dep := get(t, ns, name, &appsv1.Deployment{})
		if cm.Data["password"] != "99999999" || cm.Data["mode"] != "blue" {
			return fmt.Errorf("ConfigMap data %v", cm.Data)
		}
		if dep.Spec.Template.Annotations[microservicedeploy.AnnotationConfigHash] == hash {
			return fmt.Errorf("pod template config hash unchanged")
		}
		return nil
	})

	update(t, ns, name, func(m *appsv1alpha1.MicroServiceDeploy) {
		m.Spec.Autoscaling = false
		m.Spec.NeedAuth = false
		m.Spec.Replicas = 4
	})
	eventually(t, "autoscaler and NetworkPolicy removed, replicas rule", func() error {
		if err := absent(ns, name, &autoscalingv2.HorizontalPodAutoscaler{}); err != nil {
			return err
		}
		if err := absent(ns, name, &networkingv1.NetworkPolicy{}); err != nil {
			return err
		}
		if ing := get(t, ns, "ms-sample-v1", &networkingv1.Ingress{}); ing.Annotations["nginx.ingress.kubernetes.io/auth-url"] != "" {
			return fmt.Errorf("Ingress still carries auth settings %v", ing.Annotations)
		}
		if r := ptr.Deref(get(t, ns, name, &appsv1.Deployment{}).Spec.Replicas, 0); r != 4 {
			return fmt.Errorf("replicas %d, want 4", r)
		}
		return nil
	})

	update(t, ns, name, func(m *appsv1alpha1.MicroServiceDeploy) {
		m.Spec.Version = "1.1"
		m.Spec.Image = "registry.local/ms-sample:1.1"
		m.Spec.Autoscaling = true
		m.Spec.NeedAuth = true
	})
	eventually(t, "new version rolled out, autoscaler and policy back", func() error {
		dep := get(t, ns, name, &appsv1.Deployment{})
		if dep.Spec.Template.Spec.Containers[0].Image != "registry.local/ms-sample:1.1" || dep.Spec.Template.Labels["app.kubernetes.io/version"] != "1.1" {
			return fmt.Errorf("pod template %+v", dep.Spec.Template.ObjectMeta)
		}
		if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &autoscalingv2.HorizontalPodAutoscaler{}); err != nil {
			return err
		}
		return suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &networkingv1.NetworkPolicy{})
	})
}

// TestIdleAndWake: idle removes every pod and the autoscaler but keeps the
// Service and route; waking restores the scale the autoscaler had reached.
func TestIdleAndWake(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	m := seedSample(t, ns)
	name := m.Name
	markReady(t, ns, name)
	waitPhase(t, ns, name, appsv1alpha1.PhaseRunning)

	// The autoscaler scales the Deployment to 5 (through the scale
	// subresource, as the HPA controller does); opsmith keeps that.
	scale := &autoscalingv1Scale{ns: ns, name: name}
	scale.set(t, 5)
	markReady(t, ns, name)
	time.Sleep(2 * syncPeriod)
	if r := ptr.Deref(get(t, ns, name, &appsv1.Deployment{}).Spec.Replicas, 0); r != 5 {
		t.Fatalf("replicas %d after the autoscaler chose 5", r)
	}

	update(t, ns, name, func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Idle = true })
	eventually(t, "scaled to zero, autoscaler removed", func() error {
		if r := ptr.Deref(get(t, ns, name, &appsv1.Deployment{}).Spec.Replicas, -1); r != 0 {
			return fmt.Errorf("replicas %d", r)
		}
		return absent(ns, name, &autoscalingv2.HorizontalPodAutoscaler{})
	})
	markReady(t, ns, name) // no pods left
	idle := waitPhase(t, ns, name, appsv1alpha1.PhaseIdle)
	if ptr.Deref(idle.Status.ResumeReplicas, 0) != 5 {
		t.Errorf("resumeReplicas %v, want 5", idle.Status.ResumeReplicas)
	}
	if c := meta.FindStatusCondition(idle.Status.Conditions, appsv1alpha1.ConditionIdle); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Idle condition %+v", c)
	}
	for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}} {
		key := client.ObjectKey{Namespace: ns, Name: name}
		if _, ok := obj.(*networkingv1.Ingress); ok {
			key.Name = "ms-sample-v1"
		}
		if err := suite.Client.Get(ctx, key, obj); err != nil {
			t.Errorf("%T gone while idle: %v", obj, err)
		}
	}

	update(t, ns, name, func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Idle = false })
	eventually(t, "woken to the previous scale", func() error {
		if r := ptr.Deref(get(t, ns, name, &appsv1.Deployment{}).Spec.Replicas, 0); r != 5 {
			return fmt.Errorf("replicas %d, want 5", r)
		}
		return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &autoscalingv2.HorizontalPodAutoscaler{})
	})
	markReady(t, ns, name)
	awake := waitPhase(t, ns, name, appsv1alpha1.PhaseRunning)
	if awake.Status.ResumeReplicas != nil {
		t.Errorf("resumeReplicas %v kept after waking", *awake.Status.ResumeReplicas)
	}
}

// autoscalingv1Scale writes a Deployment's scale subresource, as the HPA
// controller does.
type autoscalingv1Scale struct{ ns, name string }

func (s *autoscalingv1Scale) set(t *testing.T, replicas int32) {
	t.Helper()
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: s.name}}
	patch := client.RawPatch("application/merge-patch+json", []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)))
	if err := suite.Client.SubResource("scale").Patch(context.Background(), dep, patch, client.FieldOwner("horizontal-pod-autoscaler")); err != nil {
		t.Fatal(err)
	}
}

// TestInstancesShareAPath: two instances of one path share the Service and
// route; they release them when they leave the path.
func TestInstancesShareAPath(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	v0, v1 := instance(ns, "ms-sample-v1s0", "v1"), instance(ns, "ms-sample-v1s1", "v1")
	v1.Spec.Version = "1.1"
	for _, m := range []*appsv1alpha1.MicroServiceDeploy{v0, v1} {
		if err := suite.Client.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "shared objects owned by both instances", func() error {
		for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}} {
			if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ms-sample-v1"}, obj); err != nil {
				return err
			}
			if uids := ownerUIDs(obj); len(uids) != 2 {
				return fmt.Errorf("%T owners %v", obj, uids)
			}
		}
		return nil
	})

	// The new minor version takes over: the old one is deleted. The
	// route stays, now owned by the remaining instance only.
	if err := suite.Client.Delete(ctx, v0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "shared objects owned by the remaining instance", func() error {
		ing := get(t, ns, "ms-sample-v1", &networkingv1.Ingress{})
		if uids := ownerUIDs(ing); len(uids) != 1 || uids[0] != string(v1.UID) {
			return fmt.Errorf("owners %v, want %s", uids, v1.UID)
		}
		return nil
	})

	// Moving the last instance to path v2 publishes v2 and removes v1.
	update(t, ns, v1.Name, func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Path = "v2" })
	eventually(t, "v2 published, v1 released", func() error {
		if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ms-sample-v2"}, &networkingv1.Ingress{}); err != nil {
			return err
		}
		if err := absent(ns, "ms-sample-v1", &networkingv1.Ingress{}); err != nil {
			return err
		}
		return absent(ns, "ms-sample-v1", &corev1.Service{})
	})
	// The instance is still rolling out (nothing runs pods here), so its
	// status may lag by the status progress delay.
	eventually(t, "status names the v2 URL", func() error {
		if got := get(t, ns, v1.Name, &appsv1alpha1.MicroServiceDeploy{}); got.Status.URL != "http://v2.ms-sample.ms.test/" {
			return fmt.Errorf("url %q", got.Status.URL)
		}
		return nil
	})

	// Renaming the microservice moves it to another domain name too.
	update(t, ns, v1.Name, func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.MsName = "ms-renamed" })
	eventually(t, "new name published, old name released", func() error {
		if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ms-renamed-v2"}, &networkingv1.Ingress{}); err != nil {
			return err
		}
		if err := absent(ns, "ms-sample-v2", &networkingv1.Ingress{}); err != nil {
			return err
		}
		return absent(ns, "ms-sample-v2", &corev1.Service{})
	})
}

// TestDriftIsRepaired: objects deleted or edited by hand are restored.
func TestDriftIsRepaired(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	m := seedSample(t, ns)
	name := m.Name
	eventually(t, "every object created", func() error {
		return suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ms-sample-v1"}, &networkingv1.Ingress{})
	})
	cm := get(t, ns, name+"-config", &corev1.ConfigMap{})
	if err := suite.Client.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep := get(t, ns, name, &appsv1.Deployment{})
		dep.Spec.Template.Spec.Containers[0].Image = "someone/else:latest"
		dep.Spec.Strategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromInt32(2))
		return suite.Client.Update(ctx, dep, client.FieldOwner("kubectl-edit"))
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ConfigMap recreated and Deployment restored", func() error {
		got := &corev1.ConfigMap{}
		if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-config"}, got); err != nil {
			return err
		}
		if got.UID == cm.UID || got.Data["password"] != "88888888" {
			return fmt.Errorf("ConfigMap %s data %v", got.UID, got.Data)
		}
		dep := get(t, ns, name, &appsv1.Deployment{})
		if img := dep.Spec.Template.Spec.Containers[0].Image; img != "just a image url" ||
			dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
			return fmt.Errorf("image %q maxUnavailable %v", img, dep.Spec.Strategy.RollingUpdate.MaxUnavailable)
		}
		return nil
	})
}

// TestIdleReconcileWritesNothing: a converged instance with all six kinds of
// children (and the shared Service and route) costs no write.
func TestIdleReconcileWritesNothing(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	m := seedSample(t, ns)
	name := m.Name
	markReady(t, ns, name)
	waitPhase(t, ns, name, appsv1alpha1.PhaseRunning)

	objects := []struct {
		name string
		obj  client.Object
	}{
		{name, &appsv1alpha1.MicroServiceDeploy{}}, {name, &appsv1.Deployment{}}, {name, &corev1.Service{}},
		{name, &corev1.ServiceAccount{}}, {name + "-config", &corev1.ConfigMap{}}, {name, &autoscalingv2.HorizontalPodAutoscaler{}},
		{name, &networkingv1.NetworkPolicy{}}, {"ms-sample-v1", &corev1.Service{}}, {"ms-sample-v1", &networkingv1.Ingress{}},
		{microservicedeploy.QuotaName, &corev1.ResourceQuota{}},
	}
	managertest.ExpectIdle(t, suite.Cluster.Config, suite.Options, ns, microservicedeploy.Name, 30*time.Second, 10, func() string {
		out := ""
		for _, o := range objects {
			out += fmt.Sprintf("%T/%s=%s ", o.obj, o.name, get(t, ns, o.name, o.obj).GetResourceVersion())
		}
		return out
	})
}

// TestQuotaSumsEveryInstance: the namespace quota is the sum of the largest
// footprints; a resource not every instance declares is not limited; an
// idle instance counts for nothing.
func TestQuotaSumsEveryInstance(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	a := instance(ns, "svc-a-v1s0", "v1")
	a.Spec.MsName = "svc-a"
	a.Spec.Replicas = 3 // 4 pods with the rollout's extra one
	a.Spec.ResourceRequirements.Limits.CPU = ptr.To(resource.MustParse("500m"))
	a.Spec.ResourceRequirements.Limits.Memory = ptr.To(resource.MustParse("1Gi"))
	b := instance(ns, "svc-b-v1s0", "v1")
	b.Spec.MsName = "svc-b"
	b.Spec.Replicas = 1
	b.Spec.Autoscaling = true
	b.Spec.AutoscalingPolicy = &appsv1alpha1.AutoscalingPolicy{MaxReplicas: ptr.To[int32](5)} // 6 pods
	b.Spec.ResourceRequirements.Limits.CPU = ptr.To(resource.MustParse("1"))
	for _, m := range []*appsv1alpha1.MicroServiceDeploy{a, b} {
		if err := suite.Client.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	hardIs := func(want map[corev1.ResourceName]string) func() error {
		return func() error {
			q := &corev1.ResourceQuota{}
			if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: microservicedeploy.QuotaName}, q); err != nil {
				return err
			}
			if len(q.Spec.Hard) != len(want) {
				return fmt.Errorf("hard %v, want %v", q.Spec.Hard, want)
			}
			for k, v := range want {
				if got := q.Spec.Hard[k]; got.String() != v {
					return fmt.Errorf("hard %v, want %v", q.Spec.Hard, want)
				}
			}
			if len(q.OwnerReferences) != 2 {
				return fmt.Errorf("owners %v", q.OwnerReferences)
			}
			return nil
		}
	}
	// 4 x 500m + 6 x 1 CPU; memory is declared by a only, so not limited.
	eventually(t, "quota sums both", hardIs(map[corev1.ResourceName]string{
		corev1.ResourcePods: "10", corev1.ResourceLimitsCPU: "8",
	}))
	update(t, ns, b.Name, func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Idle = true })
	eventually(t, "idle instance counts for nothing", hardIs(map[corev1.ResourceName]string{
		corev1.ResourcePods: "4", corev1.ResourceLimitsCPU: "2", corev1.ResourceLimitsMemory: "4Gi",
	}))
}

// TestRefusesToTakeOverAForeignRoute: an Ingress of the shared name that
// opsmith did not make is left alone and reported.
func TestRefusesToTakeOverAForeignRoute(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	foreign := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ms-sample-v1"},
		Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
			Service: &networkingv1.IngressServiceBackend{Name: "theirs", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}
	if err := suite.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	m := instance(ns, "ms-sample-v1s0", "v1")
	m.Spec.ResourceRequirements.Limits.CPU = ptr.To(resource.MustParse("1"))
	if err := suite.Client.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	got := waitPhase(t, ns, m.Name, appsv1alpha1.PhaseFailed)
	if c := meta.FindStatusCondition(got.Status.Conditions, appsv1alpha1.ConditionProgressing); c == nil || c.Reason != "NameConflict" {
		t.Errorf("Progressing %+v", c)
	}
	if ing := get(t, ns, "ms-sample-v1", &networkingv1.Ingress{}); len(ing.OwnerReferences) != 0 || ing.Spec.DefaultBackend.Service.Name != "theirs" {
		t.Errorf("foreign Ingress modified: %+v", ing)
	}
}

// TestQuotaCoversABurst: instances created all at once share quota writes
// (each writes the quota for every instance it sees, and an instance the
// quota already covers writes none), and in the end the quota covers and
// sums every one of them, owned by a few.
func TestQuotaCoversABurst(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	const n = 25
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := instance(ns, fmt.Sprintf("burst-%02d-v1s0", i), "v1")
			m.Spec.MsName = fmt.Sprintf("burst-%02d", i)
			errs <- suite.Client.Create(ctx, m)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every instance has its Deployment and the quota covers all", func() error {
		deps := &appsv1.DeploymentList{}
		if err := suite.Client.List(ctx, deps, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(deps.Items) != n {
			return fmt.Errorf("%d Deployments", len(deps.Items))
		}
		q := &corev1.ResourceQuota{}
		if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: microservicedeploy.QuotaName}, q); err != nil {
			return err
		}
		if covers := strings.Split(q.Annotations[microservicedeploy.QuotaCoversAnnotation], ","); len(covers) != n {
			return fmt.Errorf("quota covers %d instances: %v", len(covers), covers)
		}
		// A few owners, not one per instance: the object stays small.
		if len(q.OwnerReferences) != 3 {
			return fmt.Errorf("quota has %d owners, want 3", len(q.OwnerReferences))
		}
		if pods := q.Spec.Hard[corev1.ResourcePods]; pods.Value() != n*3 { // 2 replicas + 1 surge each
			return fmt.Errorf("quota pods %s, want %d", pods.String(), n*3)
		}
		return nil
	})
	list := &appsv1alpha1.MicroServiceDeployList{}
	if err := suite.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Items {
		if m.Status.Phase == appsv1alpha1.PhaseFailed {
			t.Errorf("%s failed: %+v", m.Name, m.Status.Conditions)
		}
	}
}

// TestQuotaComesBackWhenItsOwnersGo: the quota is owned by the first three
// instances only; when they are deleted the garbage collector deletes it
// (done by hand here: this suite runs no controller manager), and the
// instance left gets a quota again, sized and owned for it alone.
func TestQuotaComesBackWhenItsOwnersGo(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	var all []*appsv1alpha1.MicroServiceDeploy
	for i := range 4 {
		m := instance(ns, fmt.Sprintf("owner-%d-v1s0", i), "v1")
		m.Spec.MsName = fmt.Sprintf("owner-%d", i)
		if err := suite.Client.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	quota := func() (*corev1.ResourceQuota, error) {
		q := &corev1.ResourceQuota{}
		return q, suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: microservicedeploy.QuotaName}, q)
	}
	eventually(t, "quota covers the four, owned by three", func() error {
		q, err := quota()
		if err != nil {
			return err
		}
		if covers := strings.Split(q.Annotations[microservicedeploy.QuotaCoversAnnotation], ","); len(covers) != 4 || len(q.OwnerReferences) != 3 {
			return fmt.Errorf("covers %v, owners %v", covers, q.OwnerReferences)
		}
		return nil
	})
	gone, err := quota()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all[:3] {
		if err := suite.Client.Delete(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := suite.Client.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new quota for the instance left", func() error {
		q, err := quota()
		if err != nil {
			return err
		}
		if q.UID == gone.UID {
			return fmt.Errorf("old quota still there")
		}
		if q.Annotations[microservicedeploy.QuotaCoversAnnotation] != microservicedeploy.QuotaKey(get(t, ns, all[3].Name, &appsv1alpha1.MicroServiceDeploy{})) ||
			len(q.OwnerReferences) != 1 || q.OwnerReferences[0].Name != all[3].Name {
			return fmt.Errorf("covers %q, owners %v", q.Annotations[microservicedeploy.QuotaCoversAnnotation], q.OwnerReferences)
		}
		if pods := q.Spec.Hard[corev1.ResourcePods]; pods.Value() != 3 { // 2 replicas + 1 surge
			return fmt.Errorf("pods %s, want 3", pods.String())
		}
		return nil
	})
}

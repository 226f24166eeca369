package appservice_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/controller/appservice"
	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/managertest"
	"opsmith.io/opsmith/test/testbed"
)

const timeout = 20 * time.Second

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	testbed.Eventually(t, timeout, what, cond)
}

func newAppService(ns, name string) *appsv1alpha1.AppService {
	return &appsv1alpha1.AppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1alpha1.AppServiceSpec{
			Size:  ptr.To[int32](2),
			Image: "nginx:1.7.9",
			Ports: []appsv1alpha1.AppServicePort{{Port: 80, TargetPort: 8080}},
		},
	}
}

func get[T client.Object](t *testing.T, ns, name string, obj T) T {
	t.Helper()
	if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("getting %T %s/%s: %v", obj, ns, name, err)
	}
	return obj
}

// createAndWait creates the AppService and waits for its Deployment and
// Service.
func createAndWait(t *testing.T, as *appsv1alpha1.AppService) (*appsv1.Deployment, *corev1.Service) {
	t.Helper()
	ctx := context.Background()
	if err := suite.Client.Create(ctx, as); err != nil {
		t.Fatalf("creating AppService: %v", err)
	}
	dep, svc := &appsv1.Deployment{}, &corev1.Service{}
	key := client.ObjectKeyFromObject(as)
	eventually(t, "Deployment and Service created", func() error {
		if err := suite.Client.Get(ctx, key, dep); err != nil {
			return err
		}
		return suite.Client.Get(ctx, key, svc)
	})
	return dep, svc
}

// markDeploymentReady writes the Deployment status a Deployment controller
// would write once every pod of the current spec is available.
func markDeploymentReady(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "Deployment status written", func() error {
		dep := &appsv1.Deployment{}
		if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return err
		}
		n := ptr.Deref(dep.Spec.Replicas, 1)
		dep.Status = appsv1.DeploymentStatus{
			ObservedGeneration: dep.Generation,
			Replicas:           n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		}
		return suite.Client.Status().Update(context.Background(), dep)
	})
}

// update reads obj, applies mutate and writes it back, retrying when
// something else (the controller writing status) changed it in between.
func update[T client.Object](t *testing.T, obj T, mutate func(T), opts ...client.UpdateOption) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := suite.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return suite.Client.Update(context.Background(), obj, opts...)
	})
	if err != nil {
		t.Fatalf("updating %T %s: %v", obj, obj.GetName(), err)
	}
}

func condition(as *appsv1alpha1.AppService, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(as.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

func TestCreatesDeploymentAndService(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	as := newAppService(ns, "web")
	as.Spec.Ports = []appsv1alpha1.AppServicePort{
		{Port: 80, TargetPort: 8080, NodePort: 30180},
		{Name: "metrics", Port: 9090},
	}
	dep, svc := createAndWait(t, as)
	releaseNodePorts(t, as)

	if got := ptr.Deref(dep.Spec.Replicas, -1); got != 2 {
		t.Errorf("Deployment replicas = %d, want 2", got)
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	if ctr.Image != "nginx:1.7.9" {
		t.Errorf("image = %q", ctr.Image)
	}
	if len(ctr.Ports) != 2 || ctr.Ports[0].ContainerPort != 8080 || ctr.Ports[1].ContainerPort != 9090 {
		t.Errorf("container ports = %+v, want 8080 and 9090", ctr.Ports)
	}
	if ctr.ReadinessProbe == nil || ctr.ReadinessProbe.TCPSocket.Port.IntValue() != 8080 {
		t.Errorf("readiness probe = %+v, want TCP 8080", ctr.ReadinessProbe)
	}
	for _, obj := range []client.Object{dep, svc} {
		ref := metav1.GetControllerOf(obj)
		if ref == nil || ref.UID != as.UID || ref.Kind != "AppService" {
			t.Errorf("%T controller reference = %+v, want AppService %s", obj, ref, as.UID)
		}
		if obj.GetLabels()[appservice.LabelManagedBy] != "opsmith" {
			t.Errorf("%T labels = %v", obj, obj.GetLabels())
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("Service type = %s", svc.Spec.Type)
	}
	want := map[string][3]int32{"tcp-80": {80, 8080, 30180}, "metrics": {9090, 9090, 0}}
	for _, p := range svc.Spec.Ports {
		w, ok := want[p.Name]
		if !ok || p.Port != w[0] || p.TargetPort.IntVal != w[1] || (w[2] != 0 && p.NodePort != w[2]) || p.NodePort == 0 {
			t.Errorf("Service port %+v not as wanted %v", p, want)
		}
	}

	eventually(t, "status reports the rollout", func() error {
		got := get(t, ns, "web", &appsv1alpha1.AppService{})
		av, pr := condition(got, appsv1alpha1.ConditionAvailable), condition(got, appsv1alpha1.ConditionProgressing)
		if got.Status.ObservedGeneration != got.Generation || av.Status != metav1.ConditionFalse ||
			pr.Status != metav1.ConditionTrue || av.Message != "0 of 2 pods are ready" {
			return fmt.Errorf("status = %+v", got.Status)
		}
		return nil
	})
	eventually(t, "one Created event names both children", func() error {
		evs := &eventsv1.EventList{}
		if err := suite.Client.List(context.Background(), evs, client.InNamespace(ns)); err != nil {
			return err
		}
		var created []string
		for _, e := range evs.Items {
			if e.Regarding.Name == "web" && e.Reason == "Created" {
				created = append(created, e.Note)
			}
		}
		if want := "Deployment web created; Service web created"; len(created) != 1 || created[0] != want {
			return fmt.Errorf("Created events %q, want one: %q", created, want)
		}
		return nil
	})
}

// releaseNodePorts deletes, when the test ends, the AppService and then its
// Service: without a controller manager nothing garbage collects the
// Service, and its node ports must be free for later runs of the test (go
// test -count).
func releaseNodePorts(t *testing.T, as *appsv1alpha1.AppService) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		_ = suite.Client.Delete(ctx, as)
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: as.Namespace, Name: as.Name}}
		eventually(t, "AppService gone and its Service deleted", func() error {
			if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(as), &appsv1alpha1.AppService{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("AppService still there: %v", err)
			}
			if err := suite.Client.Delete(ctx, svc); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			time.Sleep(time.Second) // a reconcile in flight could recreate it
			if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(svc), &corev1.Service{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("Service still there: %v", err)
			}
			return nil
		})
	})
}

// warningEvent waits for a Warning event on the AppService name in ns with
// reason and a note containing note.
func warningEvent(t *testing.T, ns, name, reason, note string) {
	t.Helper()
	eventually(t, "Warning event "+reason, func() error {
		evs := &eventsv1.EventList{}
		if err := suite.Client.List(context.Background(), evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == name && e.Type == corev1.EventTypeWarning && e.Reason == reason && strings.Contains(e.Note, note) {
				return nil
			}
		}
		return fmt.Errorf("no Warning %s event on %s with %q among %d events", reason, name, note, len(evs.Items))
	})
}

func TestStatusFollowsDeployment(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	createAndWait(t, newAppService(ns, "web"))
	markDeploymentReady(t, ns, "web")
	eventually(t, "AppService Available", func() error {
		got := get(t, ns, "web", &appsv1alpha1.AppService{})
		av, pr := condition(got, appsv1alpha1.ConditionAvailable), condition(got, appsv1alpha1.ConditionProgressing)
		if got.Status.ReadyReplicas != 2 || got.Status.Replicas != 2 ||
			av.Status != metav1.ConditionTrue || pr.Status != metav1.ConditionFalse || pr.Reason != appservice.ReasonRolloutComplete {
			return fmt.Errorf("status = %+v", got.Status)
		}
		return nil
	})

	// A Deployment that stopped making progress is reported, with the
	// Deployment controller's message.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		dep := get(t, ns, "web", &appsv1.Deployment{})
		dep.Status.ReadyReplicas, dep.Status.AvailableReplicas = 1, 1
		dep.Status.Conditions = []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "web-1" has timed out progressing.`,
		}}
		return suite.Client.Status().Update(context.Background(), dep)
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "stuck rollout reported", func() error {
		got := get(t, ns, "web", &appsv1alpha1.AppService{})
		pr := condition(got, appsv1alpha1.ConditionProgressing)
		av := condition(got, appsv1alpha1.ConditionAvailable)
		if pr.Reason != appservice.ReasonRolloutStuck || pr.Message != `ReplicaSet "web-1" has timed out progressing.` ||
			av.Status != metav1.ConditionFalse || av.Message != "1 of 2 pods are ready" {
			return fmt.Errorf("conditions = %+v", got.Status.Conditions)
		}
		return nil
	})
}

func TestDriftIsRepaired(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	_, svc := createAndWait(t, newAppService(ns, "web"))

	// A deleted Service comes back.
	if err := suite.Client.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Service recreated", func() error {
		got := &corev1.Service{}
		if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(svc), got); err != nil {
			return err
		}
		if got.UID == svc.UID {
			return fmt.Errorf("still the old Service")
		}
		return nil
	})

	// Replicas and image changed by hand are restored.
	update(t, get(t, ns, "web", &appsv1.Deployment{}), func(dep *appsv1.Deployment) {
		dep.Spec.Replicas = ptr.To[int32](7)
		dep.Spec.Template.Spec.Containers[0].Image = "nginx:hacked"
	}, client.FieldOwner("someone-by-hand"))
	eventually(t, "Deployment restored", func() error {
		got := get(t, ns, "web", &appsv1.Deployment{})
		if r := ptr.Deref(got.Spec.Replicas, 0); r != 2 || got.Spec.Template.Spec.Containers[0].Image != "nginx:1.7.9" {
			return fmt.Errorf("replicas %d image %s", r, got.Spec.Template.Spec.Containers[0].Image)
		}
		return nil
	})

	// A Service port removed by hand comes back.
	update(t, get(t, ns, "web", &corev1.Service{}), func(svc *corev1.Service) {
		svc.Spec.Ports[0].TargetPort.IntVal = 1234
	}, client.FieldOwner("someone-by-hand"))
	eventually(t, "Service port restored", func() error {
		got := get(t, ns, "web", &corev1.Service{})
		if got.Spec.Ports[0].TargetPort.IntVal != 8080 {
			return fmt.Errorf("targetPort %v", got.Spec.Ports[0].TargetPort)
		}
		return nil
	})
}

func TestSpecChangesRollOut(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	as := newAppService(ns, "web")
	as.Spec.Envs = []corev1.EnvVar{
		{Name: "MODE", Value: "blue"},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
	as.Spec.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
	}
	dep, _ := createAndWait(t, as)
	ctr := dep.Spec.Template.Spec.Containers[0]
	if len(ctr.Env) != 2 || ctr.Env[1].ValueFrom == nil || ctr.Env[1].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("env = %+v", ctr.Env)
	}
	if ctr.Resources.Requests.Cpu().String() != "100m" || ctr.Resources.Limits.Memory().String() != "128Mi" {
		t.Errorf("resources = %+v", ctr.Resources)
	}

	// New image, new size, one env var fewer, no resources: all follow.
	update(t, as, func(as *appsv1alpha1.AppService) {
		as.Spec.Image = "nginx:1.8.0"
		as.Spec.Size = ptr.To[int32](4)
		as.Spec.Envs = as.Spec.Envs[:1]
		as.Spec.Resources = corev1.ResourceRequirements{}
	})
	eventually(t, "Deployment follows the spec", func() error {
		got := get(t, ns, "web", &appsv1.Deployment{})
		c := got.Spec.Template.Spec.Containers[0]
		if ptr.Deref(got.Spec.Replicas, 0) != 4 || c.Image != "nginx:1.8.0" || len(c.Env) != 1 ||
			len(c.Resources.Requests)+len(c.Resources.Limits) != 0 {
			return fmt.Errorf("replicas %d container %+v", ptr.Deref(got.Spec.Replicas, 0), c)
		}
		return nil
	})

	// Ports removed from the spec leave the Service.
	update(t, as, func(as *appsv1alpha1.AppService) {
		as.Spec.Ports = []appsv1alpha1.AppServicePort{{Port: 443, TargetPort: 8443}}
	})
	eventually(t, "Service follows the ports", func() error {
		got := get(t, ns, "web", &corev1.Service{})
		if len(got.Spec.Ports) != 1 || got.Spec.Ports[0].Port != 443 {
			return fmt.Errorf("ports %+v", got.Spec.Ports)
		}
		return nil
	})
}

// TestIdleReconcileWritesNothing proves that a converged AppService costs no
// write: for 30 s a manager keeps reconciling it (every syncPeriod) and
// neither the AppService nor its children change, and the manager sends no
// write request at all. A second manager scoped to the test's namespace
// counts the writes, so that other tests' objects do not count.
func TestIdleReconcileWritesNothing(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	createAndWait(t, newAppService(ns, "idle"))
	markDeploymentReady(t, ns, "idle")
	eventually(t, "AppService Available", func() error {
		got := get(t, ns, "idle", &appsv1alpha1.AppService{})
		if condition(got, appsv1alpha1.ConditionAvailable).Status != metav1.ConditionTrue {
			return fmt.Errorf("status = %+v", got.Status)
		}
		return nil
	})

	// Two managers reconcile it every syncPeriod: the shared one and the
	// namespace-scoped one that counts writes.
	managertest.ExpectIdle(t, suite.Cluster.Config, suite.Options, ns, appservice.Name, 30*time.Second, 10, func() string {
		return fmt.Sprint(
			get(t, ns, "idle", &appsv1alpha1.AppService{}).ResourceVersion,
			get(t, ns, "idle", &appsv1.Deployment{}).ResourceVersion,
			get(t, ns, "idle", &corev1.Service{}).ResourceVersion)
	})
}

func TestRefusesToTakeOverForeignObjects(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	foreign := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "theirs"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "theirs"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "theirs:1"}}},
			},
		},
	}
	if err := suite.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	as := newAppService(ns, "web")
	if err := suite.Client.Create(ctx, as); err != nil {
		t.Fatal(err)
	}
	eventually(t, "name conflict reported", func() error {
		got := get(t, ns, "web", &appsv1alpha1.AppService{})
		pr := condition(got, appsv1alpha1.ConditionProgressing)
		if pr.Reason != appservice.ReasonNameConflict {
			return fmt.Errorf("Progressing = %+v", pr)
		}
		return nil
	})
	got := get(t, ns, "web", &appsv1.Deployment{})
	if got.Spec.Template.Spec.Containers[0].Image != "theirs:1" || len(got.OwnerReferences) != 0 {
		t.Errorf("foreign Deployment was modified: %+v", got)
	}
	if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Errorf("Service created although the Deployment is blocked: %v", err)
	}
}

// TestRefusesToTakeOverForeignService: a Service of the AppService's name
// that opsmith did not make (TestRefusesToTakeOverForeignObjects has the
// Deployment's case) is left as it is, and the status names it.
func TestRefusesToTakeOverForeignService(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	foreign := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: map[string]string{"app": "theirs"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "theirs"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		},
	}
	if err := suite.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	as := newAppService(ns, "web")
	if err := suite.Client.Create(ctx, as); err != nil {
		t.Fatal(err)
	}
	const want = "a Service named web already exists and is not managed by this AppService; rename or delete it"
	eventually(t, "name conflict reported", func() error {
		got := get(t, ns, "web", &appsv1alpha1.AppService{})
		pr := condition(got, appsv1alpha1.ConditionProgressing)
		if pr.Status != metav1.ConditionFalse || pr.Reason != appservice.ReasonNameConflict || pr.Message != want ||
			got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("Progressing = %+v", pr)
		}
		return nil
	})
	got := get(t, ns, "web", &corev1.Service{})
	if got.ResourceVersion != foreign.ResourceVersion || len(got.OwnerReferences) != 0 || got.Labels[appservice.LabelManagedBy] != "" ||
		got.Spec.Selector["app"] != "theirs" || len(got.Spec.Ports) != 1 || got.Spec.Ports[0].Port != 8080 {
		t.Errorf("foreign Service was modified: %+v", got)
	}
	// The Deployment, applied before the Service, is the AppService's.
	if ref := metav1.GetControllerOf(get(t, ns, "web", &appsv1.Deployment{})); ref == nil || ref.UID != as.UID {
		t.Errorf("Deployment controller %+v, want the AppService", ref)
	}
}

// TestReportsRejectedService: a Service the API server refuses (its node
// port is held by another Service; admission cannot know) shows in the
// status with the API server's message and as a Warning event, and is
// retried until the port is free.
func TestReportsRejectedService(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	const nodePort = 30250
	holder := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "holder"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app": "holder"},
			Ports:    []corev1.ServicePort{{Port: 80, NodePort: nodePort, Protocol: corev1.ProtocolTCP}},
		},
	}
	if err := suite.Client.Create(ctx, holder); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Client.Delete(context.Background(), holder) })
	as := newAppService(ns, "web")
	as.Spec.Ports = []appsv1alpha1.AppServicePort{{Port: 80, TargetPort: 8080, NodePort: nodePort}}
	if err := suite.Client.Create(ctx, as); err != nil {
		t.Fatal(err)
	}
	releaseNodePorts(t, as)

	const want = "Service web rejected by the API server: "
	eventually(t, "rejection reported", func() error {
		got := get(t, ns, "web", &appsv1alpha1.AppService{})
		pr := condition(got, appsv1alpha1.ConditionProgressing)
		if pr.Status != metav1.ConditionFalse || pr.Reason != appservice.ReasonApplyFailed ||
			!strings.HasPrefix(pr.Message, want) || !strings.Contains(pr.Message, "provided port is already allocated") ||
			got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("Progressing = %+v", pr)
		}
		return nil
	})
	warningEvent(t, ns, "web", appservice.ReasonApplyFailed, "provided port is already allocated")
	if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Errorf("Service web exists although the API server refused it: %v", err)
	}

	// Once the port is free, the retry creates the Service.
	if err := suite.Client.Delete(ctx, holder); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Service created and status no longer blocked", func() error {
		svc := &corev1.Service{}
		if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc); err != nil {
			return err
		}
		if svc.Spec.Ports[0].NodePort != nodePort {
			return fmt.Errorf("node port %d", svc.Spec.Ports[0].NodePort)
		}
		got := get(t, ns, "web", &appsv1alpha1.AppService{})
		if pr := condition(got, appsv1alpha1.ConditionProgressing); pr.Reason == appservice.ReasonApplyFailed {
			return fmt.Errorf("Progressing = %+v", pr)
		}
		return nil
	})
}

// statusWrites counts the writes of an AppService's status from now on,
// through a watch: every change of the object after its creation is a
// status write (nothing else writes it in these tests).
func statusWrites(t *testing.T, ns, name string) func() int {
	t.Helper()
	wc, err := client.NewWithWatch(suite.Cluster.Config, client.Options{Scheme: suite.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &appsv1alpha1.AppServiceList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if obj, ok := ev.Object.(*appsv1alpha1.AppService); ok && obj.Name == name && ev.Type == watch.Modified {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// A new AppService whose pods are up before the status progress delay
// (5 s by default) has passed gets one status write, its outcome, instead
// of "rolling out" first; one that stays in progress gets that status
// once the delay has passed. The test's own manager reconciles them, its
// pacer reading a clock that moves only when the test moves it: how long
// the machine takes to set the test up does not matter.
func TestStatusSettlingWithinDelayIsWrittenOnce(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	delay := manager.DefaultOptions().StatusProgressDelay
	clock := newFakeClock()
	suite.PauseShared(t)
	startPacedManager(t, ns, &apply.Pacer{Delay: delay, Now: clock.Now})

	writes := statusWrites(t, ns, "quick")
	createAndWait(t, newAppService(ns, "quick"))
	markDeploymentReady(t, ns, "quick")
	eventually(t, "AppService Available", func() error {
		got := get(t, ns, "quick", &appsv1alpha1.AppService{})
		if av := condition(got, appsv1alpha1.ConditionAvailable); av.Status != metav1.ConditionTrue {
			return fmt.Errorf("status = %+v", got.Status)
		}
		return nil
	})
	if clock.Calls() == 0 {
		t.Fatal("the pacer was never asked to hold the progress status: nothing to check")
	}
	// Once the delay has passed, reconciles bring no late write of the
	// progress that was held.
	clock.Advance(delay + time.Second)
	waitForReconciles(t, 2)
	if n := writes(); n != 1 {
		t.Errorf("%d status writes, want 1 (the outcome only)", n)
	}

	// One that stays in progress is held for the whole delay...
	slowWrites := statusWrites(t, ns, "slow")
	before := clock.Calls()
	createAndWait(t, newAppService(ns, "slow"))
	waitForPacer(t, clock, before, 1) // its progress is held from now on
	waitForPacer(t, clock, clock.Advance(delay-time.Second), 2)
	if got := get(t, ns, "slow", &appsv1alpha1.AppService{}); len(got.Status.Conditions) != 0 || slowWrites() != 0 {
		t.Fatalf("status written before the delay has passed: %+v", got.Status)
	}
	// ...then reports it.
	clock.Advance(time.Second)
	eventually(t, "status reports the rollout", func() error {
		got := get(t, ns, "slow", &appsv1alpha1.AppService{})
		if pr := condition(got, appsv1alpha1.ConditionProgressing); pr.Status != metav1.ConditionTrue || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status = %+v", got.Status)
		}
		if n := slowWrites(); n != 1 {
			return fmt.Errorf("%d status writes, want 1", n)
		}
		return nil
	})
}

// fakeClock is a clock that moves only when Advance is called. It counts
// the times it is read.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	calls int
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return c.now
}

// Advance moves the clock by d and returns Calls at that moment: every
// later read sees the new time.
func (c *fakeClock) Advance(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.calls
}

// Calls is how often the clock was read.
func (c *fakeClock) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// waitForPacer waits until the pacer has read clock n more times than
// since: it reads it only to decide on a status that reports progress.
// The test manager reconciles one object at a time, so the reconcile of
// every read but the last is over.
func waitForPacer(t *testing.T, clock *fakeClock, since, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("the pacer consulted %d times", n), func() error {
		if got := clock.Calls() - since; got < n {
			return fmt.Errorf("consulted %d times", got)
		}
		return nil
	})
}

// startPacedManager runs, until the test ends, a manager scoped to ns with
// the AppService controller as the shipped manager sets it up (a cache
// holding only the children opsmith labelled), except for its status pacer
// and its concurrency: one reconcile at a time.
func startPacedManager(t *testing.T, ns string, pacer *apply.Pacer) {
	t.Helper()
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{apply.LabelManagedBy: apply.ManagedByValue})}
	byObject := map[client.Object]cache.ByObject{}
	for _, obj := range appservice.Kind().Children {
		byObject[obj] = managed
	}
	period := syncPeriod
	mgr, err := ctrl.NewManager(suite.Cluster.Config, ctrl.Options{
		Scheme: manager.Scheme(),
		Cache: cache.Options{SyncPeriod: &period, ByObject: byObject, DefaultNamespaces: map[string]cache.Config{ns: {}},
			DefaultTransform: cache.TransformStripManagedFields()},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &appservice.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorder(appservice.FieldManager), Pacer: pacer}
	if err := r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("test manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("test manager's cache did not sync")
	}
}

// waitForReconciles waits until the AppService controllers of this process
// have finished n more reconciles.
func waitForReconciles(t *testing.T, n float64) {
	t.Helper()
	start := managertest.ReconcileCount(t, appservice.Name)
	eventually(t, fmt.Sprintf("%v more reconciles", n), func() error {
		if got := managertest.ReconcileCount(t, appservice.Name) - start; got < n {
			return fmt.Errorf("%v reconciles", got)
		}
		return nil
	})
}

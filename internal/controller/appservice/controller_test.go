package appservice_test

import (
	"context"
	"fmt"
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
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
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
	// Without a controller manager nothing garbage collects the Service;
	// free its node port for later runs of the test (go test -count).
	t.Cleanup(func() {
		ctx := context.Background()
		_ = suite.Client.Delete(ctx, as)
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
// once the delay has passed.
func TestStatusSettlingWithinDelayIsWrittenOnce(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	writes := statusWrites(t, ns, "quick")
	start := time.Now()
	createAndWait(t, newAppService(ns, "quick"))
	markDeploymentReady(t, ns, "quick")
	eventually(t, "AppService Available", func() error {
		got := get(t, ns, "quick", &appsv1alpha1.AppService{})
		if av := condition(got, appsv1alpha1.ConditionAvailable); av.Status != metav1.ConditionTrue {
			return fmt.Errorf("status = %+v", got.Status)
		}
		return nil
	})
	if elapsed := time.Since(start); elapsed >= manager.DefaultOptions().StatusProgressDelay {
		t.Skipf("the Deployment was marked ready %s after the AppService's creation, later than the delay: nothing to check", elapsed)
	}
	// Wait for a write the delay might still bring.
	time.Sleep(manager.DefaultOptions().StatusProgressDelay + time.Second)
	if n := writes(); n != 1 {
		t.Errorf("%d status writes, want 1 (the outcome only)", n)
	}

	// One that stays in progress reports it after the delay.
	slow := newAppService(ns, "slow")
	createAndWait(t, slow)
	created := time.Now()
	eventually(t, "status reports the rollout", func() error {
		got := get(t, ns, "slow", &appsv1alpha1.AppService{})
		if pr := condition(got, appsv1alpha1.ConditionProgressing); pr.Status != metav1.ConditionTrue || got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("status = %+v", got.Status)
		}
		return nil
	})
	if lag := time.Since(created); lag > manager.DefaultOptions().StatusProgressDelay+3*time.Second {
		t.Errorf("progress reported %s after the children were created, want about %s", lag, manager.DefaultOptions().StatusProgressDelay)
	}
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
)

// TestQuotaScope: the namespace quota opsmith keeps for microservices
// counts and constrains only microservice pods (those of its PriorityClass):
// a pod of another workload in the same namespace, without limits, is
// admitted and runs, and the quota controller does not count it; a pod that
// claims the microservice PriorityClass without limits is refused, which
// shows the quota is in force. The PriorityClass itself never preempts.
func TestQuotaScope(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	amounts := appsv1alpha1.ResourceAmounts{CPU: ptr.To(resource.MustParse("100m")), Memory: ptr.To(resource.MustParse("64Mi"))}
	m := &appsv1alpha1.MicroServiceDeploy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quota-v1s0"},
		Spec: appsv1alpha1.MicroServiceDeploySpec{
			MsName: "quota", Version: "1.0", Path: "v1", Image: "registry.local/ms:1", Replicas: 1,
			ResourceRequirements: appsv1alpha1.ResourceRequirements{Limits: amounts, Requests: amounts},
		},
	}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitMSD(t, ns, m.Name, appsv1alpha1.PhaseRunning, 1)
	quotaUsed := func() (string, error) {
		q := &corev1.ResourceQuota{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: microservicedeploy.QuotaName}, q); err != nil {
			return "", err
		}
		if _, ok := q.Spec.Hard[corev1.ResourceLimitsMemory]; !ok {
			return "", fmt.Errorf("quota %v does not limit memory: the test needs it to", q.Spec.Hard)
		}
		used := q.Status.Used[corev1.ResourcePods]
		return used.String(), nil
	}
	eventually(t, "quota counts the microservice's pod", func() error {
		used, err := quotaUsed()
		if err == nil && used != "1" {
			err = fmt.Errorf("quota counts %s pods, want 1", used)
		}
		return err
	})

	// Another workload: no PriorityClass, no requests or limits.
	other := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-workload"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "registry.local/other:1"}},
		},
	}
	if err := k8s.Create(ctx, other); err != nil {
		t.Fatalf("a pod of another workload without limits was refused in a namespace with microservices: %v", err)
	}
	eventually(t, "the other workload's pod runs", func() error {
		p := &corev1.Pod{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(other), p); err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	// The quota controller recalculates usage on every pod event; give it
	// time to (wrongly) count the other pod.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		used, err := quotaUsed()
		if err != nil {
			t.Fatal(err)
		}
		if used != "1" {
			t.Fatalf("quota counts %s pods with the other workload's running, want 1", used)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A pod of the microservice PriorityClass is held to the quota.
	claimer := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "claims-the-class"},
		Spec: corev1.PodSpec{
			PriorityClassName: microservicedeploy.PriorityClassName,
			Containers:        []corev1.Container{{Name: "c", Image: "registry.local/other:1"}},
		},
	}
	err := k8s.Create(ctx, claimer)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "must specify") {
		t.Errorf("a pod of the microservice PriorityClass without limits: %v, want refused by the quota", err)
	}

	pc := &schedulingv1.PriorityClass{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: microservicedeploy.PriorityClassName}, pc); err != nil {
		t.Fatal(err)
	}
	if pc.Value != 0 || pc.GlobalDefault || ptr.Deref(pc.PreemptionPolicy, corev1.PreemptLowerPriority) != corev1.PreemptNever {
		t.Errorf("PriorityClass value %d, globalDefault %v, preemptionPolicy %v: want 0, false, Never",
			pc.Value, pc.GlobalDefault, ptr.Deref(pc.PreemptionPolicy, ""))
	}
}

package appservice

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

func dep(gen, observed int64, replicas, updated, ready, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: gen},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: observed, Replicas: replicas, UpdatedReplicas: updated,
			ReadyReplicas: ready, AvailableReplicas: available,
		},
	}
}

func TestComputeStatus(t *testing.T) {
	stuck := dep(2, 2, 3, 1, 2, 2)
	stuck.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "timed out",
	}}
	tests := []struct {
		name            string
		size            int32
		dep             *appsv1.Deployment
		blocked         *apply.BlockedError
		wantAvailable   metav1.ConditionStatus
		wantAvReason    string
		wantProgressing metav1.ConditionStatus
		wantPrReason    string
		wantReady       int32
	}{
		{"not created yet", 2, nil, nil, metav1.ConditionFalse, ReasonCreating, metav1.ConditionTrue, ReasonCreating, 0},
		{"pods starting", 2, dep(1, 1, 2, 2, 0, 0), nil, metav1.ConditionFalse, ReasonReplicasNotReady, metav1.ConditionTrue, ReasonRollingOut, 0},
		{"all ready", 2, dep(1, 1, 2, 2, 2, 2), nil, metav1.ConditionTrue, ReasonAllReplicasReady, metav1.ConditionFalse, ReasonRolloutComplete, 2},
		{"new spec not yet observed", 2, dep(2, 1, 2, 2, 2, 2), nil, metav1.ConditionTrue, ReasonAllReplicasReady, metav1.ConditionTrue, ReasonRollingOut, 2},
		{"rolling: old pods remain", 2, dep(2, 2, 3, 1, 3, 3), nil, metav1.ConditionTrue, ReasonAllReplicasReady, metav1.ConditionTrue, ReasonRollingOut, 3},
		{"stuck rollout", 3, stuck, nil, metav1.ConditionFalse, ReasonReplicasNotReady, metav1.ConditionFalse, ReasonRolloutStuck, 2},
		{"scaled to zero", 0, dep(1, 1, 0, 0, 0, 0), nil, metav1.ConditionTrue, ReasonScaledToZero, metav1.ConditionFalse, ReasonRolloutComplete, 0},
		{"blocked by a name conflict", 2, nil, &apply.BlockedError{Reason: ReasonNameConflict, Message: "taken"}, metav1.ConditionFalse, ReasonCreating, metav1.ConditionFalse, ReasonNameConflict, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := &appsv1alpha1.AppService{ObjectMeta: metav1.ObjectMeta{Generation: 7}}
			as.Spec.Size = ptr.To(tt.size)
			st := computeStatus(as, tt.dep, tt.blocked)
			av := meta.FindStatusCondition(st.Conditions, appsv1alpha1.ConditionAvailable)
			pr := meta.FindStatusCondition(st.Conditions, appsv1alpha1.ConditionProgressing)
			if av.Status != tt.wantAvailable || av.Reason != tt.wantAvReason {
				t.Errorf("Available = %s/%s (%s), want %s/%s", av.Status, av.Reason, av.Message, tt.wantAvailable, tt.wantAvReason)
			}
			if pr.Status != tt.wantProgressing || pr.Reason != tt.wantPrReason {
				t.Errorf("Progressing = %s/%s (%s), want %s/%s", pr.Status, pr.Reason, pr.Message, tt.wantProgressing, tt.wantPrReason)
			}
			if st.ReadyReplicas != tt.wantReady || st.ObservedGeneration != 7 || av.ObservedGeneration != 7 {
				t.Errorf("ready %d observedGeneration %d", st.ReadyReplicas, st.ObservedGeneration)
			}
		})
	}
}

func TestComputeStatusKeepsTransitionTimes(t *testing.T) {
	as := &appsv1alpha1.AppService{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	as.Spec.Size = ptr.To[int32](2)
	d := dep(1, 1, 2, 2, 2, 2)
	as.Status = computeStatus(as, d, nil)
	again := computeStatus(as, d, nil)
	if !equalConditions(as.Status.Conditions, again.Conditions) {
		t.Errorf("recomputing an unchanged status changed it:\n%+v\n%+v", as.Status.Conditions, again.Conditions)
	}
}

func equalConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A rollout step that changes no status field (here: pods updated, the
// same number running and ready) must not change the status, or every pod
// step of every rollout would cost a status write.
func TestComputeStatusIgnoresRolloutSteps(t *testing.T) {
	as := &appsv1alpha1.AppService{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
	as.Spec.Size, as.Spec.Image = ptr.To[int32](3), "web:2"
	as.Status = computeStatus(as, dep(2, 2, 4, 1, 3, 3), nil)
	next := computeStatus(as, dep(2, 2, 4, 2, 3, 3), nil)
	if !equalConditions(as.Status.Conditions, next.Conditions) {
		t.Errorf("one more pod updated changed the conditions:\n%+v\n%+v", as.Status.Conditions, next.Conditions)
	}
	if pr := meta.FindStatusCondition(next.Conditions, appsv1alpha1.ConditionProgressing); pr == nil || pr.Reason != ReasonRollingOut {
		t.Errorf("Progressing = %+v, want %s", pr, ReasonRollingOut)
	}
}

package microservicedeploy

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"password=88888888", map[string]string{"password": "88888888"}},
		{"# comment\n! other\n\n a.b = c d \nurl: jdbc:x=1\n", map[string]string{"a.b": "c d", "url": "jdbc:x=1"}},
		{"k=", map[string]string{"k": ""}},
		{"", map[string]string{}},
	}
	for _, tt := range tests {
		if got := ParseConfig(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseConfig(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func msd(replicas int32, autoscaling, idle bool, maxReplicas *int32) *appsv1alpha1.MicroServiceDeploy {
	m := &appsv1alpha1.MicroServiceDeploy{ObjectMeta: metav1.ObjectMeta{Name: "ms-v1s0", Generation: 2}}
	m.Spec = appsv1alpha1.MicroServiceDeploySpec{MsName: "ms", Path: "v1", Version: "1.0", Replicas: replicas, Autoscaling: autoscaling, Idle: idle}
	if maxReplicas != nil {
		m.Spec.AutoscalingPolicy = &appsv1alpha1.AutoscalingPolicy{MaxReplicas: maxReplicas}
	}
	return m
}

func deployment(replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas)}}
}

func TestDesiredReplicas(t *testing.T) {
	tests := []struct {
		name   string
		m      *appsv1alpha1.MicroServiceDeploy
		dep    *appsv1.Deployment
		resume *int32
		want   int32
	}{
		{"fixed scale", msd(3, false, false, nil), deployment(7), nil, 3},
		{"idle", msd(3, true, true, nil), deployment(5), nil, 0},
		{"autoscaler's choice kept", msd(3, true, false, nil), deployment(6), nil, 6},
		{"never below the minimum", msd(3, true, false, nil), deployment(1), nil, 3},
		{"never above the maximum", msd(3, true, false, ptr.To[int32](4)), deployment(9), nil, 4},
		{"new instance starts at the minimum", msd(3, true, false, nil), nil, nil, 3},
		{"waking resumes the previous scale", msd(3, true, false, nil), deployment(0), ptr.To[int32](5), 5},
		{"waking without autoscaling uses replicas", msd(3, false, false, nil), deployment(0), ptr.To[int32](5), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.Status.ResumeReplicas = tt.resume
			if got := desiredReplicas(tt.m, tt.dep); got != tt.want {
				t.Errorf("desiredReplicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAutoscalingBounds(t *testing.T) {
	for _, tt := range []struct {
		m        *appsv1alpha1.MicroServiceDeploy
		min, max int32
	}{
		{msd(3, true, false, nil), 3, 10},
		{msd(12, true, false, nil), 12, 12},
		{msd(2, true, false, ptr.To[int32](4)), 2, 4},
	} {
		if lo, hi := AutoscalingBounds(tt.m); lo != tt.min || hi != tt.max {
			t.Errorf("bounds of replicas %d policy %+v = %d..%d, want %d..%d", tt.m.Spec.Replicas, tt.m.Spec.AutoscalingPolicy, lo, hi, tt.min, tt.max)
		}
	}
}

func TestComputeStatusPhase(t *testing.T) {
	ready := func(n int32) *appsv1.Deployment {
		d := deployment(n)
		d.Generation = 1
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
		return d
	}
	rolling := ready(3)
	rolling.Status.ReadyReplicas, rolling.Status.AvailableReplicas = 1, 1
	goingIdle := ready(3) // scaled to 0, pods still terminating
	goingIdle.Spec.Replicas = ptr.To[int32](0)
	tests := []struct {
		name    string
		m       *appsv1alpha1.MicroServiceDeploy
		dep     *appsv1.Deployment
		blocked *apply.BlockedError
		want    string
	}{
		{"nothing yet", msd(3, false, false, nil), nil, nil, appsv1alpha1.PhasePending},
		{"pods starting", msd(3, false, false, nil), rolling, nil, appsv1alpha1.PhaseProgressing},
		{"all ready", msd(3, false, false, nil), ready(3), nil, appsv1alpha1.PhaseRunning},
		{"idle", msd(3, false, true, nil), ready(0), nil, appsv1alpha1.PhaseIdle},
		{"going idle", msd(3, false, true, nil), goingIdle, nil, appsv1alpha1.PhaseProgressing},
		{"blocked", msd(3, false, false, nil), ready(3), &apply.BlockedError{Reason: "NameConflict"}, appsv1alpha1.PhaseFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.Spec.CreationTimestamp = "1535546718115"
			st := computeStatus(tt.m, tt.dep, tt.blocked, Config{BaseDomain: "example.com"})
			if st.Phase != tt.want {
				t.Errorf("phase %s, want %s (conditions %+v)", st.Phase, tt.want, st.Conditions)
			}
			if st.URL != "http://v1.ms.example.com/" || st.CreatedAt != "2018-08-29T12:45:18Z" || st.ObservedGeneration != 2 {
				t.Errorf("url %q createdAt %q observedGeneration %d", st.URL, st.CreatedAt, st.ObservedGeneration)
			}
		})
	}
}

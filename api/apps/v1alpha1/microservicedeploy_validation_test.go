package v1alpha1_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/test/testbed"
)

func validMicroServiceDeploy() *appsv1alpha1.MicroServiceDeploy {
	return &appsv1alpha1.MicroServiceDeploy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ms-sample-v1s0"},
		Spec: appsv1alpha1.MicroServiceDeploySpec{
			MsName:            "ms-sample",
			FullName:          "ms-sample-v1s0",
			Version:           "1.0",
			Path:              "v1",
			Image:             "registry.local/ms-sample:1.0",
			Replicas:          3,
			Config:            "password=88888888",
			CreationTimestamp: "1535546718115",
			ResourceRequirements: appsv1alpha1.ResourceRequirements{
				Limits:   appsv1alpha1.ResourceAmounts{CPU: ptr.To(resource.MustParse("2")), Memory: ptr.To(resource.MustParse("4Gi"))},
				Requests: appsv1alpha1.ResourceAmounts{CPU: ptr.To(resource.MustParse("2")), Memory: ptr.To(resource.MustParse("4Gi"))},
			},
		},
	}
}

func TestMicroServiceDeployAdmission(t *testing.T) {
	testbed.RequireCluster(t)
	tests := []struct {
		name    string
		mutate  func(*appsv1alpha1.MicroServiceDeploy)
		wantErr []string
	}{
		{name: "valid", mutate: func(*appsv1alpha1.MicroServiceDeploy) {}},
		{name: "fullName left out", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.FullName = "" }},
		{name: "fullName contradicts metadata.name", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.FullName = "other" },
			wantErr: []string{"spec.fullName must equal metadata.name"}},
		{name: "msName not a DNS label", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.MsName = "Ms_Sample" },
			wantErr: []string{"spec.msName", "msName must be a DNS label"}},
		{name: "path not a DNS label", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Path = "v1.0" },
			wantErr: []string{"spec.path", "path must be a DNS label"}},
		{name: "negative replicas", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Replicas = -1 },
			wantErr: []string{"spec.replicas", "greater than or equal to 0"}},
		{name: "requests above limits", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.ResourceRequirements.Requests.CPU = ptr.To(resource.MustParse("2500m"))
		}, wantErr: []string{"spec.resourceRequirements", "requests.cpu must not exceed limits.cpu"}},
		{name: "memory requests above limits", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.ResourceRequirements.Requests.Memory = ptr.To(resource.MustParse("5Gi"))
		}, wantErr: []string{"requests.memory must not exceed limits.memory"}},
		{name: "malformed config line", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.Config = "# database\nuser=app\nthis line has no separator\n"
		}, wantErr: []string{"spec.config", "malformed line: this line has no separator"}},
		{name: "config with comments and blank lines", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.Config = "# database\n\nuser=app\n! legacy comment\nurl: jdbc:x\n"
		}},
		{name: "non-numeric creationTimestamp", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.CreationTimestamp = "2018-08-29" },
			wantErr: []string{"spec.creationTimestamp", "milliseconds since the Unix epoch"}},
		{name: "maxReplicas below replicas", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.Autoscaling = true
			m.Spec.AutoscalingPolicy = &appsv1alpha1.AutoscalingPolicy{MaxReplicas: ptr.To[int32](2)}
		}, wantErr: []string{"maxReplicas must not be below replicas"}},
		{name: "msName and path too long together", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.MsName = strings.Repeat("m", 50)
			m.Spec.Path = strings.Repeat("p", 20)
		}, wantErr: []string{"msName and path together may have at most 62 characters"}},
		{name: "bad version", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Version = "1.0 beta" },
			wantErr: []string{"spec.version", "version may contain letters"}},

		// Values the API server would reject on the instance's objects are
		// rejected here, on the MicroServiceDeploy.
		{name: "image with leading whitespace", mutate: func(m *appsv1alpha1.MicroServiceDeploy) { m.Spec.Image = " registry.local/ms-sample:1.0" },
			wantErr: []string{"spec.image", "image must not start or end with whitespace"}},
		{name: "negative cpu request", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.ResourceRequirements.Requests.CPU = ptr.To(resource.MustParse("-1"))
		}, wantErr: []string{"spec.resourceRequirements.requests.cpu", "cpu must not be negative"}},
		{name: "negative memory limit", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.ResourceRequirements = appsv1alpha1.ResourceRequirements{Limits: appsv1alpha1.ResourceAmounts{Memory: ptr.To(resource.MustParse("-4Gi"))}}
		}, wantErr: []string{"spec.resourceRequirements.limits.memory", "memory must not be negative"}},
		{name: "configSecretRef that cannot name a Secret", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.ConfigSecretRef = &corev1.LocalObjectReference{Name: "My_Secret"}
		}, wantErr: []string{"spec.configSecretRef", "configSecretRef.name must name a Secret"}},
		{name: "configSecretRef", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.ConfigSecretRef = &corev1.LocalObjectReference{Name: "ms-sample.credentials"}
		}},
		{name: "config key too long for a ConfigMap", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.Config = "user=app\n" + strings.Repeat("k", 254) + "=v\n"
		}, wantErr: []string{"spec.config", "config keys may have at most 253 characters"}},
		{name: "config key of 253 characters", mutate: func(m *appsv1alpha1.MicroServiceDeploy) {
			m.Spec.Config = strings.Repeat("k", 253) + "=" + strings.Repeat("v", 300)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMicroServiceDeploy()
			tt.mutate(m)
			expectAdmission(t, m, tt.wantErr)
		})
	}
}

// TestSeedMicroServiceSampleApplies applies config/samples' MicroServiceDeploy,
// the seed article's sample with only apiVersion changed.
func TestSeedMicroServiceSampleApplies(t *testing.T) {
	testbed.RequireCluster(t)
	objs, err := testbed.ReadManifestFile(filepath.Join(testbed.RepoRoot(), "config", "samples", "apps_v1alpha1_microservicedeploy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	u := objs[0]
	u.SetNamespace("default")
	if err := k8s.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("sample rejected: %v", err)
	}
}

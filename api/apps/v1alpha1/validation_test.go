package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/test/testbed"
)

// These tests send objects to a real kube-apiserver with the generated CRDs
// installed, so they exercise exactly the OpenAPI schema and CEL rules users
// get.

var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, func(ctx context.Context, c *testbed.Cluster) (err error) {
		k8s, err = testbed.CRDClient(ctx, c, appsv1alpha1.AddToScheme)
		return err
	}))
}

func validAppService() *appsv1alpha1.AppService {
	return &appsv1alpha1.AppService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "nginx-app"},
		Spec: appsv1alpha1.AppServiceSpec{
			Size:  ptr.To[int32](2),
			Image: "nginx:1.7.9",
			Ports: []appsv1alpha1.AppServicePort{{Port: 80, TargetPort: 80, NodePort: 30002}},
		},
	}
}

func TestAppServiceAdmission(t *testing.T) {
	testbed.RequireCluster(t)
	tests := []struct {
		name   string
		mutate func(*appsv1alpha1.AppService)
		// wantErr are substrings the API server's message must contain;
		// none means the object is accepted.
		wantErr []string
	}{
		{name: "valid", mutate: func(*appsv1alpha1.AppService) {}},
		{name: "size zero is allowed", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Size = ptr.To[int32](0) }},
		{name: "negative size", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Size = ptr.To[int32](-1) },
			wantErr: []string{"spec.size", "greater than or equal to 0"}},
		{name: "missing size", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Size = nil },
			wantErr: []string{"spec.size", "Required value"}},
		{name: "empty image", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Image = "" },
			wantErr: []string{"spec.image", "at least 1 chars long"}},
		{name: "image with spaces", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Image = "nginx 1.7" },
			wantErr: []string{"spec.image", "image must not contain spaces"}},
		{name: "no ports", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Ports = nil },
			wantErr: []string{"spec.ports", "Required value"}},
		{name: "port zero", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Ports[0].Port = 0 },
			wantErr: []string{"spec.ports[0].port", "greater than or equal to 1"}},
		{name: "port above 65535", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Ports[0].Port = 65536 },
			wantErr: []string{"spec.ports[0].port", "less than or equal to 65535"}},
		{name: "targetPort above 65535", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Ports[0].TargetPort = 70000 },
			wantErr: []string{"spec.ports[0].targetPort", "less than or equal to 65535"}},
		{name: "nodePort below range", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Ports[0].NodePort = 8080 },
			wantErr: []string{"spec.ports[0].nodePort", "greater than or equal to 30000"}},
		{name: "nodePort above range", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Ports[0].NodePort = 32768 },
			wantErr: []string{"spec.ports[0].nodePort", "less than or equal to 32767"}},
		{name: "duplicate port", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Ports = append(a.Spec.Ports, appsv1alpha1.AppServicePort{Port: 80, TargetPort: 8080})
		}, wantErr: []string{"spec.ports", "each port number may appear only once per protocol"}},
		{name: "same port on TCP and UDP is allowed", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Ports = append(a.Spec.Ports, appsv1alpha1.AppServicePort{Port: 80, Protocol: corev1.ProtocolUDP})
		}},
		{name: "duplicate nodePort", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Ports = append(a.Spec.Ports, appsv1alpha1.AppServicePort{Port: 81, NodePort: 30002})
		}, wantErr: []string{"spec", "each nodePort may be used by only one port"}},
		{name: "unknown protocol", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Ports[0].Protocol = "HTTP" },
			wantErr: []string{"spec.ports[0].protocol", `supported values: "TCP", "UDP", "SCTP"`}},
		{name: "name that cannot name a Service", mutate: func(a *appsv1alpha1.AppService) { a.Name = "1nginx" },
			wantErr: []string{"metadata.name must be at most 63 characters"}},

		// Values the API server would reject on the Deployment or the
		// Service are rejected here, on the AppService.
		{name: "image with trailing whitespace", mutate: func(a *appsv1alpha1.AppService) { a.Spec.Image = "nginx:1.7.9\t" },
			wantErr: []string{"spec.image", "image must not start or end with whitespace"}},
		{name: "two ports of one name", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Ports = []appsv1alpha1.AppServicePort{{Name: "web", Port: 80}, {Name: "web", Port: 81}}
		}, wantErr: []string{"spec", "each port name may be used only once"}},
		{name: "a port named like another port's default name", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Ports = append(a.Spec.Ports, appsv1alpha1.AppServicePort{Name: "tcp-80", Port: 81})
		}, wantErr: []string{"spec", "each port name may be used only once (a port without a name is named <protocol>-<port>, for example tcp-80)"}},
		{name: "named and unnamed ports", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Ports = append(a.Spec.Ports, appsv1alpha1.AppServicePort{Name: "tcp-080", Port: 81},
				appsv1alpha1.AppServicePort{Port: 80, Protocol: corev1.ProtocolUDP})
		}},
		{name: "env var without a name", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "", Value: "x"}}
		}, wantErr: []string{"spec.envs", "every env var needs a name"}},
		{name: "env vars from every source", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{
				{Name: "MODE", Value: "blue"},
				{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels['app']"}}},
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
				{Name: "CFG", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
				{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
			}
		}},
		{name: "env var with value and valueFrom", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "POD", Value: "x",
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		}, wantErr: []string{"spec.envs", "an env var has either value or valueFrom, not both"}},
		{name: "empty valueFrom", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{}}}
		}, wantErr: []string{"spec.envs", "valueFrom must set exactly one of fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef"}},
		{name: "valueFrom with two sources", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
				FieldRef:     &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "pw"}}}}
		}, wantErr: []string{"spec.envs", "valueFrom must set exactly one of"}},
		{name: "fieldRef the downward API does not offer", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}
		}, wantErr: []string{"spec.envs", "valueFrom.fieldRef.fieldPath must be one of metadata.name"}},
		{name: "fieldRef of another apiVersion", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}}}}
		}, wantErr: []string{"spec.envs", "valueFrom.fieldRef.fieldPath must be one of", "(apiVersion v1)"}},
		{name: "resourceFieldRef of an unknown resource", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.gpu"}}}}
		}, wantErr: []string{"spec.envs", "valueFrom.resourceFieldRef.resource must be one of limits.cpu"}},
		{name: "configMapKeyRef without a name", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "mode"}}}}
		}, wantErr: []string{"spec.envs", "valueFrom.configMapKeyRef needs the name of a ConfigMap and a key"}},
		{name: "secretKeyRef without a key", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}
		}, wantErr: []string{"spec.envs", "valueFrom.secretKeyRef needs the name of a Secret and a key"}},
		{name: "fileKeyRef", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Envs = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{
				VolumeName: "config", Path: "env", Key: "X"}}}}
		}, wantErr: []string{"spec.envs", "valueFrom.fileKeyRef is not supported: the pods have no volumes to read it from"}},
		{name: "requests within limits", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("1Gi"), "example.com/gpu": resource.MustParse("1")},
				Limits:   corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("1Gi"), "example.com/gpu": resource.MustParse("1")},
			}
		}},
		{name: "requests above limits", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{"cpu": resource.MustParse("1500m"), "memory": resource.MustParse("1Gi")},
			}
		}, wantErr: []string{"spec.resources", "requests.cpu must not exceed limits.cpu", "requests.memory must not exceed limits.memory"}},
		{name: "ephemeral-storage requests above limits", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"ephemeral-storage": resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{"ephemeral-storage": resource.MustParse("1Gi")},
			}
		}, wantErr: []string{"spec.resources", "requests.ephemeral-storage must not exceed limits.ephemeral-storage"}},
		{name: "negative limit", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("-1Gi")}}
		}, wantErr: []string{"spec.resources", "limits must not be negative"}},
		{name: "negative request", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{"cpu": resource.MustParse("-100m")}}
		}, wantErr: []string{"spec.resources", "requests must not be negative"}},
		{name: "extended resource requested without a limit", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{"example.com/gpu": resource.MustParse("1")}}
		}, wantErr: []string{"spec.resources", "requests of resources other than cpu, memory and ephemeral-storage (hugepages, extended resources) need a limit equal to the request"}},
		{name: "unknown resource name", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpus": resource.MustParse("1")}}
		}, wantErr: []string{"spec.resources", "limits may name cpu, memory, ephemeral-storage, hugepages-<size> and extended resources with a domain (example.com/gpu)"}},
		{name: "unknown resource name in requests", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{"mem": resource.MustParse("1Gi")}}
		}, wantErr: []string{"spec.resources", "requests may name cpu, memory"}},
		{name: "hugepages alone", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")},
				Limits:   corev1.ResourceList{"hugepages-2Mi": resource.MustParse("4Mi")},
			}
		}, wantErr: []string{"spec.resources", "hugepages need a cpu or memory request or limit too"}},
		{name: "resource claims", mutate: func(a *appsv1alpha1.AppService) {
			a.Spec.Resources = corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "gpu"}}}
		}, wantErr: []string{"spec.resources", "claims are not supported: the pods have no resource claims"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := validAppService()
			tt.mutate(as)
			expectAdmission(t, as, tt.wantErr)
		})
	}
}

// A quantity may also be written as a YAML number: a negative one is
// rejected too.
func TestAppServiceNegativeNumberQuantity(t *testing.T) {
	testbed.RequireCluster(t)
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(validAppService())
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: u}
	obj.SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("AppService"))
	if err := unstructured.SetNestedField(obj.Object, int64(-1), "spec", "resources", "limits", "cpu"); err != nil {
		t.Fatal(err)
	}
	expectAdmission(t, obj, []string{"spec.resources", "limits must not be negative"})
}

// expectAdmission creates obj (dry run) and checks the API server accepts
// it when wantErr is empty, or rejects it with a message containing every
// string of wantErr.
func expectAdmission(t *testing.T, obj client.Object, wantErr []string) {
	t.Helper()
	err := k8s.Create(context.Background(), obj, client.DryRunAll)
	if len(wantErr) == 0 {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted, want an error containing %q", wantErr)
	}
	for _, want := range wantErr {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestSeedSampleApplies applies config/samples' AppService, which is the
// seed article's sample with only apiVersion changed.
func TestSeedSampleApplies(t *testing.T) {
	testbed.RequireCluster(t)
	objs, err := testbed.ReadManifestFile(filepath.Join(testbed.RepoRoot(), "config", "samples", "apps_v1alpha1_appservice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("sample has %d objects, want 1", len(objs))
	}
	u := objs[0]
	u.SetNamespace("default")
	if err := k8s.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("sample rejected: %v", err)
	}
	spec := u.Object["spec"].(map[string]any)
	if spec["size"] != int64(2) || spec["image"] != "nginx:1.7.9" {
		t.Errorf("sample spec %v is not the seed's", spec)
	}
}

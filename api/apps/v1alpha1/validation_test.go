package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := validAppService()
			tt.mutate(as)
			expectAdmission(t, as, tt.wantErr)
		})
	}
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

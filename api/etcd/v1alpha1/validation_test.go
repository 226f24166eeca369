package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/test/testbed"
)

// These tests send EtcdClusters to a real kube-apiserver with the generated
// CRDs installed, so they exercise the OpenAPI schema and the CEL rules
// (including the transition rules on version) exactly as users meet them.

var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, func(ctx context.Context, c *testbed.Cluster) (err error) {
		k8s, err = testbed.CRDClient(ctx, c, etcdv1alpha1.AddToScheme)
		return err
	}))
}

func validCluster(name string) *etcdv1alpha1.EtcdCluster {
	return &etcdv1alpha1.EtcdCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       etcdv1alpha1.EtcdClusterSpec{Size: 3, Version: "3.5.35"},
	}
}

func TestEtcdClusterCreateAdmission(t *testing.T) {
	testbed.RequireCluster(t)
	tests := []struct {
		name    string
		mutate  func(*etcdv1alpha1.EtcdCluster)
		wantErr []string
	}{
		{name: "valid", mutate: func(*etcdv1alpha1.EtcdCluster) {}},
		{name: "3.6", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "3.6.16" }},
		{name: "a future 3.x", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "3.7.0" }},
		{name: "size zero", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Size = 0 },
			wantErr: []string{"spec.size", "greater than or equal to 1"}},
		{name: "negative size", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Size = -3 },
			wantErr: []string{"spec.size", "greater than or equal to 1"}},
		{name: "size above 9", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Size = 10 },
			wantErr: []string{"spec.size", "less than or equal to 9"}},
		{name: "missing version", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "" },
			wantErr: []string{"spec.version", "version must be MAJOR.MINOR.PATCH"}},
		{name: "leading v", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "v3.5.35" },
			wantErr: []string{"spec.version", "version must be MAJOR.MINOR.PATCH, for example 3.6.16 (no leading v, no suffix)"}},
		{name: "unknown version string", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "latest" },
			wantErr: []string{"spec.version", "version must be MAJOR.MINOR.PATCH"}},
		{name: "pre-release suffix", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "3.6.0-rc.1" },
			wantErr: []string{"spec.version", "version must be MAJOR.MINOR.PATCH"}},
		{name: "the seed's 3.2.13", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "3.2.13" },
			wantErr: []string{"spec.version", "version must be 3.5.0 or newer"}},
		{name: "major 4", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Version = "4.0.0" },
			wantErr: []string{"spec.version", "version must be 3.5.0 or newer"}},
		{name: "tagged repository", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Repository = "quay.io/coreos/etcd:v3.5.0" },
			wantErr: []string{"spec.repository", "without spaces or tag"}},
		{name: "unknown reclaim policy", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Storage.ReclaimPolicy = "Recycle" },
			wantErr: []string{"spec.storage.reclaimPolicy", `supported values: "Retain", "Delete"`}},
		{name: "name too long for member names", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Name = strings.Repeat("a", 41) },
			wantErr: []string{"metadata.name must be at most 40 characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validCluster("example")
			tt.mutate(e)
			checkErr(t, k8s.Create(context.Background(), e, client.DryRunAll), tt.wantErr)
		})
	}
}

// TestEtcdClusterVersionTransitions creates a cluster and changes its
// version: the transition rules compare with the stored version.
func TestEtcdClusterVersionTransitions(t *testing.T) {
	testbed.RequireCluster(t)
	tests := []struct {
		from, to string
		wantErr  []string
	}{
		{from: "3.5.35", to: "3.5.36"},
		{from: "3.5.35", to: "3.6.16"},
		{from: "3.5.0", to: "3.6.0"},
		{from: "3.6.16", to: "3.6.16"},
		{from: "3.5.35", to: "3.7.0", wantErr: []string{"spec.version", "cannot upgrade etcd from 3.5.35 to 3.7.0: upgrade one minor version at a time (to the next minor version first)"}},
		{from: "3.6.16", to: "3.5.35", wantErr: []string{"spec.version", "cannot downgrade etcd from 3.6.16 to 3.5.35: etcd does not support downgrades"}},
		{from: "3.6.16", to: "3.6.2", wantErr: []string{"spec.version", "cannot downgrade etcd from 3.6.16 to 3.6.2"}},
		{from: "3.6.16", to: "3.6.x", wantErr: []string{"spec.version", "version must be MAJOR.MINOR.PATCH"}},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.from+" to "+tt.to, func(t *testing.T) {
			e := validCluster(fmt.Sprintf("transition-%d", i))
			e.Spec.Version = tt.from
			if err := k8s.Create(ctx, e); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = k8s.Delete(ctx, e) })
			e.Spec.Version = tt.to
			checkErr(t, k8s.Update(ctx, e), tt.wantErr)
		})
	}
}

func checkErr(t *testing.T, err error, wantErr []string) {
	t.Helper()
	if len(wantErr) == 0 {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted, want an error containing %q", wantErr)
	}
	t.Logf("rejected: %v", err)
	for _, want := range wantErr {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestSeedSampleApplies applies config/samples' EtcdCluster, the seed's
// example-etcd-cluster with apiVersion changed and a supported version,
// and checks the documented defaults.
func TestSeedSampleApplies(t *testing.T) {
	testbed.RequireCluster(t)
	u := testbed.Sample(t, "etcd_v1alpha1_etcdcluster.yaml", "default")
	if err := k8s.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("sample rejected: %v", err)
	}
	var e etcdv1alpha1.EtcdCluster
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &e); err != nil {
		t.Fatal(err)
	}
	if e.Name != "example-etcd-cluster" || e.Spec.Size != 3 || e.Spec.Version != "3.5.35" {
		t.Errorf("sample %s %+v is not the seed's", e.Name, e.Spec)
	}
	if e.Spec.Repository != etcdv1alpha1.DefaultRepository || e.Spec.Storage.ReclaimPolicy != etcdv1alpha1.ReclaimRetain {
		t.Errorf("defaults not applied: repository %q, reclaimPolicy %q", e.Spec.Repository, e.Spec.Storage.ReclaimPolicy)
	}
}

package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/api/common"
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

		// Values the API server would reject on the member pods and
		// volumes are rejected here, on the EtcdCluster.
		{name: "negative storage size", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Storage.Size = ptr.To(resource.MustParse("-1Gi")) },
			wantErr: []string{"spec.storage.size", "size must be greater than zero, for example 1Gi"}},
		{name: "zero storage size", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Storage.Size = ptr.To(resource.MustParse("0")) },
			wantErr: []string{"spec.storage.size", "size must be greater than zero"}},
		{name: "storage size and class", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Storage.Size = ptr.To(resource.MustParse("8Gi"))
			e.Spec.Storage.StorageClassName = ptr.To("fast.ssd")
		}},
		{name: "empty storage class (no class)", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Storage.StorageClassName = ptr.To("") }},
		{name: "storage class that cannot name a StorageClass", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Storage.StorageClassName = ptr.To("Fast_SSD") },
			wantErr: []string{"spec.storage.storageClassName", "storageClassName must name a StorageClass"}},
		{name: "repository with a tab", mutate: func(e *etcdv1alpha1.EtcdCluster) { e.Spec.Repository = "\tquay.io/coreos/etcd" },
			wantErr: []string{"spec.repository", "repository must not contain whitespace"}},
		{name: "pod resources", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Resources = common.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("512Mi")},
				Limits:   corev1.ResourceList{"memory": resource.MustParse("1Gi")},
			}
		}},
		{name: "pod requests above limits", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Resources = common.ResourceRequirements{
				Requests: corev1.ResourceList{"memory": resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{"memory": resource.MustParse("1Gi")},
			}
		}, wantErr: []string{"spec.pod.resources", "requests.memory must not exceed limits.memory"}},
		{name: "negative pod limit", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Resources = common.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("-1")}}
		}, wantErr: []string{"spec.pod.resources", "limits must not be negative"}},
		{name: "pod resource name typo", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Resources = common.ResourceRequirements{Requests: corev1.ResourceList{"memmory": resource.MustParse("1Gi")}}
		}, wantErr: []string{"spec.pod.resources", "requests may name cpu, memory, ephemeral-storage"}},
		{name: "pod resource claims", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Resources = common.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "disk"}}}
		}, wantErr: []string{"spec.pod.resources", "claims are not supported"}},
		{name: "scheduling", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.NodeSelector = map[string]etcdv1alpha1.LabelValue{"kubernetes.io/os": "linux", "disk": "", "tier": "db_1.a"}
			e.Spec.Pod.Tolerations = []corev1.Toleration{
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "etcd", Effect: corev1.TaintEffectNoSchedule},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](30)},
				{Key: "zone", Value: "a"},
				{Operator: corev1.TolerationOpExists},
			}
			e.Spec.Pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: "kubernetes.io/hostname",
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"etcd.opsmith.io/cluster": "example"}}}},
			}}
		}},
		{name: "nodeSelector key that is no label key", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.NodeSelector = map[string]etcdv1alpha1.LabelValue{"disk type": "ssd"}
		}, wantErr: []string{"spec.pod.nodeSelector", "nodeSelector keys must be label keys"}},
		{name: "nodeSelector value that is no label value", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.NodeSelector = map[string]etcdv1alpha1.LabelValue{"disk": "fast ssd"}
		}, wantErr: []string{"spec.pod.nodeSelector[disk]", "a label value may have at most 63 letters, digits, '-', '_' and '.'"}},
		{name: "nodeSelector value too long", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.NodeSelector = map[string]etcdv1alpha1.LabelValue{"disk": etcdv1alpha1.LabelValue(strings.Repeat("s", 64))}
		}, wantErr: []string{"spec.pod.nodeSelector.disk", "Too long"}},
		{name: "unknown toleration operator", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: "Equals", Value: "etcd"}}
		}, wantErr: []string{"spec.pod.tolerations", "toleration operator must be Equal or Exists"}},
		{name: "toleration without a key", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Tolerations = []corev1.Toleration{{Value: "etcd", Effect: corev1.TaintEffectNoSchedule}}
		}, wantErr: []string{"spec.pod.tolerations", "a toleration without a key must have operator Exists"}},
		{name: "Exists toleration with a value", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Value: "etcd"}}
		}, wantErr: []string{"spec.pod.tolerations", "a toleration with operator Exists must not have a value"}},
		{name: "toleration value too long", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Tolerations = []corev1.Toleration{{Key: "dedicated", Value: strings.Repeat("v", 64)}}
		}, wantErr: []string{"spec.pod.tolerations", "a toleration value must be a label value: at most 63 characters"}},
		{name: "unknown toleration effect", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Tolerations = []corev1.Toleration{{Key: "dedicated", Value: "etcd", Effect: "NoScheduled"}}
		}, wantErr: []string{"spec.pod.tolerations", "toleration effect must be NoSchedule, PreferNoSchedule or NoExecute"}},
		{name: "tolerationSeconds without NoExecute", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr.To[int64](30)}}
		}, wantErr: []string{"spec.pod.tolerations", "tolerationSeconds needs effect NoExecute"}},
		{name: "anti-affinity without a topology key", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 10, PodAffinityTerm: corev1.PodAffinityTerm{}}},
			}}
		}, wantErr: []string{"spec.pod.affinity", "every podAntiAffinity term needs a topologyKey"}},
		{name: "affinity without a topology key", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{}},
			}}
		}, wantErr: []string{"spec.pod.affinity", "every podAffinity term needs a topologyKey"}},
		{name: "required node affinity without terms", mutate: func(e *etcdv1alpha1.EtcdCluster) {
			e.Spec.Pod.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{}},
			}}
		}, wantErr: []string{"spec.pod.affinity", "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution needs at least one node selector term"}},
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

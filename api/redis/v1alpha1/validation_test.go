package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/api/common"
	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/test/testbed"
)

// These tests send RedisClusters to a real kube-apiserver with the
// generated CRDs installed, so they exercise the OpenAPI schema, the
// defaults and the CEL rules (transition rules included) exactly as users
// meet them. Installing the CRD is itself the check that the API server
// accepts its rules and their estimated cost.

var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, func(ctx context.Context, c *testbed.Cluster) (err error) {
		start := time.Now()
		k8s, err = testbed.CRDClient(ctx, c, redisv1alpha1.AddToScheme)
		fmt.Fprintf(os.Stderr, "CRDs installed in %s\n", time.Since(start).Round(time.Millisecond))
		return err
	}))
}

func validCluster(name string) *redisv1alpha1.RedisCluster {
	return &redisv1alpha1.RedisCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       redisv1alpha1.RedisClusterSpec{Size: 3},
	}
}

// TestSeedSampleApplies applies config/samples' RedisCluster, the seed
// article's sample with only apiVersion changed, and checks the
// documented defaults.
func TestSeedSampleApplies(t *testing.T) {
	testbed.RequireCluster(t)
	u := testbed.Sample(t, "redis_v1alpha1_rediscluster.yaml", "default")
	if err := k8s.Create(context.Background(), u, client.DryRunAll); err != nil {
		t.Fatalf("sample rejected: %v", err)
	}
	var rc redisv1alpha1.RedisCluster
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &rc); err != nil {
		t.Fatal(err)
	}
	s := rc.Spec
	if rc.Name != "my-release" || s.Size != 3 || s.Config["maxclients"] != "10000" || s.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("sample %s %+v is not the seed's", rc.Name, s)
	}
	if s.Mode != redisv1alpha1.ModeCluster || s.ReplicasPerShard == nil || *s.ReplicasPerShard != redisv1alpha1.DefaultReplicasPerShard ||
		s.Version != redisv1alpha1.DefaultVersion || s.Repository != redisv1alpha1.DefaultRepository ||
		s.Storage.ReclaimPolicy != common.ReclaimRetain {
		t.Errorf("defaults not applied: mode %q, replicasPerShard %v, version %q, repository %q, reclaimPolicy %q",
			s.Mode, s.ReplicasPerShard, s.Version, s.Repository, s.Storage.ReclaimPolicy)
	}
}

func TestRedisClusterCreateAdmission(t *testing.T) {
	testbed.RequireCluster(t)
	tests := []struct {
		name    string
		mutate  func(*redisv1alpha1.RedisCluster)
		wantErr []string
	}{
		{name: "valid", mutate: func(*redisv1alpha1.RedisCluster) {}},
		{name: "size 100, 5 replicas", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Size = 100; r.Spec.ReplicasPerShard = ptr.To[int32](5) }},
		{name: "no replicas", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.ReplicasPerShard = ptr.To[int32](0) }},
		{name: "size 2", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Size = 2 },
			wantErr: []string{"spec", "size is the number of shards (masters) and must be at least 3"}},
		{name: "size 0", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Size = 0 },
			wantErr: []string{"spec.size", "greater than or equal to 1", "must be at least 3"}},
		{name: "size 101", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Size = 101 },
			wantErr: []string{"spec.size", "less than or equal to 100"}},
		{name: "replicasPerShard -1", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.ReplicasPerShard = ptr.To[int32](-1) },
			wantErr: []string{"spec.replicasPerShard", "greater than or equal to 0"}},
		{name: "replicasPerShard 6", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.ReplicasPerShard = ptr.To[int32](6) },
			wantErr: []string{"spec.replicasPerShard", "less than or equal to 5"}},
		{name: "unknown mode", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Mode = "sentinel" },
			wantErr: []string{"spec.mode", `supported values: "cluster"`}},
		{name: "7.2", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.2.4" }},
		{name: "version 6.2.0", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "6.2.0" },
			wantErr: []string{"spec.version", "version must be 7.0.0 or newer"}},
		{name: "leading v", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "v7.0.15" },
			wantErr: []string{"spec.version", "version must be MAJOR.MINOR.PATCH, for example 7.0.15 (no leading v, no suffix)"}},
		{name: "version latest", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "latest" },
			wantErr: []string{"spec.version", "version must be MAJOR.MINOR.PATCH"}},
		{name: "name too long", mutate: func(r *redisv1alpha1.RedisCluster) { r.Name = strings.Repeat("r", 41) },
			wantErr: []string{"metadata.name must be at most 40 characters"}},
		{name: "name of 40", mutate: func(r *redisv1alpha1.RedisCluster) { r.Name = strings.Repeat("r", 40) }},
		{name: "repository", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Repository = "registry.example.com:5000/redis" }},
		{name: "repository with a tag", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Repository = "docker.io/library/redis:7.0" },
			wantErr: []string{"spec.repository", "repository must be an image repository without whitespace or tag (the tag is the version)"}},
		{name: "requests above limits", mutate: func(r *redisv1alpha1.RedisCluster) {
			r.Spec.Resources = common.ResourceRequirements{
				Requests: corev1.ResourceList{"memory": resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{"memory": resource.MustParse("1Gi")},
			}
		}, wantErr: []string{"spec.resources", "requests.memory must not exceed limits.memory"}},
		{name: "cpu requests above limits", mutate: func(r *redisv1alpha1.RedisCluster) {
			r.Spec.Resources = common.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse("2")},
				Limits:   corev1.ResourceList{"cpu": resource.MustParse("1000m")},
			}
		}, wantErr: []string{"spec.resources", "requests.cpu must not exceed limits.cpu"}},
		{name: "auth secret", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Auth.SecretName = "redis-password" }},
		{name: "auth secret that is no name", mutate: func(r *redisv1alpha1.RedisCluster) { r.Spec.Auth.SecretName = "Redis_Password" },
			wantErr: []string{"spec.auth.secretName", "secretName must name a Secret"}},
		{name: "129 config keys", mutate: func(r *redisv1alpha1.RedisCluster) {
			r.Spec.Config = redisv1alpha1.RedisConfig{}
			for i := range 129 {
				r.Spec.Config[fmt.Sprintf("x-%d", i)] = "1"
			}
		}, wantErr: []string{"spec.config", "must have at most 128 items"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validCluster("example")
			tt.mutate(r)
			checkErr(t, k8s.Create(context.Background(), r, client.DryRunAll), tt.wantErr)
		})
	}
}

// TestForbiddenConfigRejected sends every key ForbiddenConfigKeys names,
// and keys under each forbidden prefix: the API server must reject each
// with its reason. With TestForbiddenConfigMatchesCRD this keeps the CEL
// rules and the Go list the same.
func TestForbiddenConfigRejected(t *testing.T) {
	testbed.RequireCluster(t)
	for k, reason := range forbiddenSamples() {
		t.Run(k, func(t *testing.T) {
			r := validCluster("example")
			r.Spec.Config = redisv1alpha1.RedisConfig{k: "1", "maxclients": "100"}
			checkErr(t, k8s.Create(context.Background(), r, client.DryRunAll),
				[]string{"spec.config", "config " + k + " cannot be set: " + reason})
		})
	}
	// Keys close to forbidden ones are the user's.
	r := validCluster("example")
	r.Spec.Config = redisv1alpha1.RedisConfig{}
	for _, k := range allowedKeys {
		r.Spec.Config[k] = allowedValue(k)
	}
	checkErr(t, k8s.Create(context.Background(), r, client.DryRunAll), nil)
}

// allowedValue is a value admission accepts for the allowed key k.
func allowedValue(k string) string {
	switch k {
	case "maxmemory":
		return "1gb"
	case "save":
		return "3600 1"
	case "cluster-node-timeout":
		return "15000"
	case "cluster-link-sendbuf-limit", "acllog-max-len", "tcp-backlog", "timeout", "tcp-keepalive",
		"cluster-replica-validity-factor", "replica-priority", "maxclients", "io-threads", "hz":
		return "10"
	case "notify-keyspace-events":
		return "Ex"
	case "client-output-buffer-limit":
		return "normal 0 0 0"
	case "oom-score-adj":
		return "relative"
	}
	return "yes"
}

// TestConfigValues sends configCases (config_keys_test.go), the value
// checks, to the API server.
func TestConfigValues(t *testing.T) {
	testbed.RequireCluster(t)
	for name, tc := range configCases {
		t.Run(name, func(t *testing.T) {
			r := validCluster("example")
			r.Spec.Config = tc.config
			want := tc.wantErr
			if len(want) > 0 {
				want = append([]string{"spec.config"}, want...)
			}
			checkErr(t, k8s.Create(context.Background(), r, client.DryRunAll), want)
		})
	}
}

// TestRedisClusterTransitions creates a cluster and changes it: the
// transition rules compare with the stored object.
func TestRedisClusterTransitions(t *testing.T) {
	testbed.RequireCluster(t)
	tests := []struct {
		name    string
		from    func(*redisv1alpha1.RedisCluster)
		to      func(*redisv1alpha1.RedisCluster)
		wantErr []string
	}{
		{name: "upgrade 7.0.15 to 7.2.4",
			from: func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.0.15" },
			to:   func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.2.4" }},
		{name: "patch downgrade 7.0.15 to 7.0.11",
			from: func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.0.15" },
			to:   func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.0.11" }},
		{name: "major upgrade 7.2.4 to 8.0.0",
			from: func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.2.4" },
			to:   func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "8.0.0" }},
		{name: "downgrade 7.2.0 to 7.0.15",
			from:    func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.2.0" },
			to:      func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.0.15" },
			wantErr: []string{"spec.version", "cannot downgrade Redis from 7.2.0 to 7.0.15: an older minor version cannot read the data files a newer one wrote"}},
		{name: "downgrade 8.0.0 to 7.2.4",
			from:    func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "8.0.0" },
			to:      func(r *redisv1alpha1.RedisCluster) { r.Spec.Version = "7.2.4" },
			wantErr: []string{"spec.version", "cannot downgrade Redis from 8.0.0 to 7.2.4"}},
		// While cluster is the only mode, the enum rejects a change before
		// the transition rule (mode cannot be changed) runs.
		{name: "mode change",
			from:    func(*redisv1alpha1.RedisCluster) {},
			to:      func(r *redisv1alpha1.RedisCluster) { r.Spec.Mode = "sentinel" },
			wantErr: []string{"spec.mode", `Unsupported value: "sentinel": supported values: "cluster"`}},
		{name: "scale out and in",
			from: func(*redisv1alpha1.RedisCluster) {},
			to:   func(r *redisv1alpha1.RedisCluster) { r.Spec.Size = 6; r.Spec.ReplicasPerShard = ptr.To[int32](2) }},
		{name: "config change",
			from: func(r *redisv1alpha1.RedisCluster) { r.Spec.Config = redisv1alpha1.RedisConfig{"maxmemory": "1gb"} },
			to: func(r *redisv1alpha1.RedisCluster) {
				r.Spec.Config = redisv1alpha1.RedisConfig{"maxmemory": "2gb", "maxmemory-policy": "allkeys-lru"}
			}},
		{name: "config change to a forbidden key",
			from:    func(r *redisv1alpha1.RedisCluster) { r.Spec.Config = redisv1alpha1.RedisConfig{"maxmemory": "1gb"} },
			to:      func(r *redisv1alpha1.RedisCluster) { r.Spec.Config["port"] = "6380" },
			wantErr: []string{"spec.config", "config port cannot be set"}},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validCluster(fmt.Sprintf("transition-%d", i))
			tt.from(r)
			if err := k8s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = k8s.Delete(ctx, r) })
			tt.to(r)
			checkErr(t, k8s.Update(ctx, r), tt.wantErr)
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

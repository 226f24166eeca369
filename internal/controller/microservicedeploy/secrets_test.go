package microservicedeploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"opsmith.io/opsmith/test/managertest"
	"opsmith.io/opsmith/test/testbed"
)

// syncBuffer is a log sink safe for the manager's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestConfigSecretStaysSecret: the values of the Secret named in
// configSecretRef reach the pods only as a reference (envFrom secretRef),
// and never appear in a ConfigMap, an event or a log line of the operator,
// which is not even allowed to read Secrets. A manager scoped to the
// test's namespace logs at the most verbose level into a buffer that is
// searched for the values.
func TestConfigSecretStaysSecret(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	// Random-looking values that appear nowhere else, generated per run.
	password, token := "pw-"+rand.Text(), "tok-"+rand.Text()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ms-secrets"},
		StringData: map[string]string{"DB_PASSWORD": password, "API_TOKEN": token}}
	if err := suite.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	opts := suite.Options
	opts.Namespaces = []string{ns}
	opts.Logger = zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-10)))
	stop, err := managertest.Start(ctx, suite.Cluster.Config, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	m := instance(ns, "ms-sample-v1s0", "v1")
	m.Spec.Config = "log.level=debug"
	m.Spec.ConfigSecretRef = &corev1.LocalObjectReference{Name: secret.Name}
	if err := suite.Client.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	var dep *appsv1.Deployment
	eventually(t, "Deployment exports the Secret", func() error {
		dep = &appsv1.Deployment{}
		if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(m), dep); err != nil {
			return err
		}
		for _, src := range dep.Spec.Template.Spec.Containers[0].EnvFrom {
			if src.SecretRef != nil && src.SecretRef.Name == secret.Name {
				return nil
			}
		}
		return fmt.Errorf("envFrom %+v has no secretRef %s", dep.Spec.Template.Spec.Containers[0].EnvFrom, secret.Name)
	})
	markReady(t, ns, m.Name)
	waitPhase(t, ns, m.Name, "Running")
	time.Sleep(2 * syncPeriod) // resyncs of both managers log again

	leaks := func(where, text string) {
		for _, v := range []string{password, token} {
			if strings.Contains(text, v) {
				t.Errorf("the Secret's value %q appears in %s", v, where)
			}
		}
	}
	depJSON, _ := yaml.Marshal(dep)
	leaks("the Deployment", string(depJSON))
	cms := &corev1.ConfigMapList{}
	if err := suite.Client.List(ctx, cms, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	sawConfig := false
	for _, cm := range cms.Items {
		data, _ := yaml.Marshal(cm)
		leaks("ConfigMap "+cm.Name, string(data))
		sawConfig = sawConfig || cm.Data["log.level"] == "debug"
	}
	if !sawConfig {
		t.Errorf("no ConfigMap holds the plain config (%d ConfigMaps): the test looked in the wrong place", len(cms.Items))
	}
	evs := &eventsv1.EventList{}
	if err := suite.Client.List(ctx, evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) == 0 {
		t.Error("no events recorded: the test looked in the wrong place")
	}
	for _, e := range evs.Items {
		leaks("event "+e.Name, e.Note)
	}
	if !strings.Contains(logs.String(), ns) {
		t.Fatalf("the scoped manager logged nothing about namespace %s:\n%.2000s", ns, logs.String())
	}
	leaks("the operator's log", logs.String())

	// The operator's ClusterRole grants on Secrets only what RedisCluster
	// needs for its password and redis.conf: get by name, create, patch.
	// It cannot list or watch Secrets, so it cannot come across the value
	// of one it was not told about (this one included).
	data, err := os.ReadFile(filepath.Join(testbed.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatal(err)
	}
	for _, rule := range role.Rules {
		for _, res := range rule.Resources {
			if res == "*" || (res == "secrets" && !slices.Equal(rule.Verbs, []string{"create", "get", "patch"})) {
				t.Errorf("the manager's ClusterRole grants %v on %s", rule.Verbs, res)
			}
		}
	}
}

//go:build realnode

package e2enode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/test/operator"
	"opsmith.io/opsmith/test/testbed"
)

// echoInstance is a MicroServiceDeploy of one http-echo pod (which serves
// on the default port, 8080).
func echoInstance(ns, name string) *appsv1alpha1.MicroServiceDeploy {
	return &appsv1alpha1.MicroServiceDeploy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1alpha1.MicroServiceDeploySpec{
			MsName:   name,
			Version:  "1.0",
			Path:     "v1",
			Image:    httpEchoImage,
			Replicas: 1,
		},
	}
}

// waitInstanceRunning waits until the instance is Running for its current
// generation with exactly one pod, ready and not terminating, and returns
// that pod.
func waitInstanceRunning(t *testing.T, ctx context.Context, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	testbed.Eventually(t, 3*time.Minute, name+" Running with one ready pod", func() error {
		var m appsv1alpha1.MicroServiceDeploy
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &m); err != nil {
			return err
		}
		if m.Status.Phase != appsv1alpha1.PhaseRunning || m.Status.ObservedGeneration != m.Generation {
			return fmt.Errorf("status: phase %q, observed generation %d of %d, conditions %+v",
				m.Status.Phase, m.Status.ObservedGeneration, m.Generation, m.Status.Conditions)
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: microservicedeploy.LabelInstance + "=" + name})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods, want 1", len(pods.Items))
		}
		p := &pods.Items[0]
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || len(p.Status.ContainerStatuses) != 1 ||
			!p.Status.ContainerStatuses[0].Ready || p.Status.ContainerStatuses[0].ContainerID == "" {
			return fmt.Errorf("pod %s is %s, not ready", p.Name, p.Status.Phase)
		}
		pod = p
		return nil
	})
	return pod
}

// containerProcess returns the host PID of the first process of a
// container ("containerd://<id>"): the one whose cgroup path names the
// container's ID.
func containerProcess(containerID string) (int, error) {
	_, id, ok := strings.Cut(containerID, "://")
	if !ok || len(id) < 12 {
		return 0, fmt.Errorf("container ID %q", containerID)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	found := 0
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil || !bytes.Contains(data, []byte(id)) {
			continue
		}
		if found == 0 || pid < found {
			found = pid
		}
	}
	if found == 0 {
		return 0, fmt.Errorf("no process on the host in the cgroup of container %s", id)
	}
	return found, nil
}

// processEnv reads the environment a process was started with.
func processEnv(pid int) (map[string]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for kv := range bytes.SplitSeq(data, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// TestMicroServiceConfigSecretReachesTheProcess: the keys of the Secret a
// MicroServiceDeploy names in configSecretRef are environment variables,
// with their values, of the microservice's running process (read on the
// node from /proc/<pid>/environ of the container's process), next to the
// config properties; and the values appear in no ConfigMap, no event, not
// in the pod or its spec, and not in the log of either opsmith manager
// pod. (internal/controller/microservicedeploy's TestConfigSecretStaysSecret
// covers the operator's verbose log and RBAC; this covers the way to the
// process.)
func TestMicroServiceConfigSecretReachesTheProcess(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, k8s)
	dumpOnFailure(t, ns)

	// Values that appear nowhere else, new each run.
	password, token := "pw-"+rand.Text(), "tok-"+rand.Text()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo-secrets"},
		StringData: map[string]string{"DB_PASSWORD": password, "API_TOKEN": token}}
	if err := k8s.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	m := echoInstance(ns, "echo")
	m.Spec.Config = "mode=e2e\nPORT=8080"
	m.Spec.ConfigSecretRef = &corev1.LocalObjectReference{Name: secret.Name}
	if err := k8s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	pod := waitInstanceRunning(t, ctx, ns, m.Name)

	pid, err := containerProcess(pod.Status.ContainerStatuses[0].ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	env, err := processEnv(pid)
	if err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	for k, want := range map[string]string{"DB_PASSWORD": password, "API_TOKEN": token, "mode": "e2e", "PORT": "8080"} {
		if got, ok := env[k]; !ok || got != want {
			t.Errorf("process %d (%s) of pod %s: $%s = %q (set: %v), want %q", pid,
				strings.ReplaceAll(string(cmdline), "\x00", " "), pod.Name, k, got, ok, want)
		}
	}
	t.Logf("process %d of pod %s has DB_PASSWORD and API_TOKEN from Secret %s in its environment", pid, pod.Name, secret.Name)

	leaks := func(what string, v any) {
		t.Helper()
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for name, value := range map[string]string{"DB_PASSWORD": password, "API_TOKEN": token} {
			if bytes.Contains(data, []byte(value)) {
				t.Errorf("the value of %s appears in %s", name, what)
			}
		}
	}
	// The pod carries a reference to the Secret, not its values.
	refersToSecret := false
	for _, from := range pod.Spec.Containers[0].EnvFrom {
		refersToSecret = refersToSecret || (from.SecretRef != nil && from.SecretRef.Name == secret.Name)
	}
	if !refersToSecret {
		t.Errorf("pod %s has no envFrom secretRef %s: %+v", pod.Name, secret.Name, pod.Spec.Containers[0].EnvFrom)
	}
	leaks("pod "+pod.Name, pod)

	cms, err := cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sawConfig := false
	for _, cm := range cms.Items {
		leaks("ConfigMap "+cm.Namespace+"/"+cm.Name, cm)
		sawConfig = sawConfig || (cm.Namespace == ns && cm.Name == microservicedeploy.ConfigMapName(m) && cm.Data["mode"] == "e2e")
	}
	if !sawConfig {
		t.Errorf("no ConfigMap %s/%s with the config property mode=e2e", ns, microservicedeploy.ConfigMapName(m))
	}
	events, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events.Items {
		leaks("event "+ev.Namespace+"/"+ev.Name, ev)
	}

	managers, err := cs.CoreV1().Pods(operator.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
	if err != nil {
		t.Fatal(err)
	}
	logged := 0
	for _, p := range managers.Items {
		out, err := operator.Kubectl(cluster, "-n", operator.Namespace, "logs", "--all-containers", p.Name)
		if err != nil {
			t.Fatal(err)
		}
		logged += len(out)
		leaks("the log of manager pod "+p.Name, out)
	}
	if len(managers.Items) == 0 || logged == 0 {
		t.Fatalf("no manager log read (%d manager pods, %d bytes)", len(managers.Items), logged)
	}
	t.Logf("the values are in none of %d ConfigMaps, %d events, the pod, and %d bytes of log of %d manager pods",
		len(cms.Items), len(events.Items), logged, len(managers.Items))
}

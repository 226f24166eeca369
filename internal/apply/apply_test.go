package apply

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/utils/ptr"
)

func TestSubset(t *testing.T) {
	tests := []struct {
		name      string
		want, got string
		match     bool
	}{
		{"equal scalars", `{"a":1}`, `{"a":1}`, true},
		{"different scalar", `{"a":1}`, `{"a":2}`, false},
		{"missing key", `{"a":1}`, `{}`, false},
		{"extra keys in live are fine", `{"a":1}`, `{"a":1,"b":2}`, true},
		{"nested maps", `{"a":{"b":{"c":"x"}}}`, `{"a":{"b":{"c":"x","d":1}}}`, true},
		{"nested difference", `{"a":{"b":{"c":"x"}}}`, `{"a":{"b":{"c":"y"}}}`, false},
		{"object list with defaults added", `{"l":[{"n":"a"}]}`, `{"l":[{"n":"a","d":true}]}`, true},
		{"object list with an extra trailing entry", `{"l":[{"n":"a"}]}`, `{"l":[{"n":"a"},{"n":"b"}]}`, true},
		{"object list entry removed", `{"l":[{"n":"a"},{"n":"b"}]}`, `{"l":[{"n":"a"}]}`, false},
		{"scalar list must match exactly", `{"l":["a"]}`, `{"l":["a","b"]}`, false},
		{"scalar list equal", `{"l":["a","b"]}`, `{"l":["a","b"]}`, true},
		{"empty map wanted, absent in live", `{"m":{}}`, `{}`, true},
		{"type mismatch", `{"m":{"a":1}}`, `{"m":"x"}`, false},
		{"null in live", `{"m":{"a":1}}`, `{"m":null}`, false},
		{"false matches an omitted field", `{"b":false,"n":0,"s":""}`, `{}`, true},
		{"true does not match an omitted field", `{"b":true}`, `{}`, false},
		{"zero does not match another value", `{"n":0}`, `{"n":1}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want, got map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.got), &got); err != nil {
				t.Fatal(err)
			}
			if m := subset(want, got); m != tt.match {
				t.Errorf("subset(%s, %s) = %v, want %v", tt.want, tt.got, m, tt.match)
			}
		})
	}
}

// live builds the Deployment an API server would return for desired:
// desired's fields plus defaults and server-set metadata.
func liveFrom(t *testing.T, desired *appsv1ac.DeploymentApplyConfiguration) *appsv1.Deployment {
	t.Helper()
	u, err := desiredWithHash(desired)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{}
	if err := json.Unmarshal(data, dep); err != nil {
		t.Fatal(err)
	}
	dep.TypeMeta = metav1.TypeMeta{} // caches drop it
	dep.UID, dep.ResourceVersion, dep.Generation = "uid-1", "42", 3
	dep.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	dep.Spec.Template.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log"
	dep.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	dep.Status.Replicas = 2
	return dep
}

func desiredDeployment(image string, replicas int32) *appsv1ac.DeploymentApplyConfiguration {
	return appsv1ac.Deployment("web", "ns").
		WithLabels(map[string]string{"app": "web"}).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithSpec(corev1ac.PodSpec().
					WithContainers(corev1ac.Container().WithName("app").WithImage(image)))))
}

func TestMatchesLiveObject(t *testing.T) {
	desired := desiredDeployment("nginx:1", 2)
	live := liveFrom(t, desired)
	u, err := desiredWithHash(desired)
	if err != nil {
		t.Fatal(err)
	}

	if ok, err := Matches(u.Object, live); err != nil || !ok {
		t.Fatalf("live object built from desired does not match: %v %v", ok, err)
	}

	drifted := live.DeepCopy()
	drifted.Spec.Replicas = ptr.To[int32](5)
	if ok, _ := Matches(u.Object, drifted); ok {
		t.Error("replicas changed by hand still match")
	}

	// A spec change that only removes a field is caught by the hash.
	// Without the label: a subset of the live object, but a new state.
	removed := desiredDeployment("nginx:1", 2)
	removed.Labels = nil
	changed, err := desiredWithHash(removed)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := Matches(changed.Object, live); ok {
		t.Error("changed desired state matches the old live object")
	}
	withExtra := live.DeepCopy()
	withExtra.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LEFTOVER", Value: "1"}}
	if ok, _ := Matches(u.Object, withExtra); !ok {
		t.Error("fields the desired state does not set must not matter")
	}
}

func TestHashIsStable(t *testing.T) {
	a, _ := desiredWithHash(desiredDeployment("nginx:1", 2))
	b, _ := desiredWithHash(desiredDeployment("nginx:1", 2))
	c, _ := desiredWithHash(desiredDeployment("nginx:2", 2))
	ha, hb, hc := a.GetAnnotations()[HashAnnotation], b.GetAnnotations()[HashAnnotation], c.GetAnnotations()[HashAnnotation]
	if ha == "" || ha != hb {
		t.Errorf("same desired state, hashes %q and %q", ha, hb)
	}
	if ha == hc {
		t.Errorf("different desired states share hash %q", ha)
	}
}

package apply

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
)

func TestFlushRecordsOneEventPerReconcile(t *testing.T) {
	rec := events.NewFakeRecorder(10)
	c := &Children{Recorder: rec}
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns"}}

	c.Flush(owner)
	if len(rec.Events) != 0 {
		t.Fatalf("Flush without writes recorded %q", <-rec.Events)
	}

	c.written = append(c.written, write{"Deployment", "web", Created}, write{"Service", "web", Created})
	c.Flush(owner)
	if got, want := <-rec.Events, "Normal Created Deployment web created; Service web created"; got != want {
		t.Errorf("event %q, want %q", got, want)
	}

	c.written = append(c.written, write{"Deployment", "web", Updated}, write{"HorizontalPodAutoscaler", "web", deleted})
	c.Flush(owner)
	if got, want := <-rec.Events, "Normal Applied Deployment web updated; HorizontalPodAutoscaler web deleted"; got != want {
		t.Errorf("event %q, want %q", got, want)
	}

	c.Flush(owner)
	if len(rec.Events) != 0 {
		t.Fatalf("a second Flush recorded %q again", <-rec.Events)
	}
}

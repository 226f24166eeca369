package apply

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
)

func TestRejected(t *testing.T) {
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns"}}
	pvcs := schema.GroupResource{Resource: "persistentvolumeclaims"}
	quota := apierrors.NewForbidden(pvcs, "db-0", errors.New("exceeded quota: q, requested: persistentvolumeclaims=1, used: persistentvolumeclaims=0, limited: persistentvolumeclaims=0"))

	rec := events.NewFakeRecorder(10)
	err := Rejected(rec, owner, "PersistentVolumeClaim", "db-0", fmt.Errorf("creating: %w", quota))
	blocked, retry := Split(err)
	if blocked == nil || blocked.Reason != ReasonApplyFailed {
		t.Fatalf("Split(%v) = %v, want an ApplyFailed block", err, blocked)
	}
	if want := "PersistentVolumeClaim db-0 rejected by the API server: " + quota.ErrStatus.Message; blocked.Message != want {
		t.Errorf("message %q, want %q", blocked.Message, want)
	}
	if !apierrors.IsForbidden(retry) {
		t.Errorf("retry error %v, want the API server's error (retried with backoff)", retry)
	}
	if ev := <-rec.Events; !strings.HasPrefix(ev, "Warning ApplyFailed PersistentVolumeClaim db-0 rejected: ") || !strings.Contains(ev, "exceeded quota") {
		t.Errorf("event %q", ev)
	}

	// Other errors, and no error, pass through without an event.
	transient := errors.New("connection refused")
	if err := Rejected(rec, owner, "Pod", "db-0", transient); err != transient {
		t.Errorf("Rejected(transient) = %v", err)
	}
	if err := Rejected(rec, owner, "Pod", "db-0", nil); err != nil {
		t.Errorf("Rejected(nil) = %v", err)
	}
	if len(rec.Events) != 0 {
		t.Errorf("unexpected event %q", <-rec.Events)
	}
}

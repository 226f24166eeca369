package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Children writes the objects a custom resource controls, with the
// safeguards every opsmith controller needs: objects of the same name that
// belong to someone else are never taken over, orphans opsmith labelled for
// the owner are adopted, writes happen only when something changed, and
// the writes are recorded as events on the owner (one event per Flush, not
// one per child: each event is an API write of its own).
//
// A Children serves one reconcile of one owner.
type Children struct {
	// Client reads from the manager's cache (which holds only objects
	// labelled LabelManagedBy) and writes to the API server.
	Client client.Client
	// APIReader reads from the API server; used only when the cache has no
	// object of the child's name, to tell "missing" from "not ours".
	APIReader    client.Reader
	Recorder     events.EventRecorder
	FieldManager string
	// OwnerKind is the owner's kind, for messages.
	OwnerKind string
	// OwnerLabel is the label that names the owner on its children.
	OwnerLabel string

	// written lists the writes made since the last Flush, in order.
	written []write
}

// write is one child object Ensure or Remove wrote.
type write struct {
	kind, name string
	result     Result
}

// LabelManagedBy marks the objects opsmith writes; ManagedByValue is its
// value. Manager caches hold only child objects that carry it.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "opsmith"
)

// Ensure makes the child described by desired exist as desired. live is an
// empty object of the child's type with the child's name set; it is filled
// with the object as observed (after a write: as the API server returned
// it), and found says whether it exists. A *BlockedError means the child
// cannot be written now: an object of its name belongs to someone else
// (NameConflict), or the API server rejected its content (ApplyFailed,
// recorded as a Warning event on owner, with the API server's error as Err
// so that the reconcile is retried with backoff).
func (c *Children) Ensure(ctx context.Context, owner client.Object, kind string,
	desired runtime.ApplyConfiguration, live client.Object) (found bool, err error) {
	name := live.GetName()
	key := client.ObjectKey{Namespace: owner.GetNamespace(), Name: name}
	found, cached, err := observe(ctx, c.Client, c.APIReader, kind, key, live)
	if err != nil {
		return false, err
	}
	switch {
	case found && cached && !c.ownedBy(live, owner):
		return true, foreign(Blocked(ReasonNameConflict,
			"%s %s is controlled by another owner (an earlier object of this name still being deleted?)", kind, name))
	case found && !c.ownedBy(live, owner):
		return false, foreign(Blocked(ReasonNameConflict,
			"a %s named %s already exists and is not managed by this %s; rename or delete it", kind, name, c.OwnerKind))
	}
	var current client.Object
	if found {
		current = live
	}
	res, err := (&Applier{Client: c.Client, FieldManager: c.FieldManager}).ApplyObserved(ctx, desired, current, live)
	if err != nil {
		return found, rejected(c.Recorder, owner, kind, name, err)
	}
	if res != Unchanged {
		log.FromContext(ctx).Info("applied child", "kind", kind, "child", name, "result", res)
		c.written = append(c.written, write{kind, name, res})
	}
	return true, nil
}

// foreign marks a block by an object the owner's watches do not see.
func foreign(b *BlockedError) *BlockedError {
	b.RecheckAfter = RecheckForeign
	return b
}

// rejected turns the API server's refusal of an object's content (for
// example a node port another Service holds, a value the API server
// validates) or a refusal by policy or quota into a BlockedError that
// carries the API server's message, recorded as a Warning event on owner;
// other errors are returned as they are. The block keeps the error, so the
// write is retried with backoff: the obstacle may go away.
func rejected(rec events.EventRecorder, owner client.Object, kind, name string, err error) error {
	if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) && !apierrors.IsBadRequest(err) {
		return err
	}
	if rec != nil {
		rec.Eventf(owner, nil, corev1.EventTypeWarning, ReasonApplyFailed, "Apply", "%s %s rejected: %v", kind, name, err)
	}
	return &BlockedError{Reason: ReasonApplyFailed, Err: err,
		Message: fmt.Sprintf("%s %s rejected by the API server: %v", kind, name, apiMessage(err))}
}

// apiMessage is the API server's own message of a status error (what a
// user sees from kubectl), without the client's wrapping.
func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

// Flush records the writes made since the last Flush as one Normal event on
// owner, and forgets them. Its reason is the one result all the writes had
// (Created, Updated, Deleted), or Applied when they differ; the message
// names every child and what happened to it. Call it once at the end of
// the reconcile, also when the reconcile failed part way.
func (c *Children) Flush(owner client.Object) {
	if len(c.written) == 0 {
		return
	}
	reason := string(c.written[0].result)
	parts := make([]string, 0, len(c.written))
	for _, w := range c.written {
		if string(w.result) != reason {
			reason = "Applied"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", w.kind, w.name, lowerResult(w.result)))
	}
	c.written = c.written[:0]
	c.Recorder.Eventf(owner, nil, corev1.EventTypeNormal, reason, "Apply", "%s", strings.Join(parts, "; "))
}

// Remove deletes the child named like live if it exists and belongs to
// owner: for children that are no longer wanted (an autoscaler after
// autoscaling was turned off).
func (c *Children) Remove(ctx context.Context, owner client.Object, kind string, live client.Object) error {
	key := client.ObjectKey{Namespace: owner.GetNamespace(), Name: live.GetName()}
	if err := c.Client.Get(ctx, key, live); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !c.ownedBy(live, owner) {
		return nil
	}
	if err := c.Client.Delete(ctx, live, client.Preconditions{UID: ptrTo(live.GetUID())}); err != nil {
		return client.IgnoreNotFound(err)
	}
	log.FromContext(ctx).Info("deleted child", "kind", kind, "child", key.Name)
	c.written = append(c.written, write{kind, key.Name, deleted})
	return nil
}

// observe reads the object named key into live: from the cache, or from
// the API server when the cache does not have it (the cache holds only
// objects labelled LabelManagedBy, so a miss may still be an object of
// that name that opsmith did not make). found says whether it exists,
// cached whether the cache had it.
func observe(ctx context.Context, cache, api client.Reader, kind string, key client.ObjectKey,
	live client.Object) (found, cached bool, err error) {
	err = cache.Get(ctx, key, live)
	if err == nil {
		return true, true, nil
	}
	if !apierrors.IsNotFound(err) {
		return false, false, fmt.Errorf("reading %s %s: %w", kind, key, err)
	}
	if err := api.Get(ctx, key, live); err != nil {
		if apierrors.IsNotFound(err) {
			live.SetName(key.Name)
			return false, false, nil
		}
		return false, false, fmt.Errorf("reading %s %s: %w", kind, key, err)
	}
	return true, false, nil
}

// ownedBy reports whether obj belongs to owner: controlled by it, or an
// orphan that opsmith labelled for it (left behind by a delete with
// --cascade=orphan), which is adopted.
func (c *Children) ownedBy(obj, owner client.Object) bool {
	if ref := metav1.GetControllerOf(obj); ref != nil {
		return ref.UID == owner.GetUID()
	}
	return obj.GetLabels()[c.OwnerLabel] == owner.GetName() && obj.GetLabels()[LabelManagedBy] == ManagedByValue
}

// deleted is the result Remove records.
const deleted Result = "Deleted"

func lowerResult(r Result) string {
	return strings.ToLower(string(r))
}

func ptrTo[T any](v T) *T { return &v }

package apply

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WriteStatus sets *status (the status field of obj) to desired and patches
// obj's status subresource, but only when desired differs from what is
// stored: an unchanged status costs no request.
func WriteStatus[S any](ctx context.Context, c client.Client, obj client.Object, status *S, desired S) error {
	if equality.Semantic.DeepEqual(*status, desired) {
		return nil
	}
	return patchStatus(ctx, c, obj, status, desired)
}

// patchStatus sets *status to desired and patches obj's status
// subresource with the difference.
func patchStatus[S any](ctx context.Context, c client.Client, obj client.Object, status *S, desired S) error {
	base, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("copying %T", obj)
	}
	*status = desired
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("writing status of %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// Pacer holds back status writes that report only progress, so that an
// object that settles within Delay costs one status write (its outcome)
// instead of one per step on the way: a new object whose pods come up
// within Delay is written once, Running, instead of Progressing and then
// Running; a rollout that completes within Delay is written once. Every
// status write of a custom resource is a full write of the object on the
// API server (decoded, validated and stored as JSON, sent to every
// watcher), so on a busy cluster the intermediate writes cost as much as
// the children's. A held status is written when Delay has passed since the
// first status was held, if the object has not settled by then: a status
// lags by at most Delay, and never when it reports an outcome (done,
// failed, blocked), which is written at once.
//
// One Pacer serves one controller; its reconciles may run concurrently,
// never for the same object.
type Pacer struct {
	// Delay is how long a progress-only status may be held; 0 holds none.
	Delay time.Duration
	// Now tells the time the pacer measures Delay with; nil is time.Now.
	// Tests set it to make the holding independent of how fast the
	// machine runs.
	Now func() time.Time

	mu   sync.Mutex
	held map[types.NamespacedName]heldSince
}

// heldSince is when a progress-only status of an object (by UID: a new
// object of the same name starts afresh) was first held back.
type heldSince struct {
	uid   types.UID
	since time.Time
}

// Forget drops what the pacer remembers of an object (call it when the
// object is gone).
func (p *Pacer) Forget(key types.NamespacedName) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.held, key)
}

// now is the pacer's time.
func (p *Pacer) now() time.Time {
	if p == nil || p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// hold reports how much longer a progress-only status of obj is held back;
// 0 means write it now (and stop holding).
func (p *Pacer) hold(obj client.Object, now time.Time) time.Duration {
	if p == nil || p.Delay <= 0 {
		return 0
	}
	key := client.ObjectKeyFromObject(obj)
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.held[key]
	if !ok || h.uid != obj.GetUID() {
		if p.held == nil {
			p.held = map[types.NamespacedName]heldSince{}
		}
		p.held[key] = heldSince{uid: obj.GetUID(), since: now}
		return p.Delay
	}
	if left := p.Delay - now.Sub(h.since); left > 0 {
		return left
	}
	delete(p.held, key)
	return 0
}

// WriteStatusPaced is WriteStatus for a status that the pacer may hold
// back: progress says that desired reports only progress (not an
// outcome). It returns how long the status is held (reconcile again after
// that long; 0 when nothing is held).
func WriteStatusPaced[S any](ctx context.Context, c client.Client, p *Pacer, obj client.Object, status *S, desired S,
	progress bool) (time.Duration, error) {
	if equality.Semantic.DeepEqual(*status, desired) {
		p.Forget(client.ObjectKeyFromObject(obj))
		return 0, nil
	}
	if progress {
		if left := p.hold(obj, p.now()); left > 0 {
			return left, nil
		}
	} else {
		p.Forget(client.ObjectKeyFromObject(obj))
	}
	return 0, patchStatus(ctx, c, obj, status, desired)
}

package apply

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Shared writes objects that no single custom resource controls: objects
// several of them own together (the Service that every instance of a
// microservice path owns with a plain owner reference) and cluster-wide or
// namespace-wide ones (a PriorityClass, a ResourceQuota). Whose they are
// cannot be read from a controller reference, so the caller says: ours
// reports whether a live object of the name is one opsmith made for this
// purpose. Otherwise the safeguards are those of Children: a foreign object
// of the same name is never taken over, a write happens only when
// something changed, and a rejection by the API server is a BlockedError
// carrying its message.
type Shared struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server when the cache has no object of
	// the name.
	APIReader    client.Reader
	Recorder     events.EventRecorder
	FieldManager string
}

// Ensure applies desired to the object named like live (filled with the
// object as observed). The reconcile's own resource, by, gets the Warning
// event when the API server rejects the object.
func (s *Shared) Ensure(ctx context.Context, by client.Object, kind string, desired runtime.ApplyConfiguration,
	live client.Object, ours func(client.Object) bool) error {
	key := client.ObjectKeyFromObject(live)
	found, cached, err := observe(ctx, s.Client, s.APIReader, kind, key, live)
	if err != nil {
		return err
	}
	// The cache holds only objects opsmith labelled; one the API server
	// has must pass ours.
	if found && !cached && !ours(live) {
		return foreign(Blocked(ReasonNameConflict,
			"a %s named %s already exists and was not made by opsmith; rename or delete it", kind, key.Name))
	}
	var current client.Object
	if found {
		current = live
	}
	res, err := (&Applier{Client: s.Client, FieldManager: s.FieldManager}).ApplyObserved(ctx, desired, current, live)
	if err != nil {
		return rejected(s.Recorder, by, kind, key.Name, err)
	}
	if res != Unchanged {
		log.FromContext(ctx).Info("applied shared object", "kind", kind, "object", key.Name, "result", res)
	}
	return nil
}

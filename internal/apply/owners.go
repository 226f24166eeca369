package apply

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SetOwners makes the owner references of every object in objs exactly
// want (none when want is empty), patching only those that differ and
// skipping objects being deleted. Stateful kinds use it for their data
// volumes, owned by the resource only when its reclaim policy deletes
// them, so that a change of policy applies to existing volumes too. A
// patch the API server refuses is reported as Rejected does.
func SetOwners[T client.Object](ctx context.Context, c client.Client, rec events.EventRecorder, owner client.Object,
	kind string, objs map[string]T, want []metav1.OwnerReference) error {
	for _, obj := range objs {
		have := obj.GetOwnerReferences()
		if !obj.GetDeletionTimestamp().IsZero() || equality.Semantic.DeepEqual(have, want) || (len(have) == 0 && len(want) == 0) {
			continue
		}
		base, ok := obj.DeepCopyObject().(client.Object)
		if !ok {
			return fmt.Errorf("copying %s %s: not a client.Object", kind, obj.GetName())
		}
		obj.SetOwnerReferences(want)
		if err := Rejected(rec, owner, kind, obj.GetName(), c.Patch(ctx, obj, client.MergeFrom(base))); err != nil {
			return fmt.Errorf("setting the owners of %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return nil
}

package apply

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WriteStatus sets *status (the status field of obj) to desired and patches
// obj's status subresource, but only when desired differs from what is
// stored: an unchanged status costs no request.
func WriteStatus[S any](ctx context.Context, c client.Client, obj client.Object, status *S, desired S) error {
	if equality.Semantic.DeepEqual(*status, desired) {
		return nil
	}
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

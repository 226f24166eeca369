package apply

import (
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Rejected is, for a controller that writes a child itself (a plain
// Create, Patch or Delete instead of Children.Ensure), what Ensure does
// with a refusal of the API server: when err says that the API server
// refused the object's content (Invalid, BadRequest) or that a quota or an
// admission policy forbids the write (Forbidden), it returns a
// *BlockedError with reason ReasonApplyFailed and the API server's
// message, records it as a Warning event on owner, and keeps err in the
// block so that the write is retried with backoff. Any other error is
// returned as it is; nil stays nil. kind and name name the child in the
// message.
func Rejected(rec events.EventRecorder, owner client.Object, kind, name string, err error) error {
	if err == nil {
		return nil
	}
	return rejected(rec, owner, kind, name, err)
}

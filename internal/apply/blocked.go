package apply

import (
	"errors"
	"fmt"
	"time"
)

// Reasons a child cannot be written; controllers report them in status.
const (
	ReasonNameConflict = "NameConflict"
	ReasonApplyFailed  = "ApplyFailed"
)

// BlockedError says that a step cannot go on until something outside the
// operator changes: an object of the child's name belongs to someone else,
// the API server rejected the child's content, an invariant does not hold.
// Its Reason and Message go into the owner's status as they are, so the
// message is written for the user.
//
// A phase returns it like any error; Reconcile finds it once with Split
// (or errors.As) and reports it, instead of every phase returning a
// (blocked, err) pair.
type BlockedError struct {
	// Reason is the condition reason, in CamelCase.
	Reason string
	// Message says what blocks the step and, where it can, what would
	// unblock it.
	Message string
	// Err is the error behind the block when retrying may help (the API
	// server's rejection of content that another object's change may make
	// acceptable); nil when only a change to a watched object can unblock
	// the step, so retrying would only repeat the same answer.
	Err error
	// RecheckAfter, when set, is how soon to look again although no
	// watched object changed: the obstacle is an object the operator does
	// not watch (one of another owner's, outside its cache), whose removal
	// sends it no event.
	RecheckAfter time.Duration
}

// RecheckForeign is how often a step blocked by an object of the same
// name that opsmith does not own is looked at again: one read of that
// object, so that deleting it unblocks the owner within this long instead
// of at the next full resync.
const RecheckForeign = time.Minute

// Requeue returns when to reconcile again: the sooner of after (0: not
// planned) and the block's RecheckAfter.
func (e *BlockedError) Requeue(after time.Duration) time.Duration {
	if e == nil || e.RecheckAfter <= 0 || (after > 0 && after < e.RecheckAfter) {
		return after
	}
	return e.RecheckAfter
}

// Blocked returns a BlockedError that waits for a change (no retry).
func Blocked(reason, format string, args ...any) *BlockedError {
	return &BlockedError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func (e *BlockedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Reason, e.Message, e.Err)
	}
	return e.Reason + ": " + e.Message
}

// Unwrap returns the error behind the block, if any.
func (e *BlockedError) Unwrap() error { return e.Err }

// Split separates the outcome of a reconcile's phases into the first
// BlockedError among them (nil when none is blocked), for status, and the
// error to hand back to controller-runtime: every error that is not a
// block, and the errors behind blocks that retrying may clear (Err).
// err may be one error, a wrapped one or an errors.Join of several; the
// first block in the order they were joined wins.
func Split(err error) (*BlockedError, error) {
	if err == nil {
		return nil, nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var first *BlockedError
		var retry []error
		for _, e := range joined.Unwrap() {
			b, r := Split(e)
			if first == nil {
				first = b
			}
			if r != nil {
				retry = append(retry, r)
			}
		}
		return first, errors.Join(retry...)
	}
	var b *BlockedError
	if errors.As(err, &b) {
		return b, b.Err
	}
	return nil, err
}

package etcd

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// serverError is one error the etcd server sends, in both of the forms a
// caller may hold: the EtcdError value the client converts it to
// (rpctypes.Error) and the gRPC status error it arrives as.
type serverError struct {
	converted, grpc error
}

// is reports whether err is, or wraps, e in either form. errors.Is matches
// the converted form by value and the gRPC form through the status error's
// own Is method, so wrapping with fmt.Errorf's %w keeps both recognisable.
func (e serverError) is(err error) bool {
	return errors.Is(err, e.converted) || errors.Is(err, e.grpc)
}

// The server's refusals of a membership change that go away by themselves.
var (
	// errUnhealthy: a membership change within seconds of the previous
	// one, or while a voter is not connected (etcd's strict
	// reconfiguration check).
	errUnhealthy = serverError{rpctypes.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy}
	// errTooManyLearners: the previous learner has not been promoted yet.
	errTooManyLearners = serverError{rpctypes.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners}
	// errLearnerNotReady: the learner has not caught up with the leader.
	errLearnerNotReady = serverError{rpctypes.ErrMemberLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady}
	// errNotSupportedForLearner: the client sent the request to a learner
	// (rpctypes exports only the gRPC form of this one).
	errNotSupportedForLearner = serverError{rpctypes.Error(rpctypes.ErrGRPCNotSupportedForLearner), rpctypes.ErrGRPCNotSupportedForLearner}
	// errLeaderChanged and errNoLeader: a leader election is under way.
	errLeaderChanged = serverError{rpctypes.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged}
	errNoLeader      = serverError{rpctypes.ErrNoLeader, rpctypes.ErrGRPCNoLeader}

	// errMemberNotFound: the member is not (any longer) in the cluster.
	errMemberNotFound = serverError{rpctypes.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound}
)

// Retryable reports whether err, returned by a Client call (possibly
// wrapped), is a refusal that goes away by itself, so that the step is to
// be tried again a little later rather than reported as a failure:
//
//   - ErrLearnerNotReady (Promote), or the server's "learner not ready";
//   - "unhealthy cluster": a membership change within seconds of the
//     previous one;
//   - "too many learner members": the previous learner is not promoted yet;
//   - "rpc not supported for learner": the request reached a learner;
//   - "leader changed" and "no leader": a leader election;
//   - a deadline exceeded: no quorum answered within the call's timeout
//     (members starting, a leader lost). This one is no etcd server error
//     and has no rpctypes value: when the call's deadline has passed, the
//     client returns the context's own error in place of gRPC's
//     DeadlineExceeded status (clientv3.ContextError); the status itself is
//     recognised too, for a deadline that ran out on the server's side.
//
// A cancelled context is not retryable: the caller gave up.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrLearnerNotReady) || errors.Is(err, context.DeadlineExceeded) ||
		status.Code(err) == codes.DeadlineExceeded {
		return true
	}
	for _, e := range []serverError{errUnhealthy, errTooManyLearners, errLearnerNotReady,
		errNotSupportedForLearner, errLeaderChanged, errNoLeader} {
		if e.is(err) {
			return true
		}
	}
	return false
}

package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRetryable classifies the server's errors in every form a Client call
// can return them: as the client converts them (clientv3.ContextError, what
// the membership calls return), as the gRPC status error that arrives from
// the server (a fresh one, equal to rpctypes' only by content), and wrapped
// by this package's calls with %w.
func TestRetryable(t *testing.T) {
	expired, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-expired.Done()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()

	// fromServer is grpcErr as it arrives over the wire: a new status
	// error with the same code and message.
	fromServer := func(grpcErr error) error {
		s := status.Convert(grpcErr)
		return status.Error(s.Code(), s.Message())
	}
	// asClientReturns is what clientv3's membership calls return for err.
	asClientReturns := func(err error) error { return clientv3.ContextError(context.Background(), err) }
	wrap := func(err error) error { return fmt.Errorf("adding learner http://e-3.e:2380: %w", err) }

	retryable := []struct {
		name string
		grpc error
	}{
		{"unhealthy cluster", rpctypes.ErrGRPCUnhealthy},
		{"too many learners", rpctypes.ErrGRPCTooManyLearners},
		{"learner not ready", rpctypes.ErrGRPCLearnerNotReady},
		{"not supported for learner", rpctypes.ErrGRPCNotSupportedForLearner},
		{"leader changed", rpctypes.ErrGRPCLeaderChanged},
		{"no leader", rpctypes.ErrGRPCNoLeader},
	}
	for _, tt := range retryable {
		forms := map[string]error{
			"grpc":                tt.grpc,
			"grpc from server":    fromServer(tt.grpc),
			"converted":           rpctypes.Error(tt.grpc),
			"as client returns":   asClientReturns(fromServer(tt.grpc)),
			"wrapped grpc":        wrap(fromServer(tt.grpc)),
			"wrapped converted":   wrap(asClientReturns(fromServer(tt.grpc))),
			"wrapped twice":       fmt.Errorf("step: %w", wrap(rpctypes.Error(tt.grpc))),
			"joined with another": errors.Join(errors.New("other"), wrap(rpctypes.Error(tt.grpc))),
		}
		for form, err := range forms {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				if !Retryable(err) {
					t.Errorf("Retryable(%v) = false, want true", err)
				}
			})
		}
	}

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"learner not ready (Promote)", ErrLearnerNotReady, true},
		{"learner not ready wrapped", fmt.Errorf("promoting: %w", ErrLearnerNotReady), true},
		{"call timed out", wrap(clientv3.ContextError(expired, status.FromContextError(context.DeadlineExceeded).Err())), true},
		{"deadline exceeded on the server", wrap(status.Error(codes.DeadlineExceeded, "context deadline exceeded")), true},
		{"deadline exceeded", fmt.Errorf("removing member 3: %w", context.DeadlineExceeded), true},
		{"expired context", expired.Err(), true},
		{"canceled context", clientv3.ContextError(canceled, status.FromContextError(context.Canceled).Err()), false},
		{"member not found", wrap(rpctypes.ErrMemberNotFound), false},
		{"peer URL exists", wrap(rpctypes.ErrPeerURLExist), false},
		{"permission denied (grpc)", fromServer(rpctypes.ErrGRPCPermissionDenied), false},
		{"unavailable, not an etcd refusal", status.Error(codes.Unavailable, "connection refused"), false},
		{"only mentions a refusal", errors.New("creating pod: unhealthy cluster, no leader"), false},
		{"leader not in member list", errors.New("moving leadership to 2: leader 1 is not in the member list"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestServerErrorIs: the helpers Promote and Remove use recognise their
// error in every form and nothing else.
func TestServerErrorIs(t *testing.T) {
	tests := []struct {
		name string
		e    serverError
		err  error
		want bool
	}{
		{"member not found, converted", errMemberNotFound, rpctypes.ErrMemberNotFound, true},
		{"member not found, grpc", errMemberNotFound, rpctypes.ErrGRPCMemberNotFound, true},
		{"member not found, wrapped", errMemberNotFound, fmt.Errorf("removing: %w", rpctypes.ErrMemberNotFound), true},
		{"learner not ready, converted", errLearnerNotReady, rpctypes.ErrMemberLearnerNotReady, true},
		{"learner not ready, grpc", errLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady, true},
		{"another error", errMemberNotFound, rpctypes.ErrMemberLearnerNotReady, false},
		{"another grpc error", errLearnerNotReady, rpctypes.ErrGRPCTooManyLearners, false},
		{"nil", errMemberNotFound, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.is(tt.err); got != tt.want {
				t.Errorf("is(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

package apply

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSplit(t *testing.T) {
	conflict := Blocked(ReasonNameConflict, "a Service named web already exists")
	rejection := errors.New("Service web is invalid: spec.ports[0].nodePort: provided port is already allocated")
	rejected := &BlockedError{Reason: ReasonApplyFailed, Message: "Service web rejected", Err: rejection}
	transient := errors.New("connection refused")

	tests := []struct {
		name        string
		err         error
		wantBlocked *BlockedError
		wantRetry   []error // each must be found in the returned error
		wantNil     bool
	}{
		{name: "nil", err: nil, wantNil: true},
		{name: "plain error is retried", err: transient, wantRetry: []error{transient}},
		{name: "a block waits for a change", err: conflict, wantBlocked: conflict, wantNil: true},
		{name: "a rejection is reported and retried", err: rejected, wantBlocked: rejected, wantRetry: []error{rejection}},
		{name: "wrapped block", err: fmt.Errorf("applying: %w", conflict), wantBlocked: conflict, wantNil: true},
		{name: "joined: first block wins, other errors kept",
			err:         errors.Join(nil, transient, conflict, rejected),
			wantBlocked: conflict, wantRetry: []error{transient, rejection}},
		{name: "joined: only blocks that wait", err: errors.Join(conflict, Blocked("Other", "x")), wantBlocked: conflict, wantNil: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, retry := Split(tt.err)
			if b != tt.wantBlocked {
				t.Errorf("blocked = %v, want %v", b, tt.wantBlocked)
			}
			if tt.wantNil && len(tt.wantRetry) == 0 && retry != nil {
				t.Errorf("retry = %v, want nil", retry)
			}
			for _, w := range tt.wantRetry {
				if !errors.Is(retry, w) {
					t.Errorf("retry = %v, does not hold %v", retry, w)
				}
			}
			var inRetry *BlockedError
			if errors.As(retry, &inRetry) {
				t.Errorf("retry error still carries a block: %v", retry)
			}
		})
	}
}

func TestRequeue(t *testing.T) {
	var none *BlockedError
	waits := Blocked(ReasonApplyFailed, "x")
	foreignObj := foreign(Blocked(ReasonNameConflict, "a Service named web already exists"))
	for _, tt := range []struct {
		b     *BlockedError
		after time.Duration
		want  time.Duration
	}{
		{none, 0, 0},
		{none, 5 * time.Second, 5 * time.Second},
		{waits, 0, 0},
		{foreignObj, 0, RecheckForeign},
		{foreignObj, 5 * time.Second, 5 * time.Second},
		{foreignObj, time.Hour, RecheckForeign},
	} {
		if got := tt.b.Requeue(tt.after); got != tt.want {
			t.Errorf("%v.Requeue(%s) = %s, want %s", tt.b, tt.after, got, tt.want)
		}
	}
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"opsmith.io/opsmith/test/hostproc"
)

// serverErr is an error as go-redis returns a server's answer: a value
// whose type has a RedisError method.
type serverErr string

func (e serverErr) Error() string { return string(e) }
func (serverErr) RedisError()     {}

func TestRetryableUnits(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("CLUSTER REPLICATE x on rc-0-1 at 10.0.0.2:6379: %w", err) }
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		err       error
		retryable bool
		auth      bool
	}{
		{serverErr("LOADING Redis is loading the dataset in memory"), true, false},
		{serverErr("TRYAGAIN Multiple keys request during rehashing of slot"), true, false},
		{serverErr("CLUSTERDOWN Hash slot not served"), true, false},
		{serverErr("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true, false},
		{serverErr("BUSY Redis is busy running a script."), true, false},
		{serverErr("ERR Unknown node 0123456789012345678901234567890123456789"), true, false},
		{serverErr("NOAUTH Authentication required."), false, true},
		{serverErr("WRONGPASS invalid username-password pair or user is disabled."), false, true},
		{serverErr("ERR Slot 0 is already busy"), false, false},
		{serverErr("ERR This instance has cluster support disabled"), false, false},
		{context.DeadlineExceeded, true, false},
		{canceled.Err(), false, false},
		{errors.New("LOADING but not from a server"), false, false},
	}
	for _, tt := range tests {
		for _, err := range []error{tt.err, wrap(tt.err)} {
			if got := Retryable(err); got != tt.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			if got := IsAuthError(err); got != tt.auth {
				t.Errorf("IsAuthError(%v) = %v, want %v", err, got, tt.auth)
			}
		}
	}
	if Retryable(nil) || IsAuthError(nil) || IsClusterDisabled(nil) {
		t.Error("nil classified as an error")
	}
}

// TestClassifyRealErrors gets each error from a real redis-server, the way
// Client returns it, and classifies it.
func TestClassifyRealErrors(t *testing.T) {
	bin := hostproc.RequireRedisServer(t)
	g, dir, ctx := hostproc.NewGroup(t), t.TempDir(), context.Background()
	node, err := hostproc.StartRedis(g, bin, hostproc.RedisOptions{Name: "node", Dir: filepath.Join(dir, "node"),
		Cluster: true, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := hostproc.StartRedis(g, bin, hostproc.RedisOptions{Name: "plain", Dir: filepath.Join(dir, "plain")})
	if err != nil {
		t.Fatal(err)
	}
	ep := Endpoint{IP: "127.0.0.1", Port: node.Port, BusPort: node.ClusterPort}
	c := NewClient(Options{Password: testPassword, Timeout: 2 * time.Second})
	defer func() { _ = c.Close() }()
	if err := c.Execute(ctx, Action{Type: ActionAddSlots, Member: "node", Addr: ep, Slots: []SlotRange{{0, 10}}}); err != nil {
		t.Fatal(err)
	}
	free, err := hostproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	rawOn := func(addr, password string, args ...any) error {
		rc := goredis.NewClient(&goredis.Options{Addr: addr, Password: password, DisableIdentity: true, MaxRetries: -1})
		defer func() { _ = rc.Close() }()
		return rc.Do(ctx, args...).Err()
	}
	unknown := strings.Repeat("ab", 20)
	errs := []struct {
		name            string
		err             error
		retryable, auth bool
		disabled        bool
	}{
		{name: "nothing listens", err: c.View(ctx, "gone", Endpoint{IP: "127.0.0.1", Port: free[0]}).Err, retryable: true},
		{name: "REPLICATE before gossip knows the master", err: c.Execute(ctx, Action{Type: ActionReplicate, Member: "node", Addr: ep,
			Peers: []Peer{{Member: "m", ID: unknown}}}), retryable: true},
		{name: "ADDSLOTS of an assigned slot", err: c.Execute(ctx, Action{Type: ActionAddSlots, Member: "node", Addr: ep,
			Slots: []SlotRange{{5, 5}}})},
		{name: "a slot not served", err: fmt.Errorf("GET: %w", rawOn(node.Addr, testPassword, "GET", "somekey")), retryable: true},
		{name: "no password", err: NewClient(Options{}).View(ctx, "node", ep).Err, auth: true},
		{name: "a wrong password", err: NewClient(Options{Password: "wrong"}).View(ctx, "node", ep).Err, auth: true},
		{name: "cluster mode off", err: c.View(ctx, "plain", Endpoint{IP: "127.0.0.1", Port: plain.Port}).Err, disabled: true},
	}
	for _, e := range errs {
		t.Logf("%s: %v", e.name, e.err)
		if e.err == nil {
			t.Errorf("%s: no error", e.name)
			continue
		}
		if Retryable(e.err) != e.retryable || IsAuthError(e.err) != e.auth || IsClusterDisabled(e.err) != e.disabled {
			t.Errorf("%s: %v: Retryable %v, IsAuthError %v, IsClusterDisabled %v; want %v, %v, %v", e.name, e.err,
				Retryable(e.err), IsAuthError(e.err), IsClusterDisabled(e.err), e.retryable, e.auth, e.disabled)
		}
	}
}

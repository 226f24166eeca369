package etcdcluster

import (
	"context"
	"errors"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"opsmith.io/opsmith/internal/etcd"
)

// countingClient is an EtcdClient that only records whether it was closed.
type countingClient struct {
	endpoints []string
	closed    bool
}

func (c *countingClient) Observe(context.Context) (bool, []etcd.Member) { return true, nil }
func (c *countingClient) Execute(context.Context, etcd.Action, []etcd.Member, etcd.Naming) (uint64, bool, error) {
	return 0, false, nil
}
func (c *countingClient) Close() error { c.closed = true; return nil }

func TestClientsKeepOneClientPerClusterAndEndpoints(t *testing.T) {
	var dialed []*countingClient
	dial := func(endpoints []string) (EtcdClient, error) {
		c := &countingClient{endpoints: slices.Clone(endpoints)}
		dialed = append(dialed, c)
		return c, nil
	}
	var p clients
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	three := []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"}

	first, err := p.get(a, three, dial)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.get(a, slices.Clone(three), dial)
	if again != first || len(dialed) != 1 {
		t.Fatalf("same endpoints dialed again: %d dials", len(dialed))
	}
	if other, _ := p.get(b, three, dial); other == first || len(dialed) != 2 {
		t.Fatalf("another cluster shares a client: %d dials", len(dialed))
	}

	// A member replaced: the old client is closed, a new one dialed.
	moved := []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.9:2379"}
	next, _ := p.get(a, moved, dial)
	if next == first || !dialed[0].closed || !slices.Equal(dialed[2].endpoints, moved) {
		t.Fatalf("endpoint change: old closed %v, new %v", dialed[0].closed, dialed[2].endpoints)
	}

	p.forget(a)
	if !dialed[2].closed || p.kept() != 1 {
		t.Fatalf("forget: closed %v, %d kept", dialed[2].closed, p.kept())
	}
	p.forget(a) // nothing kept: no-op

	failing := func([]string) (EtcdClient, error) { return nil, errors.New("no route") }
	if _, err := p.get(a, three, failing); err == nil || p.kept() != 1 {
		t.Fatalf("failed dial: err %v, %d kept", err, p.kept())
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Start(ctx) }()
	cancel()
	if err := <-done; err != nil || !dialed[1].closed || p.kept() != 0 {
		t.Fatalf("manager stop: err %v, b closed %v, %d kept", err, dialed[1].closed, p.kept())
	}
}

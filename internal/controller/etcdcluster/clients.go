package etcdcluster

import (
	"context"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// clients keeps one etcd client per EtcdCluster for as long as the
// cluster's client endpoints stay the same. A converged cluster is
// reconciled every 30 s (etcd health has no watch) and a changing one
// every few hundred milliseconds; dialing for each reconcile would open and
// tear down gRPC connections at that rate, per cluster.
//
// A client is replaced when the endpoint set changes (a member added,
// removed, or given a new pod IP) and closed when its cluster is gone or
// being deleted, has no endpoint left, or the manager stops. gRPC
// reconnects a kept client by itself after a member restarts at the same
// address.
type clients struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*keptClient
}

type keptClient struct {
	endpoints string
	client    EtcdClient
}

// get returns the client of cluster for endpoints (sorted), dialing one
// when there is none for exactly these endpoints.
func (p *clients) get(cluster types.NamespacedName, endpoints []string, dial Dialer) (EtcdClient, error) {
	id := strings.Join(endpoints, ",")
	p.mu.Lock()
	defer p.mu.Unlock()
	if kept := p.m[cluster]; kept != nil {
		if kept.endpoints == id {
			return kept.client, nil
		}
		_ = kept.client.Close()
		delete(p.m, cluster)
	}
	c, err := dial(endpoints)
	if err != nil {
		return nil, err
	}
	if p.m == nil {
		p.m = map[types.NamespacedName]*keptClient{}
	}
	p.m[cluster] = &keptClient{endpoints: id, client: c}
	return c, nil
}

// forget closes the client of cluster, if one is kept.
func (p *clients) forget(cluster types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if kept := p.m[cluster]; kept != nil {
		_ = kept.client.Close()
		delete(p.m, cluster)
	}
}

// closeAll closes every kept client.
func (p *clients) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for cluster, kept := range p.m {
		_ = kept.client.Close()
		delete(p.m, cluster)
	}
}

// Start implements manager.Runnable: it closes the kept clients when the
// manager stops.
func (p *clients) Start(ctx context.Context) error {
	<-ctx.Done()
	p.closeAll()
	return nil
}

// kept is the number of clients kept, for tests.
func (p *clients) kept() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Options configure a Client.
type Options struct {
	// Password authenticates to every member (their requirepass; the
	// members use it as masterauth towards their masters too). Empty: no
	// AUTH.
	Password string
	// Timeout bounds each call to one member (default 3 s).
	Timeout time.Duration
}

// Client observes the members of a Redis cluster and executes the
// actions Plan returns, one connection pool per member address. It serves
// one loop of Observe and Execute at a time: Observe closes the
// connections to addresses no member has any longer.
type Client struct {
	opts  Options
	mu    sync.Mutex
	conns map[string]*goredis.Client
}

// NewClient returns a Client; it connects lazily, per member address.
func NewClient(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	return &Client{opts: o, conns: map[string]*goredis.Client{}}
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, conn := range c.conns {
		_ = conn.Close()
		delete(c.conns, addr)
	}
	return nil
}

func (c *Client) conn(addr string) *goredis.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[addr]; ok {
		return conn
	}
	conn := goredis.NewClient(&goredis.Options{
		Addr: addr, Password: c.opts.Password,
		// RESP2 and no CLIENT SETINFO: every Redis version answers alike.
		Protocol: 2, DisableIdentity: true,
		DialTimeout: c.opts.Timeout, ReadTimeout: c.opts.Timeout, WriteTimeout: c.opts.Timeout,
		ContextTimeoutEnabled: true,
		// The planner's loop is the retry: a failed call is observed again,
		// and a member that does not answer costs one dial.
		MaxRetries: -1, DialerRetries: 1, PoolSize: 2,
	})
	c.conns[addr] = conn
	return conn
}

// forget closes the connections to addresses no member has any longer.
func (c *Client) forget(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, conn := range c.conns {
		if !keep[addr] {
			_ = conn.Close()
			delete(c.conns, addr)
		}
	}
}

// Observe asks every member (name -> address) at once for CLUSTER
// NODES, CLUSTER INFO, INFO replication, INFO server and INFO keyspace,
// and merges the answers. A member that does not answer has a View with
// Err set.
func (c *Client) Observe(ctx context.Context, members map[string]Endpoint) Observed {
	keep := map[string]bool{}
	views := make([]View, 0, len(members))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, e := range members {
		keep[e.Addr()] = true
		wg.Go(func() {
			v := c.View(ctx, name, e)
			mu.Lock()
			views = append(views, v)
			mu.Unlock()
		})
	}
	wg.Wait()
	c.forget(keep)
	return NewObserved(views)
}

// View asks one member at e how it sees the cluster.
func (c *Client) View(ctx context.Context, member string, e Endpoint) View {
	v := View{Member: member, Endpoint: e}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var nodes, info, repl, server, keyspace *goredis.StringCmd
	_, err := c.conn(e.Addr()).Pipelined(ctx, func(p goredis.Pipeliner) error {
		nodes, info = p.ClusterNodes(ctx), p.ClusterInfo(ctx)
		repl, server, keyspace = p.Info(ctx, "replication"), p.Info(ctx, "server"), p.Info(ctx, "keyspace")
		return nil
	})
	if err != nil {
		v.Err = fmt.Errorf("observing %s at %s: %w", member, e.Addr(), err)
		return v
	}
	if v.Nodes, err = ParseClusterNodes(nodes.Val()); err == nil {
		if v.Info, err = ParseClusterInfo(info.Val()); err == nil {
			if v.Replication, err = ParseReplication(repl.Val()); err == nil {
				v.Keys, err = ParseKeyspace(keyspace.Val())
			}
		}
	}
	if err != nil {
		return View{Member: member, Endpoint: e, Err: fmt.Errorf("observing %s at %s: %w", member, e.Addr(), err)}
	}
	v.ID, v.Version = v.Myself().ID, ParseServerVersion(server.Val())
	return v
}

// ErrCallerAction is what Execute returns for an action the caller
// carries out itself (ActionRemove: deleting a member's pod and volume).
var ErrCallerAction = errors.New("the caller carries this action out itself")

// Execute sends the commands of a to its member(s): CLUSTER MEET,
// ADDSLOTS, REPLICATE, SET-CONFIG-EPOCH, FAILOVER, FORGET, or the
// sequence of a slot migration. Wait and None do nothing; Remove returns
// ErrCallerAction. Nothing of the answer is returned: the next
// observation shows what changed, as it would after a restart of the
// caller. Errors name the command and the member; Retryable tells those
// that go away by themselves. Every command has the client's Timeout; a
// migration is a bounded number of them.
func (c *Client) Execute(ctx context.Context, a Action) error {
	switch a.Type {
	case ActionNone, ActionWait:
		return nil
	case ActionRemove:
		return fmt.Errorf("removing %s: %w", a.Member, ErrCallerAction)
	case ActionMigrateSlots:
		return c.migrateSlots(ctx, a, MigrateKeysPerAction)
	case ActionForget:
		return c.forgetNode(ctx, a)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	return c.send(ctx, c.conn(a.Addr.Addr()), a)
}

// send executes the actions of a single command (or one per peer).
func (c *Client) send(ctx context.Context, conn *goredis.Client, a Action) error {
	switch a.Type {
	case ActionMeet:
		for _, peer := range a.Peers {
			if err := meet(ctx, conn, a, peer); err != nil {
				return err
			}
		}
	case ActionAddSlots:
		return addSlots(ctx, conn, a)
	case ActionReplicate:
		if len(a.Peers) != 1 {
			return fmt.Errorf("replicating on %s: %d masters named, want 1", a.Member, len(a.Peers))
		}
		m := a.Peers[0]
		if err := conn.ClusterReplicate(ctx, m.ID).Err(); err != nil {
			return fmt.Errorf("CLUSTER REPLICATE %s (%s) on %s at %s: %w", m.ID, m.Member, a.Member, a.Addr.Addr(), err)
		}
	case ActionSetConfigEpoch:
		if err := conn.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", a.Epoch).Err(); err != nil {
			return fmt.Errorf("CLUSTER SET-CONFIG-EPOCH %d on %s at %s: %w", a.Epoch, a.Member, a.Addr.Addr(), err)
		}
	case ActionFailover:
		if err := conn.ClusterFailover(ctx).Err(); err != nil {
			return fmt.Errorf("CLUSTER FAILOVER on %s at %s: %w", a.Member, a.Addr.Addr(), err)
		}
	default:
		return fmt.Errorf("executing %s on %s: not an action this client knows", a.Type, a.Member)
	}
	return nil
}

// addSlots sends CLUSTER ADDSLOTS of a's slots to its member.
func addSlots(ctx context.Context, conn *goredis.Client, a Action) error {
	var slots []int
	for _, r := range a.Slots {
		for s := r.Start; s <= r.End; s++ {
			slots = append(slots, s)
		}
	}
	if err := conn.ClusterAddSlots(ctx, slots...).Err(); err != nil {
		return fmt.Errorf("CLUSTER ADDSLOTS %s on %s at %s: %w", FormatSlots(a.Slots), a.Member, a.Addr.Addr(), err)
	}
	return nil
}

// meet sends CLUSTER MEET for peer to the member of a.
func meet(ctx context.Context, conn *goredis.Client, a Action, peer Peer) error {
	// CLUSTER MEET takes an IP address, not a name.
	ip, err := resolveIP(ctx, peer.Addr.IP)
	if err != nil {
		return fmt.Errorf("meeting %s from %s: %w", peer.Member, a.Member, err)
	}
	if err := conn.Do(ctx, "CLUSTER", "MEET", ip, peer.Addr.Port, peer.Addr.Bus()).Err(); err != nil {
		return fmt.Errorf("CLUSTER MEET %s %d %d (%s) on %s at %s: %w",
			ip, peer.Addr.Port, peer.Addr.Bus(), peer.Member, a.Member, a.Addr.Addr(), err)
	}
	return nil
}

func resolveIP(ctx context.Context, host string) (string, error) {
	if net.ParseIP(host) != nil {
		return host, nil
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("resolving %s: no address", host)
	}
	return addrs[0], nil
}

// EndpointOf is the Endpoint of host:port with the cluster bus on busPort
// (0: port+10000).
func EndpointOf(addr string, busPort int) (Endpoint, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return Endpoint{}, fmt.Errorf("reading address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return Endpoint{}, fmt.Errorf("reading the port of %q: %w", addr, err)
	}
	return Endpoint{IP: host, Port: port, BusPort: busPort}, nil
}

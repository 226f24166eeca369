package redis

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"opsmith.io/opsmith/test/hostproc"
)

// fixturesEnv, when set, makes the harness tests write what the real
// servers answered into testdata/, the fixtures of the parsing tests.
const fixturesEnv = "OPSMITH_REDIS_WRITE_FIXTURES"

const testPassword = "opsmith-test-password"

// localCluster runs the members of a Redis cluster as redis-server
// processes on loopback, configured as the RedisCluster pods are: cluster
// mode with nodes.conf in the data directory (the pod's volume), a
// password (requirepass and masterauth), the member name announced as
// hostname, and an append-only file fsynced on every write. The cluster
// bus timeout stays Redis' default (cluster-node-timeout 15 s), so that a
// failover only happens when Redis would make one in production. It drives them
// with Client and Plan the way the controller will: observe, plan one
// step, execute it, again.
type localCluster struct {
	t       *testing.T
	g       *hostproc.Group
	bin     hostproc.Binary
	dir     string
	d       Desired
	servers map[string]*hostproc.RedisServer
	c       *Client
	// actions is every action executed, in order; waits the distinct
	// reasons of the waits.
	actions []Action
	waits   []string
	// handshake is a CLUSTER NODES answer seen with a node in handshake.
	handshake string
}

func newLocalCluster(t *testing.T, shards, replicas int) *localCluster {
	t.Helper()
	bin := hostproc.RequireRedisServer(t)
	l := &localCluster{t: t, g: hostproc.NewGroup(t), bin: bin, dir: t.TempDir(),
		d:       Desired{Name: "rc", Shards: shards, ReplicasPerShard: replicas, Members: map[string]Endpoint{}},
		servers: map[string]*hostproc.RedisServer{}, c: NewClient(Options{Password: testPassword})}
	t.Cleanup(func() { _ = l.c.Close() })
	t.Logf("redis-server %s from %s", bin.Version, bin.Source)
	for _, name := range l.d.MemberNames() {
		s, err := hostproc.StartRedis(l.g, bin, hostproc.RedisOptions{
			Name: name, Dir: filepath.Join(l.dir, name), Cluster: true, Password: testPassword,
			Args: []string{"--appendonly", "yes", "--appendfsync", "always", "--save", "",
				"--cluster-announce-hostname", name,
				// A replica's full sync starts at once, not after 5 s.
				"--repl-diskless-sync-delay", "0"},
		})
		if err != nil {
			t.Fatal(err)
		}
		l.servers[name] = s
		l.d.Members[name] = Endpoint{IP: "127.0.0.1", Port: s.Port, BusPort: s.ClusterPort}
	}
	return l
}

// restartAllOnNewPorts kills every member at once with SIGKILL and starts
// them again on their data directories, on ports none of them used
// before: every "pod" comes back with a new address.
func (l *localCluster) restartAllOnNewPorts() {
	l.t.Helper()
	old := map[int]bool{}
	for _, s := range l.servers {
		old[s.Port], old[s.ClusterPort] = true, true
		s.Kill()
	}
	ports, err := hostproc.FreePorts(4 * len(l.servers))
	if err != nil {
		l.t.Fatal(err)
	}
	var fresh []int
	for _, p := range ports {
		if !old[p] {
			fresh = append(fresh, p)
		}
	}
	for _, name := range l.d.MemberNames() {
		s := l.servers[name]
		if err := s.RestartOn(time.Second, fresh[0], fresh[1]); err != nil {
			l.t.Fatal(err)
		}
		fresh = fresh[2:]
		l.d.Members[name] = Endpoint{IP: "127.0.0.1", Port: s.Port, BusPort: s.ClusterPort}
	}
}

// converge runs the loop until Plan returns ActionNone, checking after
// every observation what must always hold, and returns the observation
// of the converged cluster.
func (l *localCluster) converge(timeout time.Duration) Observed {
	l.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last Action
	for time.Now().Before(deadline) {
		o := l.c.Observe(ctx, l.d.Members)
		l.checkInvariants(o)
		a := Plan(l.d, o)
		last = a
		switch a.Type {
		case ActionNone:
			return o
		case ActionWait:
			if len(l.waits) == 0 || l.waits[len(l.waits)-1] != a.Reason {
				l.waits = append(l.waits, a.Reason)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err := l.c.Execute(ctx, a); err != nil {
			if !Retryable(err) {
				l.t.Fatalf("%s: %v", a, err)
			}
			l.t.Logf("%s: %v (retrying)", a, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		l.actions = append(l.actions, a)
		if a.Type == ActionMeet && l.handshake == "" {
			if out := l.raw(a.Member, "CLUSTER", "NODES"); strings.Contains(out, "handshake") {
				l.handshake = out
			}
		}
	}
	l.t.Fatalf("not converged in %s: last plan %s\nwaits: %s", timeout, last, strings.Join(l.waits, "\n  "))
	return Observed{}
}

// checkInvariants: every replica replicates another member of its own
// shard, never a node of its own member or of another shard.
func (l *localCluster) checkInvariants(o Observed) {
	l.t.Helper()
	for name, v := range o.Views {
		me := v.Myself()
		if !v.Reachable() || !me.Replica {
			continue
		}
		master := o.Nodes[me.MasterID].Member
		s, _, _ := l.d.ShardOf(name)
		ms, _, ok := l.d.ShardOf(master)
		if master == name || !ok || ms != s {
			l.t.Errorf("%s (shard %d) replicates %s (%q)", name, s, me.MasterID, master)
		}
	}
}

// raw is the answer of one command on member name, as text.
func (l *localCluster) raw(name string, args ...any) string {
	l.t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: l.servers[name].Addr, Password: testPassword, Protocol: 2,
		DisableIdentity: true, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	out, err := c.Do(context.Background(), args...).Text()
	if err != nil {
		l.t.Fatalf("%v on %s: %v", args, name, err)
	}
	return out
}

// writeFixture saves what a real server answered as testdata/name when
// the fixtures are being written; the parsing tests read them.
func (l *localCluster) writeFixture(name, content string) {
	l.t.Helper()
	if os.Getenv(fixturesEnv) == "" || content == "" {
		return
	}
	header := fmt.Sprintf("# redis-server %s, captured by %s\n", l.bin.Version, l.t.Name())
	if err := os.WriteFile(filepath.Join("testdata", name), []byte(header+content), 0o600); err != nil {
		l.t.Fatal(err)
	}
}

// clusterClient is what an application uses: a go-redis ClusterClient
// seeded with every member.
func (l *localCluster) clusterClient() *goredis.ClusterClient {
	var addrs []string
	for _, name := range l.d.MemberNames() {
		addrs = append(addrs, l.servers[name].Addr)
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, Password: testPassword, DisableIdentity: true})
	l.t.Cleanup(func() { _ = c.Close() })
	return c
}

// countActions counts the executed actions of typ (and operation, if
// op is not empty).
func (l *localCluster) countActions(typ ActionType, op string) int {
	n := 0
	for _, a := range l.actions {
		if a.Type == typ && (op == "" || a.Operation == op) {
			n++
		}
	}
	return n
}

// meets counts the MEET commands sent.
func (l *localCluster) meets() int {
	n := 0
	for _, a := range l.actions {
		if a.Type == ActionMeet {
			n += len(a.Peers)
		}
	}
	return n
}

// identity is every member's node ID and role.
func identity(o Observed) map[string]string {
	out := map[string]string{}
	for name, v := range o.Views {
		out[name] = v.ID + " " + v.Myself().Role()
	}
	return out
}

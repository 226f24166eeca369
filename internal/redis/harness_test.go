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
	// args are further redis-server options of every member.
	args []string
	// execTime sums the time Execute took per action type; observeTime
	// the time of the observations.
	execTime    map[ActionType]time.Duration
	observeTime time.Duration
	// migrationStart is when the first MigrateSlots was executed.
	migrationStart time.Time
	// removed are the members an ActionRemove deleted, with their last
	// node IDs.
	removed map[string]string
}

func newLocalCluster(t *testing.T, shards, replicas int, args ...string) *localCluster {
	t.Helper()
	bin := hostproc.RequireRedisServer(t)
	l := &localCluster{t: t, g: hostproc.NewGroup(t), bin: bin, dir: t.TempDir(),
		d:       Desired{Name: "rc", Shards: shards, ReplicasPerShard: replicas, Members: map[string]Endpoint{}},
		servers: map[string]*hostproc.RedisServer{}, c: NewClient(Options{Password: testPassword}), args: args,
		removed: map[string]string{}, execTime: map[ActionType]time.Duration{}}
	t.Cleanup(func() { _ = l.c.Close() })
	t.Logf("redis-server %s from %s", bin.Version, bin.Source)
	for _, name := range l.d.MemberNames() {
		l.startMember(name)
	}
	return l
}

// startMember starts member name on a fresh data directory, as a new pod
// with a new volume.
func (l *localCluster) startMember(name string) {
	l.t.Helper()
	s, err := hostproc.StartRedis(l.g, l.bin, hostproc.RedisOptions{
		Name: name, Dir: filepath.Join(l.dir, name), Cluster: true, Password: testPassword,
		Args: append([]string{"--appendonly", "yes", "--appendfsync", "always", "--save", "",
			"--cluster-announce-hostname", name,
			// A replica's full sync starts at once, not after 5 s.
			"--repl-diskless-sync-delay", "0"}, l.args...),
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.servers[name] = s
	l.d.Members[name] = Endpoint{IP: "127.0.0.1", Port: s.Port, BusPort: s.ClusterPort}
}

// resize changes the desired shape and starts the members it adds; the
// members beyond it keep running until the planner removes them.
func (l *localCluster) resize(shards, replicas int) {
	l.t.Helper()
	l.d.Shards, l.d.ReplicasPerShard = shards, replicas
	for _, name := range l.d.MemberNames() {
		if _, ok := l.servers[name]; !ok {
			l.startMember(name)
		}
	}
}

// removeMember does what the controller does for an ActionRemove: it
// deletes the member's pod (the process, killed) and volume (its data
// directory), and drops it from Members.
func (l *localCluster) removeMember(name string) {
	l.t.Helper()
	if !l.d.Leaving(name) {
		l.t.Fatalf("Remove of %s, a member of the shape %d x %d", name, l.d.Shards, l.d.ReplicasPerShard)
	}
	s := l.servers[name]
	l.removed[name] = strings.TrimSpace(l.rawOr(name, "", "CLUSTER", "MYID"))
	s.Kill()
	if err := os.RemoveAll(s.Dir); err != nil {
		l.t.Fatal(err)
	}
	delete(l.servers, name)
	delete(l.d.Members, name)
}

// wipe kills member name, deletes its data directory and starts it again
// (on the same ports, or on new ones with newPorts): a pod that came back
// on a new, empty volume.
func (l *localCluster) wipe(name string, newPorts bool) {
	l.t.Helper()
	l.loseVolume(name)
	l.restart(name, newPorts)
}

// loseVolume kills member name and deletes its data directory: a pod
// and its volume gone. The member stays out of Members until restart.
func (l *localCluster) loseVolume(name string) {
	l.t.Helper()
	s := l.servers[name]
	s.Kill()
	if err := os.RemoveAll(s.Dir); err != nil {
		l.t.Fatal(err)
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		l.t.Fatal(err)
	}
	delete(l.d.Members, name)
}

// restart starts member name again on its data directory, on the same
// ports or on new ones with newPorts.
func (l *localCluster) restart(name string, newPorts bool) {
	l.t.Helper()
	s := l.servers[name]
	restart := func() error { return s.Restart(time.Second) }
	if newPorts {
		restart = func() error { return s.RestartOn(time.Second, 0, 0) }
	}
	if err := restart(); err != nil {
		l.t.Fatal(err)
	}
	l.d.Members[name] = Endpoint{IP: "127.0.0.1", Port: s.Port, BusPort: s.ClusterPort}
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
		t0 := time.Now()
		o := l.c.Observe(ctx, l.d.Members)
		l.observeTime += time.Since(t0)
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
		if a.Type == ActionRemove {
			l.removeMember(a.Member)
			l.actions = append(l.actions, a)
			continue
		}
		t0 = time.Now()
		err := l.c.Execute(ctx, a)
		l.execTime[a.Type] += time.Since(t0)
		if err != nil {
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

// checkInvariants: every replica of the shape replicates another member
// of its own shard, never a node of its own member or of another shard
// (or a node no member is, such as the old node of a master that lost its
// volume, until Redis promotes a replica).
// (A leaving master that gave its last slot away becomes a replica of the
// node that took it, by Redis' replica migration.)
func (l *localCluster) checkInvariants(o Observed) {
	l.t.Helper()
	for name, v := range o.Views {
		me := v.Myself()
		if !v.Reachable() || !me.Replica || l.d.Leaving(name) {
			continue
		}
		master := o.Nodes[me.MasterID].Member
		s, _, _ := l.d.parseMember(name)
		ms, _, ok := l.d.parseMember(master)
		if master == "" && o.Nodes[me.MasterID].Role != "" {
			continue // a node that is no member: its failed master, which Redis fails over
		}
		if master == name || !ok || ms != s {
			l.t.Errorf("%s (shard %d) replicates %s (%q)", name, s, me.MasterID, master)
		}
	}
}

// raw is the answer of one command on member name, as text.
func (l *localCluster) raw(name string, args ...any) string {
	l.t.Helper()
	out, err := l.rawErr(name, args...)
	if err != nil {
		l.t.Fatalf("%v on %s: %v", args, name, err)
	}
	return out
}

// rawOr is raw, or def when the command fails.
func (l *localCluster) rawOr(name, def string, args ...any) string {
	out, err := l.rawErr(name, args...)
	if err != nil {
		return def
	}
	return out
}

func (l *localCluster) rawErr(name string, args ...any) (string, error) {
	c := goredis.NewClient(&goredis.Options{Addr: l.servers[name].Addr, Password: testPassword, Protocol: 2,
		DisableIdentity: true, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	return c.Do(context.Background(), args...).Text()
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

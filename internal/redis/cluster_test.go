package redis

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

const testKeys = 1000

// TestBootstrapAndRestartOnNewAddresses runs a cluster of 3 shards with 1
// replica each on real redis-server processes:
//
//  1. from 6 empty nodes, the loop of Observe, Plan and Execute builds the
//     cluster (MEET, ADDSLOTS of redis-cli's even layout to replica 0 of
//     every shard, REPLICATE of replica 1) until Plan says converged;
//     1000 keys are written through a ClusterClient;
//  2. every node is killed at once (SIGKILL) and restarted on its data
//     directory on new ports, as after every pod of a StatefulSet was
//     deleted and came back with a new IP. No node can reach any other by
//     itself (each knows its peers at their old addresses only); the
//     planner meets them again and the cluster converges with the same
//     node IDs, the same roles and every key;
//  3. one master is killed and restarted on the same port: Redis' gossip
//     reconnects it without any step of the planner.
func TestBootstrapAndRestartOnNewAddresses(t *testing.T) {
	l := newLocalCluster(t, 3, 1)
	ctx := context.Background()
	l.writeFixture("cluster-nodes-new.txt", l.raw("rc-0-0", "CLUSTER", "NODES"))

	start := time.Now()
	o := l.converge(60 * time.Second)
	t.Logf("bootstrap converged in %s: %d Meet steps (%d MEETs), %d AddSlots, %d Replicate; waited on:\n  %s",
		time.Since(start).Round(time.Millisecond), l.countActions(ActionMeet, ""), l.meets(), l.countActions(ActionAddSlots, ""),
		l.countActions(ActionReplicate, ""), joinWaits(l.waits))
	l.expectConverged(o)
	if n := l.countActions(ActionSetConfigEpoch, OpBootstrap); n != 6 {
		t.Errorf("%d SetConfigEpoch actions, want one per member: %v", n, l.actions)
	}
	epochs := map[uint64]string{}
	for name, v := range o.Views { // a replica's line shows its master's epoch
		if e := v.Myself().ConfigEpoch; !v.Myself().Master {
			continue
		} else if epochs[e] != "" {
			t.Errorf("%s and %s have config epoch %d", name, epochs[e], e)
		} else {
			epochs[e] = name
		}
	}
	// Every pair met once at most, in at most 5 steps.
	if n := l.countActions(ActionMeet, OpBootstrap); n < 1 || n > 5 || l.meets() > 15 || l.countActions(ActionMeet, OpRemeet) != 0 {
		t.Errorf("bootstrap meets: %v", l.actions)
	}
	for i, r := range EvenSlots(3) {
		want := Action{Type: ActionAddSlots, Member: MemberName("rc", i, 0), Slots: []SlotRange{r}}
		want2 := Action{Type: ActionReplicate, Member: MemberName("rc", i, 1), Peers: []Peer{{Member: MemberName("rc", i, 0)}}}
		if !slices.ContainsFunc(l.actions, func(a Action) bool {
			return a.Type == want.Type && a.Member == want.Member && slices.Equal(a.Slots, want.Slots)
		}) || !slices.ContainsFunc(l.actions, func(a Action) bool {
			return a.Type == want2.Type && a.Member == want2.Member && len(a.Peers) == 1 && a.Peers[0].Member == want2.Peers[0].Member
		}) {
			t.Errorf("shard %d: want %s and %s among %v", i, want, want2, l.actions)
		}
	}
	if n := l.countActions(ActionAddSlots, "") + l.countActions(ActionReplicate, ""); n != 6 {
		t.Errorf("%d AddSlots and Replicate actions, want 3 of each: %v", n, l.actions)
	}
	l.writeFixture("cluster-nodes-converged.txt", l.raw("rc-0-0", "CLUSTER", "NODES"))
	l.writeFixture("cluster-nodes-handshake.txt", l.handshake)
	l.writeFixture("cluster-info-ok.txt", l.raw("rc-0-0", "CLUSTER", "INFO"))
	l.writeKeys()
	l.writeFixture("info-replication-master.txt", l.raw("rc-0-0", "INFO", "replication"))
	l.writeFixture("info-replication-replica.txt", l.raw("rc-0-1", "INFO", "replication"))
	before := identity(o)

	// 2. Every pod deleted at once, back with new addresses.
	l.restartAllOnNewPorts()
	l.actions, l.waits = nil, nil
	time.Sleep(time.Second) // what gossip alone does in a second: nothing
	stale := l.c.Observe(ctx, l.d.Members)
	l.writeFixture("cluster-nodes-stale.txt", l.raw("rc-0-0", "CLUSTER", "NODES"))
	l.writeFixture("cluster-info-stale.txt", l.raw("rc-0-0", "CLUSTER", "INFO"))
	expectIsolated(t, l.d, stale)
	if a := Plan(l.d, stale); a.Type != ActionMeet || a.Operation != OpRemeet || a.Member != "rc-0-0" || len(a.Peers) != 5 {
		t.Errorf("first step after the restart: %s, want rc-0-0 to meet the 5 others again", a)
	}
	start = time.Now()
	o = l.converge(60 * time.Second)
	t.Logf("after the restart on new ports, converged in %s: %d Meet steps (%d MEETs); waited on:\n  %s",
		time.Since(start).Round(time.Millisecond), l.countActions(ActionMeet, ""), l.meets(), joinWaits(l.waits))
	l.expectConverged(o)
	if l.countActions(ActionMeet, OpRemeet) == 0 || len(l.actions) != l.countActions(ActionMeet, OpRemeet) {
		t.Errorf("want only Remeet actions after the restart, got %v", l.actions)
	}
	if after := identity(o); !mapsEqual(before, after) {
		t.Errorf("node IDs and roles changed across the restart:\nbefore %v\nafter  %v", before, after)
	}
	l.readKeys()

	// 3. One master killed and restarted on its address: gossip alone.
	l.actions, l.waits = nil, nil
	s := l.servers["rc-1-0"]
	s.Kill()
	if err := s.Restart(time.Second); err != nil {
		t.Fatal(err)
	}
	o = l.converge(60 * time.Second)
	t.Logf("after a restart of rc-1-0 on its address, converged with %d actions; waited on:\n  %s", len(l.actions), joinWaits(l.waits))
	if len(l.actions) != 0 {
		t.Errorf("want no action after a restart on the same address (gossip reconnects), got %v", l.actions)
	}
	if after := identity(o); !mapsEqual(before, after) {
		t.Errorf("node IDs and roles changed across the restart of rc-1-0:\nbefore %v\nafter  %v", before, after)
	}
	l.readKeys()
}

// expectIsolated checks that no node knows any peer at its new address:
// after every node moved, gossip has no address to reach anyone at.
func expectIsolated(t *testing.T, d Desired, o Observed) {
	t.Helper()
	states := map[string]int{}
	for name, v := range o.Views {
		if !v.Reachable() {
			t.Fatalf("%s after the restart: %v", name, v.Err)
		}
		states[v.Info.State]++
		for peer, e := range d.Members {
			if n, ok := v.Node(o.Views[peer].ID); peer != name && (!ok || n.Endpoint.Equal(e)) {
				t.Errorf("%s knows %s at its new address %s (or not at all) before any MEET: %+v", name, peer, e, n)
			}
		}
	}
	t.Logf("right after the restart on new ports: every node knows its peers at their old addresses only; cluster_state %v", states)
}

// expectConverged checks the converged cluster on every node: cluster_state
// ok, all slots assigned, every master with exactly one replica on another
// member.
func (l *localCluster) expectConverged(o Observed) {
	l.t.Helper()
	masters := 0
	for _, name := range l.d.MemberNames() {
		v := o.Views[name]
		if v.Info.State != "ok" || v.Info.SlotsAssigned != NumSlots || v.Info.SlotsOK != NumSlots || v.Info.KnownNodes != 6 {
			l.t.Errorf("%s: CLUSTER INFO %+v, want ok with %d slots and 6 nodes", name, v.Info, NumSlots)
		}
		if v.Version != l.bin.Version {
			l.t.Errorf("%s reports redis_version %q, want %s", name, v.Version, l.bin.Version)
		}
		if v.Myself().Role() != "master" {
			continue
		}
		masters++
		var replicas []string
		for _, n := range o.Nodes {
			if n.MasterID == v.ID {
				replicas = append(replicas, n.Member)
			}
		}
		if len(replicas) != 1 || replicas[0] == name || len(v.Replication.Replicas) != 1 {
			l.t.Errorf("master %s has replicas %v (INFO: %+v), want one other member", name, replicas, v.Replication.Replicas)
		}
	}
	if masters != 3 {
		l.t.Errorf("%d masters, want 3", masters)
	}
	sum := Summarize(l.d, o)
	if sum.ClusterState != "ok" || sum.SlotsAssigned != NumSlots {
		l.t.Errorf("summary: cluster state %q, %d slots assigned", sum.ClusterState, sum.SlotsAssigned)
	}
	for _, sh := range sum.Shards {
		if len(sh.Members) != 2 || sh.Members[0].Role != "master" || sh.Members[1].Role != "replica" ||
			!sh.Members[0].Healthy || !sh.Members[1].Healthy || !sh.Members[1].LagKnown {
			l.t.Errorf("summary of shard %d: %+v", sh.Index, sh.Members)
		}
	}
}

func (l *localCluster) writeKeys() {
	l.t.Helper()
	c, ctx := l.clusterClient(), context.Background()
	for i := range testKeys {
		k := fmt.Sprintf("key-%04d", i)
		if err := c.Set(ctx, k, "value-"+k, 0).Err(); err != nil {
			l.t.Fatalf("SET %s: %v", k, err)
		}
	}
}

func (l *localCluster) readKeys() {
	l.t.Helper()
	c, ctx := l.clusterClient(), context.Background()
	for i := range testKeys {
		k := fmt.Sprintf("key-%04d", i)
		if v, err := c.Get(ctx, k).Result(); err != nil || v != "value-"+k {
			l.t.Fatalf("GET %s: %q, %v", k, v, err)
		}
	}
	var keys atomic.Int64 // ForEachMaster asks the masters at once
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		n, err := m.DBSize(ctx).Result()
		keys.Add(n)
		return err
	})
	if err != nil || keys.Load() != testKeys {
		l.t.Errorf("the masters hold %d keys (%v), want %d", keys.Load(), err, testKeys)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func joinWaits(w []string) string {
	if len(w) > 30 {
		w = append(w[:30:30], fmt.Sprintf("... %d more", len(w)-30))
	}
	return fmt.Sprint(joinLines(w))
}

func joinLines(w []string) string {
	out := ""
	for i, s := range w {
		if i > 0 {
			out += "\n  "
		}
		out += s
	}
	return out
}

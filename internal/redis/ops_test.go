package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"opsmith.io/opsmith/test/hostproc"
)

// masterOf is the member that serves the slots of shard s in o.
func (l *localCluster) masterOf(o Observed, s int) string {
	for name, v := range o.Views {
		if sh, _, _ := l.d.parseMember(name); sh == s && v.Myself().Master && len(v.Myself().Slots) > 0 {
			return name
		}
	}
	l.t.Fatalf("shard %d has no master", s)
	return ""
}

// handover runs PlanHandover for member until it says the member may
// restart, executing its Failovers, and returns how many it executed.
func (l *localCluster) handover(member string, timeout time.Duration) int {
	l.t.Helper()
	ctx := context.Background()
	failovers := 0
	deadline := time.Now().Add(timeout)
	var last Action
	for time.Now().Before(deadline) {
		o := l.c.Observe(ctx, l.d.Members)
		l.checkInvariants(o)
		a := PlanHandover(l.d, o, member)
		last = a
		switch a.Type {
		case ActionNone:
			return failovers
		case ActionFailover:
			if err := l.c.Execute(ctx, a); err != nil {
				l.t.Fatalf("%s: %v", a, err)
			}
			l.actions = append(l.actions, a)
			failovers++
			time.Sleep(100 * time.Millisecond)
		case ActionWait:
			if len(l.waits) == 0 || l.waits[len(l.waits)-1] != a.Reason {
				l.waits = append(l.waits, a.Reason)
			}
			time.Sleep(50 * time.Millisecond)
		default:
			l.t.Fatalf("PlanHandover(%s) = %s", member, a)
		}
	}
	l.t.Fatalf("handover of %s not done in %s: last %s\nwaits: %s", member, timeout, last, joinWaits(l.waits))
	return 0
}

// TestHandoverUnderWriteLoad hands every master of a 3 x 1 cluster over
// to its replica with PlanHandover while a writer writes, then restarts
// the old master (SIGTERM, as a pod deletion) and lets the loop converge:
// no acknowledged write is lost. The longest window without an
// acknowledged write is logged.
func TestHandoverUnderWriteLoad(t *testing.T) {
	l := newLocalCluster(t, 3, 1)
	ctx := context.Background()
	l.converge(60 * time.Second)
	w := l.startWriter(false)
	time.Sleep(500 * time.Millisecond)
	for s := range 3 {
		o := l.c.Observe(ctx, l.d.Members)
		master := l.masterOf(o, s)
		l.actions, l.waits = nil, nil
		start := time.Now()
		n := l.handover(master, 30*time.Second)
		took := time.Since(start)
		o = l.c.Observe(ctx, l.d.Members)
		if me := o.Views[master].Myself(); n != 1 || !me.Replica || l.masterOf(o, s) == master {
			t.Errorf("after %d failovers, %s is %s; shard %d's master is %s", n, master, me.Role(), s, l.masterOf(o, s))
		}
		if a := PlanHandover(l.d, o, master); a.Type != ActionNone {
			t.Errorf("PlanHandover(%s) after the failover: %s", master, a)
		}
		if a := PlanHandover(l.d, o, l.masterOf(o, s)); a.Type != ActionFailover || a.Member != master {
			t.Errorf("PlanHandover of the new master %s: %s, want a Failover to %s", l.masterOf(o, s), a, master)
		}
		if err := l.servers[master].Restart(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		l.converge(60 * time.Second)
		t.Logf("shard %d: %s handed over in %s (%d failover); waited on:\n  %s", s, master, took.Round(time.Millisecond), n, joinWaits(l.waits))
	}
	lost, _ := w.check()
	if lost != 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}

// expectLayout checks that shard s serves EvenSlots(shards)[s].Count()
// slots, that no slot is open, that every member knows exactly the
// members (no removed or stale node) and that none knows a removed ID.
func (l *localCluster) expectLayout(o Observed) {
	l.t.Helper()
	ranges := EvenSlots(l.d.Shards)
	counts := map[int]int{}
	for name, v := range o.Views {
		me := v.Myself()
		if len(me.Migrating) > 0 || len(me.Importing) > 0 {
			l.t.Errorf("%s has open slots: migrating %v importing %v", name, me.Migrating, me.Importing)
		}
		if me.Master {
			s, _, _ := l.d.parseMember(name)
			counts[s] += CountSlots(me.Slots)
		}
		if v.Info.KnownNodes != len(l.d.Members) {
			l.t.Errorf("%s knows %d nodes, want %d", name, v.Info.KnownNodes, len(l.d.Members))
		}
		for gone, id := range l.removed {
			if _, known := v.Node(id); known {
				l.t.Errorf("%s still knows %s (%s), which was removed", name, id, gone)
			}
		}
	}
	for s, r := range ranges {
		if counts[s] != r.Count() {
			l.t.Errorf("shard %d serves %d slots, want %d (all: %v)", s, counts[s], r.Count(), counts)
		}
	}
}

// owners maps every slot to the member that serves it, as the masters
// say.
func (l *localCluster) owners() [NumSlots]string {
	var out [NumSlots]string
	for name, v := range l.c.Observe(context.Background(), l.d.Members).Views {
		if me := v.Myself(); me.Master {
			for _, r := range me.Slots {
				for s := r.Start; s <= r.End; s++ {
					out[s] = name
				}
			}
		}
	}
	return out
}

func changed(a, b [NumSlots]string) int {
	n := 0
	for s := range a {
		if a[s] != b[s] {
			n++
		}
	}
	return n
}

// migrated sums the slots of the MigrateSlots actions executed.
func (l *localCluster) migrated() (slots, actions int) {
	for _, a := range l.actions {
		if a.Type == ActionMigrateSlots {
			slots += CountSlots(a.Slots)
			actions++
		}
	}
	return slots, actions
}

// TestScaleOutAndInUnderWriteLoad grows a 3 x 1 cluster to 4 shards and
// shrinks it back to 3 while a writer writes:
//
//  1. scale-out: rc-3-0 and rc-3-1 start empty, are met, and rc-3-0
//     receives 4096 slots by live migration (rc-3-1 replicates it once it
//     serves some); once, the loop is interrupted after a batch opened
//     its slots (IMPORTING and MIGRATING set, one key moved) and a fresh
//     client and loop resume it;
//  2. scale-in: rc-3-0's slots migrate back, rc-3-1 and rc-3-0 are
//     removed (process killed, data deleted) and forgotten by every
//     member.
//
// No acknowledged write is lost; the migration rate is logged.
func TestScaleOutAndInUnderWriteLoad(t *testing.T) {
	l := newLocalCluster(t, 3, 1)
	l.converge(60 * time.Second)
	w := l.startWriter(false)
	time.Sleep(time.Second)

	before := l.owners()
	l.resize(4, 1)
	l.actions, l.waits = nil, nil
	start := time.Now()
	l.interruptMigration(30 * time.Second)
	l.c = NewClient(Options{Password: testPassword}) // the loop restarted
	t.Cleanup(func() { _ = l.c.Close() })
	o := l.converge(120 * time.Second)
	took, moving := time.Since(start), time.Since(l.migrationStart)
	_, actions := l.migrated()
	keys, _ := l.dbsize("rc-3-0")
	t.Logf("scale-out 3 -> 4 shards converged in %s, %s of it from the first migration on: %d MigrateSlots actions (%s per slot), %d keys now on rc-3-0 (%.0f keys/s)",
		took.Round(time.Millisecond), moving.Round(time.Millisecond), actions, (moving / 4096).Round(time.Microsecond), keys,
		float64(keys)/moving.Seconds())
	t.Logf("scale-out: observing took %s, executing %v; waited on:\n  %s", l.observeTime.Round(time.Millisecond), l.execTime, joinWaits(l.waits))
	l.expectLayout(o)
	if n := changed(before, l.owners()); n != 4096 {
		t.Errorf("%d slots changed owner, want 4096 (the least for 4 even shards)", n)
	}

	l.resize(3, 1)
	l.actions, l.waits = nil, nil
	// A loop that crashed right after its first command of a migration:
	// rc-0-0 imports slot 16383 (rc-3-0's), rc-3-0 knows nothing of it.
	l.raw("rc-0-0", "CLUSTER", "SETSLOT", 16383, "IMPORTING", o.Views["rc-3-0"].ID)
	start = time.Now()
	o = l.converge(120 * time.Second)
	took = time.Since(start)
	slots, actions := l.migrated()
	if a := l.actions[0]; a.Type != ActionMigrateSlots || a.Operation != OpRepair || a.Member != "rc-3-0" || a.Peers[0].Member != "rc-0-0" ||
		!slices.Equal(a.Moves, []SlotMove{{Slot: 16383, Importing: true}}) {
		t.Errorf("first step of the scale-in: %s, want the migration of slot 16383 to rc-0-0 resumed", a)
	}
	if n := changed(before, l.owners()); n != 0 {
		t.Logf("after the scale-in, %d slots have another shard than before the scale-out", n)
	}
	t.Logf("scale-in 4 -> 3 shards converged in %s: %d slots moved in %d actions, %d Remove, %d Forget",
		took.Round(time.Millisecond), slots, actions, l.countActions(ActionRemove, ""), l.countActions(ActionForget, ""))
	l.expectLayout(o)
	if slots != 4096 || l.countActions(ActionRemove, "") != 2 || len(l.removed) != 2 {
		t.Errorf("scale-in: %d slots moved, %d removed (%v); actions %v", slots, l.countActions(ActionRemove, ""), l.removed, l.actions)
	}
	lost, _ := w.check()
	if lost != 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}

// interruptMigration runs the loop until its first MigrateSlots of a
// slot with keys, and executes only the beginning of it: the slots are
// opened and one key moves, then the loop "crashes".
func (l *localCluster) interruptMigration(timeout time.Duration) {
	l.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o := l.c.Observe(ctx, l.d.Members)
		a := Plan(l.d, o)
		switch a.Type {
		case ActionWait:
			if len(l.waits) == 0 || l.waits[len(l.waits)-1] != a.Reason {
				l.waits = append(l.waits, a.Reason)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		case ActionMigrateSlots:
			l.migrationStart = time.Now()
			if err := l.c.migrateSlots(ctx, a, 1); err != nil {
				l.t.Fatalf("%s: %v", a, err)
			}
			out := l.raw(a.Member, "CLUSTER", "NODES")
			if !strings.Contains(out, "->-") {
				l.t.Fatalf("after a partial %s, the source has no open slot:\n%s", a, out)
			}
			l.writeFixture("cluster-nodes-migrating.txt", out)
			l.writeFixture("cluster-nodes-importing.txt", l.raw(a.Peers[0].Member, "CLUSTER", "NODES"))
			l.writeFixture("info-keyspace.txt", l.raw(a.Member, "INFO", "keyspace"))
			l.t.Logf("interrupted %s after one key", a)
			return
		case ActionNone:
			l.t.Fatal("converged before any migration")
		}
		if err := l.c.Execute(ctx, a); err != nil && !Retryable(err) {
			l.t.Fatalf("%s: %v", a, err)
		}
		l.actions = append(l.actions, a)
	}
	l.t.Fatal("no migration planned in time")
}

// dbsize is the number of keys on member name.
func (l *localCluster) dbsize(name string) (int64, error) {
	c := goredis.NewClient(&goredis.Options{Addr: l.servers[name].Addr, Password: testPassword, Protocol: 2,
		DisableIdentity: true, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	return c.DBSize(context.Background()).Result()
}

// TestReplicaCountAndLostVolume changes the replicas per shard of a 3 x 1
// cluster to 2 and back to 1 under write load, then gives a replica an
// empty volume:
//
//  1. 1 -> 2: rc-s-2 start empty, are met and attached to their shard's
//     master;
//  2. 2 -> 1: rc-s-2 are removed and forgotten everywhere;
//  3. rc-1-1 restarts on an empty data directory (same address, a new
//     node ID): it is met, attached as a replica of rc-1-0 (never given
//     slots), and its old node ID, flagged noaddr by its peers, is
//     forgotten.
func TestReplicaCountAndLostVolume(t *testing.T) {
	l := newLocalCluster(t, 3, 1)
	l.converge(60 * time.Second)
	w := l.startWriter(false)

	l.resize(3, 2)
	l.actions, l.waits = nil, nil
	start := time.Now()
	o := l.converge(60 * time.Second)
	t.Logf("replicas 1 -> 2 converged in %s: %d Meet, %d Replicate", time.Since(start).Round(time.Millisecond),
		l.countActions(ActionMeet, ""), l.countActions(ActionReplicate, ""))
	for s := range 3 {
		master := l.masterOf(o, s)
		if n := len(o.Views[master].Replication.Replicas); n != 2 {
			t.Errorf("master %s of shard %d has %d replicas, want 2", master, s, n)
		}
	}

	l.resize(3, 1)
	l.actions, l.waits = nil, nil
	start = time.Now()
	o = l.converge(60 * time.Second)
	t.Logf("replicas 2 -> 1 converged in %s: %d Remove, %d Forget; waited on:\n  %s", time.Since(start).Round(time.Millisecond),
		l.countActions(ActionRemove, ""), l.countActions(ActionForget, ""), joinWaits(l.waits))
	l.expectLayout(o)
	if l.countActions(ActionRemove, "") != 3 || l.countActions(ActionForget, "") != 3 {
		t.Errorf("want 3 Remove and 3 Forget: %v", l.actions)
	}

	old := o.Views["rc-1-1"].ID
	l.wipe("rc-1-1", false)
	l.actions, l.waits = nil, nil
	start = time.Now()
	o = l.converge(60 * time.Second)
	t.Logf("rc-1-1 on an empty volume converged in %s: %v; waited on:\n  %s", time.Since(start).Round(time.Millisecond),
		l.actions, joinWaits(l.waits))
	l.removed["rc-1-1 (old)"] = old
	l.expectLayout(o)
	me := o.Views["rc-1-1"].Myself()
	if me.ID == old || !me.Replica || me.MasterID != o.Views["rc-1-0"].ID || l.countActions(ActionAddSlots, "") != 0 ||
		l.countActions(ActionForget, OpRepair) != 1 {
		t.Errorf("rc-1-1 (was %s) is %+v; actions %v", old, me, l.actions)
	}
	lost, _ := w.check()
	if lost != 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
}

// TestKillMasterWithWait kills a master (SIGKILL) while a writer writes
// with WAIT 1, in a cluster whose cluster-node-timeout is 2 s: Redis
// promotes its replica, the old master comes back on its volume as a
// replica of it, and the loop converges. No write WAIT confirmed is lost;
// how many writes acknowledged only by the master were lost is logged.
func TestKillMasterWithWait(t *testing.T) {
	l := newLocalCluster(t, 3, 1, "--cluster-node-timeout", "2000")
	ctx := context.Background()
	l.converge(60 * time.Second)
	w := l.startWriter(true)
	time.Sleep(time.Second)
	l.servers["rc-1-0"].Kill()
	killed := time.Now()
	hostproc.Eventually(t, 30*time.Second, "rc-1-1 promoted", func() error {
		o := l.c.Observe(ctx, map[string]Endpoint{"rc-1-1": l.d.Members["rc-1-1"]})
		if me := o.Views["rc-1-1"].Myself(); !me.Master || len(me.Slots) == 0 {
			return fmt.Errorf("rc-1-1 is %s", me.Role())
		}
		return nil
	})
	promoted := time.Since(killed)
	if err := l.servers["rc-1-0"].Restart(time.Second); err != nil {
		t.Fatal(err)
	}
	l.actions, l.waits = nil, nil
	o := l.converge(60 * time.Second)
	time.Sleep(500 * time.Millisecond)
	if me := o.Views["rc-1-0"].Myself(); !me.Replica || l.masterOf(o, 1) != "rc-1-1" {
		t.Errorf("rc-1-0 after its restart: %s", me.Role())
	}
	lost, lostConfirmed := w.check()
	t.Logf("rc-1-1 promoted %s after rc-1-0 was killed; after it: %d actions; %d acknowledged writes lost, %d of them confirmed by WAIT 1",
		promoted.Round(time.Millisecond), len(l.actions), lost, lostConfirmed)
	if lostConfirmed != 0 {
		t.Errorf("%d writes confirmed by WAIT 1 lost", lostConfirmed)
	}

	// The master of shard 0 loses its volume and comes back with a new
	// address, as a pod on a new volume gets a new IP: Redis promotes
	// rc-0-1, the empty rc-0-0 (a new node ID) is met and attached to it,
	// never given slots, and its old ID is forgotten. (Back at its old
	// address, its peers would flag the old ID noaddr, which Redis never
	// fails over, and rc-0-1 would keep replicating from that address.)
	w = l.startWriter(true)
	old := o.Views["rc-0-0"].ID
	l.wipe("rc-0-0", true)
	l.actions, l.waits = nil, nil
	start := time.Now()
	o = l.converge(60 * time.Second)
	t.Logf("rc-0-0 on an empty volume converged in %s: %v; waited on:\n  %s", time.Since(start).Round(time.Millisecond),
		l.actions, joinWaits(l.waits))
	me := o.Views["rc-0-0"].Myself()
	if me.ID == old || !me.Replica || l.masterOf(o, 0) != "rc-0-1" || l.countActions(ActionAddSlots, "") != 0 ||
		l.countActions(ActionForget, OpRepair) != 1 {
		t.Errorf("rc-0-0 (was %s) is %+v; actions %v", old, me, l.actions)
	}
	l.removed["rc-0-0 (old)"] = old
	l.expectLayout(o)
	w.checkConfirmed("after rc-0-0 lost its volume")

	// The master of shard 2 loses its volume and comes back at its old
	// address, started only once PlanFreshStart lets it (as the
	// controller creates the pod): Redis has promoted rc-2-1 by then, so
	// nothing replicates the empty node, which joins as rc-2-1's replica.
	w = l.startWriter(true)
	time.Sleep(500 * time.Millisecond)
	old = o.Views["rc-2-0"].ID
	l.loseVolume("rc-2-0")
	start = time.Now()
	var first Action
	hostproc.Eventually(t, 30*time.Second, "PlanFreshStart lets rc-2-0 start", func() error {
		a := PlanFreshStart(l.c.Observe(ctx, l.d.Members), "rc-2-0")
		if first.Type == "" {
			first = a
		}
		if a.Type != ActionNone {
			return fmt.Errorf("%s: %s", a.Type, a.Reason)
		}
		return nil
	})
	t.Logf("rc-2-0 on an empty volume at its old address: started after %s; PlanFreshStart first said %s: %s",
		time.Since(start).Round(time.Millisecond), first.Type, first.Reason)
	if first.Type != ActionWait {
		t.Errorf("PlanFreshStart let rc-2-0 start empty while its old node served slots: %s", first.Reason)
	}
	l.restart("rc-2-0", false)
	l.actions, l.waits = nil, nil
	o = l.converge(60 * time.Second)
	// Back at its old address, rc-2-0 can learn its old ID from a peer's
	// gossip sent before that peer forgot it, after the converged
	// observation; the controller's next reconcile forgets it again, as
	// this second loop does.
	time.Sleep(time.Second)
	o = l.converge(60 * time.Second)
	if me := o.Views["rc-2-0"].Myself(); me.ID == old || !me.Replica || l.masterOf(o, 2) != "rc-2-1" ||
		l.countActions(ActionAddSlots, "") != 0 {
		t.Errorf("rc-2-0 (was %s) is %+v; actions %v", old, me, l.actions)
	}
	l.removed["rc-2-0 (old)"] = old
	l.expectLayout(o)
	w.checkConfirmed("after rc-2-0 came back empty at its old address")
}

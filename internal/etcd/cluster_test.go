package etcd

import (
	"context"
	"testing"
	"time"
)

// TestMembershipLifecycle drives real etcd 3.6 processes through Plan while
// a writer commits keys: bootstrap 3, scale 3 -> 5 -> 3, restart a member
// whose pod went away, replace a member (not the newest) whose data was
// deleted; every acknowledged write survives.
func TestMembershipLifecycle(t *testing.T) {
	l := newLocalCluster(t, "3.6.16")
	start := time.Now()
	l.converge(3, time.Minute)
	t.Logf("bootstrap to 3 members: %s, %d actions", time.Since(start).Round(time.Millisecond), len(l.actions))
	l.expectMembers(3, "3.6.16")
	if n := countActions(l.actions, ActionAddLearner); n != 2 {
		t.Errorf("bootstrap added %d learners, want 2 (seed + 2)", n)
	}

	w := l.startWriter()
	start = time.Now()
	l.converge(5, time.Minute)
	t.Logf("scale 3 -> 5: %s", time.Since(start).Round(time.Millisecond))
	l.expectMembers(5, "3.6.16")
	start = time.Now()
	l.converge(3, time.Minute)
	t.Logf("scale 5 -> 3: %s", time.Since(start).Round(time.Millisecond))
	l.expectMembers(3, "3.6.16")

	// The pod of a member goes away; its data stays: same member restarts.
	before := l.expectMembers(3, "3.6.16")
	l.stopMember("m-1")
	l.converge(3, time.Minute)
	after := l.expectMembers(3, "3.6.16")
	if idOf(before, "m-1") != idOf(after, "m-1") {
		t.Errorf("m-1 restarted on its data must keep its member ID: %x -> %x", idOf(before, "m-1"), idOf(after, "m-1"))
	}

	// A member that is neither the newest nor the oldest loses pod and
	// data: it is removed and a new member with a clean data dir joins.
	l.stopMember("m-1")
	if err := removeAll(l.volumeDir("m-1")); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	l.converge(3, time.Minute)
	t.Logf("replace m-1 after data loss: %s", time.Since(start).Round(time.Millisecond))
	replaced := l.expectMembers(3, "3.6.16")
	if id := idOf(replaced, "m-1"); id == 0 || id == idOf(after, "m-1") {
		t.Errorf("m-1 must rejoin as a new member: old ID %x, new %x", idOf(after, "m-1"), id)
	}
	w.finish()
}

// TestResumeAfterCrash puts the cluster into the states an operator crash
// leaves between the steps of a multi-step operation and checks that Plan
// finishes the operation without orphaned or duplicate members.
func TestResumeAfterCrash(t *testing.T) {
	l := newLocalCluster(t, "3.6.16")
	l.converge(3, time.Minute)
	ctx := context.Background()

	// Crash right after MemberAdd, before the volume and pod exist.
	o, c := l.observe(ctx)
	a := Plan(4, o, l.naming)
	if a.Type != ActionAddLearner {
		t.Fatalf("scaling to 4 plans %+v, want AddLearner", a)
	}
	_ = c.Close()
	l.executeRetry(a)
	o, c = l.observe(ctx)
	_ = c.Close()
	if a := Plan(4, o, l.naming); a.Type != ActionCreateVolume || a.Name != "m-3" || a.NewCluster {
		t.Errorf("after a crash following MemberAdd, plan %+v, want the volume of m-3 (existing cluster)", a)
	}
	l.converge(4, time.Minute)
	l.expectMembers(4, "3.6.16")

	// Crash after the volume, before the pod: same again.
	o, c = l.observe(ctx)
	a = Plan(5, o, l.naming)
	_ = c.Close()
	l.executeRetry(a)
	o, c = l.observe(ctx)
	a = Plan(5, o, l.naming)
	l.execute(ctx, a, o, c) // volume created, then the operator dies
	_ = c.Close()
	l.converge(5, time.Minute)
	l.expectMembers(5, "3.6.16")

	// Crash right after MemberRemove, before the pod and data are deleted:
	// the leftovers are cleaned up, nothing is re-added.
	o, c = l.observe(ctx)
	a = Plan(4, o, l.naming)
	if a.Type != ActionRemoveMember {
		t.Fatalf("scaling to 4 plans %+v, want RemoveMember", a)
	}
	_ = c.Close()
	l.executeRetry(a)
	l.actions = nil
	l.converge(4, time.Minute)
	l.expectMembers(4, "3.6.16")
	if n := countActions(l.actions, ActionAddLearner); n != 0 {
		t.Errorf("resuming a scale-in added %d members", n)
	}
	if countActions(l.actions, ActionDeletePod) != 1 || countActions(l.actions, ActionDeleteVolume) != 1 {
		t.Errorf("resuming a scale-in: actions %+v, want one pod and one volume deleted", l.actions)
	}
}

// TestUpgrade35To36 upgrades a 3-member etcd 3.5 cluster to 3.6 under
// writes: one member at a time, every member healthy before the next, the
// leader last after moving leadership away; an operator crash between a
// member's pod deletion and its re-creation is resumed.
func TestUpgrade35To36(t *testing.T) {
	l := newLocalCluster(t, "3.5.35")
	l.converge(3, time.Minute)
	l.expectMembers(3, "3.5.35")
	w := l.startWriter()
	time.Sleep(300 * time.Millisecond)

	l.version = "3.6.16"
	ctx := context.Background()
	// The first step restarts a follower; crash right after it.
	o, c := l.observe(ctx)
	a := Plan(3, o, l.naming)
	if a.Type != ActionDeletePod || a.Operation != OpRestart {
		t.Fatalf("upgrade starts with %+v, want a follower's pod deleted", a)
	}
	l.execute(ctx, a, o, c)
	_ = c.Close()
	start := time.Now()
	l.actions = nil
	l.converge(3, 2*time.Minute)
	t.Logf("upgrade 3.5.35 -> 3.6.16: %s", time.Since(start).Round(time.Millisecond))
	l.expectMembers(3, "3.6.16")
	if countActions(l.actions, ActionMoveLeader) != 1 {
		t.Errorf("upgrade moved leadership %d times, want once (before restarting the leader)", countActions(l.actions, ActionMoveLeader))
	}
	for i, leader := range l.leaderAtRestart {
		if leader {
			t.Errorf("restart %d stopped the leader", i)
		}
	}
	w.finish()
}

func idOf(members []Member, name string) uint64 {
	for _, m := range members {
		if m.Name == name {
			return m.ID
		}
	}
	return 0
}

package redis

import (
	"slices"
	"strings"
	"testing"
)

// planCase is a fake cluster, the planner's answer expected for it.
type planCase struct {
	name        string
	f           func() *fakeCluster
	want        ActionType
	op          string
	member      string
	peers       []string // in order
	slots       []SlotRange
	nodeID      string // Forget: the member name whose fake ID is forgotten
	wantBlocked string
	wantReason  string
	moves       []SlotMove
}

func (tt planCase) check(t *testing.T, f *fakeCluster, a Action) {
	t.Helper()
	var peers []string
	for _, p := range a.Peers {
		peers = append(peers, p.Member)
	}
	switch {
	case a.Type != tt.want,
		tt.op != "" && a.Operation != tt.op,
		tt.member != "" && a.Member != tt.member,
		tt.peers != nil && !slices.Equal(peers, tt.peers),
		tt.slots != nil && !slices.Equal(a.Slots, tt.slots),
		tt.nodeID != "" && a.NodeID != f.members[tt.nodeID].id,
		tt.moves != nil && !slices.Equal(a.Moves, tt.moves),
		tt.wantBlocked != "" && !strings.Contains(a.Blocked, tt.wantBlocked),
		tt.wantBlocked == "" && a.Blocked != "",
		tt.wantReason != "" && !strings.Contains(a.Reason, tt.wantReason),
		a.Reason == "":
		t.Errorf("got %s\n%+v", a, a)
	}
}

// lag makes replica n bytes behind its master.
func (f *fakeCluster) lag(replica string, n int64) {
	m := f.members[replica]
	f.members[m.master].offset = 100 << 20
	m.offset = 100<<20 - n
}

func TestPlanHandover(t *testing.T) {
	tests := []struct {
		planCase
		handover string
	}{
		{planCase{name: "a replica of a healthy master", f: func() *fakeCluster { return convergedCluster(3, 1) },
			want: ActionNone, wantReason: "rc-1-1 is a replica of the healthy master rc-1-0"}, "rc-1-1"},
		{planCase{name: "a master with a replica in sync: fail over to it", f: func() *fakeCluster { return convergedCluster(3, 1) },
			want: ActionFailover, op: OpHandover, member: "rc-1-1", peers: []string{"rc-1-0"}}, "rc-1-0"},
		{planCase{name: "the most up-to-date replica is chosen", f: func() *fakeCluster {
			f := convergedCluster(3, 2)
			f.lag("rc-1-1", 5000)
			f.lag("rc-1-2", 10)
			return f
		}, want: ActionFailover, member: "rc-1-2", peers: []string{"rc-1-0"}}, "rc-1-0"},
		{planCase{name: "a replica far behind: wait", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.lag("rc-1-1", 12<<20)
			return f
		}, want: ActionWait, wantReason: "replica rc-1-1 is 12 MB behind its master rc-1-0; handover waits"}, "rc-1-0"},
		{planCase{name: "no replica with its link up: blocked", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-1-1"].linkUp = false
			return f
		}, want: ActionWait,
			wantBlocked: "shard 1 has no healthy replica; restarting its master rc-1-0 would make slots 5461-10922 unavailable"}, "rc-1-0"},
		{planCase{name: "0 replicas per shard: None, and the slots are unavailable", f: func() *fakeCluster { return convergedCluster(3, 0) },
			want: ActionNone, wantReason: "slots 5461-10922 are unavailable while it restarts"}, "rc-1-0"},
		{planCase{name: "another member does not answer", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-2-1"].unreachable = true
			return f
		}, want: ActionWait, wantBlocked: "rc-2-1 does not answer; restarting rc-1-1 waits"}, "rc-1-1"},
		{planCase{name: "another member flagged failing", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.flags["rc-0-0"]["rc-2-0"] = "fail?"
			return f
		}, want: ActionWait, wantReason: "rc-2-0 is not connected to every member"}, "rc-1-0"},
		{planCase{name: "the member does not answer: None", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-1-0"].unreachable = true
			return f
		}, want: ActionNone, wantReason: "does not answer"}, "rc-1-0"},
		{planCase{name: "the master of a replica is failing", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.flags["rc-0-0"]["rc-1-0"] = "fail?"
			return f
		}, want: ActionWait, wantReason: "rc-1-0 is not connected to every member (or flagged failing); restarting rc-1-1 waits"}, "rc-1-1"},
		{planCase{name: "a master with a slot being migrated", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-1-0"].migrating = map[int]string{6000: "rc-2-0"}
			return f
		}, want: ActionWait, wantReason: "slots of rc-1-0 are being migrated"}, "rc-1-0"},
		{planCase{name: "a master serving no slot", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.add("rc-3-0")
			f.d.Members["rc-3-0"] = f.members["rc-3-0"].ep
			return f
		}, want: ActionNone, wantReason: "rc-3-0 is a master that serves no slot"}, "rc-3-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f()
			tt.check(t, f, PlanHandover(f.d, f.observed(), tt.handover))
		})
	}
}

func TestPlanRepairAndScale(t *testing.T) {
	tests := []planCase{
		{name: "a slot left migrating and importing: resumed", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-0-0"].migrating = map[int]string{100: "rc-1-0", 101: "rc-1-0"}
			f.members["rc-1-0"].importing = map[int]string{100: "rc-0-0", 101: "rc-0-0"}
			return f
		}, want: ActionMigrateSlots, op: OpRepair, member: "rc-0-0", peers: []string{"rc-1-0", "rc-2-0"},
			slots: []SlotRange{{100, 101}},
			moves: []SlotMove{{Slot: 100, Importing: true, Migrating: true}, {Slot: 101, Importing: true, Migrating: true}}},
		{name: "a slot left importing only: resumed", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-1-0"].importing = map[int]string{100: "rc-0-0"}
			return f
		}, want: ActionMigrateSlots, op: OpRepair, member: "rc-0-0", moves: []SlotMove{{Slot: 100, Importing: true}}},
		{name: "a slot the target took, the source still migrating: closed", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-0-0"].slots = []SlotRange{{0, 99}, {101, 5460}}
			f.members["rc-1-0"].slots = []SlotRange{{100, 100}, {5461, 10922}}
			f.members["rc-0-0"].migrating = map[int]string{100: "rc-1-0"}
			return f
		}, want: ActionMigrateSlots, op: OpRepair, member: "rc-0-0", moves: []SlotMove{{Slot: 100, Migrating: true, TargetOwns: true}}},
		{name: "a slot importing from a node that is no member: blocked", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.ghost("old", "rc-0-0", "fail")
			f.members["rc-1-0"].importing = map[int]string{100: "old"}
			return f
		}, want: ActionWait, wantBlocked: "slot 100 is open from node"},
		{name: "a replica count decreased: remove the extra replicas", f: func() *fakeCluster {
			f := convergedCluster(3, 2)
			f.d.ReplicasPerShard = 1
			return f
		}, want: ActionRemove, op: OpScale, member: "rc-0-2"},
		{name: "a removed member: forgotten by all at once", f: func() *fakeCluster {
			f := convergedCluster(3, 2)
			f.d.ReplicasPerShard = 1
			delete(f.d.Members, "rc-0-2")
			f.members["rc-0-2"].gone = true
			return f
		}, want: ActionForget, op: OpScale, nodeID: "rc-0-2",
			peers: []string{"rc-0-1", "rc-1-0", "rc-1-1", "rc-2-0", "rc-2-1", "rc-1-2", "rc-2-2"}, member: "rc-0-0"},
		{name: "a leaving member is the master of its shard: fail over to one of the shape", f: func() *fakeCluster {
			f := convergedCluster(3, 2)
			f.members["rc-0-2"].master, f.members["rc-0-2"].slots = "", []SlotRange{{0, 5460}}
			f.members["rc-0-0"].slots = nil
			f.replicate("rc-0-0", "rc-0-2")
			f.replicate("rc-0-1", "rc-0-2")
			f.lag("rc-0-0", 100)
			f.d.ReplicasPerShard = 1
			return f
		}, want: ActionFailover, op: OpScale, member: "rc-0-0", peers: []string{"rc-0-2"}},
		{name: "an old node ID flagged noaddr: forgotten", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.ghost("old", "rc-1-1", "noaddr")
			return f
		}, want: ActionForget, op: OpRepair, nodeID: "old", wantReason: "(rc-1-1's old node)"},
		{name: "an old node ID not flagged: converged waits", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.ghost("old", "rc-1-1", "")
			return f
		}, want: ActionWait, wantReason: "(rc-1-1's old node) is no member"},
		{name: "a lost master with 0 replicas: its slots blocked, never given to the empty node", f: func() *fakeCluster {
			f := convergedCluster(3, 0)
			f.ghost("old", "rc-2-0", "fail")
			f.members["old"].slots = f.members["rc-2-0"].slots
			f.members["rc-2-0"].slots = nil
			f.members["rc-2-0"].id = fakeID("rc-2-0 new")
			return f
		}, want: ActionWait, wantBlocked: "slots 10923-16383 of shard 2 have no master"},
		{name: "a lost master with a replica: wait for Redis' failover", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.ghost("old", "rc-2-0", "fail")
			f.members["old"].slots = f.members["rc-2-0"].slots
			f.members["rc-2-0"].slots = nil
			f.members["rc-2-0"].id = fakeID("rc-2-0 new")
			f.members["rc-2-1"].master = "old"
			return f
		}, want: ActionWait, wantBlocked: "slots 10923-16383 of shard 2 have no master: node",
			wantReason: "its replica rc-2-1 takes over"},
		{name: "a lost master failed over: its old ID is forgotten", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.ghost("old", "rc-2-0", "fail")
			f.members["rc-2-1"].master, f.members["rc-2-1"].slots = "", f.members["rc-2-0"].slots
			f.members["rc-2-0"].slots = nil
			f.members["rc-2-0"].id = fakeID("rc-2-0 new")
			return f
		}, want: ActionForget, nodeID: "old"},
		{name: "a lost master failed over: the empty member replicates the new master", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-2-1"].master, f.members["rc-2-1"].slots = "", f.members["rc-2-0"].slots
			f.members["rc-2-0"].slots = nil
			f.members["rc-2-0"].id = fakeID("rc-2-0 new")
			return f
		}, want: ActionReplicate, op: OpBootstrap, member: "rc-2-0", peers: []string{"rc-2-1"}},
		{name: "scale-out: the new shard's replica 0 receives the highest slots of shard 0", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.d.Shards = 4
			f.add("rc-3-0")
			f.add("rc-3-1")
			return f
		}, want: ActionMigrateSlots, op: OpScale, member: "rc-0-0", peers: []string{"rc-3-0", "rc-1-0", "rc-2-0", "rc-3-1"},
			slots: []SlotRange{{5461 - MigrateSlotsPerAction, 5460}}, wantReason: "rc-3-0 serves 0 of its 4096 slots, 4096 slots left to move"},
		{name: "scale-in: the leaving shard's slots go first", f: func() *fakeCluster {
			f := convergedCluster(4, 1)
			f.d.Shards = 3
			return f
		}, want: ActionMigrateSlots, op: OpScale, member: "rc-3-0", slots: []SlotRange{{NumSlots - MigrateSlotsPerAction, NumSlots - 1}}},
		{name: "a new shard master not ok yet: wait", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.d.Shards = 4
			f.add("rc-3-0")
			f.add("rc-3-1")
			f.members["rc-3-0"].state = "fail"
			return f
		}, want: ActionWait, wantReason: "rc-3-0 reports cluster_state fail"},
		{name: "a leaving member that no one knows: removed as it is", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.add("rc-0-2")
			for name := range f.members {
				delete(f.known[name], "rc-0-2")
			}
			f.known["rc-0-2"] = map[string]Endpoint{}
			return f
		}, want: ActionRemove, member: "rc-0-2"},
		{name: "a member named outside the cluster's names", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.d.Members["other"] = Endpoint{IP: "10.9.9.9", Port: 6379}
			return f
		}, want: ActionWait, wantBlocked: `member "other" is not named rc-<shard>-<replica>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f()
			tt.check(t, f, Plan(f.d, f.observed()))
		})
	}
}

// apply changes the fake cluster as Redis (and the caller, for Remove)
// would after a.
func (f *fakeCluster) apply(t *testing.T, a Action) {
	t.Helper()
	switch a.Type {
	case ActionMigrateSlots:
		src, dst := f.members[a.Member], f.members[a.Peers[0].Member]
		moving := func(s int) bool { return slices.ContainsFunc(a.Slots, func(r SlotRange) bool { return r.Contains(s) }) }
		src.slots = RangesOf(func(s int) bool {
			return slices.ContainsFunc(src.slots, func(r SlotRange) bool { return r.Contains(s) }) && !moving(s)
		})
		dst.slots = Normalize(append(dst.slots, a.Slots...))
	case ActionReplicate:
		f.replicate(a.Member, a.Peers[0].Member)
	case ActionRemove:
		delete(f.d.Members, a.Member)
		f.members[a.Member].gone = true
	case ActionForget:
		for _, p := range append([]Peer{{Member: a.Member}}, a.Peers...) {
			for peer, m := range f.members {
				if m.id == a.NodeID {
					delete(f.known[p.Member], peer)
				}
			}
		}
	default:
		t.Fatalf("unexpected %s", a)
	}
}

// run plans and applies until None, and returns the actions.
func (f *fakeCluster) run(t *testing.T) []Action {
	t.Helper()
	var out []Action
	for range 1000 {
		a := Plan(f.d, f.observed())
		if a.Type == ActionNone {
			return out
		}
		out = append(out, a)
		f.apply(t, a)
	}
	t.Fatalf("no convergence after 1000 steps: last %s", out[len(out)-1])
	return nil
}

// TestPlanScalesOutAndIn runs the planner on the fake cluster from 3
// shards to 4 and back: exactly 4096 slots move each way, the counts
// end as EvenSlots', and the leaving members are removed and forgotten.
func TestPlanScalesOutAndIn(t *testing.T) {
	f := convergedCluster(3, 1)
	f.d.Shards = 4
	f.add("rc-3-0")
	f.add("rc-3-1")
	count := func(steps []Action, typ ActionType) (n, slots int) {
		for _, a := range steps {
			if a.Type == typ {
				n++
				slots += CountSlots(a.Slots)
			}
		}
		return n, slots
	}
	expectCounts := func(shards int) {
		for s, r := range EvenSlots(shards) {
			if got := CountSlots(f.members[MemberName("rc", s, 0)].slots); got != r.Count() {
				t.Errorf("shard %d serves %d slots, want %d", s, got, r.Count())
			}
		}
	}
	steps := f.run(t)
	if n, slots := count(steps, ActionMigrateSlots); slots != 4096 || n > 4096/MigrateSlotsPerAction+3 {
		t.Errorf("scale-out: %d slots moved in %d actions", slots, n)
	}
	if n, _ := count(steps, ActionReplicate); n != 1 || f.members["rc-3-1"].master != "rc-3-0" {
		t.Errorf("scale-out: %d Replicate, rc-3-1 replicates %q", n, f.members["rc-3-1"].master)
	}
	expectCounts(4)

	f.d.Shards = 3
	steps = f.run(t)
	if _, slots := count(steps, ActionMigrateSlots); slots != 4096 {
		t.Errorf("scale-in: %d slots moved", slots)
	}
	removes, _ := count(steps, ActionRemove)
	forgets, _ := count(steps, ActionForget)
	if removes != 2 || forgets != 2 || steps[len(steps)-1].Type != ActionForget {
		t.Errorf("scale-in: %d Remove, %d Forget: %v", removes, forgets, steps[len(steps)-4:])
	}
	expectCounts(3)
}

func TestSummarizeLeaving(t *testing.T) {
	f := convergedCluster(3, 2)
	f.d.ReplicasPerShard = 1
	sum := Summarize(f.d, f.observed())
	var names []string
	for _, m := range sum.Leaving {
		names = append(names, m.Member)
		if m.Role != "replica" || !m.Healthy {
			t.Errorf("leaving %+v", m)
		}
	}
	if !slices.Equal(names, []string{"rc-0-2", "rc-1-2", "rc-2-2"}) || len(sum.Shards[0].Members) != 2 || sum.ClusterState != "ok" {
		t.Errorf("summary: leaving %v, shard 0 %+v, state %q", names, sum.Shards[0].Members, sum.ClusterState)
	}
}

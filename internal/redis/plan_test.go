package redis

import (
	"slices"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		f    func() *fakeCluster
		// edit changes the desired state after the cluster is built.
		edit        func(*Desired)
		want        ActionType
		op          string
		member      string
		peers       []string
		slots       []SlotRange
		wantBlocked string
		wantReason  string
	}{
		{name: "fresh nodes with config epoch 0: set the first one's", f: func() *fakeCluster {
			f := freshCluster(3, 1)
			for _, m := range f.members {
				m.epoch = 0
			}
			return f
		}, want: ActionSetConfigEpoch, op: OpBootstrap, member: "rc-0-0"},
		{name: "fresh nodes: the first meets all the others", f: func() *fakeCluster { return freshCluster(3, 1) },
			want: ActionMeet, op: OpBootstrap, member: "rc-0-0", peers: []string{"rc-0-1", "rc-1-0", "rc-1-1", "rc-2-0", "rc-2-1"}},
		{name: "the first knows all: the next meets the rest", f: func() *fakeCluster {
			f := freshCluster(3, 1)
			f.meetAll("rc-0-0")
			return f
		}, want: ActionMeet, op: OpBootstrap, member: "rc-0-1", peers: []string{"rc-1-0", "rc-1-1", "rc-2-0", "rc-2-1"}},
		{name: "a pair known one way: the side that lacks meets", f: func() *fakeCluster {
			f := metCluster(3, 1)
			delete(f.known["rc-2-1"], "rc-0-0")
			return f
		}, want: ActionMeet, op: OpBootstrap, member: "rc-2-1", peers: []string{"rc-0-0"}},
		{name: "handshake under way: wait for it", f: func() *fakeCluster {
			f := metCluster(3, 1)
			delete(f.known["rc-2-1"], "rc-0-0")
			delete(f.known["rc-0-0"], "rc-2-1")
			f.handshakes["rc-0-0"] = []Endpoint{f.members["rc-2-1"].ep}
			return f
		}, want: ActionWait, wantReason: "nodes rc-0-0 and rc-2-1 are in handshake"},
		{name: "all met: slots of shard 0 to rc-0-0", f: func() *fakeCluster { return metCluster(3, 1) },
			want: ActionAddSlots, op: OpBootstrap, member: "rc-0-0", slots: []SlotRange{{0, 5460}}},
		{name: "bootstrap resumed: shard 1 next", f: func() *fakeCluster {
			f := metCluster(3, 1)
			f.members["rc-0-0"].slots = []SlotRange{{0, 5460}}
			f.hidden["rc-1-1"]["rc-0-0"] = true // gossip has not reached everyone yet
			return f
		}, want: ActionAddSlots, member: "rc-1-0", slots: []SlotRange{{5461, 10922}}},
		{name: "slots assigned: attach the first replica", f: func() *fakeCluster {
			f := metCluster(3, 1)
			for s, r := range EvenSlots(3) {
				f.members[MemberName("rc", s, 0)].slots = []SlotRange{r}
			}
			return f
		}, want: ActionReplicate, op: OpBootstrap, member: "rc-0-1", peers: []string{"rc-0-0"}},
		{name: "converged", f: func() *fakeCluster { return convergedCluster(3, 1) }, want: ActionNone},
		{name: "converged with 2 replicas per shard", f: func() *fakeCluster { return convergedCluster(3, 2) }, want: ActionNone},
		{name: "a failed-over shard is converged as Redis says", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-0-1"].master, f.members["rc-0-1"].slots = "", []SlotRange{{0, 5460}}
			f.members["rc-0-0"].slots = nil
			f.replicate("rc-0-0", "rc-0-1")
			return f
		}, want: ActionNone},
		{name: "an empty member of a failed-over shard replicates the new master", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-0-1"].master, f.members["rc-0-1"].slots = "", []SlotRange{{0, 5460}}
			f.members["rc-0-0"].slots = nil
			return f
		}, want: ActionReplicate, member: "rc-0-0", peers: []string{"rc-0-1"}},
		{name: "every pod restarted with a new IP: re-meet", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.moveAll()
			return f
		}, want: ActionMeet, op: OpRemeet, member: "rc-0-0", peers: []string{"rc-0-1", "rc-1-0", "rc-1-1", "rc-2-0", "rc-2-1"}},
		{name: "a member that does not answer blocks", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-1-0"].unreachable = true
			return f
		}, want: ActionWait, wantBlocked: "node rc-1-0 is not reachable", wantReason: "connection refused"},
		{name: "a member without an address blocks", f: func() *fakeCluster { return convergedCluster(3, 1) },
			edit: func(d *Desired) { delete(d.Members, "rc-2-1") }, want: ActionWait, wantBlocked: "node rc-2-1 has no address (not running)"},
		{name: "a member observed at an older address: wait", f: func() *fakeCluster { return convergedCluster(3, 1) },
			edit: func(d *Desired) { d.Members["rc-2-1"] = Endpoint{IP: "10.9.9.9", Port: 6379} },
			want: ActionWait, wantReason: "node rc-2-1 was not observed at its address 10.9.9.9:6379 yet"},
		{name: "a slot lost outside bootstrap blocks", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-1-0"].slots = []SlotRange{{5461, 10000}}
			return f
		}, want: ActionWait, wantBlocked: "slots 10001-10922 have no master"},
		{name: "a replica among the members: no bootstrap, slots missing block", f: func() *fakeCluster {
			f := metCluster(3, 1)
			f.members["rc-0-0"].slots = []SlotRange{{0, 5460}}
			f.replicate("rc-0-1", "rc-0-0")
			f.replicate("rc-1-1", "rc-0-0")
			return f
		}, want: ActionWait, wantBlocked: "slots 5461-16383 have no master: no node serves them"},
		{name: "a replica of another shard is repaired", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.replicate("rc-0-1", "rc-1-0")
			return f
		}, want: ActionReplicate, op: OpRepair, member: "rc-0-1", peers: []string{"rc-0-0"},
			wantReason: "rc-0-1 replicates rc-1-0, not rc-0-0, the master of shard 0"},
		{name: "two masters in a shard block", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-0-0"].slots = []SlotRange{{0, 100}}
			f.members["rc-0-1"].master, f.members["rc-0-1"].slots = "", []SlotRange{{101, 5460}}
			return f
		}, want: ActionWait, wantBlocked: "shard 0 has 2 masters serving slots: rc-0-0, rc-0-1"},
		{name: "two members with one node ID block", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-2-1"].id = f.members["rc-2-0"].id
			return f
		}, want: ActionWait, wantBlocked: "members rc-2-0 and rc-2-1 are the same Redis node"},
		{name: "gossip has not spread the slots yet", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.hidden["rc-2-1"]["rc-0-0"] = true
			return f
		}, want: ActionWait, wantReason: "node rc-2-1 sees 10923 of 16384 slots served yet"},
		{name: "a replica still syncing", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-1-1"].linkUp = false
			return f
		}, want: ActionWait, wantReason: "replica rc-1-1 is syncing from its master rc-1-0"},
		{name: "a node that cannot reach a peer", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.flags["rc-0-0"]["rc-2-0"] = "fail?"
			return f
		}, want: ActionWait, wantReason: "node rc-0-0 cannot reach rc-2-0 (fail?)"},
		{name: "a link not up yet", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.flags["rc-1-1"]["rc-0-1"] = "disconnected"
			return f
		}, want: ActionWait, wantReason: "node rc-1-1 has no link to rc-0-1 yet"},
		{name: "cluster_state not ok yet", f: func() *fakeCluster {
			f := convergedCluster(3, 1)
			f.members["rc-2-0"].state = "fail"
			return f
		}, want: ActionWait, wantReason: "node rc-2-0 reports cluster_state fail"},
		{name: "no shards", f: func() *fakeCluster { return convergedCluster(3, 1) }, edit: func(d *Desired) { d.Shards = 0 },
			want: ActionWait, wantBlocked: "0 shards: want 1 to 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f()
			if tt.edit != nil {
				tt.edit(&f.d)
			}
			a := Plan(f.d, f.observed())
			var peers []string
			for _, p := range a.Peers {
				peers = append(peers, p.Member)
				if p.ID != f.members[p.Member].id || !p.Addr.Equal(f.d.Members[p.Member]) {
					t.Errorf("peer %+v: want ID %s at %s", p, f.members[p.Member].id, f.d.Members[p.Member])
				}
			}
			slices.Sort(peers)
			switch {
			case a.Type != tt.want,
				tt.op != "" && a.Operation != tt.op,
				tt.member != "" && (a.Member != tt.member || !a.Addr.Equal(f.d.Members[tt.member])),
				tt.peers != nil && !slices.Equal(peers, tt.peers),
				tt.slots != nil && !slices.Equal(a.Slots, tt.slots),
				tt.wantBlocked != "" && !strings.Contains(a.Blocked, tt.wantBlocked),
				tt.wantBlocked == "" && a.Blocked != "",
				tt.wantReason != "" && !strings.Contains(a.Reason, tt.wantReason),
				a.Reason == "":
				t.Errorf("Plan = %s\n%+v", a, a)
			}
		})
	}
}

// TestPlanBootstrapsFromScratch applies every step Plan returns to the
// fake cluster, as Redis would, from fresh nodes to converged, and checks
// the steps: every pair met once, each shard's slots to replica 0, every
// other replica attached to it.
func TestPlanBootstrapsFromScratch(t *testing.T) {
	f := freshCluster(4, 2)
	for _, m := range f.members {
		m.epoch = 0
	}
	var steps []Action
	for range 100 {
		a := Plan(f.d, f.observed())
		if a.Type == ActionNone {
			break
		}
		steps = append(steps, a)
		switch a.Type {
		case ActionMeet:
			for _, p := range a.Peers {
				f.known[a.Member][p.Member], f.known[p.Member][a.Member] = p.Addr, a.Addr
			}
		case ActionAddSlots:
			f.members[a.Member].slots = append(f.members[a.Member].slots, a.Slots...)
		case ActionReplicate:
			f.replicate(a.Member, a.Peers[0].Member)
		case ActionSetConfigEpoch:
			f.members[a.Member].epoch = a.Epoch
		case ActionWait:
			if a.Reason != "node rc-0-0 reports cluster_state fail" {
				t.Fatalf("unexpected wait: %s", a)
			}
			for _, m := range f.members {
				m.state = "ok" // Redis, once every slot is served
			}
		}
	}
	meets, pairs := 0, 0
	for _, a := range steps {
		if a.Type == ActionMeet {
			meets++
			pairs += len(a.Peers)
		}
	}
	n := len(f.members)
	if meets != n-1 || pairs != n*(n-1)/2 {
		t.Errorf("%d Meet steps meeting %d pairs, want %d and %d", meets, pairs, n-1, n*(n-1)/2)
	}
	if got := Plan(f.d, f.observed()); got.Type != ActionNone {
		t.Fatalf("not converged after %d steps: %s", len(steps), got)
	}
	for s, r := range EvenSlots(4) {
		if m := f.members[MemberName("rc", s, 0)]; !slices.Equal(m.slots, []SlotRange{r}) || m.master != "" {
			t.Errorf("shard %d master: %+v", s, m)
		}
		for j := 1; j <= 2; j++ {
			if m := f.members[MemberName("rc", s, j)]; m.master != MemberName("rc", s, 0) {
				t.Errorf("replica %d of shard %d replicates %q", j, s, m.master)
			}
		}
	}
}

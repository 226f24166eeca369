package redis

import (
	"slices"
	"testing"
)

// TestNewObserved merges the views: every node once by ID, named by the
// member that answered as it, with what its peers report of it.
func TestNewObserved(t *testing.T) {
	f := convergedCluster(2, 1)
	f.members["rc-0-0"].offset, f.members["rc-0-1"].offset = 1000, 960
	f.flags["rc-1-0"]["rc-0-0"] = "fail?"
	f.flags["rc-0-1"]["rc-1-0"] = "disconnected"
	f.members["rc-1-1"].unreachable = true
	o := f.observed()
	if len(o.Nodes) != 4 || len(o.Views) != 4 {
		t.Fatalf("%d nodes, %d views: %+v", len(o.Nodes), len(o.Views), o.Nodes)
	}
	m := o.Nodes[fakeID("rc-0-0")]
	if m.Member != "rc-0-0" || m.Role != "master" || !m.Reachable || !slices.Equal(m.PFailBy, []string{"rc-1-0"}) ||
		m.Connected || !slices.Equal(m.Slots, []SlotRange{{0, 8191}}) {
		t.Errorf("master seen failing by rc-1-0: %+v", m)
	}
	if r := o.Nodes[fakeID("rc-0-1")]; r.Role != "replica" || r.MasterID != m.ID || !r.LagKnown || r.Lag != 40 || !r.Connected {
		t.Errorf("replica 40 bytes behind: %+v", r)
	}
	if n := o.Nodes[fakeID("rc-1-0")]; n.Connected || len(n.PFailBy) != 0 {
		t.Errorf("master whose link from rc-0-1 is down: %+v", n)
	}
	// rc-1-1 does not answer: its peers describe it, nobody names it.
	if r := o.Nodes[fakeID("rc-1-1")]; r.Member != "" || r.Reachable || r.Role != "replica" || r.LagKnown ||
		r.Endpoint != f.members["rc-1-1"].ep {
		t.Errorf("unreachable replica: %+v", r)
	}
}

func TestSummarize(t *testing.T) {
	f := convergedCluster(2, 1)
	// Shard 1 failed over; rc-0-1 lags; rc-1-0 is flagged by a peer.
	f.members["rc-1-1"].master, f.members["rc-1-1"].slots = "", []SlotRange{{8192, 16383}}
	f.members["rc-1-0"].slots = nil
	f.replicate("rc-1-0", "rc-1-1")
	f.members["rc-0-0"].offset, f.members["rc-0-1"].offset = 500, 400
	f.flags["rc-0-0"]["rc-1-0"] = "fail?"
	f.members["rc-0-1"].state = "fail"
	f.hidden["rc-0-1"]["rc-1-1"] = true // rc-0-1 has not heard of shard 1's new master's slots
	s := Summarize(f.d, f.observed())
	if s.ClusterState != "fail" || s.SlotsAssigned != 8192 || len(s.Shards) != 2 {
		t.Errorf("summary %+v", s)
	}
	sh0, sh1 := s.Shards[0].Members, s.Shards[1].Members
	if sh0[0].Member != "rc-0-0" || sh0[0].Role != "master" || sh0[0].Slots != 8192 || !sh0[0].Healthy ||
		sh0[1].Role != "replica" || sh0[1].Lag != 100 || !sh0[1].LagKnown || sh0[1].ClusterState != "fail" {
		t.Errorf("shard 0: %+v", sh0)
	}
	if sh1[0].Member != "rc-1-1" || sh1[0].Role != "master" || sh1[1].Member != "rc-1-0" || sh1[1].Healthy ||
		sh1[1].NodeID != fakeID("rc-1-0") || sh1[1].Addr != "10.0.0.3:6379" {
		t.Errorf("shard 1 (failed over): %+v", sh1)
	}
	if s := Summarize(f.d, Observed{}); s.ClusterState != "" || s.SlotsAssigned != 0 || len(s.Shards[0].Members) != 2 {
		t.Errorf("summary of nothing observed: %+v", s)
	}
	if s := Summarize(f.d, convergedCluster(2, 1).observed()); s.ClusterState != "ok" || s.SlotsAssigned != NumSlots {
		t.Errorf("summary of the converged cluster: %+v", s)
	}
}

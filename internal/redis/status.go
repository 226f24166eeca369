package redis

// Summary is what a status reports of the cluster: its shards with their
// members, the slots assigned and the cluster state, as Redis reports
// them.
type Summary struct {
	Shards []ShardSummary
	// Leaving are the members of Desired.Members beyond its shape (being
	// drained and removed), shard by shard.
	Leaving []MemberSummary
	// SlotsAssigned is the smallest cluster_slots_assigned any member
	// that answered reports (of NumSlots).
	SlotsAssigned int
	// ClusterState is "ok" when every member that answered reports
	// cluster_state:ok, else "fail" ("" when none answered).
	ClusterState string
}

// ShardSummary is one shard: its members, the master first when one of
// them is a master serving slots.
type ShardSummary struct {
	Index   int
	Members []MemberSummary
}

// MemberSummary is one member as it answered and as its peers see it.
type MemberSummary struct {
	Member string
	Addr   string
	NodeID string
	// Role is "master" or "replica" ("" when the member did not answer
	// and no peer knows its node).
	Role string
	// Healthy: it answered, and every member that answered is linked to
	// it and flags it neither fail? nor fail.
	Healthy bool
	// Slots is the number of slots a master serves.
	Slots int
	// ClusterState is the member's own cluster_state.
	ClusterState string
	// Offset is the replication offset; Lag, for a replica, how many bytes
	// it is behind its master (LagKnown when both answered).
	Offset   int64
	Lag      int64
	LagKnown bool
}

// Summarize describes o in the shape of d for a status.
func Summarize(d Desired, o Observed) Summary {
	sum := Summary{SlotsAssigned: NumSlots}
	answered, ok := 0, 0
	count := func(m MemberSummary) {
		if m.ClusterState != "" {
			answered++
			if m.ClusterState == "ok" {
				ok++
			}
			sum.SlotsAssigned = min(sum.SlotsAssigned, o.Views[m.Member].Info.SlotsAssigned)
		}
	}
	for s := range d.Shards {
		shard := ShardSummary{Index: s}
		for r := range 1 + d.ReplicasPerShard {
			m := summarizeMember(d, o, MemberName(d.Name, s, r))
			count(m)
			if m.Role == "master" && m.Slots > 0 {
				shard.Members = append([]MemberSummary{m}, shard.Members...)
			} else {
				shard.Members = append(shard.Members, m)
			}
		}
		sum.Shards = append(sum.Shards, shard)
	}
	for _, name := range d.LeavingMembers() {
		m := summarizeMember(d, o, name)
		count(m)
		sum.Leaving = append(sum.Leaving, m)
	}
	switch {
	case answered == 0:
		sum.SlotsAssigned = 0
	case ok == answered:
		sum.ClusterState = "ok"
	default:
		sum.ClusterState = "fail"
	}
	return sum
}

func summarizeMember(d Desired, o Observed, name string) MemberSummary {
	m := MemberSummary{Member: name}
	if e, ok := d.Members[name]; ok {
		m.Addr = e.Addr()
	}
	v, asked := o.Views[name]
	if !asked || !v.Reachable() {
		return m
	}
	m.NodeID, m.ClusterState = v.ID, v.Info.State
	n := o.Nodes[v.ID]
	m.Role, m.Slots = n.Role, CountSlots(n.Slots)
	m.Healthy = n.Connected && len(n.PFailBy) == 0 && len(n.FailBy) == 0
	m.Offset, m.Lag, m.LagKnown = n.Offset, n.Lag, n.LagKnown
	return m
}

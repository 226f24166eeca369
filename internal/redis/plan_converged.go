package redis

import "fmt"

// converged checks, in this order, what a converged cluster shows and
// waits for the first thing missing:
//
//   - every slot is served by a member master in the union of the views
//     (blocked otherwise: "slot 5461 has no master"), and in every single
//     view (waiting for gossip otherwise);
//   - every shard has a master and ReplicasPerShard replicas of it, each
//     linked to its master (master_link_status:up);
//   - every member sees every other one connected and not failing;
//   - no member knows a node that is no member;
//   - every member reports cluster_state:ok.
func (p *planner) converged() (Action, bool) {
	if a, ok := p.slotsServed(); ok {
		return a, true
	}
	if a, ok := p.shardsComplete(); ok {
		return a, true
	}
	for _, a := range p.up {
		va := p.views[a]
		for _, b := range p.up {
			if a == b {
				continue
			}
			n, _ := va.Node(p.views[b].ID)
			switch {
			case n.Fail:
				return wait(OpConverge, fmt.Sprintf("node %s flags %s as failed", a, b)), true
			case n.PFail:
				return wait(OpConverge, fmt.Sprintf("node %s cannot reach %s (fail?)", a, b)), true
			case !n.Connected:
				return wait(OpConverge, fmt.Sprintf("node %s has no link to %s yet", a, b)), true
			}
		}
	}
	if sts := p.strangers(); len(sts) > 0 {
		st := sts[0]
		return wait(OpConverge, fmt.Sprintf("%s is no member, known to %s; it is forgotten once every one of them flags it failed",
			p.describe(st), joinNames(st.knownBy))), true
	}
	for _, name := range p.up {
		if st := p.views[name].Info.State; st != "ok" {
			return wait(OpConverge, fmt.Sprintf("node %s reports cluster_state %s", name, st)), true
		}
	}
	return Action{}, false
}

// slotsServed checks that every slot has a master that is a member.
func (p *planner) slotsServed() (Action, bool) {
	var union [NumSlots]string
	var first [NumSlots]string // the first view that sees each slot served
	for _, name := range p.up {
		for _, n := range p.views[name].Nodes {
			if n.Handshake {
				continue
			}
			for _, r := range n.Slots {
				for s := r.Start; s <= r.End; s++ {
					if union[s] == "" {
						union[s], first[s] = n.ID, name
					}
				}
			}
		}
	}
	for s, id := range union {
		if id == "" {
			return blocked("", fmt.Sprintf("slot %d has no master", s)), true
		}
		if _, member := p.byID[id]; !member {
			return blocked("", fmt.Sprintf("slot %d is served by node %s, which is no member (as %s sees it)", s, id, first[s])), true
		}
	}
	for _, name := range p.up {
		served := 0
		for _, n := range p.views[name].Nodes {
			if !n.Handshake {
				served += CountSlots(n.Slots)
			}
		}
		if served < NumSlots {
			return wait(OpConverge, fmt.Sprintf("node %s sees %d of %d slots served yet", name, served, NumSlots)), true
		}
	}
	return Action{}, false
}

// shardsComplete checks every shard's master and replicas.
func (p *planner) shardsComplete() (Action, bool) {
	for s := range p.d.Shards {
		master, _ := p.shardMaster(s)
		if master == "" {
			return blocked("", fmt.Sprintf("shard %d has no master: none of %s serves slots",
				s, joinNames(p.shardMembers(s)))), true
		}
		mid := p.views[master].ID
		for _, name := range p.shardMembers(s) {
			if name == master {
				continue
			}
			v := p.views[name]
			if me := v.Myself(); !me.Replica || me.MasterID != mid {
				return blocked("", fmt.Sprintf("%s is no replica of %s, the master of shard %d", name, master, s)), true
			}
			if !v.Replication.MasterLinkUp {
				return wait(OpConverge, fmt.Sprintf("replica %s is syncing from its master %s (offset %d of %d)",
					name, master, v.Replication.Offset, p.views[master].Replication.Offset)), true
			}
		}
	}
	return Action{}, false
}

package redis

import (
	"fmt"
	"strings"
)

// meet makes every member that answers know every other one at the
// address it has now. A MEET teaches the sender the peer's ID and address;
// a peer that did not know the sender learns it in the same handshake, so
// a pair that knows neither way is met once, by the side first in member
// order. A peer that knew the sender at an older address learns the new
// one only from the sender's next PING, so it may meet the sender in turn
// at a later step. Nothing is sent while either side of a pair is in
// handshake with the other. All the meetings of one member make one step:
// fresh members are met in n-1 steps. None waits for gossip, which
// spreads new nodes at once but a moved node's address only after its
// peers flag it failing (cluster-node-timeout).
func (p *planner) meet() (Action, bool) {
	pending := ""
	list := p.meetable()
	for i, a := range list {
		act, inHandshake := p.meetsOf(list, i, a)
		if len(act.Peers) > 0 {
			return act, true
		}
		if pending == "" {
			pending = inHandshake
		}
	}
	if pending != "" {
		return wait(OpConverge, pending), true
	}
	return Action{}, false
}

// knows reports whether member a knows member b's node, and whether at
// b's current address.
func (p *planner) knows(a, b string) (known, right bool) {
	n, known := p.views[a].Node(p.views[b].ID)
	return known, known && n.Endpoint.Equal(p.d.Members[b]) && !n.NoAddr
}

// meetable lists the members that answer and take part in the
// cluster: those of d's shape, and the leaving ones some other member
// knows. A leaving member that knows no one and no one knows is not met:
// it is removed as it is.
func (p *planner) meetable() []string {
	var out []string
	for _, a := range p.up {
		if !p.d.Leaving(a) || len(p.views[a].Nodes) > 1 || p.knownByOthers(a) {
			out = append(out, a)
		}
	}
	return out
}

// knownByOthers reports whether another member that answers knows a's
// node.
func (p *planner) knownByOthers(a string) bool {
	for _, b := range p.up {
		if _, known := p.views[b].Node(p.views[a].ID); known && b != a {
			return true
		}
	}
	return false
}

// setEpochs gives the members of d's shape distinct config epochs (the
// i-th member, shard by shard, epoch i+1) while the cluster is fresh:
// CLUSTER SET-CONFIG-EPOCH is accepted only by a node that knows no other
// one, so this is done before the first MEET, as redis-cli --cluster
// create does. Without it the nodes would start with epoch 0 and settle
// their collisions by gossip, one bump at a time. A member that starts
// after the first MEET keeps epoch 0 and gets one the same way.
func (p *planner) setEpochs() (Action, bool) {
	for _, name := range p.up {
		if len(p.views[name].Nodes) > 1 {
			return Action{}, false
		}
	}
	var epoch uint64
	for _, name := range p.names {
		epoch++
		v, ok := p.views[name]
		if !ok || v.Myself().ConfigEpoch != 0 {
			continue
		}
		return Action{Type: ActionSetConfigEpoch, Operation: OpBootstrap, Member: name, Addr: p.d.Members[name],
			Epoch: epoch, Reason: fmt.Sprintf("giving the fresh node %s config epoch %d before it meets the others", name, epoch)}, true
	}
	return Action{}, false
}

// meetsOf is the Meet of the i-th member a of list: the peers it sends
// MEET to (none when it has nothing to send), and a pair of a in
// handshake, if any.
func (p *planner) meetsOf(list []string, i int, a string) (Action, string) {
	act := Action{Type: ActionMeet, Operation: OpBootstrap, Member: a, Addr: p.d.Members[a]}
	var unknown, moved []string
	inHandshake := ""
	for j, b := range list {
		if a == b {
			continue
		}
		aKnown, aRight := p.knows(a, b)
		_, bRight := p.knows(b, a)
		switch {
		case aRight && bRight:
			continue
		case p.views[a].handshakeWith(p.d.Members[b]) || p.views[b].handshakeWith(p.d.Members[a]):
			if inHandshake == "" {
				inHandshake = fmt.Sprintf("nodes %s and %s are in handshake", a, b)
			}
			continue
		case aRight || (!bRight && j < i):
			// b lacks a, or both lack each other and b comes first: b
			// meets a in its own step.
			continue
		}
		act.Peers = append(act.Peers, Peer{Member: b, Addr: p.d.Members[b], ID: p.views[b].ID})
		if aKnown {
			moved = append(moved, b)
		} else {
			unknown = append(unknown, b)
		}
	}
	var parts []string
	if len(unknown) > 0 {
		parts = append(parts, "does not know "+joinNames(unknown))
	}
	if len(moved) > 0 {
		act.Operation = OpRemeet
		parts = append(parts, "knows "+joinNames(moved)+" at an older address")
	}
	act.Reason = fmt.Sprintf("node %s %s", a, strings.Join(parts, " and "))
	return act, inHandshake
}

// rangeState is how the slots of one range of the even layout are
// assigned across all views.
type rangeState struct {
	owners   map[string]bool // node IDs serving any of its slots, in any view
	complete bool            // some view has all its slots served by one node
}

func (p *planner) rangeStates(ranges []SlotRange) []rangeState {
	states := make([]rangeState, len(ranges))
	for i, r := range ranges {
		states[i].owners = map[string]bool{}
		for _, name := range p.up {
			for _, n := range p.views[name].Nodes {
				if n.Handshake {
					continue
				}
				covered := 0
				for _, s := range n.Slots {
					if lo, hi := max(s.Start, r.Start), min(s.End, r.End); lo <= hi {
						states[i].owners[n.ID] = true
						covered += hi - lo + 1
					}
				}
				if covered == r.Count() {
					states[i].complete = true
				}
			}
		}
	}
	return states
}

// assignSlots bootstraps the slots: it applies only while the cluster
// looks like a bootstrap under way, every range of EvenSlots either
// unassigned in every view or served whole by a single node, no member a
// replica (replicas are attached once every slot is assigned) and no
// member holding a key (no client can write before every slot is
// served). Then the first unassigned range goes to replica 0 of its
// shard, if that member is an empty master. Any other layout with
// unassigned slots is no bootstrap (slots were lost, or a node that
// served them was forgotten): slotsOwned reports it and nothing is
// assigned by name, for an empty node given those slots would serve an
// empty shard in place of the lost data.
func (p *planner) assignSlots() (Action, bool) {
	for _, name := range p.up {
		if v := p.views[name]; v.Myself().Replica || v.Keys > 0 {
			return Action{}, false
		}
	}
	ranges := EvenSlots(p.d.Shards)
	states := p.rangeStates(ranges)
	next := -1
	for i, st := range states {
		switch {
		case len(st.owners) == 0:
			if next < 0 {
				next = i
			}
		case len(st.owners) > 1 || !st.complete:
			return Action{}, false
		}
	}
	if next < 0 {
		return Action{}, false
	}
	name := MemberName(p.d.Name, next, 0)
	me := p.views[name].Myself()
	if !me.Master || len(me.Slots) > 0 {
		return blocked(OpBootstrap, fmt.Sprintf("slot %d has no master, and %s, which would serve slots %s, is not an empty master (%s)",
			ranges[next].Start, name, ranges[next], me.Role())), true
	}
	return Action{Type: ActionAddSlots, Operation: OpBootstrap, Member: name, Addr: p.d.Members[name],
		Slots:  []SlotRange{ranges[next]},
		Reason: fmt.Sprintf("assigning slots %s (shard %d) to %s", ranges[next], next, name)}, true
}

// shardMaster returns the member of shard s (of d's shape or leaving)
// that is a master serving slots, as it reports itself; blocked when
// there are several.
func (p *planner) shardMaster(s int) (string, *Action) {
	var masters []string
	for _, name := range p.shardAll(s) {
		if me := p.views[name].Myself(); me.Master && len(me.Slots) > 0 {
			masters = append(masters, name)
		}
	}
	switch len(masters) {
	case 0:
		return "", nil
	case 1:
		return masters[0], nil
	}
	a := blocked(OpBootstrap, fmt.Sprintf("shard %d has %d masters serving slots: %s", s, len(masters), joinNames(masters)))
	return "", &a
}

// attachReplicas makes every empty master among a shard's members of
// d's shape a replica of the shard's master, and repairs a replica of
// any other master (another shard's, or a node that is no member) the
// same way: a replica holds nothing its master does not, so REPLICATE
// loses nothing. Which member is the master is read from Redis, never
// assumed: after a failover it is another replica index. A shard with no
// master serving slots is left to slotsOwned (a lost master) or
// rebalance (a new shard).
func (p *planner) attachReplicas() (Action, bool) {
	for s := range p.d.Shards {
		master, blockedBy := p.shardMaster(s)
		if blockedBy != nil {
			return *blockedBy, true
		}
		if master == "" {
			continue
		}
		if a, ok := p.attachTo(s, master); ok {
			return a, true
		}
	}
	return Action{}, false
}

// attachTo attaches the members of shard s that are not replicas of its
// master.
func (p *planner) attachTo(s int, master string) (Action, bool) {
	mid := p.views[master].ID
	for _, name := range p.shardMembers(s) {
		v, ok := p.views[name]
		if name == master || !ok {
			continue
		}
		me := v.Myself()
		op, why := OpBootstrap, fmt.Sprintf("attaching %s as a replica of %s, the master of shard %d", name, master, s)
		switch {
		case me.Replica && me.MasterID == mid:
			continue
		case me.Replica:
			op, why = OpRepair, fmt.Sprintf("%s replicates %s, not %s, the master of shard %d", name, p.member(me.MasterID), master, s)
		case len(me.Slots) > 0 || len(me.Migrating) > 0 || len(me.Importing) > 0:
			continue // a second master: shardMaster reported it; or a migration openSlots resumes
		case v.Keys > 0:
			return blocked(op, fmt.Sprintf("%s is a master that serves no slot but holds %d keys; it cannot become a replica of %s",
				name, v.Keys, master)), true
		}
		if n, known := v.Node(mid); !known || !n.Master {
			return wait(op, fmt.Sprintf("%s does not know %s as the master of shard %d yet", name, master, s)), true
		}
		return Action{Type: ActionReplicate, Operation: op, Member: name, Addr: p.d.Members[name],
			Peers: []Peer{{Member: master, Addr: p.d.Members[master], ID: mid}}, Reason: why}, true
	}
	return Action{}, false
}

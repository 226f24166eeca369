package redis

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// stranger is a node that members know but that is no member that
// answers: the old ID of a member that lost its volume, a removed member,
// or a member that does not answer.
type stranger struct {
	id string
	// knownBy are the members whose tables list it.
	knownBy []string
	// hostname is the name it announced ("" when none).
	hostname string
	// slots: some view has it serving slots.
	slots bool
	// failed: every view that lists it flags it fail or noaddr; noaddr:
	// some view flags it noaddr.
	failed, noaddr bool
	// masterOf are the members that replicate it.
	masterOf []string
	// open: a member has a slot importing from or migrating to it.
	open bool
}

// strangers lists the nodes the members know that are no member that
// answers, by node ID.
func (p *planner) strangers() []stranger {
	byID := map[string]*stranger{}
	var ids []string
	for _, name := range p.up {
		v := p.views[name]
		p.referencesOf(byID, &ids, name)
		for _, n := range v.Nodes {
			if _, member := p.byID[n.ID]; member || n.Handshake || n.Myself {
				continue
			}
			st := p.strangerOf(byID, &ids, n.ID)
			st.knownBy = append(st.knownBy, name)
			if n.Hostname != "" {
				st.hostname = n.Hostname
			}
			st.slots = st.slots || len(n.Slots) > 0
			st.failed = st.failed && (n.Fail || n.NoAddr)
			st.noaddr = st.noaddr || n.NoAddr
		}
	}
	slices.Sort(ids)
	out := make([]stranger, 0, len(ids))
	for _, id := range ids {
		out = append(out, *byID[id])
	}
	return out
}

// referencesOf records the strangers member's own line refers to: its
// master, the nodes of its open slots.
func (p *planner) referencesOf(byID map[string]*stranger, ids *[]string, member string) {
	me := p.views[member].Myself()
	if _, known := p.byID[me.MasterID]; me.MasterID != "" && !known {
		st := p.strangerOf(byID, ids, me.MasterID)
		st.masterOf = append(st.masterOf, member)
	}
	for _, id := range append(slices.Collect(maps.Values(me.Migrating)), slices.Collect(maps.Values(me.Importing))...) {
		if _, known := p.byID[id]; !known {
			p.strangerOf(byID, ids, id).open = true
		}
	}
}

func (p *planner) strangerOf(byID map[string]*stranger, ids *[]string, id string) *stranger {
	st, ok := byID[id]
	if !ok {
		st = &stranger{id: id, failed: true}
		byID[id] = st
		*ids = append(*ids, id)
	}
	return st
}

// removed reports whether the stranger is a member that was removed: it
// announced a member's name that d.Members no longer has.
func (p *planner) removed(st stranger) bool {
	_, _, named := p.d.parseMember(st.hostname)
	_, has := p.d.Members[st.hostname]
	return named && !has
}

// describe names a stranger for messages: "node <id> (rc-1-1's old node)".
func (p *planner) describe(st stranger) string {
	switch {
	case st.hostname == "":
		return "node " + st.id
	case p.removed(st):
		return fmt.Sprintf("node %s (%s, removed)", st.id, st.hostname)
	case p.isUp(st.hostname):
		return fmt.Sprintf("node %s (%s's old node)", st.id, st.hostname)
	}
	return fmt.Sprintf("node %s (%s)", st.id, st.hostname)
}

// forget sends CLUSTER FORGET for a node that is no member to every
// member that knows it, when that is safe: the node serves no slot in any
// view (slotsOwned reports one that does), no member replicates it
// (attachReplicas moves those first), no slot is open to or from it
// (forgetting it would drop the slot's importing or migrating state, and
// the keys already moved with it: openSlots reports it), and either it is a removed member
// (it announced the name of a member d.Members no longer has) or every
// member that lists it flags it fail or noaddr (a node that restarted
// with a new ID on the same address shows as noaddr at once). A node
// that announces a member that has not answered yet is left alone: it may
// be that member, down.
func (p *planner) forget() (Action, bool) {
	for _, st := range p.strangers() {
		if st.slots || st.open || len(st.masterOf) > 0 || len(st.knownBy) == 0 {
			continue
		}
		if _, has := p.d.Members[st.hostname]; has && !p.isUp(st.hostname) {
			continue
		}
		why := "it was removed"
		switch {
		case p.removed(st):
		case st.failed:
			why = "every member that knows it flags it failed"
		default:
			continue // converged waits for the flags
		}
		first := st.knownBy[0]
		a := Action{Type: ActionForget, Operation: OpRepair, Member: first, Addr: p.d.Members[first], NodeID: st.id,
			Reason: fmt.Sprintf("forgetting %s, which is no member, on %s: %s", p.describe(st), joinNames(st.knownBy), why)}
		if p.removed(st) {
			a.Operation = OpScale
		}
		for _, name := range st.knownBy[1:] {
			a.Peers = append(a.Peers, Peer{Member: name, Addr: p.d.Members[name], ID: p.views[name].ID})
		}
		return a, true
	}
	return Action{}, false
}

// openSlot is a slot left importing or migrating, from the members' own
// lines of CLUSTER NODES (Redis shows those states for myself only).
type openSlot struct {
	slot           int
	source, target string // node IDs
	migrating      bool   // the source's state
	importing      bool   // the target's state
}

// openSlotsOf lists the open slots, lowest first, or a blocked action when
// the members disagree on one.
func (p *planner) openSlotsOf() ([]openSlot, *Action) {
	bySlot := map[int]*openSlot{}
	add := func(slot int, source, target string, migrating bool) *Action {
		o, ok := bySlot[slot]
		if !ok {
			o = &openSlot{slot: slot, source: source, target: target}
			bySlot[slot] = o
		}
		if o.source != source || o.target != target {
			a := blocked(OpRepair, fmt.Sprintf("slot %d is open between %s and %s, and between %s and %s",
				slot, p.member(o.source), p.member(o.target), p.member(source), p.member(target)))
			return &a
		}
		if migrating {
			o.migrating = true
		} else {
			o.importing = true
		}
		return nil
	}
	for _, name := range p.up {
		v := p.views[name]
		me := v.Myself()
		for slot, to := range me.Migrating {
			if a := add(slot, v.ID, to, true); a != nil {
				return nil, a
			}
		}
		for slot, from := range me.Importing {
			if a := add(slot, from, v.ID, false); a != nil {
				return nil, a
			}
		}
	}
	out := make([]openSlot, 0, len(bySlot))
	for _, o := range bySlot {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b openSlot) int { return a.slot - b.slot })
	return out, nil
}

// claims reports whether member serves slot, as it says itself.
func (p *planner) claims(member string, slot int) bool {
	for _, r := range p.views[member].Myself().Slots {
		if r.Contains(slot) {
			return true
		}
	}
	return false
}

// openSlots resumes a migration a crash (or a batch's key budget) left
// open: the slot is migrated to the end (remaining keys, then SETSLOT
// NODE everywhere), never abandoned, for the keys already moved live on
// the target only. The open slots of the lowest one's source and target
// make one step.
func (p *planner) openSlots() (Action, bool) {
	open, blockedBy := p.openSlotsOf()
	if blockedBy != nil {
		return *blockedBy, true
	}
	if len(open) == 0 {
		return Action{}, false
	}
	first := open[0]
	source, sok := p.byID[first.source]
	target, tok := p.byID[first.target]
	if !sok || !tok {
		return blocked(OpRepair, fmt.Sprintf("slot %d is open from %s to %s, one of which is no member that answers",
			first.slot, p.member(first.source), p.member(first.target))), true
	}
	if a, ok := p.migrationReady(OpRepair, source, target); ok {
		return a, true
	}
	var moves []SlotMove
	for _, o := range open {
		if o.source != first.source || o.target != first.target || len(moves) == MigrateSlotsPerAction {
			continue
		}
		m := SlotMove{Slot: o.slot, Importing: o.importing, Migrating: o.migrating, TargetOwns: p.claims(target, o.slot)}
		if !m.TargetOwns && !p.claims(source, o.slot) {
			return blocked(OpRepair, fmt.Sprintf("slot %d is open from %s to %s, but neither serves it", o.slot, source, target)), true
		}
		moves = append(moves, m)
	}
	a := p.migrateAction(OpRepair, source, target, moves)
	a.Reason = fmt.Sprintf("resuming the migration of slots %s from %s to %s (left open: %d slots)",
		FormatSlots(a.Slots), source, target, len(open))
	return a, true
}

// migrateAction moves moves from source to target; every other master
// that answers is told the new owner too.
func (p *planner) migrateAction(op, source, target string, moves []SlotMove) Action {
	a := Action{Type: ActionMigrateSlots, Operation: op, Member: source, Addr: p.d.Members[source],
		MemberID: p.views[source].ID, Moves: moves,
		Peers: []Peer{{Member: target, Addr: p.d.Members[target], ID: p.views[target].ID}}}
	for _, name := range p.up {
		if me := p.views[name].Myself(); me.Master && name != source && name != target {
			a.Peers = append(a.Peers, Peer{Member: name, Addr: p.d.Members[name], ID: me.ID})
		}
	}
	a.Slots = RangesOf(func(s int) bool {
		return slices.ContainsFunc(moves, func(m SlotMove) bool { return m.Slot == s })
	})
	return a
}

// slotsOwned checks that every slot is served by exactly one member
// master that answers, as the masters report themselves, and records
// them in p.owner. Slots no such member serves are blocked: a shard
// whose master failed with no replica promoted (or whose node was
// forgotten) has lost what those slots held, and giving them to an empty
// node would serve an empty shard in its place.
func (p *planner) slotsOwned() (Action, bool) {
	for _, name := range p.up {
		me := p.views[name].Myself()
		if !me.Master {
			continue
		}
		for _, r := range me.Slots {
			for s := r.Start; s <= r.End; s++ {
				if other := p.owner[s]; other != "" {
					return wait(OpConverge, fmt.Sprintf("slot %d is claimed by both %s and %s (their configurations are settling)",
						s, other, name)), true
				}
				p.owner[s] = name
			}
		}
	}
	missing := RangesOf(func(s int) bool { return p.owner[s] == "" })
	if len(missing) == 0 {
		return Action{}, false
	}
	return p.explainMissing(missing), true
}

// servedInViews is, per slot, the node the first view (in member order)
// lists as serving it.
func (p *planner) servedInViews() *[NumSlots]string {
	var served [NumSlots]string
	for _, name := range p.up {
		for _, n := range p.views[name].Nodes {
			for _, r := range n.Slots {
				for s := r.Start; s <= r.End; s++ {
					if served[s] == "" && !n.Handshake {
						served[s] = n.ID
					}
				}
			}
		}
	}
	return &served
}

// explainMissing says why the first of the missing slots has no master.
func (p *planner) explainMissing(missing []SlotRange) Action {
	served := p.servedInViews()
	start := missing[0].Start
	id := served[start]
	r := RangesOf(func(s int) bool { return p.owner[s] == "" && served[s] == id })[0]
	if id == "" {
		return blocked("", fmt.Sprintf("slots %s have no master: no node serves them", r))
	}
	if member, ok := p.byID[id]; ok {
		return wait(OpConverge, fmt.Sprintf("slots %s are served by %s in its peers' views, but not in its own (gossip settling)", r, member))
	}
	var st stranger
	for _, s := range p.strangers() {
		if s.id == id {
			st = s
		}
	}
	return blocked("", p.lostSlots(r, st))
}

// lostSlots says why slots r, served by the stranger st, have no master.
func (p *planner) lostSlots(r SlotRange, st stranger) string {
	shard := -1
	if len(st.masterOf) > 0 {
		shard, _, _ = p.d.parseMember(st.masterOf[0])
	} else if s, _, ok := p.d.parseMember(st.hostname); ok {
		shard = s
	}
	what := fmt.Sprintf("slots %s", r)
	if shard >= 0 {
		what = fmt.Sprintf("slots %s of shard %d", r, shard)
	}
	state := "which no member is"
	switch {
	case p.d.Leaving(st.hostname) && !p.removed(st):
		state = "a leaving member that does not answer"
	case st.failed:
		state = "which failed and is no member"
	}
	why := fmt.Sprintf("%s have no master: %s serves them, %s", what, p.describe(st), state)
	if st.noaddr {
		// A node with another ID answers at its address: the member came
		// back on an empty volume at its old address. Redis never flags a
		// noaddr node failing, so no replica is promoted; and a replica
		// that reconnected to that address has synced its empty data set.
		return why + fmt.Sprintf("; it is flagged noaddr (another node answers at its address), which Redis never fails over: "+
			"check whether its replicas %s still hold its data before promoting one by hand", joinNames(st.masterOf))
	}
	if len(st.masterOf) > 0 {
		why += fmt.Sprintf("; its replica %s takes over once Redis fails it over", strings.Join(st.masterOf, ", "))
	}
	return why
}

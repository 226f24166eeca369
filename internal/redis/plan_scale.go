package redis

import (
	"fmt"
	"slices"
)

// MigrateSlotsPerAction bounds the slots one MigrateSlots action moves;
// MigrateKeysPerAction the keys (a slot with more keys than the budget
// left stays open, and the next action resumes it). With them one step
// takes a bounded time, and the loop observes the cluster between steps.
const (
	MigrateSlotsPerAction = 32
	MigrateKeysPerAction  = 5000
)

// handoverLeaving hands the slots of a leaving member that is the master
// of a shard of d's shape (a replica promoted by a failover, the
// replica count lowered since) to the most up-to-date healthy replica of
// that shard, before the member is removed.
func (p *planner) handoverLeaving() (Action, bool) {
	for s := range p.d.Shards {
		master, _ := p.shardMaster(s)
		if master == "" || !p.d.Leaving(master) {
			continue
		}
		a := p.failoverTo(master, false)
		a.Operation = OpScale
		if a.Type == ActionFailover {
			a.Reason = fmt.Sprintf("%s, beyond %d replicas per shard, is the master of shard %d: %s",
				master, p.d.ReplicasPerShard, s, a.Reason)
		}
		return a, true
	}
	return Action{}, false
}

// shardCounts is how many slots every shard serves, by p.owner, and the
// member that serves them.
func (p *planner) shardCounts() (counts []int, masters []string) {
	top := p.d.Shards
	for _, name := range p.leaving {
		s, _, _ := p.d.parseMember(name)
		top = max(top, s+1)
	}
	counts, masters = make([]int, top), make([]string, top)
	for _, name := range p.owner {
		s, _, _ := p.d.parseMember(name)
		counts[s]++
		masters[s] = name
	}
	return counts, masters
}

// rebalance moves slots until every shard s of d's shape serves
// EvenSlots(Shards)[s].Count() slots and the leaving shards none. The
// sources are the leaving shards first, then the shards above their
// share; the target the first shard below its share, whose master is the
// member that serves its slots or, for a new shard, its first empty
// master (replica 0 as bootstrapped). Only the surplus moves, the
// highest slots of the source first: a scale-out from 3 to 4 shards moves
// 4096 slots (the least any layout of 4 even shards needs), not the
// ranges of EvenSlots(4).
func (p *planner) rebalance() (Action, bool) {
	counts, masters := p.shardCounts()
	want := p.shares(len(counts))
	src, dst, left := p.pickShards(counts, want)
	if src < 0 || dst < 0 {
		return Action{}, false
	}
	source, target := masters[src], masters[dst]
	if target == "" {
		var blockedBy *Action
		if target, blockedBy = p.newShardMaster(dst); blockedBy != nil {
			return *blockedBy, true
		}
	}
	if a, ok := p.migrationReady(OpScale, source, target); ok {
		return a, true
	}
	n := min(counts[src]-want[src], want[dst]-counts[dst], MigrateSlotsPerAction)
	var moves []SlotMove
	for s := NumSlots - 1; s >= 0 && len(moves) < n; s-- {
		if p.owner[s] == source {
			moves = append(moves, SlotMove{Slot: s})
		}
	}
	slices.Reverse(moves)
	a := p.migrateAction(OpScale, source, target, moves)
	a.Reason = fmt.Sprintf("moving slots %s (%d) from %s to %s: %s serves %d of its %d slots, %d slots left to move",
		FormatSlots(a.Slots), len(moves), source, target, target, counts[dst], want[dst], left)
	return a, true
}

// shares is how many slots each of n shards is to serve: the counts of
// EvenSlots(Shards), none for the leaving shards.
func (p *planner) shares(n int) []int {
	want := make([]int, n)
	for s, r := range EvenSlots(p.d.Shards) {
		want[s] = r.Count()
	}
	return want
}

// pickShards returns the source of the next move (the first leaving
// shard that serves slots, else the first shard above its share), the
// target (the first shard below its share), -1 for none, and how many
// slots are left to move.
func (p *planner) pickShards(counts, want []int) (src, dst, left int) {
	src, dst = -1, -1
	for s := len(counts) - 1; s >= 0; s-- {
		if counts[s] > want[s] {
			left += counts[s] - want[s]
			if src < 0 || s >= p.d.Shards || src < p.d.Shards && s < src {
				src = s
			}
		}
	}
	for s := range p.d.Shards {
		if counts[s] < want[s] {
			dst = s
			break
		}
	}
	return src, dst, left
}

// migrationReady waits unless source and target are connected to every
// member, flagged by none, and report cluster_state ok (a node that does
// not refuses the keys MIGRATE sends it with CLUSTERDOWN).
func (p *planner) migrationReady(op, source, target string) (Action, bool) {
	for _, name := range []string{source, target} {
		if !p.healthy(name) {
			return wait(op, fmt.Sprintf("moving slots from %s to %s waits: %s is not connected to every member", source, target, name)), true
		}
		if st := p.views[name].Info.State; st != "ok" {
			return wait(op, fmt.Sprintf("moving slots from %s to %s waits: %s reports cluster_state %s", source, target, name, st)), true
		}
	}
	return Action{}, false
}

// newShardMaster picks the member of shard s that receives its first
// slots: its first empty master that holds no key and that every member
// knows.
func (p *planner) newShardMaster(s int) (string, *Action) {
	for _, name := range p.shardMembers(s) {
		v, ok := p.views[name]
		if me := v.Myself(); !ok || !me.Master || len(me.Slots) > 0 || v.Keys > 0 {
			continue
		}
		for _, other := range p.up {
			if _, known := p.views[other].Node(v.ID); !known && other != name {
				a := wait(OpScale, fmt.Sprintf("%s does not know %s, the new master of shard %d, yet", other, name, s))
				return "", &a
			}
		}
		return name, nil
	}
	a := blocked(OpScale, fmt.Sprintf("shard %d serves no slots and none of %s is an empty master to give them to",
		s, joinNames(p.shardMembers(s))))
	return "", &a
}

// removeLeaving returns the Remove of the first leaving member that can
// go, replicas first: one that serves no slot, has no slot open, holds no
// key it would be the only one to have (a master serving no slot holds
// none), and no member replicates. A leaving member that does not answer
// can go too: slotsOwned found every slot served by members that do.
func (p *planner) removeLeaving() (Action, bool) {
	var masters []string
	for _, name := range p.leaving {
		v, up := p.views[name]
		if !up {
			return p.remove(name, "it does not answer and every slot is served by the members that do"), true
		}
		me := v.Myself()
		switch {
		case me.Replica:
			return p.remove(name, fmt.Sprintf("it is a replica of %s", p.member(me.MasterID))), true
		case len(me.Slots) > 0 || len(me.Migrating) > 0 || len(me.Importing) > 0:
			return blocked(OpScale, fmt.Sprintf("leaving member %s still serves slots %s", name, FormatSlots(me.Slots))), true
		case v.Keys > 0:
			return blocked(OpScale, fmt.Sprintf("leaving member %s serves no slot but holds %d keys", name, v.Keys)), true
		}
		masters = append(masters, name)
	}
	if len(masters) == 0 {
		return Action{}, false
	}
	name := masters[0]
	if replicas := p.replicasOf(p.views[name].ID); len(replicas) > 0 {
		return wait(OpScale, fmt.Sprintf("leaving member %s is the master of %s", name, joinNames(replicas))), true
	}
	return p.remove(name, "it is a master that serves no slot and holds no key"), true
}

func (p *planner) remove(name, why string) Action {
	return Action{Type: ActionRemove, Operation: OpScale, Member: name, Addr: p.d.Members[name],
		Reason: fmt.Sprintf("removing %s, beyond %d shards of %d replicas: %s", name, p.d.Shards, p.d.ReplicasPerShard, why)}
}

// replicasOf lists the members that answer and replicate node id.
func (p *planner) replicasOf(id string) []string {
	var out []string
	for _, name := range p.up {
		if me := p.views[name].Myself(); me.Replica && me.MasterID == id {
			out = append(out, name)
		}
	}
	return out
}

package redis

import (
	"fmt"
	"slices"
	"strings"
)

// ActionType is what the next step does.
type ActionType string

// The steps Plan chooses from. Each is one command, or one bounded
// sequence of commands, to the member the Action names.
const (
	// ActionNone: the cluster is converged; nothing to do.
	ActionNone ActionType = "None"
	// ActionWait: something is under way (a handshake, a replica
	// syncing, gossip spreading) or blocked; Reason, and Blocked for an
	// invariant, say what.
	ActionWait ActionType = "Wait"
	// ActionSetConfigEpoch: CLUSTER SET-CONFIG-EPOCH Epoch sent to
	// Member, a fresh node that knows no other yet.
	ActionSetConfigEpoch ActionType = "SetConfigEpoch"
	// ActionMeet: CLUSTER MEET sent to Member for each of Peers.
	ActionMeet ActionType = "Meet"
	// ActionAddSlots: CLUSTER ADDSLOTS of Slots sent to Member.
	ActionAddSlots ActionType = "AddSlots"
	// ActionReplicate: CLUSTER REPLICATE of Peers[0] sent to Member.
	ActionReplicate ActionType = "Replicate"
	// ActionMigrateSlots moves the slots of Moves from Member (the
	// source, node MemberID) to Peers[0] (the target), keys included:
	// SETSLOT IMPORTING on the target, MIGRATING on the source, MIGRATE
	// of the keys in batches, then SETSLOT NODE on the target, the
	// source and every other master (Peers[1:]). At most
	// MigrateKeysPerAction keys move per action: a slot with more is left
	// open (importing/migrating, which clients follow with ASK) and the
	// next Plan resumes it.
	ActionMigrateSlots ActionType = "MigrateSlots"
	// ActionFailover: CLUSTER FAILOVER (the graceful, coordinated form)
	// sent to Member, a replica of Peers[0]: the replica catches up with
	// its master while the master pauses its clients, then takes over its
	// slots; the old master becomes its replica.
	ActionFailover ActionType = "Failover"
	// ActionForget: CLUSTER FORGET NodeID sent to Member and to each of
	// Peers, in one step: a node forgotten by some members only would be
	// learnt again from the others' gossip once Redis' 60 s ban expires.
	ActionForget ActionType = "Forget"
	// ActionRemove: the caller deletes Member (its pod and volume): a
	// member beyond Desired's shape that serves no slot and holds no data
	// that is not elsewhere. Client.Execute refuses it (ErrCallerAction).
	// Once the member is gone from Desired.Members, Plan forgets its node.
	ActionRemove ActionType = "Remove"
)

// Operations an action belongs to, for logs and the cluster's phase.
const (
	// OpBootstrap creates the cluster: meets nodes that do not know each
	// other, assigns the slots, attaches replicas. A member that rejoins
	// empty (its data lost) takes the same steps.
	OpBootstrap = "Bootstrap"
	// OpRemeet meets a node again at the address it has now, when its
	// peers still know it at an older one (every pod restarted with a new
	// IP).
	OpRemeet = "Remeet"
	// OpConverge waits for what Redis does by itself (handshakes, gossip,
	// replication sync, cluster_state) after the steps above.
	OpConverge = "Converge"
	// OpRepair fixes what a crash or a lost volume left: a replica of the
	// wrong master, a node ID no member has any longer (Forget), a slot
	// left half-moved (MigrateSlots resuming it).
	OpRepair = "Repair"
	// OpScale moves slots to the layout of Desired.Shards and drains and
	// removes the members beyond Desired's shape.
	OpScale = "Scale"
	// OpHandover hands a master's slots to its replica before the master
	// restarts (PlanHandover).
	OpHandover = "Handover"
)

// Peer is another member a command names.
type Peer struct {
	Member string
	Addr   Endpoint
	ID     string
}

// Action is the single next step: one or a few commands to one member.
type Action struct {
	Type      ActionType
	Operation string
	// Member is the member the command is sent to, at Addr.
	Member string
	Addr   Endpoint
	// Peers are the other members the command names: those Member
	// meets (Meet, one CLUSTER MEET each) or the master it replicates
	// (Replicate, exactly one).
	Peers []Peer
	// Slots are what AddSlots assigns to Member, or what MigrateSlots
	// moves (the slots of Moves).
	Slots []SlotRange
	// MemberID is the node ID of Member (MigrateSlots: the source).
	MemberID string
	// Moves are the slots MigrateSlots moves, with what was observed of
	// each (a resumed migration skips the steps already done).
	Moves []SlotMove
	// NodeID is the node Forget removes from the members' tables.
	NodeID string
	// Epoch is what SetConfigEpoch sets.
	Epoch uint64
	// Reason says why this step, for logs and status.
	Reason string
	// Blocked, set with ActionWait, names the invariant that stops the
	// step that is due ("slot 5461 has no master", "node x-1-0 is not
	// reachable"): what a user has to look at.
	Blocked string
}

// SlotMove is one slot of a MigrateSlots action and how far its
// migration was observed to be.
type SlotMove struct {
	Slot int
	// Importing: the target is importing the slot from the source
	// already; Migrating: the source is migrating it to the target.
	Importing, Migrating bool
	// TargetOwns: the target serves the slot already (its keys moved);
	// only the source and the other masters are still to be told.
	TargetOwns bool
}

func memberNames(peers []Peer) []string {
	out := make([]string, len(peers))
	for i, p := range peers {
		out[i] = p.Member
	}
	return out
}

// String describes a for logs.
func (a Action) String() string {
	peers := make([]string, len(a.Peers))
	for i, p := range a.Peers {
		peers[i] = p.Member + " at " + p.Addr.String()
	}
	switch a.Type {
	case ActionMeet:
		return fmt.Sprintf("Meet %s -> %s", a.Member, strings.Join(peers, ", "))
	case ActionAddSlots:
		return fmt.Sprintf("AddSlots %s %s", a.Member, FormatSlots(a.Slots))
	case ActionReplicate:
		return fmt.Sprintf("Replicate %s -> %s", a.Member, strings.Join(peers, ", "))
	case ActionSetConfigEpoch:
		return fmt.Sprintf("SetConfigEpoch %s %d", a.Member, a.Epoch)
	case ActionMigrateSlots:
		return fmt.Sprintf("MigrateSlots %s %s -> %s: %s", FormatSlots(a.Slots), a.Member, strings.Join(peers[:min(1, len(peers))], ""), a.Reason)
	case ActionFailover:
		return fmt.Sprintf("Failover %s (replica of %s): %s", a.Member, strings.Join(peers, ", "), a.Reason)
	case ActionForget:
		return fmt.Sprintf("Forget %s on %s: %s", a.NodeID, strings.Join(append([]string{a.Member}, memberNames(a.Peers)...), ", "), a.Reason)
	case ActionRemove:
		return fmt.Sprintf("Remove %s: %s", a.Member, a.Reason)
	}
	if a.Blocked != "" {
		return fmt.Sprintf("%s: %s (blocked: %s)", a.Type, a.Reason, a.Blocked)
	}
	return fmt.Sprintf("%s: %s", a.Type, a.Reason)
}

// Plan returns the next step that brings the cluster observed in o
// closer to d, or ActionNone when it is converged. It decides from o
// alone (no memory of earlier steps), in this order:
//
//  1. identity: every member answers at its address with its own node ID;
//  2. config epochs: while no node knows any other (a fresh cluster),
//     every member gets a distinct config epoch, as redis-cli --cluster
//     create gives them;
//  3. meet: every member that answers knows every other one at its
//     current address (MEET the unknown ones, and again the ones that
//     moved), one member's meetings per step;
//  4. every member of d's shape has an address and answers: nothing else
//     is done while one does not ("node x-1-0 is not reachable");
//  5. forget: node IDs that no member has (a member that lost its volume
//     and came back with a new ID, a removed member) are forgotten by
//     every member that knows them, once they serve no slot and are
//     flagged fail or noaddr (a removed member at once);
//  6. open slots: a slot left importing/migrating by a crash is resumed
//     (its remaining keys migrated, then SETSLOT NODE), never abandoned;
//  7. bootstrap the slots: while no slot of the even layout's range i is
//     assigned anywhere, no member is a replica and no member holds a
//     key, assign it to member Name-i-0 (the only place a role is decided
//     by name);
//  8. attach replicas: an empty master among a shard's members, or a
//     replica of another master, replicates the shard's master, the
//     member of that shard that serves slots (as Redis reports it,
//     whichever member it is after a failover);
//  9. slots have masters: every slot is served by exactly one member
//     master; otherwise blocked ("slots 10923-16383 of shard 2 have no
//     master"), never fixed by giving the slots to an empty node;
//  10. leaving masters: a member beyond d's shape that is the master of a
//     shard of the shape hands its slots to a replica of the shape
//     (Failover);
//  11. rebalance: slots move from the leaving shards (shard >= Shards),
//     then from shards above their share, to shards below it, until every
//     shard s serves EvenSlots(Shards)[s].Count() slots; slots keep their
//     shard where they can (the fewest slots move, not the ranges of
//     EvenSlots), the highest slots of a source move first, up to
//     MigrateSlotsPerAction per step;
//  12. remove: members beyond d's shape, drained, are removed (the caller
//     deletes them), replicas first;
//  13. converged: every slot served by a member master in every view,
//     every replica linked to its master, every link up, no node that is
//     no member, and cluster_state ok everywhere; otherwise wait for what
//     is missing.
func Plan(d Desired, o Observed) Action {
	if err := d.Validate(); err != nil {
		return blocked("", err.Error())
	}
	p := newPlanner(d, o)
	for _, step := range []func() (Action, bool){
		p.checkIdentity, p.setEpochs, p.meet, p.requireAll, p.forget, p.openSlots, p.assignSlots,
		p.attachReplicas, p.slotsOwned, p.handoverLeaving, p.rebalance, p.removeLeaving, p.converged,
	} {
		if a, ok := step(); ok {
			return a
		}
	}
	return Action{Type: ActionNone, Reason: fmt.Sprintf(
		"converged: %d shards, each a master with %d replicas; %d slots served; cluster_state ok on every node",
		d.Shards, d.ReplicasPerShard, NumSlots)}
}

type planner struct {
	d       Desired
	o       Observed
	names   []string        // members of d's shape, shard by shard
	leaving []string        // members of d.Members beyond d's shape, same order
	up      []string        // members (both kinds) that answered at their address, same order
	views   map[string]View // by member, those in up
	byID    map[string]string
	// owner is the member that serves each slot, from the members' own
	// lines (set by slotsOwned).
	owner [NumSlots]string
}

func newPlanner(d Desired, o Observed) *planner {
	p := &planner{d: d, o: o, names: d.MemberNames(), leaving: d.LeavingMembers(), views: map[string]View{},
		byID: map[string]string{}}
	for _, name := range append(slices.Clone(p.names), p.leaving...) {
		v, ok := o.Views[name]
		addr, has := d.Members[name]
		if !ok || !has || !v.Reachable() || !v.Endpoint.Equal(addr) || v.ID == "" {
			continue
		}
		p.up = append(p.up, name)
		p.views[name] = v
	}
	return p
}

func wait(op, reason string) Action { return Action{Type: ActionWait, Operation: op, Reason: reason} }

func blocked(op, invariant string) Action {
	return Action{Type: ActionWait, Operation: op, Reason: "blocked: " + invariant, Blocked: invariant}
}

// checkIdentity refuses two members that are the same node (a copied
// volume): every step after this one identifies members by node ID.
func (p *planner) checkIdentity() (Action, bool) {
	for _, name := range p.up {
		id := p.views[name].ID
		if other, dup := p.byID[id]; dup {
			return blocked("", fmt.Sprintf("members %s and %s are the same Redis node %s (one's data is a copy of the other's)",
				other, name, id)), true
		}
		p.byID[id] = name
	}
	return Action{}, false
}

// requireAll waits for every member to have an address and answer.
func (p *planner) requireAll() (Action, bool) {
	for _, name := range p.names {
		if _, ok := p.views[name]; ok {
			continue
		}
		addr, has := p.d.Members[name]
		v, asked := p.o.Views[name]
		switch {
		case !has:
			return blocked("", fmt.Sprintf("node %s has no address (not running)", name)), true
		case !asked || !v.Endpoint.Equal(addr):
			return wait("", fmt.Sprintf("node %s was not observed at its address %s yet", name, addr.Addr())), true
		case v.Err != nil:
			a := blocked("", fmt.Sprintf("node %s is not reachable", name))
			a.Reason = fmt.Sprintf("node %s is not reachable at %s: %v", name, addr.Addr(), v.Err)
			return a, true
		default:
			return blocked("", fmt.Sprintf("node %s reported no node ID", name)), true
		}
	}
	return Action{}, false
}

// member is the member that is node id, or the ID itself.
func (p *planner) member(id string) string {
	if m, ok := p.byID[id]; ok {
		return m
	}
	return "node " + id
}

// shardMembers lists the members of d's shape in shard s, replica 0
// first.
func (p *planner) shardMembers(s int) []string {
	out := make([]string, 0, 1+p.d.ReplicasPerShard)
	for r := range 1 + p.d.ReplicasPerShard {
		out = append(out, MemberName(p.d.Name, s, r))
	}
	return out
}

// shardAll lists the members of shard s that answer, those of d's
// shape first, then the leaving ones.
func (p *planner) shardAll(s int) []string {
	var out []string
	for _, name := range p.up {
		if sh, _, _ := p.d.parseMember(name); sh == s {
			out = append(out, name)
		}
	}
	return out
}

// isUp reports whether member answered at its address.
func (p *planner) isUp(member string) bool {
	_, ok := p.views[member]
	return ok
}

// healthy reports whether every member that answered has its link to
// member's node up and flags it neither fail? nor fail.
func (p *planner) healthy(member string) bool {
	n, ok := p.o.Nodes[p.views[member].ID]
	return ok && n.Reachable && n.Connected && len(n.PFailBy) == 0 && len(n.FailBy) == 0
}

func joinNames(names []string) string { return strings.Join(names, ", ") }

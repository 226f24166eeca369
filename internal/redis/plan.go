package redis

import (
	"fmt"
	"strings"
)

// ActionType is what the next step does.
type ActionType string

// The steps Plan chooses from. Failover, slot migration and scaling will
// add their own (Failover, MigrateSlot, Forget, ...) with the same shape:
// one command to one member, named in the Action.
const (
	// ActionNone: the cluster is converged; nothing to do.
	ActionNone ActionType = "None"
	// ActionWait: something is under way (a handshake, a replica
	// syncing, gossip spreading) or blocked; Reason, and Blocked for an
	// invariant, say what.
	ActionWait ActionType = "Wait"
	// ActionMeet: CLUSTER MEET sent to Member for each of Peers.
	ActionMeet ActionType = "Meet"
	// ActionAddSlots: CLUSTER ADDSLOTS of Slots sent to Member.
	ActionAddSlots ActionType = "AddSlots"
	// ActionReplicate: CLUSTER REPLICATE of Peers[0] sent to Member.
	ActionReplicate ActionType = "Replicate"
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
	// Slots are what AddSlots assigns to Member.
	Slots []SlotRange
	// Reason says why this step, for logs and status.
	Reason string
	// Blocked, set with ActionWait, names the invariant that stops the
	// step that is due ("slot 5461 has no master", "node x-1-0 is not
	// reachable"): what a user has to look at.
	Blocked string
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
//  2. meet: every member that answers knows every other one at its
//     current address (MEET the unknown ones, and again the ones that
//     moved), one member's meetings per step;
//  3. every member has an address and answers: nothing else is done
//     while one does not ("node x-1-0 is not reachable");
//  4. bootstrap the slots: while no slot of the even layout's range i is
//     assigned anywhere, assign it to member Name-i-0 (the only place a
//     role is decided by name);
//  5. attach replicas: an empty master among a shard's members replicates
//     the shard's master, the member of that shard that serves slots (as
//     Redis reports it, whichever member it is after a failover);
//  6. converged: every slot served by a member master in every view,
//     every replica linked to its master, every link up and
//     cluster_state ok everywhere; otherwise wait for what is missing.
func Plan(d Desired, o Observed) Action {
	if err := d.Validate(); err != nil {
		return blocked("", err.Error())
	}
	p := newPlanner(d, o)
	for _, step := range []func() (Action, bool){
		p.checkIdentity, p.meet, p.requireAll, p.assignSlots, p.attachReplicas, p.converged,
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
	d     Desired
	o     Observed
	names []string        // desired members, shard by shard
	up    []string        // those that answered at their address, same order
	views map[string]View // by member, those in up
	byID  map[string]string
}

func newPlanner(d Desired, o Observed) *planner {
	p := &planner{d: d, o: o, names: d.MemberNames(), views: map[string]View{}, byID: map[string]string{}}
	for _, name := range p.names {
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

// shardMembers lists the members of shard s, replica 0 first.
func (p *planner) shardMembers(s int) []string {
	out := make([]string, 0, 1+p.d.ReplicasPerShard)
	for r := range 1 + p.d.ReplicasPerShard {
		out = append(out, MemberName(p.d.Name, s, r))
	}
	return out
}

func joinNames(names []string) string { return strings.Join(names, ", ") }

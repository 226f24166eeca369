package redis

import (
	"fmt"
	"slices"
)

// HandoverMaxLag is how far (bytes of replication stream) a replica may
// be behind its master for a handover to start: CLUSTER FAILOVER pauses
// the master's clients until the replica has caught up, so the lag is
// what the pause waits for (and a replica too far behind would not catch
// up before Redis gives the manual failover up, after 5 s).
const HandoverMaxLag = 1 << 20

// PlanHandover says whether the caller may restart member now (its pod
// deleted, its process stopped) without losing data or making slots
// unavailable beyond the restart of a replica, and what to do first
// otherwise. It returns:
//
//   - ActionNone when restarting member is safe: it does not answer (a
//     restart cannot make it worse), or every other member answers and is
//     healthy with cluster_state ok and member is a replica of a healthy
//     master or a master that serves no slot; or, with
//     ReplicasPerShard 0, a master serving slots: there is no replica to
//     hand over to (a leaving one is none: it is being removed), so its
//     slots are unavailable while it restarts (the Reason says which) and
//     its data stays on its volume (the append-only file);
//   - ActionFailover, sent to the most up-to-date healthy replica of d's
//     shape whose link to member is up, when member is a master serving
//     slots: after it, member is a replica and PlanHandover returns None.
//     The promotion takes a moment after Execute returns; observing
//     again and executing a repeated Failover meanwhile is harmless (the
//     replica restarts the same coordinated failover);
//   - ActionWait naming what a restart would break ("replica x-1-1 is 12
//     MB behind its master; handover waits", "shard 1 has no healthy
//     replica; restarting its master x-1-0 would make slots 5461-10922
//     unavailable"), or what is under way (a slot of member being
//     migrated, another member not healthy).
func PlanHandover(d Desired, o Observed, member string) Action {
	if err := d.Validate(); err != nil {
		return blocked(OpHandover, err.Error())
	}
	p := newPlanner(d, o)
	if a, ok := p.checkIdentity(); ok {
		return a
	}
	v, up := p.views[member]
	if !up {
		return Action{Type: ActionNone, Operation: OpHandover, Member: member,
			Reason: fmt.Sprintf("%s does not answer at its address: restarting it cannot make the cluster worse", member)}
	}
	if a, ok := p.othersHealthy(member); ok {
		return a
	}
	me := v.Myself()
	if len(me.Migrating) > 0 || len(me.Importing) > 0 {
		return wait(OpHandover, fmt.Sprintf("slots of %s are being migrated; handover waits until they are done", member))
	}
	switch {
	case me.Replica:
		master := p.member(me.MasterID)
		if !p.isUp(master) || !p.healthy(master) {
			return blocked(OpHandover, fmt.Sprintf("the master of %s, %s, is not healthy; restarting its replica waits", member, master))
		}
		return Action{Type: ActionNone, Operation: OpHandover, Member: member,
			Reason: fmt.Sprintf("%s is a replica of the healthy master %s: safe to restart", member, master)}
	case len(me.Slots) == 0:
		return Action{Type: ActionNone, Operation: OpHandover, Member: member,
			Reason: fmt.Sprintf("%s is a master that serves no slot: safe to restart", member)}
	}
	if p.d.ReplicasPerShard == 0 {
		return Action{Type: ActionNone, Operation: OpHandover, Member: member, Reason: fmt.Sprintf(
			"%s has no replica (0 replicas per shard): slots %s are unavailable while it restarts; its data stays on its volume",
			member, FormatSlots(me.Slots))}
	}
	a := p.failoverTo(member, true)
	a.Operation = OpHandover
	return a
}

// othersHealthy waits unless every member other than member answers, is
// connected to every other one and flagged by none, and reports
// cluster_state ok.
func (p *planner) othersHealthy(member string) (Action, bool) {
	for _, name := range append(slices.Clone(p.names), p.leaving...) {
		if name == member {
			continue
		}
		switch {
		case !p.isUp(name):
			return blocked(OpHandover, fmt.Sprintf("%s does not answer; restarting %s waits", name, member)), true
		case !p.healthy(name):
			return wait(OpHandover, fmt.Sprintf("%s is not connected to every member (or flagged failing); restarting %s waits",
				name, member)), true
		case p.views[name].Info.State != "ok":
			return wait(OpHandover, fmt.Sprintf("%s reports cluster_state %s; restarting %s waits",
				name, p.views[name].Info.State, member)), true
		}
	}
	return Action{}, false
}

// failoverTo is the Failover of master's slots to its most up-to-date
// healthy replica of d's shape whose link to master is up, or the Wait
// that says why there is none. keepServing says the caller restarts
// master next (the message says what that would cost).
func (p *planner) failoverTo(master string, keepServing bool) Action {
	mid := p.views[master].ID
	shard, _, _ := p.d.parseMember(master)
	best := ""
	var bestLag int64
	for _, name := range p.replicasOf(mid) {
		n := p.o.Nodes[p.views[name].ID]
		if p.d.Leaving(name) || !p.healthy(name) || !p.views[name].Replication.MasterLinkUp || !n.LagKnown {
			continue
		}
		if best == "" || n.Lag < bestLag {
			best, bestLag = name, n.Lag
		}
	}
	if best == "" {
		why := fmt.Sprintf("shard %d has no healthy replica of %s with its link up", shard, master)
		if keepServing {
			why = fmt.Sprintf("shard %d has no healthy replica; restarting its master %s would make slots %s unavailable",
				shard, master, FormatSlots(p.views[master].Myself().Slots))
		}
		return blocked("", why)
	}
	if bestLag > HandoverMaxLag {
		return wait("", fmt.Sprintf("replica %s is %s behind its master %s; handover waits", best, formatBytes(bestLag), master))
	}
	return Action{Type: ActionFailover, Member: best, Addr: p.d.Members[best],
		Peers:  []Peer{{Member: master, Addr: p.d.Members[master], ID: mid}},
		Reason: fmt.Sprintf("handing the slots of %s over to its replica %s (%s behind)", master, best, formatBytes(bestLag))}
}

// formatBytes writes n as "512 B", "12 kB", "12 MB".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d kB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

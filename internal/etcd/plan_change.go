package etcd

import (
	"fmt"
	"strings"
)

// Changes the user asked for: scaling (learners first, promoted when
// caught up) and rolling restarts to a new version or pod spec, the leader
// last.

func (p *planner) initialCluster() string {
	parts := make([]string, 0, len(p.members))
	for _, m := range p.members {
		parts = append(parts, m.Name+"="+p.naming.PeerURL(m.Name))
	}
	return strings.Join(parts, ",")
}

// promoteOrWait promotes a healthy learner, removes an unhealthy member
// when there is one too many, and otherwise waits until every member is
// healthy: no membership change or restart starts while one is not.
func (p *planner) promoteOrWait() (Action, bool) {
	var unhealthy []Member
	for _, m := range p.members {
		if !m.Healthy {
			unhealthy = append(unhealthy, m)
		}
	}
	for _, m := range p.members {
		if m.Learner && m.Healthy {
			return Action{Type: ActionPromote, Operation: OpScaleOut, Name: m.Name, MemberID: m.ID,
				Reason: "promoting learner " + m.Name + " to voter"}, true
		}
	}
	if len(unhealthy) == 0 {
		return Action{}, false
	}
	m := unhealthy[0]
	if len(p.members) > p.size {
		if err := CheckRemove(p.members, m.ID); err == nil {
			return Action{Type: ActionRemoveMember, Operation: OpScaleIn, Name: m.Name, MemberID: m.ID,
				Reason: "scaling in: removing the unhealthy member " + m.Name}, true
		}
	}
	op := OpRepair
	reason := "waiting for member " + m.Name + " to become healthy"
	if !m.Started {
		op, reason = OpScaleOut, "waiting for the new member "+m.Name+" to start"
	}
	return Action{Type: ActionWait, Operation: op, Name: m.Name, Reason: reason}, true
}

// scale adds or removes one member; every member is healthy here.
func (p *planner) scale() (Action, bool) {
	switch {
	case len(p.members) < p.size:
		name := p.newName()
		return Action{Type: ActionAddLearner, Operation: OpScaleOut, Name: name,
			Reason: fmt.Sprintf("scaling out from %d to %d members: adding learner %s", len(p.members), p.size, name)}, true
	case len(p.members) > p.size:
		victim := p.scaleInVictim()
		if err := CheckRemove(p.members, victim.ID); err != nil {
			return Action{Type: ActionWait, Operation: OpScaleIn, Name: victim.Name, Blocked: err.Error(),
				Reason: "scaling in is blocked"}, true
		}
		return Action{Type: ActionRemoveMember, Operation: OpScaleIn, Name: victim.Name, MemberID: victim.ID,
			Reason: fmt.Sprintf("scaling in from %d to %d members: removing %s", len(p.members), p.size, victim.Name)}, true
	}
	return Action{}, false
}

// scaleInVictim prefers a learner, then the newest non-leader member.
func (p *planner) scaleInVictim() Member {
	for _, m := range p.members {
		if m.Learner {
			return m
		}
	}
	for i := len(p.members) - 1; i >= 0; i-- {
		if !p.members[i].Leader {
			return p.members[i]
		}
	}
	return p.members[len(p.members)-1]
}

// restartOutdated restarts one member whose pod is outdated: followers
// first, the leader last after moving leadership to an up-to-date voter.
func (p *planner) restartOutdated() (Action, bool) {
	var leader *Member
	for i, m := range p.members {
		if !p.slots[m.Name].PodOutdated {
			continue
		}
		if m.Leader && len(p.members) > 1 {
			leader = &p.members[i]
			continue
		}
		if err := CheckRestart(p.members, m.ID); err != nil {
			return Action{Type: ActionWait, Operation: OpRestart, Name: m.Name, Blocked: err.Error(),
				Reason: "restarting " + m.Name + " is blocked"}, true
		}
		return Action{Type: ActionDeletePod, Operation: OpRestart, Name: m.Name, MemberID: m.ID,
			Reason: "restarting member " + m.Name + " with the new pod spec"}, true
	}
	if leader == nil {
		return Action{}, false
	}
	to := p.transferee(leader.ID)
	if to == nil {
		return Action{Type: ActionWait, Operation: OpRestart, Name: leader.Name,
			Blocked: "no healthy voter can take over leadership from " + leader.Name}, true
	}
	return Action{Type: ActionMoveLeader, Operation: OpRestart, Name: leader.Name, MemberID: leader.ID, To: to.ID,
		Reason: "moving leadership from " + leader.Name + " to " + to.Name + " before restarting it"}, true
}

// transferee is a healthy voter other than from, preferring one whose pod
// is up to date.
func (p *planner) transferee(from uint64) *Member {
	var fallback *Member
	for i, m := range p.members {
		if m.ID == from || m.Learner || !m.Healthy {
			continue
		}
		if !p.slots[m.Name].PodOutdated {
			return &p.members[i]
		}
		if fallback == nil {
			fallback = &p.members[i]
		}
	}
	return fallback
}

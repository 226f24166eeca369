package etcd

// Repairs: members that are unhealthy, lost their data or left a stale
// volume behind are replaced, one at a time.

// repairMembers gives every member a volume and a pod, and replaces members
// whose data is gone.
func (p *planner) repairMembers() (Action, bool) {
	for _, m := range p.members {
		if a, ok := p.repairMember(m); ok {
			return a, true
		}
	}
	return Action{}, false
}

func (p *planner) repairMember(m Member) (Action, bool) {
	s := p.slots[m.Name]
	op := OpRepair
	if !m.Started {
		op = OpScaleOut
	}
	switch {
	case s.Volume && s.VolumeMemberID != 0 && s.VolumeMemberID != m.ID:
		return p.staleVolume(s, op)
	case (!s.Volume || s.VolumeTerminating) && !m.Started:
		if s.VolumeTerminating || s.Pod {
			return p.deletePodOrWait(s, op, "waiting for the old pod and volume of "+m.Name+" to go")
		}
		return Action{Type: ActionCreateVolume, Operation: op, Name: m.Name, MemberID: m.ID,
			InitialCluster: p.initialCluster(), Reason: "creating the volume of the new member " + m.Name}, true
	case !s.Volume || s.VolumeTerminating:
		return p.dataLost(m, s)
	case !s.Pod:
		return Action{Type: ActionCreatePod, Operation: op, Name: m.Name, Reason: "starting member " + m.Name}, true
	}
	return Action{}, false
}

// staleVolume clears a volume that holds data of an earlier member of the
// same name.
func (p *planner) staleVolume(s Slot, op string) (Action, bool) {
	if s.Pod {
		return p.deletePodOrWait(s, op, "the volume of "+s.Name+" belongs to an earlier member")
	}
	if !s.VolumeTerminating {
		return Action{Type: ActionDeleteVolume, Operation: op, Name: s.Name,
			Reason: "the volume of " + s.Name + " holds data of an earlier member"}, true
	}
	return Action{Type: ActionWait, Operation: op, Name: s.Name, Reason: "waiting for the old volume of " + s.Name + " to go"}, true
}

// dataLost handles a member that has run and whose data is gone: it must
// never start again under its old identity. It is removed; a new member
// with a clean data directory takes its place.
func (p *planner) dataLost(m Member, s Slot) (Action, bool) {
	if s.Pod {
		return Action{Type: ActionWait, Operation: OpReplace, Name: m.Name,
			Reason: "the volume of " + m.Name + " is being deleted; waiting for its pod to stop"}, true
	}
	if s.VolumeTerminating {
		return Action{Type: ActionWait, Operation: OpReplace, Name: m.Name,
			Reason: "waiting for the volume of " + m.Name + " to be deleted"}, true
	}
	if err := CheckRemove(p.members, m.ID); err != nil {
		return Action{Type: ActionWait, Operation: OpReplace, Name: m.Name, Blocked: err.Error(),
			Reason: "member " + m.Name + " lost its data and must be replaced"}, true
	}
	return Action{Type: ActionRemoveMember, Operation: OpReplace, Name: m.Name, MemberID: m.ID,
		Reason: "member " + m.Name + " lost its data: removing it so that a new member replaces it"}, true
}

func (p *planner) deletePodOrWait(s Slot, op, reason string) (Action, bool) {
	if s.Pod && !s.PodTerminating {
		return Action{Type: ActionDeletePod, Operation: op, Name: s.Name, Reason: reason}, true
	}
	return Action{Type: ActionWait, Operation: op, Name: s.Name, Reason: reason}, true
}

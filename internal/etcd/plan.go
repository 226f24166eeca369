package etcd

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Plan returns the next step that brings the cluster observed in o closer
// to size members whose pods are up to date, or ActionNone.
func Plan(size int, o Observed, n Naming) Action {
	p := newPlanner(size, o, n)
	if !o.Reachable {
		return p.unreachable()
	}
	for _, step := range []func() (Action, bool){
		p.recordMemberIDs, p.removeOrphans, p.repairMembers, p.promoteOrWait, p.scale, p.restartOutdated,
	} {
		if a, ok := step(); ok {
			return a
		}
	}
	return Action{Type: ActionNone, Reason: "the cluster matches the spec"}
}

type planner struct {
	size    int
	o       Observed
	naming  Naming
	members []Member // sorted by name, names resolved
	slots   map[string]Slot
	byName  map[string]Member
}

func newPlanner(size int, o Observed, n Naming) *planner {
	p := &planner{size: size, o: o, naming: n, slots: map[string]Slot{}, byName: map[string]Member{}}
	for _, s := range o.Slots {
		p.slots[s.Name] = s
	}
	for _, m := range o.Members {
		if m.Name == "" {
			m.Name = p.nameOfPeerURL(m.PeerURL)
		}
		p.members = append(p.members, m)
		p.byName[m.Name] = m
	}
	sort.Slice(p.members, func(i, j int) bool { return lessName(p.members[i].Name, p.members[j].Name) })
	return p
}

// nameOfPeerURL finds the name whose peer URL is u among the slots and the
// names Prefix-0 to Prefix-99; a member of no such name keeps its ID as
// name (it is not one of ours and is reported, never touched).
func (p *planner) nameOfPeerURL(u string) string {
	for name := range p.slots {
		if p.naming.PeerURL(name) == u {
			return name
		}
	}
	for i := range 100 {
		if name := p.naming.Prefix + "-" + strconv.Itoa(i); p.naming.PeerURL(name) == u {
			return name
		}
	}
	return "unknown-" + u
}

// lessName orders Prefix-2 before Prefix-10.
func lessName(a, b string) bool {
	ia, ea := ordinal(a)
	ib, eb := ordinal(b)
	if ea == nil && eb == nil && ia != ib {
		return ia < ib
	}
	return a < b
}

func ordinal(name string) (int, error) {
	i := strings.LastIndexByte(name, '-')
	return strconv.Atoi(name[i+1:])
}

func (p *planner) newName() string {
	for i := 0; ; i++ {
		name := p.naming.Prefix + "-" + strconv.Itoa(i)
		if _, ok := p.slots[name]; ok {
			continue
		}
		if _, ok := p.byName[name]; ok {
			continue
		}
		return name
	}
}

func (p *planner) sortedSlots() []Slot {
	out := make([]Slot, 0, len(p.slots))
	for _, s := range p.slots {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return lessName(out[i].Name, out[j].Name) })
	return out
}

// unreachable plans without a member list: bootstrap when nothing exists,
// otherwise start every member that has data but no pod (after an outage of
// all pods) and wait for a quorum.
func (p *planner) unreachable() Action {
	if len(p.slots) == 0 {
		name := p.newName()
		return Action{Type: ActionCreateVolume, Operation: OpBootstrap, Name: name,
			InitialCluster: name + "=" + p.naming.PeerURL(name), NewCluster: true,
			Reason: "bootstrapping the seed member " + name}
	}
	pods := 0
	for _, s := range p.sortedSlots() {
		if s.Volume && !s.VolumeTerminating && !s.Pod {
			return Action{Type: ActionCreatePod, Operation: OpRepair, Name: s.Name,
				Reason: "starting member " + s.Name + " on its data (no quorum answers)"}
		}
		if s.Pod {
			pods++
		}
	}
	return Action{Type: ActionWait, Operation: OpRepair,
		Reason: fmt.Sprintf("no quorum answers yet: waiting for the members to start (%d pods)", pods)}
}

// recordMemberIDs notes on the seed's volume which member its data is.
func (p *planner) recordMemberIDs() (Action, bool) {
	for _, m := range p.members {
		if s, ok := p.slots[m.Name]; ok && s.Volume && !s.VolumeTerminating && s.VolumeMemberID == 0 {
			return Action{Type: ActionRecordMemberID, Operation: OpBootstrap, Name: m.Name, MemberID: m.ID,
				Reason: "recording the member ID of " + m.Name + " on its volume"}, true
		}
	}
	return Action{}, false
}

// removeOrphans deletes the pod, then the volume, of a slot that belongs to
// no member: what a scale-in or replacement left after MemberRemove.
func (p *planner) removeOrphans() (Action, bool) {
	for _, s := range p.sortedSlots() {
		if _, ok := p.byName[s.Name]; ok {
			continue
		}
		if s.Pod && !s.PodTerminating {
			return Action{Type: ActionDeletePod, Operation: OpCleanup, Name: s.Name,
				Reason: s.Name + " is no longer an etcd member: deleting its pod"}, true
		}
		if !s.Pod && s.Volume && !s.VolumeTerminating {
			return Action{Type: ActionDeleteVolume, Operation: OpCleanup, Name: s.Name,
				Reason: s.Name + " is no longer an etcd member: deleting its data"}, true
		}
	}
	return Action{}, false
}

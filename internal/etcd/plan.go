package etcd

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Member is a member of the etcd cluster as the member list and the
// member's own status answer show it.
type Member struct {
	ID uint64
	// Name is the member's name. etcd reports no name for a member that was
	// added but has not started yet; Plan then finds it from PeerURL.
	Name    string
	PeerURL string
	// ClientURL is where the member serves clients (empty until started).
	ClientURL string
	Learner   bool
	// Started is true once the member has joined (etcd knows its name).
	Started bool
	// Healthy is true when the member answered a status request and knows
	// a leader.
	Healthy bool
	Leader  bool
	// Version is the server version the member reported.
	Version string
}

// Slot is where a member runs: its pod (a process in tests) and its data
// volume (a directory in tests). Slots are named like their members.
type Slot struct {
	Name           string
	Pod            bool
	PodTerminating bool
	// PodOutdated is true when the pod was made from another desired state
	// (version, image, resources) and has to be restarted to get it.
	PodOutdated       bool
	Volume            bool
	VolumeTerminating bool
	// VolumeMemberID is the member whose data the volume holds; 0 while
	// unknown (the seed's volume before etcd first answered).
	VolumeMemberID uint64
}

// Observed is everything Plan decides from.
type Observed struct {
	// Reachable is true when the member list was read with a linearizable
	// request, so a quorum answered and Members is authoritative.
	Reachable bool
	Members   []Member
	Slots     []Slot
}

// Naming gives members their names and peer URLs.
type Naming struct {
	// Prefix names new members Prefix-0, Prefix-1, ... (the lowest number
	// no member, pod or volume uses).
	Prefix string
	// PeerURL is the peer URL of the member of that name.
	PeerURL func(name string) string
}

// ActionType is what the next step does.
type ActionType string

// The steps Plan chooses from.
const (
	// ActionNone: the cluster matches the spec.
	ActionNone ActionType = "None"
	// ActionWait: something is under way (a member starting, a pod or
	// volume being deleted) or blocked; Reason or Blocked says what.
	ActionWait ActionType = "Wait"
	// ActionCreateVolume creates the data volume of Name, recording
	// MemberID, InitialCluster and NewCluster for the member's first start.
	ActionCreateVolume ActionType = "CreateVolume"
	// ActionRecordMemberID records MemberID on the volume of Name.
	ActionRecordMemberID ActionType = "RecordMemberID"
	// ActionCreatePod starts the member Name on its volume.
	ActionCreatePod ActionType = "CreatePod"
	// ActionDeletePod stops the member Name's pod.
	ActionDeletePod ActionType = "DeletePod"
	// ActionDeleteVolume deletes the data volume of Name.
	ActionDeleteVolume ActionType = "DeleteVolume"
	// ActionAddLearner adds Name as a learner through the membership API.
	ActionAddLearner ActionType = "AddLearner"
	// ActionPromote makes the learner MemberID a voter.
	ActionPromote ActionType = "Promote"
	// ActionRemoveMember removes MemberID through the membership API.
	ActionRemoveMember ActionType = "RemoveMember"
	// ActionMoveLeader moves leadership from the leader to To.
	ActionMoveLeader ActionType = "MoveLeader"
)

// Operations an action belongs to, for the cluster's phase.
const (
	OpBootstrap = "Bootstrap"
	OpScaleOut  = "ScaleOut"
	OpScaleIn   = "ScaleIn"
	OpReplace   = "Replace"
	OpRepair    = "Repair"
	OpRestart   = "Restart"
	OpCleanup   = "Cleanup"
)

// Action is the single next step.
type Action struct {
	Type      ActionType
	Operation string
	Name      string
	MemberID  uint64
	// InitialCluster (name=peerURL,...) and NewCluster are the
	// --initial-cluster and --initial-cluster-state=new|existing of the
	// member's first start; set by ActionCreateVolume.
	InitialCluster string
	NewCluster     bool
	// To is the transferee of ActionMoveLeader.
	To uint64
	// Reason says why this step, for logs and status.
	Reason string
	// Blocked is set when the step that is due would break an invariant
	// that protects the data; it names the invariant. Type is then
	// ActionWait.
	Blocked string
}

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

// ResolveNames returns o's members sorted by name, with the names of
// members that have not started yet found from their peer URLs.
func ResolveNames(o Observed, n Naming) []Member {
	return newPlanner(0, o, n).members
}

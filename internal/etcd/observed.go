package etcd

// What the planner reads (the observed members and their slots) and what
// it decides (an Action).

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

// ResolveNames returns o's members sorted by name, with the names of
// members that have not started yet found from their peer URLs.
func ResolveNames(o Observed, n Naming) []Member {
	return newPlanner(0, o, n).members
}

package redis

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Desired is the cluster the caller wants and where its members run.
type Desired struct {
	// Name prefixes the member names: replica r of shard s is
	// Name-s-r (MemberName), a pod of that name in Kubernetes.
	Name string
	// Shards is the number of masters serving slots.
	Shards int
	// ReplicasPerShard is the number of replicas of every master.
	ReplicasPerShard int
	// Members maps member names to where they run now. A member missing
	// here has no address yet (in Kubernetes, its pod has no IP).
	Members map[string]Endpoint
}

// MemberName is the name of replica r of shard s in the cluster name.
func MemberName(name string, shard, replica int) string {
	return name + "-" + strconv.Itoa(shard) + "-" + strconv.Itoa(replica)
}

// MemberNames lists the members d wants, shard by shard, replica 0 first.
func (d Desired) MemberNames() []string {
	out := make([]string, 0, d.Shards*(1+d.ReplicasPerShard))
	for s := range d.Shards {
		for r := range 1 + d.ReplicasPerShard {
			out = append(out, MemberName(d.Name, s, r))
		}
	}
	return out
}

// ShardOf returns the shard and replica index of the member name, and
// false when it is no member of d's shape.
func (d Desired) ShardOf(member string) (shard, replica int, ok bool) {
	shard, replica, ok = d.parseMember(member)
	if !ok || shard >= d.Shards || replica > d.ReplicasPerShard {
		return 0, 0, false
	}
	return shard, replica, true
}

// parseMember reads the shard and replica index of a name Name-s-r,
// whatever d's shape.
func (d Desired) parseMember(member string) (shard, replica int, ok bool) {
	rest, found := strings.CutPrefix(member, d.Name+"-")
	if !found {
		return 0, 0, false
	}
	s, r, found := strings.Cut(rest, "-")
	shard, err1 := strconv.Atoi(s)
	replica, err2 := strconv.Atoi(r)
	if !found || err1 != nil || err2 != nil || MemberName(d.Name, shard, replica) != member {
		return 0, 0, false
	}
	return shard, replica, true
}

// Leaving reports whether member is named as a member of the cluster but
// lies beyond d's shape: a shard >= Shards or a replica index >
// ReplicasPerShard (a pod still running during a scale-in).
func (d Desired) Leaving(member string) bool {
	s, r, ok := d.parseMember(member)
	return ok && (s >= d.Shards || r > d.ReplicasPerShard)
}

// LeavingMembers lists the members of d.Members beyond d's shape, shard
// by shard, replica 0 first.
func (d Desired) LeavingMembers() []string {
	var out []string
	for name := range d.Members {
		if d.Leaving(name) {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		as, ar, _ := d.parseMember(a)
		bs, br, _ := d.parseMember(b)
		if as != bs {
			return as - bs
		}
		return ar - br
	})
	return out
}

// Validate reports what makes d impossible to plan for.
func (d Desired) Validate() error {
	switch {
	case d.Name == "":
		return fmt.Errorf("the cluster has no name")
	case d.Shards < 1 || d.Shards > NumSlots:
		return fmt.Errorf("%d shards: want 1 to %d", d.Shards, NumSlots)
	case d.ReplicasPerShard < 0:
		return fmt.Errorf("%d replicas per shard: want 0 or more", d.ReplicasPerShard)
	}
	for name := range d.Members {
		if _, _, ok := d.parseMember(name); !ok {
			return fmt.Errorf("member %q is not named %s-<shard>-<replica>", name, d.Name)
		}
	}
	return nil
}

// View is one member's answer: the cluster as that node sees it.
type View struct {
	Member string
	// Endpoint is where the member was asked.
	Endpoint Endpoint
	// Err is why the member did not answer; the other fields are then
	// empty.
	Err error
	// ID is the node ID the member has (its "myself" line).
	ID string
	// Version is the redis_version of INFO server.
	Version     string
	Nodes       []Node
	Info        ClusterInfo
	Replication Replication
	// Keys is the number of keys the member holds (INFO keyspace, every
	// database).
	Keys int64
}

// Reachable reports whether the member answered.
func (v View) Reachable() bool { return v.Err == nil }

// Myself is the member's own line of CLUSTER NODES.
func (v View) Myself() Node {
	for _, n := range v.Nodes {
		if n.Myself {
			return n
		}
	}
	return Node{}
}

// Node returns the line of the node id (never one in handshake, whose ID
// is not its real one yet).
func (v View) Node(id string) (Node, bool) {
	for _, n := range v.Nodes {
		if n.ID == id && !n.Handshake {
			return n, true
		}
	}
	return Node{}, false
}

// handshakeWith reports whether the member is in handshake with a node at e.
func (v View) handshakeWith(e Endpoint) bool {
	for _, n := range v.Nodes {
		if n.Handshake && n.Endpoint.Equal(e) {
			return true
		}
	}
	return false
}

// NodeState is one node of the cluster, merged from every view: its own
// answer where it gave one, what its peers say of it otherwise.
type NodeState struct {
	ID string
	// Member is the member that answered as this node ("" when none did:
	// a member that is down, or a node that is no member).
	Member   string
	Endpoint Endpoint
	Hostname string
	// Role is "master" or "replica"; MasterID the master of a replica.
	Role        string
	MasterID    string
	Slots       []SlotRange
	ConfigEpoch uint64
	// Reachable is true when the node answered itself.
	Reachable bool
	// Connected is true when every member that answered has its link to
	// the node up.
	Connected bool
	// PFailBy and FailBy name the members that flag the node "fail?"
	// (they cannot reach it) or "fail" (a majority agreed).
	PFailBy, FailBy []string
	// Offset is the node's replication offset (when Reachable).
	Offset int64
	// Lag is how many bytes a replica is behind its master; LagKnown is
	// false unless both answered.
	Lag      int64
	LagKnown bool
}

// Observed is everything Plan decides from: every member's view and the
// cluster merged from them.
type Observed struct {
	// Views holds the answer of every member that has an address, by
	// member name.
	Views map[string]View
	// Nodes is the cluster by node ID, merged from the views (nodes in
	// handshake left out).
	Nodes map[string]NodeState
}

// NewObserved merges views into the cluster's nodes.
func NewObserved(views []View) Observed {
	o := Observed{Views: map[string]View{}, Nodes: map[string]NodeState{}}
	for _, v := range views {
		o.Views[v.Member] = v
	}
	sorted := o.sortedViews()
	// Each node as it answered itself, then the others as the first view
	// in member order lists them, then what every view reports of them.
	for _, v := range sorted {
		if me := v.Myself(); v.Reachable() && me.ID != "" {
			if _, dup := o.Nodes[me.ID]; !dup { // two members with one ID: Plan reports it
				o.Nodes[me.ID] = nodeState(me, v.Member, true, v.Replication.Offset)
			}
		}
	}
	for _, v := range sorted {
		for _, n := range v.Nodes {
			if _, known := o.Nodes[n.ID]; !known && v.Reachable() && !n.Handshake && !n.Myself {
				o.Nodes[n.ID] = nodeState(n, "", false, 0)
			}
		}
	}
	for _, v := range sorted {
		o.addReports(v)
	}
	o.addLags()
	return o
}

// addLags sets how far behind its master every replica is, where both
// answered.
func (o Observed) addLags() {
	for id, s := range o.Nodes {
		if m, ok := o.Nodes[s.MasterID]; ok && s.Role == "replica" && s.Reachable && m.Reachable {
			s.Lag, s.LagKnown = max(m.Offset-s.Offset, 0), true
			o.Nodes[id] = s
		}
	}
}

// addReports records how v sees the link to, and the health of, the
// other nodes.
func (o Observed) addReports(v View) {
	for _, n := range v.Nodes {
		s, ok := o.Nodes[n.ID]
		if !ok || n.Myself || n.Handshake {
			continue
		}
		s.Connected = s.Connected && n.Connected
		if n.PFail {
			s.PFailBy = append(s.PFailBy, v.Member)
		}
		if n.Fail {
			s.FailBy = append(s.FailBy, v.Member)
		}
		o.Nodes[n.ID] = s
	}
}

func nodeState(n Node, member string, reachable bool, offset int64) NodeState {
	return NodeState{ID: n.ID, Member: member, Endpoint: n.Endpoint, Hostname: n.Hostname, Role: n.Role(),
		MasterID: n.MasterID, Slots: n.Slots, ConfigEpoch: n.ConfigEpoch, Reachable: reachable, Connected: true,
		Offset: offset}
}

// sortedViews lists the views by member name.
func (o Observed) sortedViews() []View {
	out := make([]View, 0, len(o.Views))
	for _, v := range o.Views {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b View) int { return strings.Compare(a.Member, b.Member) })
	return out
}

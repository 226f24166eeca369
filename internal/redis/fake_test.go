package redis

import (
	"errors"
	"fmt"
	"strconv"
)

// fakeCluster builds the Observed of a cluster for Plan's unit tests: the
// truth about every member (ID, address, role, slots) and, per viewer,
// which peers it knows at which address and how it sees them.
type fakeCluster struct {
	d       Desired
	members map[string]*fakeMember
	// known[viewer][peer] is the address viewer knows peer at; a peer
	// missing from the map is unknown to viewer.
	known map[string]map[string]Endpoint
	// flags[viewer][peer]: "fail?", "fail" or "disconnected".
	flags map[string]map[string]string
	// hidden[viewer][peer]: viewer does not see peer's slots yet.
	hidden     map[string]map[string]bool
	handshakes map[string][]Endpoint
}

type fakeMember struct {
	id          string
	ep          Endpoint
	master      string // member name of the master; "" for a master
	slots       []SlotRange
	linkUp      bool
	offset      int64
	state       string // cluster_state
	unreachable bool
	epoch       uint64 // config epoch
	keys        int64
	// migrating and importing: slot -> member name.
	migrating, importing map[int]string
	// gone: the node answers no more (no view), its peers still list it.
	gone bool
	// hostname overrides the name the node announces.
	hostname string
}

// add starts member name as a fresh node that every other one has met,
// cluster_state ok (as a new pod of a scale-out once met).
func (f *fakeCluster) add(name string) {
	ep := Endpoint{IP: "10.0.1." + strconv.Itoa(len(f.members)+1), Port: 6379}
	f.members[name] = &fakeMember{id: fakeID(name), ep: ep, state: "ok", epoch: 0}
	f.d.Members[name] = ep
	f.known[name], f.flags[name], f.hidden[name] = map[string]Endpoint{}, map[string]string{}, map[string]bool{}
	f.meetAll(name)
}

// ghost adds a node no member is: the old node of member (its old ID,
// known to every member), flagged flag ("" for none) by all.
func (f *fakeCluster) ghost(name, member, flag string) {
	f.members[name] = &fakeMember{id: fakeID(name), ep: f.members[member].ep, gone: true, hostname: member, state: "ok"}
	f.known[name], f.flags[name], f.hidden[name] = map[string]Endpoint{}, map[string]string{}, map[string]bool{}
	for viewer := range f.d.Members {
		f.known[viewer][name] = f.members[name].ep
		if flag != "" {
			f.flags[viewer][name] = flag
		}
	}
}

func fakeID(name string) string { return fmt.Sprintf("%040x", []byte(name)) }

// freshCluster is shards*(1+replicas) empty nodes that know only themselves.
func freshCluster(shards, replicas int) *fakeCluster {
	f := &fakeCluster{d: Desired{Name: "rc", Shards: shards, ReplicasPerShard: replicas, Members: map[string]Endpoint{}},
		members: map[string]*fakeMember{}, known: map[string]map[string]Endpoint{}, flags: map[string]map[string]string{},
		hidden: map[string]map[string]bool{}, handshakes: map[string][]Endpoint{}}
	for i, name := range f.d.MemberNames() {
		ep := Endpoint{IP: "10.0.0." + strconv.Itoa(i+1), Port: 6379}
		f.members[name] = &fakeMember{id: fakeID(name), ep: ep, state: "fail", epoch: uint64(i) + 1}
		f.d.Members[name] = ep
		f.known[name], f.flags[name], f.hidden[name] = map[string]Endpoint{}, map[string]string{}, map[string]bool{}
	}
	return f
}

// metCluster is freshCluster where every node knows every other one.
func metCluster(shards, replicas int) *fakeCluster {
	f := freshCluster(shards, replicas)
	for a := range f.members {
		f.meetAll(a)
	}
	return f
}

// convergedCluster is metCluster with the slots assigned and the replicas
// attached as bootstrap does, cluster_state ok everywhere.
func convergedCluster(shards, replicas int) *fakeCluster {
	f := metCluster(shards, replicas)
	for s, r := range EvenSlots(shards) {
		f.members[MemberName("rc", s, 0)].slots = []SlotRange{r}
		for j := 1; j <= replicas; j++ {
			f.replicate(MemberName("rc", s, j), MemberName("rc", s, 0))
		}
	}
	for _, m := range f.members {
		m.state = "ok"
	}
	return f
}

// meetAll makes a and every other node know each other.
func (f *fakeCluster) meetAll(a string) {
	for b, m := range f.members {
		if a != b {
			f.known[a][b], f.known[b][a] = m.ep, f.members[a].ep
		}
	}
}

func (f *fakeCluster) replicate(replica, master string) {
	f.members[replica].master, f.members[replica].linkUp = master, true
}

// move gives every member a new address; the views keep the old ones.
func (f *fakeCluster) moveAll() {
	for name, m := range f.members {
		m.ep.IP = "10.1." + m.ep.IP[len("10.0."):]
		f.d.Members[name] = m.ep
	}
}

func (f *fakeCluster) observed() Observed {
	var views []View
	for name, m := range f.members {
		if m.gone {
			continue
		}
		v := View{Member: name, Endpoint: m.ep}
		if m.unreachable {
			v.Err = errors.New("dial tcp " + m.ep.Addr() + ": connect: connection refused")
			views = append(views, v)
			continue
		}
		v.ID, v.Info.State, v.Keys = m.id, m.state, m.keys
		me := f.node(name, name, m.ep)
		me.Myself = true
		for slot, peer := range m.migrating {
			if me.Migrating == nil {
				me.Migrating = map[int]string{}
			}
			me.Migrating[slot] = f.members[peer].id
		}
		for slot, peer := range m.importing {
			if me.Importing == nil {
				me.Importing = map[int]string{}
			}
			me.Importing[slot] = f.members[peer].id
		}
		v.Nodes = append(v.Nodes, me)
		for peer, ep := range f.known[name] {
			v.Nodes = append(v.Nodes, f.node(name, peer, ep))
		}
		for _, n := range v.Nodes {
			v.Info.SlotsAssigned += CountSlots(n.Slots)
		}
		for i, ep := range f.handshakes[name] {
			v.Nodes = append(v.Nodes, Node{ID: fakeID(fmt.Sprintf("handshake-%s-%d", name, i)), Endpoint: ep, Handshake: true})
		}
		v.Replication = Replication{Role: "master", Offset: m.offset}
		if m.master != "" {
			v.Replication = Replication{Role: "slave", MasterLinkUp: m.linkUp, Offset: m.offset}
		}
		views = append(views, v)
	}
	return NewObserved(views)
}

// node is peer as viewer sees it, at ep.
func (f *fakeCluster) node(viewer, peer string, ep Endpoint) Node {
	m := f.members[peer]
	n := Node{ID: m.id, Endpoint: ep, Hostname: peer, Connected: true, ConfigEpoch: m.epoch}
	if m.hostname != "" {
		n.Hostname = m.hostname
	}
	if m.master == "" {
		n.Master = true
		if !f.hidden[viewer][peer] {
			n.Slots = m.slots
		}
	} else {
		n.Replica, n.MasterID = true, f.members[m.master].id
	}
	switch f.flags[viewer][peer] {
	case "fail?":
		n.PFail, n.Connected = true, false
	case "fail":
		n.Fail, n.Connected = true, false
	case "noaddr":
		n.NoAddr, n.Connected = true, false
	case "disconnected":
		n.Connected = false
	}
	return n
}

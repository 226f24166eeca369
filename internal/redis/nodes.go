package redis

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Endpoint is where a Redis cluster node serves clients (IP:Port) and
// talks to its peers (the cluster bus, IP:BusPort).
type Endpoint struct {
	IP   string
	Port int
	// BusPort is the cluster bus port; 0 means Redis' default, Port+10000.
	BusPort int
}

// Bus is the cluster bus port.
func (e Endpoint) Bus() int {
	if e.BusPort == 0 && e.Port != 0 {
		return e.Port + 10000
	}
	return e.BusPort
}

// Addr is IP:Port, the address clients dial.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.IP, strconv.Itoa(e.Port)) }

// String is IP:Port@BusPort, as CLUSTER NODES writes it.
func (e Endpoint) String() string {
	return e.IP + ":" + strconv.Itoa(e.Port) + "@" + strconv.Itoa(e.Bus())
}

// Equal reports whether e and o are the same address, the bus port
// included (0 and Port+10000 are the same).
func (e Endpoint) Equal(o Endpoint) bool {
	return e.IP == o.IP && e.Port == o.Port && e.Bus() == o.Bus()
}

// Node is one line of CLUSTER NODES: a node of the cluster as the node
// that answered sees it.
type Node struct {
	// ID is the node ID, 40 hex digits, kept in nodes.conf for the node's
	// life. A node in handshake has a random ID until its peer answers.
	ID       string
	Endpoint Endpoint
	// Hostname is the node's cluster-announce-hostname ("" when unset).
	Hostname string
	// Flags as listed (myself, master, slave, fail?, fail, handshake,
	// noaddr, nofailover, noflags); the booleans below are read from them.
	Flags      []string
	Myself     bool
	Master     bool
	Replica    bool
	PFail      bool // "fail?": this node cannot reach it
	Fail       bool // a majority of masters agreed it failed
	Handshake  bool // met but not answered yet
	NoAddr     bool // its address is unknown
	NoFailover bool
	// MasterID is the master a replica replicates ("" for a master).
	MasterID string
	// PingSent and PongReceived are Unix milliseconds (0: none pending).
	PingSent, PongReceived int64
	ConfigEpoch            uint64
	// Connected is the state of the link to the node on the cluster bus
	// (always true for myself).
	Connected bool
	// Slots the node serves, as the answering node sees it.
	Slots []SlotRange
	// Migrating and Importing map a slot to the node it is migrating to
	// or importing from.
	Migrating map[int]string
	Importing map[int]string
}

// Role is "master" or "replica" ("" for a node in handshake or without
// flags yet).
func (n Node) Role() string {
	switch {
	case n.Master:
		return "master"
	case n.Replica:
		return "replica"
	}
	return ""
}

// ParseClusterNodes reads the answer of CLUSTER NODES. Lines it cannot
// read are errors: a format this package does not know must not be
// planned on.
func ParseClusterNodes(out string) ([]Node, error) {
	var nodes []Node
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n, err := parseNodeLine(line)
		if err != nil {
			return nil, fmt.Errorf("parsing CLUSTER NODES line %q: %w", line, err)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func parseNodeLine(line string) (Node, error) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return Node{}, fmt.Errorf("%d fields, want at least 8", len(f))
	}
	n := Node{ID: f[0], Flags: strings.Split(f[2], ","), Connected: f[7] == "connected"}
	if len(n.ID) != 40 {
		return Node{}, fmt.Errorf("node ID %q is not 40 characters", n.ID)
	}
	var err error
	if n.Endpoint, n.Hostname, err = parseNodeAddress(f[1]); err != nil {
		return Node{}, err
	}
	n.setFlags()
	if f[3] != "-" {
		n.MasterID = f[3]
	}
	if n.PingSent, err = strconv.ParseInt(f[4], 10, 64); err != nil {
		return Node{}, fmt.Errorf("ping-sent %q: %w", f[4], err)
	}
	if n.PongReceived, err = strconv.ParseInt(f[5], 10, 64); err != nil {
		return Node{}, fmt.Errorf("pong-recv %q: %w", f[5], err)
	}
	if n.ConfigEpoch, err = strconv.ParseUint(f[6], 10, 64); err != nil {
		return Node{}, fmt.Errorf("config-epoch %q: %w", f[6], err)
	}
	if f[7] != "connected" && f[7] != "disconnected" {
		return Node{}, fmt.Errorf("link state %q", f[7])
	}
	for _, s := range f[8:] {
		if err := n.addSlot(s); err != nil {
			return Node{}, err
		}
	}
	n.Slots = Normalize(n.Slots)
	return n, nil
}

// setFlags sets the booleans of the flags Flags lists.
func (n *Node) setFlags() {
	flags := map[string]*bool{"myself": &n.Myself, "master": &n.Master, "slave": &n.Replica, "fail?": &n.PFail,
		"fail": &n.Fail, "handshake": &n.Handshake, "noaddr": &n.NoAddr, "nofailover": &n.NoFailover}
	for _, fl := range n.Flags {
		if b, ok := flags[fl]; ok {
			*b = true
		}
	}
}

// addSlot reads one slot field: a range, or [slot->-id] (migrating) or
// [slot-<-id] (importing).
func (n *Node) addSlot(s string) error {
	if !strings.HasPrefix(s, "[") {
		r, err := ParseSlotRange(s)
		if err != nil {
			return err
		}
		n.Slots = append(n.Slots, r)
		return nil
	}
	body := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	for _, sep := range []string{"->-", "-<-"} {
		slot, id, ok := strings.Cut(body, sep)
		if !ok {
			continue
		}
		v, err := strconv.Atoi(slot)
		if err != nil || v < 0 || v >= NumSlots {
			return fmt.Errorf("invalid slot in %q", s)
		}
		m := &n.Importing
		if sep == "->-" {
			m = &n.Migrating
		}
		if *m == nil {
			*m = map[int]string{}
		}
		(*m)[v] = id
		return nil
	}
	return fmt.Errorf("invalid slot field %q", s)
}

// parseNodeAddress reads ip:port@cport[,hostname[,key=value...]]. The IP
// may be empty (a node that does not know its own address yet) and may be
// an IPv6 address, which CLUSTER NODES writes without brackets.
func parseNodeAddress(s string) (Endpoint, string, error) {
	addr, rest, _ := strings.Cut(s, ",")
	hostname := ""
	if rest != "" {
		hostname, _, _ = strings.Cut(rest, ",")
		if strings.Contains(hostname, "=") { // an auxiliary field, no hostname
			hostname = ""
		}
	}
	hostPort, bus, found := strings.Cut(addr, "@")
	i := strings.LastIndexByte(hostPort, ':')
	if i < 0 {
		return Endpoint{}, "", fmt.Errorf("address %q has no port", s)
	}
	port, err := strconv.Atoi(hostPort[i+1:])
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("port of address %q: %w", s, err)
	}
	e := Endpoint{IP: hostPort[:i], Port: port}
	if found {
		if e.BusPort, err = strconv.Atoi(bus); err != nil {
			return Endpoint{}, "", fmt.Errorf("cluster bus port of address %q: %w", s, err)
		}
	}
	return e, hostname, nil
}

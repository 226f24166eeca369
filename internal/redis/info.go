package redis

import (
	"fmt"
	"strconv"
	"strings"
)

// ClusterInfo is what CLUSTER INFO answers, as the node sees the cluster.
type ClusterInfo struct {
	// State is cluster_state: "ok" when the node serves queries (every
	// slot is served by a reachable master), "fail" otherwise.
	State         string
	SlotsAssigned int
	SlotsOK       int
	SlotsPFail    int
	SlotsFail     int
	KnownNodes    int
	// Size is the number of masters serving at least one slot.
	Size         int
	CurrentEpoch uint64
	MyEpoch      uint64
}

// ParseClusterInfo reads the answer of CLUSTER INFO.
func ParseClusterInfo(out string) (ClusterInfo, error) {
	kv := infoFields(out)
	ci := ClusterInfo{State: kv["cluster_state"]}
	if ci.State == "" {
		return ci, fmt.Errorf("parsing CLUSTER INFO: no cluster_state in %q", out)
	}
	for key, dst := range map[string]*int{"cluster_slots_assigned": &ci.SlotsAssigned, "cluster_slots_ok": &ci.SlotsOK,
		"cluster_slots_pfail": &ci.SlotsPFail, "cluster_slots_fail": &ci.SlotsFail,
		"cluster_known_nodes": &ci.KnownNodes, "cluster_size": &ci.Size} {
		if err := atoiField(kv, key, dst); err != nil {
			return ci, fmt.Errorf("parsing CLUSTER INFO: %w", err)
		}
	}
	for key, dst := range map[string]*uint64{"cluster_current_epoch": &ci.CurrentEpoch, "cluster_my_epoch": &ci.MyEpoch} {
		if v, ok := kv[key]; ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return ci, fmt.Errorf("parsing CLUSTER INFO: %s=%q: %w", key, v, err)
			}
			*dst = n
		}
	}
	return ci, nil
}

// Replication is what INFO replication answers.
type Replication struct {
	// Role is "master" or "slave", as Redis names them.
	Role string
	// MasterHost and MasterPort are where a replica replicates from.
	MasterHost string
	MasterPort int
	// MasterLinkUp is master_link_status:up (replicas only).
	MasterLinkUp   bool
	SyncInProgress bool
	// Offset is the replication offset the node has: master_repl_offset
	// on a master, slave_repl_offset (what it has processed) on a replica.
	Offset int64
	// Replicas are a master's connected replicas (slaveN lines).
	Replicas []ReplicaLink
}

// ReplicaLink is a replica as its master reports it.
type ReplicaLink struct {
	IP     string
	Port   int
	State  string // online, wait_bgsave, send_bulk, ...
	Offset int64
	// Lag is seconds since the last acknowledgement.
	Lag int64
}

// ParseReplication reads the answer of INFO replication.
func ParseReplication(out string) (Replication, error) {
	kv := infoFields(out)
	r := Replication{Role: kv["role"], MasterHost: kv["master_host"], MasterLinkUp: kv["master_link_status"] == "up",
		SyncInProgress: kv["master_sync_in_progress"] == "1"}
	if r.Role != "master" && r.Role != "slave" {
		return r, fmt.Errorf("parsing INFO replication: role %q", r.Role)
	}
	if err := atoiField(kv, "master_port", &r.MasterPort); err != nil {
		return r, fmt.Errorf("parsing INFO replication: %w", err)
	}
	offsetKey := "master_repl_offset"
	if r.Role == "slave" {
		offsetKey = "slave_repl_offset"
	}
	if v, ok := kv[offsetKey]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return r, fmt.Errorf("parsing INFO replication: %s=%q: %w", offsetKey, v, err)
		}
		r.Offset = n
	}
	for i := 0; ; i++ {
		v, ok := kv["slave"+strconv.Itoa(i)]
		if !ok {
			break
		}
		link, err := parseReplicaLink(v)
		if err != nil {
			return r, fmt.Errorf("parsing INFO replication: slave%d: %w", i, err)
		}
		r.Replicas = append(r.Replicas, link)
	}
	return r, nil
}

// parseReplicaLink reads ip=...,port=...,state=...,offset=...,lag=...
func parseReplicaLink(v string) (ReplicaLink, error) {
	var l ReplicaLink
	for part := range strings.SplitSeq(v, ",") {
		key, val, _ := strings.Cut(part, "=")
		var err error
		switch key {
		case "ip":
			l.IP = val
		case "port":
			l.Port, err = strconv.Atoi(val)
		case "state":
			l.State = val
		case "offset":
			l.Offset, err = strconv.ParseInt(val, 10, 64)
		case "lag":
			l.Lag, err = strconv.ParseInt(val, 10, 64)
		}
		if err != nil {
			return l, fmt.Errorf("%s=%q: %w", key, val, err)
		}
	}
	return l, nil
}

// ParseKeyspace reads the number of keys, summed over the databases,
// from the answer of INFO keyspace (db0:keys=12,expires=0,avg_ttl=0).
func ParseKeyspace(out string) (int64, error) {
	var total int64
	for k, v := range infoFields(out) {
		if !strings.HasPrefix(k, "db") {
			continue
		}
		for part := range strings.SplitSeq(v, ",") {
			if n, ok := strings.CutPrefix(part, "keys="); ok {
				keys, err := strconv.ParseInt(n, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("parsing INFO keyspace: %s=%q: %w", k, v, err)
				}
				total += keys
			}
		}
	}
	return total, nil
}

// ParseServerVersion reads redis_version from the answer of INFO server.
func ParseServerVersion(out string) string { return infoFields(out)["redis_version"] }

// infoFields reads the key:value lines of an INFO-style answer.
func infoFields(out string) map[string]string {
	kv := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			kv[k] = v
		}
	}
	return kv
}

func atoiField(kv map[string]string, key string, dst *int) error {
	v, ok := kv[key]
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", key, v, err)
	}
	*dst = n
	return nil
}

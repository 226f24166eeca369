package redis

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture is an answer a real redis-server gave, captured by the harness
// test (OPSMITH_REDIS_WRITE_FIXTURES=1 go test -run TestBootstrap), without
// the header line that says so.
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n")
	return rest
}

func byHostname(t *testing.T, nodes []Node) map[string]Node {
	t.Helper()
	out := map[string]Node{}
	for _, n := range nodes {
		if !n.Handshake {
			out[n.Hostname] = n
		}
	}
	return out
}

func TestParseClusterNodesFixtures(t *testing.T) {
	parse := func(name string) []Node {
		nodes, err := ParseClusterNodes(fixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return nodes
	}

	// A node that has met nobody: only itself, without its own IP yet.
	fresh := parse("cluster-nodes-new.txt")
	if len(fresh) != 1 || !fresh[0].Myself || !fresh[0].Master || fresh[0].Endpoint.IP != "" ||
		fresh[0].Hostname != "rc-0-0" || len(fresh[0].Slots) != 0 || fresh[0].Endpoint.Port == 0 {
		t.Errorf("new node: %+v", fresh)
	}

	// Right after MEET of the five others: handshakes under random IDs.
	hs := parse("cluster-nodes-handshake.txt")
	handshakes := 0
	for _, n := range hs {
		if n.Handshake {
			handshakes++
			if n.Connected || n.Endpoint.IP != "127.0.0.1" || n.Role() != "" {
				t.Errorf("handshake node %+v", n)
			}
		}
	}
	if len(hs) != 6 || handshakes != 5 {
		t.Errorf("%d nodes, %d in handshake; want 6 and 5", len(hs), handshakes)
	}

	// The converged cluster of 3 shards with 1 replica each.
	conv := byHostname(t, parse("cluster-nodes-converged.txt"))
	ranges := EvenSlots(3)
	for s := range 3 {
		m, r := conv[MemberName("rc", s, 0)], conv[MemberName("rc", s, 1)]
		if !m.Master || !slices.Equal(m.Slots, ranges[s:s+1]) || m.MasterID != "" || !m.Connected {
			t.Errorf("master of shard %d: %+v", s, m)
		}
		if !r.Replica || r.MasterID != m.ID || len(r.Slots) != 0 || !r.Connected || r.PongReceived == 0 {
			t.Errorf("replica of shard %d: %+v", s, r)
		}
	}
	if !conv["rc-0-0"].Myself || len(conv) != 6 {
		t.Errorf("converged view: %d nodes, myself %+v", len(conv), conv["rc-0-0"])
	}

	// After every node restarted on new ports: the node knows its own new
	// port, its peers at their old addresses, links down.
	stale := byHostname(t, parse("cluster-nodes-stale.txt"))
	for name, n := range stale {
		old := conv[name]
		if n.ID != old.ID || n.Role() != old.Role() || !slices.Equal(n.Slots, old.Slots) {
			t.Errorf("%s after the restart: %+v, before %+v", name, n, old)
		}
		if moved := !n.Endpoint.Equal(old.Endpoint); n.Myself != moved || n.Connected != n.Myself {
			t.Errorf("%s after the restart: at %s (before %s), connected %v", name, n.Endpoint, old.Endpoint, n.Connected)
		}
	}
}

func TestParseClusterNodesLines(t *testing.T) {
	const (
		a = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
		b = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"
		c = "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"
	)
	out := a + " 10.0.0.1:6379@16379,rc-0-0,shard-id=69bc080733d1355567173199cff4a6a039a2f024 myself,master - 0 0 1 connected 0-5460 [5461->-" + b + "] [93-<-" + c + "]\n" +
		b + " 10.0.0.2:6379@16379,,shard-id=69bc080733d1355567173199cff4a6a039a2f024 slave " + a + " 0 1426238317239 4 connected\n" +
		c + " ::1:30005@31005 master,fail? - 1426238316232 0 5 disconnected 5461\n" +
		"824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :0@0 master,fail,noaddr,nofailover - 1426238316232 1426238316232 3 disconnected\n"
	nodes, err := ParseClusterNodes(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := nodes[0]; n.Hostname != "rc-0-0" || n.Endpoint != (Endpoint{IP: "10.0.0.1", Port: 6379, BusPort: 16379}) ||
		n.Migrating[5461] != b || n.Importing[93] != c || !slices.Equal(n.Slots, []SlotRange{{0, 5460}}) || n.ConfigEpoch != 1 {
		t.Errorf("master with migrating and importing slots: %+v", n)
	}
	if n := nodes[1]; n.Hostname != "" || !n.Replica || n.MasterID != a || n.PongReceived != 1426238317239 {
		t.Errorf("replica with an auxiliary field and no hostname: %+v", n)
	}
	if n := nodes[2]; n.Endpoint.IP != "::1" || n.Endpoint.Port != 30005 || !n.PFail || n.Fail || n.Connected ||
		n.Endpoint.Addr() != "[::1]:30005" {
		t.Errorf("IPv6 node flagged fail?: %+v", n)
	}
	if n := nodes[3]; !n.Fail || !n.NoAddr || !n.NoFailover || n.Endpoint.Bus() != 0 {
		t.Errorf("failed node without address: %+v", n)
	}
	for _, bad := range []string{
		a + " 10.0.0.1:6379@16379 master - 0 0 1",              // too few fields
		"abc 10.0.0.1:6379@16379 master - 0 0 1 connected",     // short ID
		a + " 10.0.0.1@16379 master - 0 0 1 connected",         // no port
		a + " 10.0.0.1:6379@16379 master - 0 0 1 connected 9-", // bad slot
		a + " 10.0.0.1:6379@16379 master - 0 0 1 up",           // link state
		a + " 10.0.0.1:6379@16379 master - 0 0 1 connected [5->" + b + "]",
	} {
		if _, err := ParseClusterNodes(bad); err == nil {
			t.Errorf("ParseClusterNodes(%q): no error", bad)
		}
	}
}

func TestParseInfoFixtures(t *testing.T) {
	ok, err := ParseClusterInfo(fixture(t, "cluster-info-ok.txt"))
	if err != nil || ok.State != "ok" || ok.SlotsAssigned != NumSlots || ok.SlotsOK != NumSlots || ok.KnownNodes != 6 ||
		ok.Size != 3 || ok.CurrentEpoch == 0 {
		t.Errorf("CLUSTER INFO of the converged cluster: %+v, %v", ok, err)
	}
	stale, err := ParseClusterInfo(fixture(t, "cluster-info-stale.txt"))
	if err != nil || stale.State != "fail" || stale.KnownNodes != 6 {
		t.Errorf("CLUSTER INFO after the restart on new ports: %+v, %v", stale, err)
	}
	if _, err := ParseClusterInfo("cluster_known_nodes:6\r\n"); err == nil {
		t.Error("CLUSTER INFO without cluster_state: no error")
	}

	m, err := ParseReplication(fixture(t, "info-replication-master.txt"))
	if err != nil || m.Role != "master" || m.Offset <= 0 || len(m.Replicas) != 1 || m.Replicas[0].State != "online" ||
		m.Replicas[0].IP != "127.0.0.1" || m.Replicas[0].Port == 0 || m.Replicas[0].Offset <= 0 {
		t.Errorf("INFO replication of a master: %+v, %v", m, err)
	}
	r, err := ParseReplication(fixture(t, "info-replication-replica.txt"))
	if err != nil || r.Role != "slave" || !r.MasterLinkUp || r.SyncInProgress || r.MasterPort == 0 || r.Offset <= 0 {
		t.Errorf("INFO replication of a replica: %+v, %v", r, err)
	}
	if _, err := ParseReplication("# Replication\r\nrole:sentinel\r\n"); err == nil {
		t.Error("INFO replication of no master or replica: no error")
	}
	if v := ParseServerVersion("# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n"); v != "7.0.15" {
		t.Errorf("redis_version = %q", v)
	}
}

// TestParseOpenSlotFixtures reads what real servers answered in the middle
// of a slot migration (written by TestScaleOutAndInUnderWriteLoad).
func TestParseOpenSlotFixtures(t *testing.T) {
	for file, migrating := range map[string]bool{"cluster-nodes-migrating.txt": true, "cluster-nodes-importing.txt": false} {
		nodes, err := ParseClusterNodes(fixture(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var me Node
		for _, n := range nodes {
			if n.Myself {
				me = n
			}
		}
		open := me.Importing
		if migrating {
			open = me.Migrating
		}
		if len(open) == 0 || len(me.Migrating)+len(me.Importing) != len(open) {
			t.Errorf("%s: myself migrating %v, importing %v", file, me.Migrating, me.Importing)
		}
		for slot, id := range open {
			if _, known := (View{Nodes: nodes}).Node(id); !known || slot < 0 || slot >= NumSlots {
				t.Errorf("%s: slot %d open with %s, which the answer does not list", file, slot, id)
			}
		}
	}
	if n, err := ParseKeyspace(fixture(t, "info-keyspace.txt")); err != nil || n <= 0 {
		t.Errorf("INFO keyspace fixture: %d keys, %v", n, err)
	}
	if n, err := ParseKeyspace("# Keyspace\r\ndb0:keys=12,expires=0,avg_ttl=0\r\ndb3:keys=3,expires=1,avg_ttl=9\r\n"); err != nil || n != 15 {
		t.Errorf("ParseKeyspace: %d, %v; want 15", n, err)
	}
	if _, err := ParseKeyspace("db0:keys=x,expires=0"); err == nil {
		t.Error("ParseKeyspace of keys=x: no error")
	}
}

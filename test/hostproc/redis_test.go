package hostproc_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"opsmith.io/opsmith/test/hostproc"
)

func redisClient(t *testing.T, s *hostproc.RedisServer) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// knownPeers counts the other nodes a cluster node lists in CLUSTER NODES
// as connected.
func knownPeers(ctx context.Context, c *redis.Client) (int, string, error) {
	out, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return 0, "", err
	}
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && !strings.Contains(f[2], "myself") && f[7] == "connected" {
			n++
		}
	}
	return n, out, nil
}

// TestRedisClusterNodeKeepsIdentityAcrossKill starts three real
// redis-servers in cluster mode on free loopback ports, each with its own
// nodes.conf in its data directory, and has them meet. One is killed with
// SIGKILL and restarted on the same port and data directory: it answers
// PING again with the same cluster node ID (CLUSTER MYID) and knows its
// two peers again, from its nodes.conf.
func TestRedisClusterNodeKeepsIdentityAcrossKill(t *testing.T) {
	bin := hostproc.RequireRedisServer(t)
	t.Logf("redis-server %s from %s", bin.Version, bin.Source)
	ctx := context.Background()
	g := hostproc.NewGroup(t)
	data := t.TempDir()

	var servers []*hostproc.RedisServer
	var clients []*redis.Client
	ids := map[string]bool{}
	for i := range 3 {
		s, err := hostproc.StartRedis(g, bin, hostproc.RedisOptions{
			Name: "redis-" + strconv.Itoa(i), Dir: filepath.Join(data, strconv.Itoa(i)), Cluster: true})
		if err != nil {
			t.Fatal(err)
		}
		c := redisClient(t, s)
		if pong, err := c.Ping(ctx).Result(); err != nil || pong != "PONG" {
			t.Fatalf("PING %s: %q, %v", s.Addr, pong, err)
		}
		id, err := c.ClusterMyID(ctx).Result()
		if err != nil || len(id) != 40 || ids[id] {
			t.Fatalf("CLUSTER MYID of %s: %q, %v (want 40 hex digits, unique)", s.Addr, id, err)
		}
		ids[id] = true
		if _, err := os.Stat(filepath.Join(s.Dir, "nodes.conf")); err != nil {
			t.Fatalf("cluster config of %s: %v", s.Addr, err)
		}
		servers, clients = append(servers, s), append(clients, c)
	}
	for _, s := range servers[1:] {
		// The cluster bus is not on Redis' default port+10000: MEET names it.
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", s.Port, s.ClusterPort).Err(); err != nil {
			t.Fatalf("CLUSTER MEET %s: %v", s.Addr, err)
		}
	}
	for i, c := range clients {
		hostproc.Eventually(t, 30*time.Second, fmt.Sprintf("redis-%d to see both peers", i), func() error {
			n, out, err := knownPeers(ctx, c)
			if err == nil && n != 2 {
				err = fmt.Errorf("%d peers connected:\n%s", n, out)
			}
			return err
		})
	}

	victim, vc := servers[1], clients[1]
	id, err := vc.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	pid := victim.Pid()
	victim.Kill()
	if err := hostproc.RedisPing(victim.Addr); err == nil {
		t.Fatalf("%s still answers after SIGKILL", victim.Addr)
	}
	start := time.Now()
	if err := victim.Restart(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted %s (pid %d -> %d) in %s", victim.Addr, pid, victim.Pid(), time.Since(start).Round(time.Millisecond))
	if victim.Pid() == pid || victim.Starts() != 2 {
		t.Fatalf("not a new process: pid %d -> %d, %d starts", pid, victim.Pid(), victim.Starts())
	}
	if pong, err := vc.Ping(ctx).Result(); err != nil || pong != "PONG" {
		t.Fatalf("PING after restart: %q, %v", pong, err)
	}
	if after, err := vc.ClusterMyID(ctx).Result(); err != nil || after != id {
		t.Fatalf("CLUSTER MYID after restart on the same data directory: %q (%v), want %q", after, err, id)
	}
	hostproc.Eventually(t, 30*time.Second, "the restarted node to reconnect to both peers", func() error {
		n, out, err := knownPeers(ctx, vc)
		if err == nil && n != 2 {
			err = fmt.Errorf("%d peers connected:\n%s", n, out)
		}
		return err
	})
	for i, c := range clients {
		if err := c.Ping(ctx).Err(); err != nil {
			t.Errorf("PING redis-%d at the end: %v", i, err)
		}
	}
}

// TestRedisPasswordAndRestartOnNewPort starts a redis-server with a
// password and an append-only file, writes a key, and restarts it on new
// ports with the same data directory, as a pod that comes back with a new
// IP: the password is still required, the key is still there, and a
// cluster node keeps its ID.
func TestRedisPasswordAndRestartOnNewPort(t *testing.T) {
	bin := hostproc.RequireRedisServer(t)
	ctx := context.Background()
	g := hostproc.NewGroup(t)
	s, err := hostproc.StartRedis(g, bin, hostproc.RedisOptions{Name: "redis-auth", Dir: t.TempDir(), Cluster: true,
		Password: "s3cret", Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hostproc.RedisPing(s.Addr); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without AUTH: %v, want NOAUTH", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.Password, MaxRetries: -1, DisableIdentity: true})
	id, err := c.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// A single node serving every slot, so that it takes writes.
	if err := c.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	hostproc.Eventually(t, 10*time.Second, "the key to be written", func() error { return c.Set(ctx, "k", "v", 0).Err() })
	_ = c.Close()

	oldPort, oldBus := s.Port, s.ClusterPort
	ports, err := hostproc.FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	var fresh []int
	for _, p := range ports {
		if p != oldPort && p != oldBus {
			fresh = append(fresh, p)
		}
	}
	s.Kill()
	if err := s.RestartOn(time.Second, fresh[0], fresh[1]); err != nil {
		t.Fatal(err)
	}
	if s.Port != fresh[0] || s.ClusterPort != fresh[1] || s.Starts() != 1 {
		t.Fatalf("restarted on %d@%d (%d starts of the new process), want %d@%d", s.Port, s.ClusterPort, s.Starts(), fresh[0], fresh[1])
	}
	c = redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.Password, MaxRetries: -1, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	if after, err := c.ClusterMyID(ctx).Result(); err != nil || after != id {
		t.Fatalf("CLUSTER MYID after the restart on new ports: %q (%v), want %q", after, err, id)
	}
	// A single-node cluster is down for a moment after a start.
	hostproc.Eventually(t, 10*time.Second, "GET k after the restart", func() error {
		v, err := c.Get(ctx, "k").Result()
		if err == nil && v != "v" {
			err = fmt.Errorf("GET k = %q, want v", v)
		}
		return err
	})
}

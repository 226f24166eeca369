package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"opsmith.io/opsmith/test/hostproc"
)

// localCluster runs etcd members as local processes with the same steps the
// EtcdCluster controller takes with pods and volumes: a slot's "volume" is
// a directory holding the member's data and the metadata the controller
// keeps in PersistentVolumeClaim annotations, its "pod" is an etcd process.
// Like the kubelet, the harness restarts a member process that exited while
// its volume exists. The processes run in a hostproc.Group, which keeps
// their logs, prints them when the test fails and stops every member when
// the test ends.
type localCluster struct {
	t       *testing.T
	dir     string
	group   *hostproc.Group
	bins    map[string]string // etcd version -> binary
	version string            // the version new and restarted members run
	naming  Naming

	mu    sync.Mutex
	ports map[string][2]int // name -> client port, peer port
	procs map[string]*localPod
	// actions is every action executed, in order.
	actions []Action
	// leaderAtRestart records, for every restart of an outdated member,
	// whether it was the leader at that time.
	leaderAtRestart []bool
}

type localPod struct {
	proc    *hostproc.Proc
	version string
}

type volumeMeta struct {
	MemberID       uint64 `json:"memberID"`
	InitialCluster string `json:"initialCluster"`
	NewCluster     bool   `json:"newCluster"`
}

func etcdBinaries(t *testing.T) map[string]string {
	bins := map[string]string{"3.6.16": filepath.Join(hostproc.RepoRoot(), "bin", "etcd")}
	for _, p := range []string{os.Getenv("OPSMITH_ETCD35"), filepath.Join(hostproc.RepoRoot(), "bin", "etcd-v3.5.35", "etcd")} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil { //nolint:gosec // a path the developer chose (OPSMITH_ETCD35) in a test
			bins["3.5.35"] = p
			break
		}
	}
	if _, err := os.Stat(bins["3.6.16"]); err != nil {
		t.Fatalf("no etcd binary (make testbed builds bin/etcd; make test does): %v", err)
	}
	return bins
}

func newLocalCluster(t *testing.T, version string) *localCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs etcd processes")
	}
	bins := etcdBinaries(t)
	if bins[version] == "" {
		t.Fatalf("no etcd %s binary (make images builds bin/etcd-v3.5.35/etcd, and make test does; or set OPSMITH_ETCD35)", version)
	}
	// The group stops the members (and prints their logs on failure) in a
	// cleanup that runs before the data directories are removed.
	l := &localCluster{t: t, group: hostproc.NewGroup(t), dir: t.TempDir(), bins: bins, version: version,
		ports: map[string][2]int{}, procs: map[string]*localPod{}}
	l.naming = Naming{Prefix: "m", PeerURL: func(name string) string {
		return "http://127.0.0.1:" + strconv.Itoa(l.port(name)[1])
	}}
	return l
}

func (l *localCluster) port(name string) [2]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.ports[name]; ok {
		return p
	}
	ps, err := hostproc.FreePorts(2)
	if err != nil {
		l.t.Fatal(err)
	}
	l.ports[name] = [2]int{ps[0], ps[1]}
	return l.ports[name]
}

func (l *localCluster) clientURL(name string) string {
	return "http://127.0.0.1:" + strconv.Itoa(l.port(name)[0])
}

func (l *localCluster) volumeDir(name string) string { return filepath.Join(l.dir, "volumes", name) }

func (l *localCluster) readMeta(name string) (volumeMeta, bool) {
	var m volumeMeta
	b, err := os.ReadFile(filepath.Join(l.volumeDir(name), "meta.json"))
	if err != nil {
		return m, false
	}
	if err := json.Unmarshal(b, &m); err != nil {
		l.t.Fatal(err)
	}
	return m, true
}

func (l *localCluster) writeMeta(name string, m volumeMeta) {
	b, _ := json.Marshal(m)
	if err := os.MkdirAll(l.volumeDir(name), 0o700); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.volumeDir(name), "meta.json"), b, 0o600); err != nil {
		l.t.Fatal(err)
	}
}

// slots lists volumes and processes; like the kubelet, it restarts a
// member process that exited while its volume exists.
func (l *localCluster) slots() []Slot {
	byName := map[string]*Slot{}
	get := func(name string) *Slot {
		if s, ok := byName[name]; ok {
			return s
		}
		byName[name] = &Slot{Name: name}
		return byName[name]
	}
	entries, _ := os.ReadDir(filepath.Join(l.dir, "volumes"))
	for _, e := range entries {
		if m, ok := l.readMeta(e.Name()); ok {
			s := get(e.Name())
			s.Volume, s.VolumeMemberID = true, m.MemberID
		}
	}
	l.mu.Lock()
	names := make([]string, 0, len(l.procs))
	for name := range l.procs {
		names = append(names, name)
	}
	l.mu.Unlock()
	for _, name := range names {
		l.mu.Lock()
		p := l.procs[name]
		l.mu.Unlock()
		if exited, _ := p.proc.Exited(); exited && byName[name] != nil {
			l.startMember(name, p.version)
		}
		s := get(name)
		s.Pod, s.PodOutdated = true, p.version != l.version
	}
	out := make([]Slot, 0, len(byName))
	for _, s := range byName {
		out = append(out, *s)
	}
	return out
}

func (l *localCluster) endpoints() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var eps []string
	for name := range l.procs {
		eps = append(eps, "http://127.0.0.1:"+strconv.Itoa(l.ports[name][0]))
	}
	sort.Strings(eps)
	return eps
}

// observe is what the controller sees: etcd's member list and health, and
// the slots.
func (l *localCluster) observe(ctx context.Context) (Observed, *Client) {
	o := Observed{Slots: l.slots()}
	eps := l.endpoints()
	if len(eps) == 0 {
		return o, nil
	}
	c, err := Dial(eps)
	if err != nil {
		l.t.Fatal(err)
	}
	o.Reachable, o.Members = c.Observe(ctx)
	return o, c
}

func (l *localCluster) startMember(name, version string) {
	meta, ok := l.readMeta(name)
	if !ok {
		l.t.Fatalf("starting %s without a volume", name)
	}
	state := "existing"
	if meta.NewCluster {
		state = "new"
	}
	proc, err := hostproc.StartEtcd(l.group, l.bins[version], hostproc.EtcdMember{
		Name:      name,
		DataDir:   filepath.Join(l.volumeDir(name), "data"),
		ClientURL: l.clientURL(name), PeerURL: l.naming.PeerURL(name),
		InitialCluster: meta.InitialCluster, InitialClusterState: state, InitialClusterToken: "local",
		Args: []string{"--listen-metrics-urls", "http://127.0.0.1:0", "--heartbeat-interval", "50", "--election-timeout", "500"},
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.procs[name] = &localPod{proc: proc, version: version}
	l.mu.Unlock()
}

func (l *localCluster) stopMember(name string) {
	l.mu.Lock()
	p := l.procs[name]
	delete(l.procs, name)
	l.mu.Unlock()
	if p != nil {
		p.proc.Stop(10 * time.Second)
	}
}

// execute performs a on the local "pods" and "volumes", or through c on
// etcd. It returns false when the action has to be retried later.
func (l *localCluster) execute(ctx context.Context, a Action, o Observed, c *Client) bool {
	ok := l.do(ctx, a, o, c)
	if ok {
		l.actions = append(l.actions, a)
	}
	return ok
}

func (l *localCluster) do(ctx context.Context, a Action, o Observed, c *Client) bool {
	switch a.Type {
	case ActionWait:
		return false
	case ActionCreateVolume:
		l.writeMeta(a.Name, volumeMeta{MemberID: a.MemberID, InitialCluster: a.InitialCluster, NewCluster: a.NewCluster})
	case ActionRecordMemberID:
		m, _ := l.readMeta(a.Name)
		m.MemberID = a.MemberID
		l.writeMeta(a.Name, m)
	case ActionCreatePod:
		l.startMember(a.Name, l.version)
	case ActionDeletePod:
		if a.Operation == OpRestart {
			leader := false
			for _, m := range o.Members {
				leader = leader || (m.ID == a.MemberID && m.Leader)
			}
			l.leaderAtRestart = append(l.leaderAtRestart, leader)
		}
		l.stopMember(a.Name)
	case ActionDeleteVolume:
		if err := os.RemoveAll(l.volumeDir(a.Name)); err != nil {
			l.t.Fatal(err)
		}
	default:
		if err := c.Execute(ctx, a, o.Members, l.naming); err != nil {
			if errors.Is(err, ErrLearnerNotReady) {
				return false
			}
			if !strings.Contains(err.Error(), "unhealthy cluster") {
				l.t.Logf("%s %s: %v (retrying)", a.Type, a.Name, err)
			}
			return false
		}
	}
	return true
}

// converge runs the reconcile loop until Plan has nothing to do, checking
// after every observation the invariants a membership change must keep.
// With crash set, every step starts from a new client, as after an
// operator restart (the planner has no other state to lose).
func (l *localCluster) converge(size int, timeout time.Duration) {
	l.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o, c := l.observe(ctx)
		l.checkInvariants(size, o)
		a := Plan(size, o, l.naming)
		if a.Type == ActionNone {
			if c != nil {
				_ = c.Close()
			}
			return
		}
		ok := l.execute(ctx, a, o, c)
		if c != nil {
			_ = c.Close()
		}
		if !ok {
			time.Sleep(100 * time.Millisecond)
		}
	}
	o, _ := l.observe(ctx)
	l.t.Fatalf("not converged to %d members in %s: last plan %+v\nobserved %+v", size, timeout, Plan(size, o, l.naming), o)
}

// checkInvariants: never more than one learner, never more members than
// the larger of size and (voters + 1).
func (l *localCluster) checkInvariants(size int, o Observed) {
	l.t.Helper()
	learners, voters := 0, 0
	for _, m := range o.Members {
		if m.Learner {
			learners++
		} else {
			voters++
		}
	}
	if learners > 1 {
		l.t.Errorf("%d learners at once: %+v", learners, o.Members)
	}
	if len(o.Members) > max(size, voters)+1 {
		l.t.Errorf("%d members for size %d: %+v", len(o.Members), size, o.Members)
	}
}

// expectMembers checks the cluster has size healthy voters running
// version, and a volume and process for each member and nothing else.
func (l *localCluster) expectMembers(size int, version string) []Member {
	l.t.Helper()
	o, c := l.observe(context.Background())
	if c != nil {
		defer func() { _ = c.Close() }()
	}
	if !o.Reachable || len(o.Members) != size {
		l.t.Fatalf("want %d members, observed %+v", size, o)
	}
	names := map[string]bool{}
	for _, m := range o.Members {
		names[m.Name] = true
		if !m.Healthy || m.Learner || m.Version != version {
			l.t.Errorf("member %+v: want a healthy voter running %s", m, version)
		}
	}
	for _, s := range o.Slots {
		if !names[s.Name] || !s.Pod || !s.Volume {
			l.t.Errorf("slot %+v does not match a member with pod and volume", s)
		}
	}
	if len(o.Slots) != size {
		l.t.Errorf("%d slots for %d members: %+v", len(o.Slots), size, o.Slots)
	}
	return o.Members
}

// writer commits sequential keys through every member endpoint known at
// the time and records each acknowledged one.
type writer struct {
	l     *localCluster
	stop  chan struct{}
	done  chan struct{}
	acked []string
	fails int
}

func (l *localCluster) startWriter() *writer {
	w := &writer{l: l, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *writer) run() {
	defer close(w.done)
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		key := fmt.Sprintf("/writer/%06d", i)
		if w.put(key) {
			w.acked = append(w.acked, key)
		} else {
			w.fails++
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *writer) put(key string) bool {
	c, err := clientv3.New(clientv3.Config{Endpoints: w.l.endpoints(), DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return false
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = c.Put(ctx, key, key)
	return err == nil
}

// finish stops the writer and checks every acknowledged key is present.
func (w *writer) finish() {
	w.l.t.Helper()
	close(w.stop)
	<-w.done
	c, err := clientv3.New(clientv3.Config{Endpoints: w.l.endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		w.l.t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "/writer/", clientv3.WithPrefix())
	if err != nil {
		w.l.t.Fatal(err)
	}
	have := map[string]bool{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = true
	}
	missing := 0
	for _, k := range w.acked {
		if !have[k] {
			missing++
		}
	}
	w.l.t.Logf("writer: %d writes acknowledged, %d failed or timed out, %d acknowledged missing", len(w.acked), w.fails, missing)
	if missing > 0 || len(w.acked) == 0 {
		w.l.t.Errorf("%d of %d acknowledged writes lost", missing, len(w.acked))
	}
}

func countActions(actions []Action, typ ActionType) int {
	n := 0
	for _, a := range actions {
		if a.Type == typ {
			n++
		}
	}
	return n
}

func removeAll(dir string) error { return os.RemoveAll(dir) }

// executeRetry runs a until it succeeds: etcd refuses membership changes
// for a few seconds after the last one ("unhealthy cluster").
func (l *localCluster) executeRetry(a Action) {
	l.t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		o, c := l.observe(ctx)
		ok := l.execute(ctx, a, o, c)
		if c != nil {
			_ = c.Close()
		}
		if ok {
			return
		}
	}
	l.t.Fatalf("%+v did not succeed in 30s", a)
}

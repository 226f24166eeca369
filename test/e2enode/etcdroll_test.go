//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// rollMonitor watches a rolling restart of the members (an upgrade, a
// spec.pod change) from outside the operator, the way the planner harness
// of internal/etcd watches its processes: at a short interval it asks
// every member's own etcd for its status (its ID and the leader it
// follows) and then lists the member pods (UID, Ready, being deleted).
// From these samples it checks that the members restart one at a time,
// each exactly once, and that no member's pod is deleted while that member
// is the leader.
type rollMonitor struct {
	e     *etcdE2E
	stop  chan struct{}
	done  chan struct{}
	ready chan struct{} // closed once a sample has every pod's status
	first int           // the index of that sample: analysis starts there

	mu      sync.Mutex
	samples []rollSample
	errs    []string
}

// rollSample is one round: first the members' statuses, then the pods.
type rollSample struct {
	statusAt time.Time // when the status round began
	podsAt   time.Time // when the pod list came back
	status   map[string]memberStatus
	pods     map[string]podState
}

type memberStatus struct {
	id, leader uint64 // the member's ID and the leader it follows, from its own status
}

func (s memberStatus) leads() bool { return s.id != 0 && s.leader == s.id }

type podState struct {
	uid         types.UID
	ip          string
	ready       bool
	terminating bool
}

// Sampling: a round every rollInterval, each status asked with
// rollStatusTimeout. The leader check needs the last status of a member
// before its pod is deleted to be recent: the operator moves leadership
// away and restarts the former leader no sooner than one reconcile later
// (requeueAfterStep, 500 ms, in internal/controller/etcdcluster), so a
// status taken less than rollFresh before the deletion was seen shows the
// leader that etcd had when the operator decided.
const (
	rollInterval      = 50 * time.Millisecond
	rollStatusTimeout = 250 * time.Millisecond
	rollFresh         = 450 * time.Millisecond
)

// startRollMonitor starts sampling and returns once a sample holds the
// status of every member pod, so that the first deletion has a status
// before it.
func (e *etcdE2E) startRollMonitor() *rollMonitor {
	e.t.Helper()
	m := &rollMonitor{e: e, stop: make(chan struct{}), done: make(chan struct{}), ready: make(chan struct{})}
	go m.run()
	select {
	case <-m.ready:
	case <-time.After(30 * time.Second):
		close(m.stop)
		<-m.done
		e.t.Fatalf("the roll monitor got no status from every member in 30 s: %v", m.errs)
	}
	return m
}

func (m *rollMonitor) run() {
	defer close(m.done)
	conns := map[string]*clientv3.Client{} // by pod IP
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var last map[string]podState
	readied := false
	for {
		s := rollSample{statusAt: time.Now(), status: map[string]memberStatus{}}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for name, p := range last {
			if p.ip == "" {
				continue
			}
			c := conns[p.ip]
			if c == nil {
				var err error
				c, err = clientv3.New(clientv3.Config{Endpoints: []string{"http://" + p.ip + ":2379"},
					DialTimeout: rollStatusTimeout, Logger: zap.NewNop()})
				if err != nil {
					continue
				}
				conns[p.ip] = c
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), rollStatusTimeout)
				defer cancel()
				st, err := pb.NewMaintenanceClient(c.ActiveConnection()).Status(ctx, &pb.StatusRequest{})
				if err != nil || st.Header == nil {
					return
				}
				mu.Lock()
				s.status[name] = memberStatus{id: st.Header.MemberId, leader: st.Leader}
				mu.Unlock()
			}()
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		pods, err := cs.CoreV1().Pods(m.e.ns).List(ctx, metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + m.e.name})
		cancel()
		s.podsAt = time.Now()
		if err != nil {
			m.mu.Lock()
			m.errs = append(m.errs, fmt.Sprintf("%s: listing pods: %v", s.podsAt.Format("15:04:05.000"), err))
			m.mu.Unlock()
		} else {
			s.pods = map[string]podState{}
			ips := map[string]bool{}
			for _, p := range pods.Items {
				ps := podState{uid: p.UID, ip: p.Status.PodIP, terminating: !p.DeletionTimestamp.IsZero()}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady {
						ps.ready = c.Status == corev1.ConditionTrue
					}
				}
				s.pods[p.Name] = ps
				ips[ps.ip] = true
			}
			for ip, c := range conns {
				if !ips[ip] {
					_ = c.Close()
					delete(conns, ip)
				}
			}
			last = s.pods
			m.mu.Lock()
			m.samples = append(m.samples, s)
			if len(s.pods) > 0 && len(s.status) == len(s.pods) && !readied {
				readied = true
				m.first = len(m.samples) - 1
				close(m.ready)
			}
			m.mu.Unlock()
		}
		select {
		case <-m.stop:
			return
		case <-time.After(rollInterval):
		}
	}
}

// rollReport is what a rolling restart looked like from outside.
type rollReport struct {
	samples  int
	restarts map[string]int // pod deletions seen, by member
	// events lists the pod deletions in order, each with the leader etcd
	// reported right before it.
	events []string
	// violations: a member's pod deleted while the member led, or a
	// deletion the samples cannot judge.
	violations []string
	// maxDown is the largest number of members at once whose pod was
	// missing, being deleted or not Ready; maxDownEtcd counts instead the
	// members whose pod was missing or being deleted or whose etcd did not
	// answer.
	maxDown, maxDownEtcd     int
	maxDownAt, maxDownEtcdAt string
	// overlap is how long, summed over the samples, more than one member
	// was not Ready.
	overlap time.Duration
}

// finish stops the monitor and checks the rolling restart of members
// (every one of them restarted exactly once, one at a time, the leader
// never while it led). initial are the members' pod UIDs before the
// change.
func (m *rollMonitor) finish(t *testing.T, what string, initial map[string]types.UID) rollReport {
	t.Helper()
	// The operator goes by etcd's health, the pods' Ready condition may
	// follow a little later: sample until every member has a new Ready pod.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		m.mu.Lock()
		var last rollSample
		if n := len(m.samples); n > 0 {
			last = m.samples[n-1]
		}
		m.mu.Unlock()
		renewed := 0
		for name, uid := range initial {
			if p, ok := last.pods[name]; ok && p.uid != uid && p.ready && !p.terminating {
				renewed++
			}
		}
		if renewed == len(initial) {
			break
		}
	}
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.errs {
		t.Logf("%s: monitor: %s", what, e)
	}
	r := analyzeRoll(m.samples[m.first:], initial)
	t.Logf("%s: %d samples; restarts %v; at most %d members not Ready at once (%s), at most %d not answering etcd at once (%s)",
		what, r.samples, r.restarts, r.maxDown, r.maxDownAt, r.maxDownEtcd, r.maxDownEtcdAt)
	for _, ev := range r.events {
		t.Logf("%s: %s", what, ev)
	}
	for name := range initial {
		if r.restarts[name] != 1 {
			t.Errorf("%s: member %s restarted %d times, want exactly once", what, name, r.restarts[name])
		}
	}
	for _, v := range r.violations {
		t.Errorf("%s: %s", what, v)
	}
	if r.maxDown > 1 {
		t.Errorf("%s: %d members were not Ready at once (%s; more than one for %s in all), want one at a time",
			what, r.maxDown, r.maxDownAt, r.overlap.Round(time.Millisecond))
	}
	if r.maxDownEtcd > 1 {
		t.Errorf("%s: %d members were down at once (%s), want one at a time", what, r.maxDownEtcd, r.maxDownEtcdAt)
	}
	return r
}

func analyzeRoll(samples []rollSample, initial map[string]types.UID) rollReport {
	r := rollReport{samples: len(samples), restarts: map[string]int{}}
	if len(samples) == 0 {
		r.violations = append(r.violations, "no sample taken")
		return r
	}
	t0 := samples[0].statusAt
	rel := func(at time.Time) string { return fmt.Sprintf("%+.2fs", at.Sub(t0).Seconds()) }
	names := make([]string, 0, len(initial))
	for name := range initial {
		names = append(names, name)
	}
	sort.Strings(names)
	// tracked is the UID of the pod of each member that is up and not yet
	// seen deleted; "" while its replacement is not there.
	tracked := map[string]types.UID{}
	for name, uid := range initial {
		tracked[name] = uid
	}
	strangers := map[string]bool{}
	for k, s := range samples {
		var down, downEtcd []string
		for _, name := range names {
			p, ok := s.pods[name]
			_, answered := s.status[name]
			if !ok || p.terminating || !p.ready {
				down = append(down, name)
			}
			if !ok || p.terminating || !answered {
				downEtcd = append(downEtcd, name)
			}
		}
		for name := range s.pods {
			if _, ok := initial[name]; !ok && !strangers[name] {
				r.violations = append(r.violations, fmt.Sprintf("a pod %s of no member appeared at %s", name, rel(s.podsAt)))
				strangers[name] = true
			}
		}
		if len(down) > 1 && k+1 < len(samples) {
			r.overlap += samples[k+1].podsAt.Sub(s.podsAt)
		}
		if len(down) > r.maxDown {
			r.maxDown, r.maxDownAt = len(down), fmt.Sprintf("%v at %s", down, rel(s.podsAt))
		}
		if len(downEtcd) > r.maxDownEtcd {
			r.maxDownEtcd, r.maxDownEtcdAt = len(downEtcd), fmt.Sprintf("%v at %s", downEtcd, rel(s.podsAt))
		}
		for _, name := range names {
			p, ok := s.pods[name]
			uid := tracked[name]
			if uid == "" {
				if ok && !p.terminating && p.uid != initial[name] {
					tracked[name] = p.uid // the replacement
				}
				continue
			}
			if ok && p.uid == uid && !p.terminating {
				continue
			}
			// The pod of name was deleted between the previous sample and
			// this one: judge it by the previous sample's statuses.
			r.restarts[name]++
			tracked[name] = ""
			if ok && p.uid != uid && !p.terminating {
				tracked[name] = p.uid
			}
			if k == 0 {
				r.violations = append(r.violations, fmt.Sprintf("the pod of %s was already gone when the monitor started", name))
				continue
			}
			prev := samples[k-1]
			st, answered := prev.status[name]
			var leaders []string
			for _, n := range names {
				if prev.status[n].leads() {
					leaders = append(leaders, n)
				}
			}
			age := s.podsAt.Sub(prev.statusAt)
			r.events = append(r.events, fmt.Sprintf("pod of %s deleted, seen at %s; %s before, etcd's leader was %v", name, rel(s.podsAt), age.Round(time.Millisecond), leaders))
			switch {
			case !answered:
				r.violations = append(r.violations, fmt.Sprintf("the pod of %s was deleted (seen at %s) when its etcd had not answered: cannot tell whether it led", name, rel(s.podsAt)))
			case st.leads():
				r.violations = append(r.violations, fmt.Sprintf("the pod of %s was deleted (seen at %s) while %s was the leader (its status %s before said so)", name, rel(s.podsAt), name, age.Round(time.Millisecond)))
			case age > rollFresh:
				r.violations = append(r.violations, fmt.Sprintf("the pod of %s was deleted (seen at %s) %s after the last status: too long to tell whether it led (want under %s)", name, rel(s.podsAt), age.Round(time.Millisecond), rollFresh))
			}
		}
	}
	last := samples[len(samples)-1]
	for _, name := range names {
		p, ok := last.pods[name]
		if !ok || p.uid == initial[name] || p.terminating || !p.ready {
			r.violations = append(r.violations, fmt.Sprintf("at the end the pod of %s is not a new Ready pod (%+v, present %v)", name, p, ok))
		}
	}
	return r
}

// podUIDs returns the UIDs of the cluster's member pods by name.
func (e *etcdE2E) podUIDs(ctx context.Context) (map[string]types.UID, error) {
	pods, err := cs.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "etcd.opsmith.io/cluster=" + e.name})
	if err != nil {
		return nil, err
	}
	out := map[string]types.UID{}
	for _, p := range pods.Items {
		out[p.Name] = p.UID
	}
	return out, nil
}

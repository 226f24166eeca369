//go:build realnode

package e2enode

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestEtcdRollAnalysis feeds the roll monitor's analysis and the writer's
// gap measurement made-up samples (no cluster needed), to show that they
// fail on what they must catch: a leader restarted while it leads, two
// members down at once, a member restarted twice, a status too old to
// tell, a long time without an acknowledged write.
func TestEtcdRollAnalysis(t *testing.T) {
	t0 := time.Now()
	ids := map[string]uint64{"e-0": 1, "e-1": 2, "e-2": 3}
	// sample: at ms, etcd's leader, then the pods: "e-0=a" a Ready pod of
	// UID a, "e-0=a?" not Ready, "e-0=a!" being deleted; a member not
	// listed has no pod. Ready pods answer with their status.
	sample := func(ms int, leader string, pods ...string) rollSample {
		s := rollSample{statusAt: t0.Add(time.Duration(ms) * time.Millisecond),
			podsAt: t0.Add(time.Duration(ms+10) * time.Millisecond),
			status: map[string]memberStatus{}, pods: map[string]podState{}}
		for _, p := range pods {
			name, uid, _ := strings.Cut(p, "=")
			ps := podState{ready: true}
			if u, ok := strings.CutSuffix(uid, "?"); ok {
				uid, ps.ready = u, false
			}
			if u, ok := strings.CutSuffix(uid, "!"); ok {
				uid, ps.terminating = u, true
			}
			ps.uid = types.UID(uid)
			s.pods[name] = ps
			if ps.ready && !ps.terminating {
				s.status[name] = memberStatus{id: ids[name], leader: ids[leader]}
			}
		}
		return s
	}
	initial := func() map[string]types.UID { return map[string]types.UID{"e-0": "a", "e-1": "b", "e-2": "c"} }
	// good: the followers e-0 and e-1 one after the other, then leadership
	// moves from e-2 to e-0 and e-2 restarts.
	good := func() []rollSample {
		return []rollSample{
			sample(0, "e-2", "e-0=a", "e-1=b", "e-2=c"),
			sample(100, "e-2", "e-0=a!", "e-1=b", "e-2=c"),
			sample(200, "e-2", "e-1=b", "e-2=c"),
			sample(300, "e-2", "e-0=a2?", "e-1=b", "e-2=c"),
			sample(400, "e-2", "e-0=a2", "e-1=b", "e-2=c"),
			sample(500, "e-2", "e-0=a2", "e-1=b!", "e-2=c"),
			sample(600, "e-2", "e-0=a2", "e-1=b2", "e-2=c"),
			sample(700, "e-0", "e-0=a2", "e-1=b2", "e-2=c"),
			sample(800, "e-0", "e-0=a2", "e-1=b2", "e-2=c!"),
			sample(900, "e-0", "e-0=a2", "e-1=b2", "e-2=c2"),
		}
	}
	r := analyzeRoll(good(), initial())
	if len(r.violations) > 0 || r.maxDown != 1 || r.maxDownEtcd != 1 ||
		r.restarts["e-0"] != 1 || r.restarts["e-1"] != 1 || r.restarts["e-2"] != 1 {
		t.Errorf("a correct rolling restart judged wrong: %+v", r)
	}

	leaderFirst := good()
	leaderFirst[7] = sample(700, "e-2", "e-0=a2", "e-1=b2", "e-2=c")
	if r := analyzeRoll(leaderFirst, initial()); len(r.violations) != 1 || !strings.Contains(r.violations[0], "while e-2 was the leader") {
		t.Errorf("the leader restarted while it led not caught: %v", r.violations)
	}

	twoDown := good()
	twoDown[4] = sample(400, "e-2", "e-0=a2?", "e-1=b!", "e-2=c")
	if r := analyzeRoll(twoDown, initial()); r.maxDown != 2 {
		t.Errorf("two members down at once not caught: at most %d (%s)", r.maxDown, r.maxDownAt)
	}

	twice := append(good(), sample(1000, "e-0", "e-0=a2!", "e-1=b2", "e-2=c2"), sample(1100, "e-0", "e-0=a3", "e-1=b2", "e-2=c2"))
	if r := analyzeRoll(twice, initial()); r.restarts["e-0"] != 2 {
		t.Errorf("a member restarted twice counted %d times", r.restarts["e-0"])
	}

	stale := good()
	stale[8] = sample(1300, "e-0", "e-0=a2", "e-1=b2", "e-2=c!")
	stale[9] = sample(1400, "e-0", "e-0=a2", "e-1=b2", "e-2=c2")
	if r := analyzeRoll(stale, initial()); len(r.violations) != 1 || !strings.Contains(r.violations[0], "too long to tell") {
		t.Errorf("a deletion long after the last status judged: %v", r.violations)
	}

	notNew := good()[:9]
	if r := analyzeRoll(notNew, initial()); len(r.violations) != 1 || !strings.Contains(r.violations[0], "not a new Ready pod") {
		t.Errorf("a roll that did not finish judged finished: %v", r.violations)
	}

	// The writer: acknowledgements every 20 ms with one gap of 1.5 s,
	// which overlaps the operation from its start.
	w := &ackWriter{}
	at := t0
	for i := range 200 {
		if i == 50 {
			at = at.Add(1500 * time.Millisecond)
		}
		at = at.Add(20 * time.Millisecond)
		w.ackedAt = append(w.ackedAt, at)
	}
	gapStart := w.ackedAt[49]
	gap, began, _, ok := w.longestGap(gapStart.Add(time.Second), w.ackedAt[150])
	if !ok || gap != 1520*time.Millisecond || !began.Equal(gapStart) {
		t.Errorf("longest gap %s from %s (ok %v), want 1.52s from the last acknowledgement before the operation", gap, began.Sub(t0), ok)
	}
	if gap, _, _, _ := w.longestGap(w.ackedAt[60], w.ackedAt[150]); gap != 20*time.Millisecond {
		t.Errorf("longest gap after the outage %s, want 20ms", gap)
	}
}

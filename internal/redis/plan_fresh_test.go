package redis

import (
	"strings"
	"testing"
)

func TestPlanFreshStart(t *testing.T) {
	// gone makes member's pod absent: its peers still list its node.
	gone := func(f *fakeCluster, member string) *fakeCluster {
		f.members[member].gone = true
		delete(f.d.Members, member)
		return f
	}
	flagAll := func(f *fakeCluster, peer, flag string) {
		for viewer := range f.members {
			if viewer != peer {
				f.flags[viewer][peer] = flag
			}
		}
	}
	for _, tc := range []struct {
		name       string
		f          func() *fakeCluster
		member     string
		want       ActionType
		wantReason string
	}{
		{name: "a new cluster: nothing to wait for", f: func() *fakeCluster { return freshCluster(3, 1) },
			member: "rc-1-0", want: ActionNone},
		{name: "a master gone with its replica up: wait for the promotion", f: func() *fakeCluster {
			f := gone(convergedCluster(3, 1), "rc-1-0")
			flagAll(f, "rc-1-0", "fail?")
			return f
		}, member: "rc-1-0", want: ActionWait,
			wantReason: "rc-1-0's volume is new and its old node " + fakeID("rc-1-0") + " still serves slots 5461-10922: " +
				"starting it empty waits until Redis promotes its replica rc-1-1"},
		{name: "a master gone, flagged fail, before the promotion: still waits", f: func() *fakeCluster {
			f := gone(convergedCluster(3, 2), "rc-2-0")
			flagAll(f, "rc-2-0", "fail")
			return f
		}, member: "rc-2-0", want: ActionWait, wantReason: "promotes its replica rc-2-1, rc-2-2"},
		{name: "a master gone and failed over: start it", f: func() *fakeCluster {
			f := gone(convergedCluster(3, 1), "rc-1-0")
			flagAll(f, "rc-1-0", "fail")
			f.members["rc-1-1"].master, f.members["rc-1-1"].slots = "", f.members["rc-1-0"].slots
			f.members["rc-1-0"].slots, f.members["rc-1-0"].master = nil, "rc-1-1"
			return f
		}, member: "rc-1-0", want: ActionNone},
		{name: "a replica gone: start it", f: func() *fakeCluster { return gone(convergedCluster(3, 1), "rc-1-1") },
			member: "rc-1-1", want: ActionNone},
		{name: "a master gone with no replica: waiting gains nothing", f: func() *fakeCluster {
			return gone(convergedCluster(3, 0), "rc-0-0")
		}, member: "rc-0-0", want: ActionNone},
		{name: "a master gone whose replica failed too: waiting gains nothing", f: func() *fakeCluster {
			f := gone(gone(convergedCluster(3, 1), "rc-0-0"), "rc-0-1")
			flagAll(f, "rc-0-0", "fail")
			flagAll(f, "rc-0-1", "fail")
			return f
		}, member: "rc-0-0", want: ActionNone},
		{name: "the member answers: no fresh start", f: func() *fakeCluster { return convergedCluster(3, 1) },
			member: "rc-1-0", want: ActionNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := PlanFreshStart(tc.f().observed(), tc.member)
			if a.Type != tc.want || !strings.Contains(a.Reason, tc.wantReason) {
				t.Fatalf("PlanFreshStart = %s %q, want %s containing %q", a.Type, a.Reason, tc.want, tc.wantReason)
			}
		})
	}
}

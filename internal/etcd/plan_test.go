package etcd

import (
	"strings"
	"testing"
)

var testNaming = Naming{Prefix: "e", PeerURL: func(name string) string { return "http://" + name + ".e:2380" }}

func voter(name string, id uint64, healthy bool) Member {
	return Member{ID: id, Name: name, PeerURL: testNaming.PeerURL(name), ClientURL: "http://" + name + ".e:2379",
		Started: true, Healthy: healthy, Version: "3.6.16"}
}

func slot(name string, id uint64) Slot {
	return Slot{Name: name, Pod: true, Volume: true, VolumeMemberID: id}
}

func TestPlan(t *testing.T) {
	three := func() []Member {
		m := []Member{voter("e-0", 1, true), voter("e-1", 2, true), voter("e-2", 3, true)}
		m[0].Leader = true
		return m
	}
	slots3 := []Slot{slot("e-0", 1), slot("e-1", 2), slot("e-2", 3)}
	tests := []struct {
		name        string
		size        int
		o           Observed
		want        ActionType
		wantName    string
		wantBlocked string
	}{
		{name: "nothing exists: bootstrap the seed", size: 3, o: Observed{},
			want: ActionCreateVolume, wantName: "e-0"},
		{name: "converged", size: 3, o: Observed{Reachable: true, Members: three(), Slots: slots3},
			want: ActionNone},
		{name: "scale out adds a learner", size: 4, o: Observed{Reachable: true, Members: three(), Slots: slots3},
			want: ActionAddLearner, wantName: "e-3"},
		{name: "unstarted learner found by peer URL gets its volume", size: 4, o: Observed{Reachable: true,
			Members: append(three(), Member{ID: 9, PeerURL: testNaming.PeerURL("e-3"), Learner: true}), Slots: slots3},
			want: ActionCreateVolume, wantName: "e-3"},
		{name: "scale in removes the newest follower", size: 2, o: Observed{Reachable: true, Members: three(), Slots: slots3},
			want: ActionRemoveMember, wantName: "e-2"},
		{name: "scale in removes an unhealthy member first", size: 2, o: Observed{Reachable: true,
			Members: []Member{voter("e-0", 1, true), voter("e-1", 2, true), voter("e-2", 3, true), voter("e-3", 4, false), voter("e-4", 5, false)},
			Slots:   []Slot{slot("e-0", 1), slot("e-1", 2), slot("e-2", 3), slot("e-3", 4), slot("e-4", 5)}},
			want: ActionRemoveMember, wantName: "e-3"},
		{name: "the leader is never the scale-in victim", size: 2, o: func() Observed {
			m := three()
			m[0].Leader, m[2].Leader = false, true
			return Observed{Reachable: true, Members: m, Slots: slots3}
		}(), want: ActionRemoveMember, wantName: "e-1"},
		{name: "lost data of a middle member: remove it", size: 3, o: Observed{Reachable: true, Members: three(),
			Slots: []Slot{slot("e-0", 1), slot("e-2", 3)}}, want: ActionRemoveMember, wantName: "e-1"},
		{name: "lost data blocked when removal breaks quorum", size: 3, o: func() Observed {
			m := three()
			m[2].Healthy = false
			return Observed{Reachable: true, Members: m, Slots: []Slot{slot("e-0", 1), slot("e-2", 3)}}
		}(), want: ActionWait, wantBlocked: "removing member e-1 would leave 1 of 2 voters healthy; quorum needs 2"},
		{name: "pod gone, data kept: restart it", size: 3, o: Observed{Reachable: true, Members: three(),
			Slots: []Slot{slot("e-0", 1), {Name: "e-1", Volume: true, VolumeMemberID: 2}, slot("e-2", 3)}},
			want: ActionCreatePod, wantName: "e-1"},
		{name: "volume being deleted under a running pod: wait", size: 3, o: Observed{Reachable: true, Members: three(),
			Slots: []Slot{slot("e-0", 1), {Name: "e-1", Pod: true, Volume: true, VolumeTerminating: true, VolumeMemberID: 2}, slot("e-2", 3)}},
			want: ActionWait, wantName: "e-1"},
		{name: "orphan pod of a removed member is deleted", size: 3, o: Observed{Reachable: true, Members: three(),
			Slots: append([]Slot{slot("e-3", 4)}, slots3...)}, want: ActionDeletePod, wantName: "e-3"},
		{name: "unhealthy member: no scale out", size: 4, o: func() Observed {
			m := three()
			m[1].Healthy = false
			return Observed{Reachable: true, Members: m, Slots: slots3}
		}(), want: ActionWait, wantName: "e-1"},
		{name: "outdated pods: a follower first", size: 3, o: Observed{Reachable: true, Members: three(), Slots: []Slot{
			{Name: "e-0", Pod: true, PodOutdated: true, Volume: true, VolumeMemberID: 1},
			{Name: "e-1", Pod: true, PodOutdated: true, Volume: true, VolumeMemberID: 2}, slot("e-2", 3)}},
			want: ActionDeletePod, wantName: "e-1"},
		{name: "only the leader outdated: move leadership first", size: 3, o: Observed{Reachable: true, Members: three(), Slots: []Slot{
			{Name: "e-0", Pod: true, PodOutdated: true, Volume: true, VolumeMemberID: 1}, slot("e-1", 2), slot("e-2", 3)}},
			want: ActionMoveLeader, wantName: "e-0"},
		{name: "two members: a restart would break quorum", size: 2, o: Observed{Reachable: true,
			Members: []Member{voter("e-0", 1, true), voter("e-1", 2, true)}, Slots: []Slot{slot("e-0", 1),
				{Name: "e-1", Pod: true, PodOutdated: true, Volume: true, VolumeMemberID: 2}}},
			want: ActionWait, wantBlocked: "restarting member e-1 would leave 1 of 2 voters healthy; quorum needs 2"},
		{name: "no quorum, pods gone, data kept: start them", size: 3, o: Observed{Slots: []Slot{
			{Name: "e-0", Volume: true, VolumeMemberID: 1}, slot("e-1", 2)}}, want: ActionCreatePod, wantName: "e-0"},
		{name: "seed volume gets its member ID", size: 3, o: Observed{Reachable: true, Members: []Member{voter("e-0", 1, true)},
			Slots: []Slot{{Name: "e-0", Pod: true, Volume: true}}}, want: ActionRecordMemberID, wantName: "e-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Plan(tt.size, tt.o, testNaming)
			if a.Type != tt.want || (tt.wantName != "" && a.Name != tt.wantName) {
				t.Errorf("Plan = %+v, want %s %s", a, tt.want, tt.wantName)
			}
			if tt.wantBlocked != "" && !strings.Contains(a.Blocked, tt.wantBlocked) {
				t.Errorf("Blocked = %q, want %q", a.Blocked, tt.wantBlocked)
			}
		})
	}
}

func TestCheckUpgrade(t *testing.T) {
	tests := []struct {
		running []string
		target  string
		wantErr string
	}{
		{running: []string{"3.5.35", "3.5.35"}, target: "3.5.36"},
		{running: []string{"3.5.35", "3.6.16"}, target: "3.6.16"},
		{running: []string{"3.5.35"}, target: "3.7.0", wantErr: "skips a minor version"},
		{running: []string{"3.6.16"}, target: "3.5.35", wantErr: "cannot be downgraded"},
		{running: []string{"3.6.16"}, target: "4.0.0", wantErr: "skips a minor version"},
		{running: []string{""}, target: "3.6.0"},
	}
	for _, tt := range tests {
		err := CheckUpgrade(tt.running, tt.target)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("CheckUpgrade(%v, %s) = %v, want %q", tt.running, tt.target, err, tt.wantErr)
		}
	}
}

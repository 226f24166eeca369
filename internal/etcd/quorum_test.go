package etcd

import (
	"strings"
	"testing"
)

func learner(name string, id uint64, healthy bool) Member {
	m := voter(name, id, healthy)
	m.Learner = true
	return m
}

func TestHealthyQuorum(t *testing.T) {
	tests := []struct {
		name    string
		members []Member
		want    bool
	}{
		{"no members", nil, false},
		{"only a learner", []Member{learner("e-0", 1, true)}, false},
		{"one healthy voter", []Member{voter("e-0", 1, true)}, true},
		{"one unhealthy voter", []Member{voter("e-0", 1, false)}, false},
		{"2 of 3 healthy", []Member{voter("e-0", 1, true), voter("e-1", 2, true), voter("e-2", 3, false)}, true},
		{"1 of 3 healthy", []Member{voter("e-0", 1, true), voter("e-1", 2, false), voter("e-2", 3, false)}, false},
		{"1 of 2 healthy", []Member{voter("e-0", 1, true), voter("e-1", 2, false)}, false},
		{"learners do not count", []Member{voter("e-0", 1, true), voter("e-1", 2, false), voter("e-2", 3, false),
			learner("e-3", 4, true), learner("e-4", 5, true)}, false},
		{"an unhealthy learner does not hurt", []Member{voter("e-0", 1, true), learner("e-1", 2, false)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HealthyQuorum(tt.members); got != tt.want {
				t.Errorf("HealthyQuorum = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckRemoveRestart(t *testing.T) {
	three := []Member{voter("e-0", 1, true), voter("e-1", 2, true), voter("e-2", 3, true)}
	oneDown := []Member{voter("e-0", 1, true), voter("e-1", 2, true), voter("e-2", 3, false)}
	tests := []struct {
		name    string
		members []Member
		id      uint64
		remove  string // "" when allowed, else part of the error
		restart string
	}{
		{name: "healthy three", members: three, id: 3},
		{name: "the unhealthy one", members: oneDown, id: 3},
		{name: "a healthy one while another is down", members: oneDown, id: 2,
			remove:  "removing member e-1 would leave 1 of 2 voters healthy; quorum needs 2",
			restart: "restarting member e-1 would leave 1 of 3 voters healthy; quorum needs 2"},
		{name: "the only member", members: []Member{voter("e-0", 1, true)}, id: 1,
			remove: "removing member e-0 would leave no voting member"},
		{name: "a learner", members: []Member{voter("e-0", 1, true), learner("e-1", 2, false)}, id: 2},
		{name: "a learner without a healthy quorum", members: []Member{voter("e-0", 1, true), voter("e-1", 2, false), learner("e-2", 3, true)}, id: 3,
			remove:  "removing member e-2 would leave 1 of 2 voters healthy; quorum needs 2",
			restart: "restarting member e-2 would leave 1 of 2 voters healthy; quorum needs 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, err error, want string) {
				t.Helper()
				if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
					t.Errorf("%s(%x) = %v, want %q", what, tt.id, err, want)
				}
			}
			check("CheckRemove", CheckRemove(tt.members, tt.id), tt.remove)
			check("CheckRestart", CheckRestart(tt.members, tt.id), tt.restart)
		})
	}
}

package etcd

import "fmt"

// Quorum is the number of voters that must agree in a cluster of voters
// voting members.
func Quorum(voters int) int { return voters/2 + 1 }

// countVoters counts the voting members (learners do not vote) other than
// the member except, and how many of them are healthy. Member IDs are never
// 0, so except 0 counts every voter.
func countVoters(members []Member, except uint64) (voters, healthy int) {
	for _, m := range members {
		if m.Learner || m.ID == except {
			continue
		}
		voters++
		if m.Healthy {
			healthy++
		}
	}
	return voters, healthy
}

// memberName is the name of the member id in members ("" when absent).
func memberName(members []Member, id uint64) string {
	for _, m := range members {
		if m.ID == id {
			return m.Name
		}
	}
	return ""
}

// HealthyQuorum reports whether a quorum of the voting members in members
// is healthy, that is whether the cluster can commit changes. A member
// list without voters has no quorum.
func HealthyQuorum(members []Member) bool {
	voters, healthy := countVoters(members, 0)
	return voters > 0 && healthy >= Quorum(voters)
}

// CheckRemove returns nil when removing the member id leaves a quorum of
// healthy voters, or an error that names the invariant removal would break.
// Removing a learner or an unhealthy voter is checked too: a cluster
// without a healthy quorum cannot commit the removal.
func CheckRemove(members []Member, id uint64) error {
	voters, healthy := countVoters(members, id)
	name := memberName(members, id)
	if voters == 0 {
		return fmt.Errorf("removing member %s would leave no voting member", name)
	}
	if healthy < Quorum(voters) {
		return fmt.Errorf("removing member %s would leave %d of %d voters healthy; quorum needs %d",
			name, healthy, voters, Quorum(voters))
	}
	return nil
}

// CheckRestart returns nil when stopping the member id for a while (an
// upgrade, a changed pod) keeps a quorum of healthy voters, or an error
// that names the invariant. A single-member cluster has no quorum to keep:
// restarting its member is always allowed and makes it briefly unavailable.
func CheckRestart(members []Member, id uint64) error {
	// The member still votes while it restarts, but does not answer.
	voters, _ := countVoters(members, 0)
	_, healthyOthers := countVoters(members, id)
	if voters <= 1 {
		return nil
	}
	if healthyOthers < Quorum(voters) {
		return fmt.Errorf("restarting member %s would leave %d of %d voters healthy; quorum needs %d",
			memberName(members, id), healthyOthers, voters, Quorum(voters))
	}
	return nil
}

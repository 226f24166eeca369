package etcd

import "fmt"

// Quorum is the number of voters that must agree in a cluster of voters
// voting members.
func Quorum(voters int) int { return voters/2 + 1 }

// CheckRemove returns nil when removing the member id leaves a quorum of
// healthy voters, or an error that names the invariant removal would break.
// Removing a learner or an unhealthy voter is checked too: a cluster
// without a healthy quorum cannot commit the removal.
func CheckRemove(members []Member, id uint64) error {
	voters, healthy := 0, 0
	name := ""
	for _, m := range members {
		if m.ID == id {
			name = m.Name
			continue
		}
		if m.Learner {
			continue
		}
		voters++
		if m.Healthy {
			healthy++
		}
	}
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
	voters, healthyOthers := 0, 0
	name := ""
	for _, m := range members {
		if m.ID == id {
			name = m.Name
		}
		if m.Learner {
			continue
		}
		voters++
		if m.Healthy && m.ID != id {
			healthyOthers++
		}
	}
	if voters <= 1 {
		return nil
	}
	if healthyOthers < Quorum(voters) {
		return fmt.Errorf("restarting member %s would leave %d of %d voters healthy; quorum needs %d",
			name, healthyOthers, voters, Quorum(voters))
	}
	return nil
}

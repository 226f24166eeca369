package redis

import (
	"fmt"
	"maps"
	"slices"
)

// PlanFreshStart says whether the caller may start member on a new, empty
// volume now. It returns ActionWait while a node that announced member's
// name (its old node, whose data went with the old volume) still serves
// slots and has a replica that is not flagged failed: Redis promotes that
// replica once the old node has been unreachable for cluster-node-timeout.
// Started before that, at the address its old node had, the empty node
// would take the old node's place on its replicas' replication links (a
// replica reconnects to its master's address and full-syncs whatever
// answers there, with the same password) and its peers would flag the old
// ID noaddr, which Redis never fails over: the shard's data would be
// replaced by an empty data set. A pod's new IP usually differs from the
// old one, but nothing guarantees it.
//
// Otherwise ActionNone: no old node of member serves slots (its shard
// failed over, or it was a replica, or the cluster is new), member
// answers already, or no replica is left that could take over (then
// waiting gains nothing; Plan reports the shard's slots as lost).
func PlanFreshStart(o Observed, member string) Action {
	none := Action{Type: ActionNone, Operation: OpRepair, Member: member}
	if v, ok := o.Views[member]; ok && v.Reachable() {
		return none
	}
	ids := slices.Sorted(maps.Keys(o.Nodes))
	for _, id := range ids {
		old := o.Nodes[id]
		if old.Hostname != member || old.Role != "master" || len(old.Slots) == 0 {
			continue
		}
		var replicas []string
		for _, rid := range ids {
			r := o.Nodes[rid]
			if r.Role == "replica" && r.MasterID == id && len(r.FailBy) == 0 {
				replicas = append(replicas, nameOf(r))
			}
		}
		if len(replicas) == 0 {
			continue
		}
		return Action{Type: ActionWait, Operation: OpRepair, Member: member, Reason: fmt.Sprintf(
			"%s's volume is new and its old node %s still serves slots %s: starting it empty waits until Redis promotes its replica %s "+
				"(an empty node at the old address would be synced to the replicas in place of the shard's data)",
			member, id, FormatSlots(old.Slots), joinNames(replicas))}
	}
	return none
}

// nameOf names a node for messages: the member that answered as it, the
// name it announced, or its ID.
func nameOf(n NodeState) string {
	switch {
	case n.Member != "":
		return n.Member
	case n.Hostname != "":
		return n.Hostname
	}
	return "node " + n.ID
}

// Package redis holds what opsmith knows about running Redis in cluster
// mode: how the 16384 hash slots are split among masters, how to read a
// cluster from what its nodes answer, and how to tell from that alone what
// the next step is.
//
// The package knows nothing of Kubernetes. A member is a Redis node with a
// stable name, replica r of shard s being <name>-<s>-<r> (a pod of that
// name in Kubernetes; a process in the tests), and an address that may
// change whenever it restarts. Its identity is its node ID, which Redis
// keeps in nodes.conf on the member's volume, with its role and its view
// of the cluster.
//
// The parts:
//
//   - slot math: EvenSlots splits the slots into contiguous ranges as
//     redis-cli --cluster create does; ranges and counts (slots.go);
//   - reading: CLUSTER NODES, CLUSTER INFO and INFO replication parsed
//     into a View per member, merged into the cluster's nodes by node ID
//     (nodes.go, info.go, observed.go);
//   - Plan, a pure function of the Desired cluster and the Observed one,
//     returns the single next Action: a command to one member (Meet,
//     AddSlots, Replicate), a Wait that says what is under way or names
//     the invariant that blocks ("slot 5461 has no master", "node
//     x-1-0 is not reachable"), or None once converged. There is no
//     other state: a caller that crashes between any two steps observes
//     the same cluster on restart and plans the step that was missing;
//   - Client observes the members and executes actions, with the
//     members' password; Retryable and IsAuthError classify its errors.
//
// The rules Plan follows:
//
//   - bootstrap: meet the members, assign the slots of EvenSlots to
//     replica 0 of each shard, then attach every other replica of a shard
//     to that shard's master. Replica 0 is the master by name at
//     bootstrap only, while no slot of its range is assigned anywhere and
//     every member answers; afterwards roles are read from Redis, so a
//     shard whose master failed over keeps its new master;
//   - stable identity: members that moved (every pod restarted with a new
//     IP) keep their node IDs and roles from nodes.conf; their peers
//     still know them at the old addresses, which nothing in Redis fixes
//     before cluster-node-timeout, so Plan meets them again at the new
//     ones;
//   - converged: every slot is served by a member master in every
//     member's view, every shard's replicas are linked to its master,
//     every link is up and every member reports cluster_state:ok.
//
// Failover, slot migration, scaling and the removal of nodes that are no
// members (CLUSTER FORGET) are not planned yet; Plan reports what they
// would fix as blocked.
package redis

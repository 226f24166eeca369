// Package etcd holds what opsmith knows about running etcd: how membership
// changes one member at a time without losing quorum, which upgrades etcd
// supports, and how to tell from what etcd and the members' pods and volumes
// show what the next step is.
//
// The package knows nothing of Kubernetes. A member has a slot (its pod and
// its data volume in Kubernetes; a process and a directory in the tests),
// and Plan derives the single next action from the observed etcd member
// list, the members' health and the slots alone. There is no other state:
// an operator that crashes between any two steps (after MemberAdd and
// before the pod exists, between an upgrade's pod deletion and its
// re-creation, after MemberRemove and before the data is deleted) finds the
// same world on restart and plans the step that was missing, so every
// multi-step operation is resumable and never duplicates or orphans a
// member.
//
// The rules Plan follows:
//
//   - bootstrap with a single seed member, then grow one member at a time,
//     as a learner that is promoted once it has caught up with the leader;
//   - shrink one member at a time, removing it from etcd before its pod and
//     data, and only when a quorum of the remaining voters is healthy;
//   - a member whose data is gone (its volume was deleted) is never started
//     again under its old identity: it is removed from etcd and a new
//     member with a clean data directory takes its place, whatever its name
//     (no "highest ordinal only" rule);
//   - restart members (upgrades, pod changes) one at a time, only when every
//     member is healthy, the leader last after moving leadership away;
//   - upgrade only along etcd's supported path: patch releases, or one
//     minor version up, never down.
package etcd

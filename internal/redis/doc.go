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
// of the cluster. Desired.Members may hold members beyond the desired
// shape (shard >= Shards, or replica > ReplicasPerShard): pods still
// running during a scale-in, which Plan drains and has the caller remove.
//
// The parts:
//
//   - slot math: EvenSlots splits the slots into contiguous ranges as
//     redis-cli --cluster create does; ranges and counts (slots.go);
//   - reading: CLUSTER NODES (open slots included), CLUSTER INFO, INFO
//     replication and INFO keyspace parsed into a View per member, merged
//     into the cluster's nodes by node ID (nodes.go, info.go,
//     observed.go);
//   - Plan, a pure function of the Desired cluster and the Observed one,
//     returns the single next Action: a command, or a bounded sequence of
//     commands, to one member (SetConfigEpoch, Meet, AddSlots,
//     Replicate, MigrateSlots, Failover), Forget sent to every member
//     that knows a node, Remove (which the caller carries out: it deletes
//     the member's pod and volume), a Wait that says what is under way or
//     names the invariant that blocks ("slots 10923-16383 of shard 2 have
//     no master", "node x-1-0 is not reachable"), or None once converged.
//     There is no other state: a caller that crashes between any two
//     steps, or in the middle of a migration, observes the cluster on
//     restart and plans the step that was missing (plan*.go);
//   - PlanHandover, for a caller about to restart a member: None when
//     that is safe, a Failover of a master's slots to its best replica
//     first, or a Wait naming what a restart would break
//     (plan_handover.go);
//   - Client observes the members and executes actions, with the
//     members' password; Retryable and IsAuthError classify its errors.
//
// The order of Plan's steps, each taken only once the ones before it
// have nothing to do, is on Plan. The rules it follows:
//
//   - bootstrap: fresh nodes get distinct config epochs, meet, the slots
//     of EvenSlots go to replica 0 of each shard, every other replica of a
//     shard attaches to that shard's master. Replica 0 is the master by
//     name at bootstrap only, while no slot of its range is assigned
//     anywhere, no member is a replica and none holds a key; afterwards
//     roles are read from Redis, so a shard whose master failed over keeps
//     its new master;
//   - stable identity: members that moved (every pod restarted with a new
//     IP) keep their node IDs and roles from nodes.conf; their peers
//     still know them at the old addresses, which nothing in Redis fixes
//     before cluster-node-timeout, so Plan meets them again at the new
//     ones;
//   - nothing is lost by a step: a member that lost its volume (an empty
//     master with a new node ID) is met and attached as a replica of its
//     shard's master, never given slots; slots whose master is gone with
//     no replica promoted stay blocked, never handed to an empty node; a
//     slot is moved only once its keys are on the target, and a slot left
//     half-moved is resumed, never abandoned; a member is removed only
//     when it serves no slot and holds nothing the others lack; a node ID
//     is forgotten only when it serves no slot, no member replicates it,
//     no slot is open with it, and it is a removed member or flagged fail
//     or noaddr everywhere;
//   - repairs: a replica of the wrong master (another shard's, a node no
//     member is) replicates its shard's master; node IDs no member has are
//     forgotten by every member that knows them in one step, within
//     Redis' 60 s ban;
//   - scaling: slots move from leaving shards, and from shards above
//     their EvenSlots(Shards) count, to shards below theirs; only the
//     surplus moves (4096 slots from 3 to 4 shards), not the ranges of
//     EvenSlots, so a shard's slots after a scale-out and back need not be
//     contiguous. A leaving member that is its shard's master hands over
//     to a replica of the shape first; leaving members go replicas first;
//   - converged: every slot is served by a member master in every
//     member's view, every shard's replicas are linked to its master,
//     every link is up, no member knows a node that is no member, and
//     every member reports cluster_state:ok.
//
// What Redis decides is left to it: an automatic failover of a master
// that fails is Redis' (Plan waits for it, blocked), and so is the
// replica migration that turns a master that gave its last slot away into
// a replica of the node that took it. One thing no step can repair: a
// master that comes back on an empty volume at its old address is flagged
// noaddr by its peers, which Redis never fails over, and its replicas
// resynchronize from it within a second, emptying the shard; Plan blocks
// on its slots and says so.
package redis

package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// migrateKeysPerCall is how many keys one MIGRATE moves.
const migrateKeysPerCall = 100

// migrateSlots executes a MigrateSlots action, moving at most keyBudget
// keys. Per slot, in the order that never serves a slot from a node that
// lacks some of its keys:
//
//  1. SETSLOT IMPORTING on the target, then MIGRATING on the source
//     (each skipped when observed done): from then on the source answers
//     for the keys it still has and redirects the others with ASK, the
//     target accepts ASKING commands for the slot;
//  2. GETKEYSINSLOT on the source and MIGRATE of those keys to the target
//     (REPLACE: a key both hold after an interrupted MIGRATE is the
//     source's, which served every write to it), until the source has
//     none left. A new key cannot appear on the source meanwhile (it
//     redirects missing keys to the target);
//  3. SETSLOT NODE target on the target (which takes the slot with a new
//     config epoch), then on the source, then on every other master
//     (whose errors are left to gossip, which tells them anyway).
//
// The commands of one kind for the slots of the action are pipelined. A
// slot whose keys exceed the budget stays open after step 2; the next
// Plan finds it open and resumes it.
func (c *Client) migrateSlots(ctx context.Context, a Action, keyBudget int) error {
	if len(a.Peers) == 0 || a.MemberID == "" {
		return fmt.Errorf("migrating slots from %s: no target or no source node ID", a.Member)
	}
	tgt := a.Peers[0]
	src, dst := c.conn(a.Addr.Addr()), c.conn(tgt.Addr.Addr())
	if err := openSlots(ctx, src, dst, a); err != nil {
		return err
	}
	ip, err := resolveIP(ctx, tgt.Addr.IP)
	if err != nil {
		return fmt.Errorf("migrating keys to %s: %w", tgt.Member, err)
	}
	var moved, owned []int
	for _, m := range a.Moves {
		if m.TargetOwns {
			owned = append(owned, m.Slot)
			continue
		}
		n, complete, err := c.moveKeys(ctx, src, Endpoint{IP: ip, Port: tgt.Addr.Port}, m.Slot, keyBudget)
		keyBudget -= n
		if err != nil {
			return fmt.Errorf("migrating the keys of slot %d from %s to %s: %w", m.Slot, a.Member, tgt.Member, err)
		}
		if !complete {
			break
		}
		moved = append(moved, m.Slot)
	}
	if err := setSlots(ctx, dst, moved, "NODE", tgt.ID); err != nil {
		return fmt.Errorf("giving slots to the target %s: %w", tgt.Member, err)
	}
	// A source that gave its last slot away may have turned into a
	// replica of the target already (cluster-allow-replica-migration):
	// then it knows the new owner and has nothing to close.
	if err := setSlots(ctx, src, append(owned, moved...), "NODE", tgt.ID); err != nil && !isNotMaster(err) {
		return fmt.Errorf("closing slots on the source %s: %w", a.Member, err)
	}
	for _, other := range a.Peers[1:] {
		_ = setSlots(ctx, c.conn(other.Addr.Addr()), append(owned, moved...), "NODE", tgt.ID)
	}
	return nil
}

// openSlots sets the slots of a importing on the target, then
// migrating on the source, where they are not yet.
func openSlots(ctx context.Context, src, dst *goredis.Client, a Action) error {
	var importing, migrating []int
	for _, m := range a.Moves {
		if !m.TargetOwns && !m.Importing {
			importing = append(importing, m.Slot)
		}
		if !m.TargetOwns && !m.Migrating {
			migrating = append(migrating, m.Slot)
		}
	}
	if err := setSlots(ctx, dst, importing, "IMPORTING", a.MemberID); err != nil {
		return fmt.Errorf("opening slots on the target %s: %w", a.Peers[0].Member, err)
	}
	if err := setSlots(ctx, src, migrating, "MIGRATING", a.Peers[0].ID); err != nil {
		return fmt.Errorf("opening slots on the source %s: %w", a.Member, err)
	}
	return nil
}

// isNotMaster reports whether err is a replica refusing CLUSTER SETSLOT.
func isNotMaster(err error) bool {
	msg, ok := serverError(err)
	return ok && strings.Contains(msg, "SETSLOT only with masters")
}

// setSlots sends CLUSTER SETSLOT slot state id for every slot, in one
// pipeline.
func setSlots(ctx context.Context, conn *goredis.Client, slots []int, state, id string) error {
	if len(slots) == 0 {
		return nil
	}
	cmds, err := conn.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, s := range slots {
			p.Do(ctx, "CLUSTER", "SETSLOT", s, state, id)
		}
		return nil
	})
	for i, cmd := range cmds {
		if cmd.Err() != nil {
			return fmt.Errorf("CLUSTER SETSLOT %d %s %s: %w", slots[i], state, id, cmd.Err())
		}
	}
	if err != nil {
		return fmt.Errorf("CLUSTER SETSLOT %s %s: %w", state, id, err)
	}
	return nil
}

// moveKeys migrates the keys of slot from src to the target at to, at
// most budget of them, and reports how many it moved and whether the
// source has none left.
func (c *Client) moveKeys(ctx context.Context, src *goredis.Client, to Endpoint, slot, budget int) (int, bool, error) {
	moved := 0
	timeout := max(c.opts.Timeout.Milliseconds()/2, 100)
	for {
		n := min(migrateKeysPerCall, budget-moved)
		if n <= 0 {
			return moved, false, nil
		}
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, n).Result()
		if err != nil {
			return moved, false, fmt.Errorf("CLUSTER GETKEYSINSLOT %d: %w", slot, err)
		}
		if len(keys) == 0 {
			return moved, true, nil
		}
		args := []any{"MIGRATE", to.IP, to.Port, "", 0, timeout, "REPLACE"}
		if c.opts.Password != "" {
			args = append(args, "AUTH", c.opts.Password)
		}
		args = append(args, "KEYS")
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			return moved, false, fmt.Errorf("MIGRATE of %d keys to %s: %w", len(keys), to.Addr(), err)
		}
		moved += len(keys)
	}
}

// forgetNode sends CLUSTER FORGET a.NodeID to a's member and peers, one
// after the other at once, so that all of them forget it within Redis'
// ban of 60 s. A member that does not know the node (any longer) is fine.
func (c *Client) forgetNode(ctx context.Context, a Action) error {
	if a.NodeID == "" {
		return fmt.Errorf("forgetting on %s: no node ID", a.Member)
	}
	var errs []error
	for _, to := range append([]Peer{{Member: a.Member, Addr: a.Addr}}, a.Peers...) {
		cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		err := c.conn(to.Addr.Addr()).ClusterForget(cctx, a.NodeID).Err()
		cancel()
		if msg, ok := serverError(err); ok && strings.HasPrefix(msg, "ERR Unknown node") {
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("CLUSTER FORGET %s on %s at %s: %w", a.NodeID, to.Member, to.Addr.Addr(), err))
		}
	}
	return errors.Join(errs...)
}

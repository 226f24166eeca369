package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// ErrLearnerNotReady is returned by Promote while the learner has not caught
// up with the leader yet; try again a little later.
var ErrLearnerNotReady = errors.New("the learner has not caught up with the leader yet")

// Client talks to one etcd cluster through its membership and maintenance
// APIs.
type Client struct {
	c       *clientv3.Client
	timeout time.Duration
}

// Dial connects to the cluster through endpoints (client URLs). It does not
// wait for a connection: calls fail when no endpoint answers.
func Dial(endpoints []string) (*Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %v: %w", endpoints, err)
	}
	return &Client{c: c, timeout: 3 * time.Second}, nil
}

// Close closes the connections.
func (c *Client) Close() error { return c.c.Close() }

// Observe reads the member list with a linearizable request (so it only
// succeeds when a quorum answers) and asks every started member for its
// status. reachable is false when the list could not be read.
func (c *Client) Observe(ctx context.Context) (reachable bool, members []Member) {
	lctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.c.MemberList(lctx)
	if err != nil {
		return false, nil
	}
	for _, m := range resp.Members {
		mem := Member{ID: m.ID, Name: m.Name, Learner: m.IsLearner, Started: m.Name != ""}
		if len(m.PeerURLs) > 0 {
			mem.PeerURL = m.PeerURLs[0]
		}
		if len(m.ClientURLs) > 0 {
			mem.ClientURL = m.ClientURLs[0]
			c.status(ctx, &mem)
		}
		members = append(members, mem)
	}
	return true, members
}

// status fills Healthy, Leader and Version from the member's own answer.
func (c *Client) status(ctx context.Context, m *Member) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := c.c.Status(sctx, m.ClientURL)
	if err != nil {
		return
	}
	m.Version = st.Version
	m.Healthy = st.Leader != 0 && len(st.Errors) == 0
	m.Leader = st.Leader == m.ID
}

// AddLearner adds a learner with peerURL and returns its member ID.
func (c *Client) AddLearner(ctx context.Context, peerURL string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.c.MemberAddAsLearner(ctx, []string{peerURL})
	if err != nil {
		return 0, fmt.Errorf("adding learner %s: %w", peerURL, err)
	}
	return resp.Member.ID, nil
}

// Promote makes the learner id a voter; ErrLearnerNotReady while it lags.
func (c *Client) Promote(ctx context.Context, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.c.MemberPromote(ctx, id); err != nil {
		if errLearnerNotReady.is(err) {
			return ErrLearnerNotReady
		}
		return fmt.Errorf("promoting member %x: %w", id, err)
	}
	return nil
}

// Remove removes the member id; a member that is already gone is not an
// error, so a repeated removal (after a crash) is harmless.
func (c *Client) Remove(ctx context.Context, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := c.c.MemberRemove(ctx, id); err != nil {
		if errMemberNotFound.is(err) {
			return nil
		}
		return fmt.Errorf("removing member %x: %w", id, err)
	}
	return nil
}

// MoveLeader asks the leader, which serves clients at leaderClientURL, to
// hand leadership to the member to.
func (c *Client) MoveLeader(ctx context.Context, leaderClientURL string, to uint64) error {
	lc, err := clientv3.New(clientv3.Config{Endpoints: []string{leaderClientURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("connecting to the leader at %s: %w", leaderClientURL, err)
	}
	defer func() { _ = lc.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 2*c.timeout)
	defer cancel()
	if _, err := lc.MoveLeader(ctx, to); err != nil {
		return fmt.Errorf("moving leadership to %x: %w", to, err)
	}
	return nil
}

// Execute runs the etcd side of an action: AddLearner, Promote,
// RemoveMember and MoveLeader. The other actions are the caller's (pods
// and volumes); Execute refuses them with an error. Nothing of the answer
// is returned: the next observation shows what changed (the new learner
// with its ID, among others), as it does after a restart of the caller.
func (c *Client) Execute(ctx context.Context, a Action, members []Member, n Naming) error {
	switch a.Type {
	case ActionAddLearner:
		_, err := c.AddLearner(ctx, n.PeerURL(a.Name))
		return err
	case ActionPromote:
		return c.Promote(ctx, a.MemberID)
	case ActionRemoveMember:
		return c.Remove(ctx, a.MemberID)
	case ActionMoveLeader:
		for _, m := range members {
			if m.ID == a.MemberID {
				return c.MoveLeader(ctx, m.ClientURL, a.To)
			}
		}
		return fmt.Errorf("moving leadership to %x: leader %x is not in the member list", a.To, a.MemberID)
	}
	return fmt.Errorf("executing %s for member %s: not an etcd membership action", a.Type, a.Name)
}

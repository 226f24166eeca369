package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ConfigSet sets the directives kv on the member at e with one CONFIG SET
// (Redis 7 applies the pairs of one call together, or none of them).
// Errors name the member; IsConfigRejected tells a refusal of the values
// from a failure to reach the member.
func (c *Client) ConfigSet(ctx context.Context, member string, e Endpoint, kv map[string]string) error {
	if len(kv) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := []any{"CONFIG", "SET"}
	for _, k := range keys {
		args = append(args, k, kv[k])
	}
	if err := c.conn(e.Addr()).Do(ctx, args...).Err(); err != nil {
		return &ConfigError{Member: member, Keys: keys, Err: err}
	}
	return nil
}

// ConfigError is a CONFIG SET that failed.
type ConfigError struct {
	Member string
	Keys   []string
	Err    error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("CONFIG SET %s on %s: %v", strings.Join(e.Keys, " "), e.Member, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigRejected reports whether err is Redis refusing a CONFIG SET
// (an unknown directive, a malformed value, a directive only a restart
// can change), as opposed to the member not answering.
func IsConfigRejected(err error) bool {
	msg, ok := serverError(err)
	return ok && strings.HasPrefix(msg, "ERR") && strings.Contains(strings.ToLower(msg), "config")
}

// IsConfigImmutable reports whether err is Redis refusing a CONFIG SET of
// a directive it reads only at start (or a protected one): the node has
// to restart to take the value.
func IsConfigImmutable(err error) bool {
	msg, ok := serverError(err)
	return ok && (strings.Contains(msg, "immutable config") || strings.Contains(msg, "protected config"))
}

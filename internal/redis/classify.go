package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	goredis "github.com/redis/go-redis/v9"
)

// Retryable reports whether err, returned by a Client call (possibly
// wrapped), goes away by itself, so that the step is observed and tried
// again a little later rather than reported as a failure:
//
//   - the member does not answer: connection refused or reset, EOF, a
//     timeout (its pod restarting, a network blip);
//   - LOADING: the server is loading its data set after a restart;
//   - TRYAGAIN, CLUSTERDOWN, MASTERDOWN: the cluster is settling;
//   - BUSY: a script or function is running;
//   - IOERR: a MIGRATE that timed out talking to its target; any of
//     these passed on by MIGRATE from its target;
//   - "ERR Unknown node": a REPLICATE names a master that gossip has not
//     told the member about yet.
//
// A cancelled context is not retryable (the caller gave up), nor are
// authentication errors (see IsAuthError), a server without cluster
// support (IsClusterDisabled) or refusals such as "slot is already busy",
// after which the next observation plans another step.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || IsAuthError(err) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	msg, ok := serverError(err)
	if !ok {
		return false
	}
	// MIGRATE passes its target's refusal on.
	msg = strings.TrimPrefix(msg, "ERR Target instance replied with error: ")
	for _, prefix := range []string{"LOADING ", "TRYAGAIN ", "CLUSTERDOWN ", "MASTERDOWN ", "BUSY ", "ERR Unknown node", "IOERR "} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// IsAuthError reports whether err is a refused or missing password
// (NOAUTH, WRONGPASS): the operator's password does not match the
// members' requirepass, which no retry fixes.
func IsAuthError(err error) bool {
	msg, ok := serverError(err)
	return ok && (strings.HasPrefix(msg, "NOAUTH ") || strings.HasPrefix(msg, "WRONGPASS "))
}

// IsClusterDisabled reports whether err says the server runs without
// cluster-enabled, which no retry fixes.
func IsClusterDisabled(err error) bool {
	msg, ok := serverError(err)
	return ok && strings.Contains(msg, "cluster support disabled")
}

// serverError is the message of the Redis error err wraps, if any: what
// the server answered, which go-redis returns as an error value whose
// type has a RedisError method.
func serverError(err error) (string, bool) {
	var re goredis.Error
	if err == nil || !errors.As(err, &re) {
		return "", false
	}
	return re.Error(), true
}

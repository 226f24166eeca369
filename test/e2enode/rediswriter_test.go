//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisWriter writes keys spread over every slot through a cluster client
// (which follows MOVED and ASK redirections) and records each write Redis
// acknowledged: key -> last acknowledged value. With wait set, a write
// counts as confirmed only when WAIT 1 says a replica has it.
type redisWriter struct {
	c       *goredis.ClusterClient
	keys    int
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	acked   map[string]int
	ackedAt []time.Time
	fails   int
	lastErr error
	// failures are the failed writes: when, and Redis' or the client's
	// error.
	failures []failure
}

type failure struct {
	at  time.Time
	err string
}

func startRedisWriter(c *goredis.ClusterClient, keys int) *redisWriter {
	w := &redisWriter{c: c, keys: keys, stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]int{}}
	go func() {
		defer close(w.done)
		for i := 1; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			key := "e2e:" + strconv.Itoa(i%w.keys)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := c.Set(ctx, key, i, 0).Err()
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked[key] = i
				w.ackedAt = append(w.ackedAt, time.Now())
			} else {
				w.fails++
				w.lastErr = err
				w.failures = append(w.failures, failure{at: time.Now(), err: err.Error()})
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			} else {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	return w
}

// longestGap is the longest time without an acknowledged write between
// from and to, and a summary of the errors of the writes that failed in
// it.
func (w *redisWriter) longestGap(from, to time.Time) (time.Duration, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, gap, gapStart := from, time.Duration(0), from
	for _, at := range w.ackedAt {
		if at.Before(from) {
			continue
		}
		if at.After(to) {
			break
		}
		if at.Sub(prev) > gap {
			gap, gapStart = at.Sub(prev), prev
		}
		prev = at
	}
	if to.Sub(prev) > gap {
		gap, gapStart = to.Sub(prev), prev
	}
	errs := map[string]int{}
	var order []string
	for _, f := range w.failures {
		if f.at.Before(gapStart) || f.at.After(gapStart.Add(gap)) {
			continue
		}
		if errs[f.err] == 0 {
			order = append(order, f.err)
		}
		errs[f.err]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "from %s", gapStart.Format("15:04:05.000"))
	for _, e := range order {
		fmt.Fprintf(&b, "; %dx %s", errs[e], e)
	}
	return gap, b.String()
}

func (w *redisWriter) count() (acked, fails int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ackedAt), w.fails
}

// finish stops the writer and checks that every acknowledged key holds
// its last acknowledged value.
func (w *redisWriter) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	lost := 0
	var first string
	for key, want := range w.acked {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := w.c.Get(ctx, key).Int()
		cancel()
		if err != nil || got < want {
			lost++
			if first == "" {
				first = fmt.Sprintf("%s = %d (%v), want %d", key, got, err, want)
			}
		}
	}
	t.Logf("writer: %d writes acknowledged, %d failed (last error: %v); %d keys checked", len(w.ackedAt), w.fails, w.lastErr, len(w.acked))
	if lost > 0 {
		t.Errorf("%d acknowledged writes lost; first: %s", lost, first)
	}
}

//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ackWriter commits sequential keys through the client Service and records
// every acknowledged one and when its acknowledgement came, so that a test
// checks durability (every acknowledged key is there at the end) and
// availability (the longest time without an acknowledged write during an
// operation).
type ackWriter struct {
	e       *etcdE2E
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	acked   []string
	ackedAt []time.Time // when acked[i] was acknowledged, ascending
	fails   int
	windows []writeWindow
}

// writeWindow is the longest time without an acknowledged write measured
// during one operation.
type writeWindow struct {
	what   string
	gap    time.Duration
	at     time.Duration // when the gap began, from the operation's start
	writes int
}

func (e *etcdE2E) startWriter() *ackWriter {
	w := &ackWriter{e: e, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var c *clientv3.Client
		defer func() {
			if c != nil {
				_ = c.Close()
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if c == nil {
				var err error
				if c, err = e.client(); err != nil {
					w.mu.Lock()
					w.fails++
					w.mu.Unlock()
					continue
				}
			}
			key := fmt.Sprintf("/e2e/writer/%07d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := c.Put(ctx, key, key)
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, key)
				w.ackedAt = append(w.ackedAt, time.Now())
			} else {
				w.fails++
				_ = c.Close()
				c = nil
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// longestGap is the longest time without an acknowledged write that
// overlaps [from, to]: it runs from the last acknowledgement before from
// (or from) to the first one after to. It waits up to 10 s for a write
// acknowledged after to; ok is false when none came.
func (w *ackWriter) longestGap(from, to time.Time) (gap time.Duration, began time.Time, writes int, ok bool) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		times := append([]time.Time(nil), w.ackedAt...)
		w.mu.Unlock()
		if n := len(times); n > 0 && times[n-1].After(to) {
			break
		}
		if time.Now().After(deadline) {
			return 0, time.Time{}, 0, false
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.mu.Lock()
	times := append([]time.Time(nil), w.ackedAt...)
	w.mu.Unlock()
	first := sort.Search(len(times), func(i int) bool { return times[i].After(from) })
	prev := from
	if first > 0 {
		prev = times[first-1]
	}
	for _, at := range times[first:] {
		if d := at.Sub(prev); d > gap {
			gap, began = d, prev
		}
		prev = at
		if at.After(to) {
			break
		}
		writes++
	}
	return gap, began, writes, true
}

// checkAvailable measures the longest time without an acknowledged write
// during the operation what, which ran from from to now, logs it, and
// fails the test when it is longer than bound.
func (w *ackWriter) checkAvailable(t *testing.T, what string, from time.Time, bound time.Duration) {
	t.Helper()
	to := time.Now()
	gap, began, writes, ok := w.longestGap(from, to)
	if !ok {
		t.Errorf("write availability during %s: no write acknowledged within 10 s after it ended", what)
		return
	}
	ww := writeWindow{what: what, gap: gap, at: began.Sub(from), writes: writes}
	w.mu.Lock()
	w.windows = append(w.windows, ww)
	w.mu.Unlock()
	t.Logf("write availability during %s (%s): longest time without an acknowledged write %s, beginning at %+.1fs; %d writes acknowledged",
		what, to.Sub(from).Round(100*time.Millisecond), gap.Round(time.Millisecond), ww.at.Seconds(), writes)
	if gap > bound {
		t.Errorf("write availability during %s: %s without an acknowledged write (from %+.1fs), more than the %s a user may rely on",
			what, gap.Round(time.Millisecond), ww.at.Seconds(), bound)
	}
}

// finish stops the writer and checks that every acknowledged key is there.
func (w *ackWriter) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	var sum []string
	for _, ww := range w.windows {
		sum = append(sum, fmt.Sprintf("%s %s", ww.what, ww.gap.Round(time.Millisecond)))
	}
	t.Logf("writer: longest time without an acknowledged write, per operation: %s", strings.Join(sum, "; "))
	w.verify(t)
}

// verify checks that every acknowledged key is in the cluster, read
// through the client Service.
func (w *ackWriter) verify(t *testing.T) {
	t.Helper()
	c, err := w.e.client()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "/e2e/writer/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = true
	}
	var missing []string
	for _, k := range w.acked {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	t.Logf("writer: %d writes acknowledged, %d failed, %d acknowledged missing", len(w.acked), w.fails, len(missing))
	if len(missing) > 0 || len(w.acked) == 0 {
		t.Errorf("acknowledged writes lost: %d of %d (first: %v)", len(missing), len(w.acked), missing[:min(5, len(missing))])
	}
}

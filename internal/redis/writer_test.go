package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// writer writes keys across all slots through a go-redis ClusterClient,
// as an application does, and records what was acknowledged: per key the
// last value a SET returned OK for and, with WAIT, the last one WAIT 1
// confirmed reached a replica. Each worker owns its keys and writes them
// in turn with increasing values, so a key's value never goes back
// unless a write was lost.
type writer struct {
	t    *testing.T
	c    *goredis.ClusterClient
	wait bool
	stop chan struct{}
	wg   sync.WaitGroup

	mu        sync.Mutex
	acked     map[string]int
	confirmed map[string]int
	attempted map[string]int
	writes    int
	errors    int
	firstErr  error
	last      time.Time
	maxGap    time.Duration
	gapAt     time.Time
}

const (
	writerWorkers = 4
	writerKeys    = 1000 // per worker
)

// startWriter starts the workers; wait makes every SET go with WAIT 1 on
// the connection to the key's master.
func (l *localCluster) startWriter(wait bool) *writer {
	w := &writer{t: l.t, c: l.clusterClient(), wait: wait, stop: make(chan struct{}),
		acked: map[string]int{}, confirmed: map[string]int{}, attempted: map[string]int{}, last: time.Now()}
	for i := range writerWorkers {
		w.wg.Go(func() { w.work(i) })
	}
	return w
}

func (w *writer) work(i int) {
	ctx := context.Background()
	for n := 1; ; n++ {
		select {
		case <-w.stop:
			return
		default:
		}
		key := fmt.Sprintf("w%d-%04d", i, n%writerKeys)
		w.mu.Lock()
		w.attempted[key] = n
		w.mu.Unlock()
		confirmed, err := w.set(ctx, key, n)
		w.record(key, n, confirmed, err)
		time.Sleep(time.Millisecond)
	}
}

// set writes key=n; confirmed tells WAIT 1 answered 1.
func (w *writer) set(ctx context.Context, key string, n int) (bool, error) {
	if !w.wait {
		return false, w.c.Set(ctx, key, n, 0).Err()
	}
	m, err := w.c.MasterForKey(ctx, key)
	if err != nil {
		return false, err
	}
	var set *goredis.StatusCmd
	var wait *goredis.Cmd
	_, _ = m.Pipelined(ctx, func(p goredis.Pipeliner) error {
		set = p.Set(ctx, key, n, 0)
		wait = p.Do(ctx, "WAIT", 1, 500)
		return nil
	})
	if set.Err() != nil {
		w.c.ReloadState(ctx)
		return false, set.Err()
	}
	replicas, _ := wait.Int()
	return replicas >= 1, nil
}

func (w *writer) record(key string, n int, confirmed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	now := time.Now()
	if gap := now.Sub(w.last); gap > w.maxGap {
		w.maxGap, w.gapAt = gap, w.last
	}
	w.last = now
	w.writes++
	w.acked[key] = n
	if confirmed {
		w.confirmed[key] = n
	}
}

// check stops the writer and reads every key back: lost counts the keys
// whose value is older than the last acknowledged one (or missing),
// lostConfirmed those older than the last WAIT-confirmed one.
func (w *writer) check() (lost, lostConfirmed int) {
	w.t.Helper()
	close(w.stop)
	w.wg.Wait()
	ctx := context.Background()
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, n := range w.acked {
		var v string
		var err error
		for range 50 { // a read during settling may fail; the value may not
			if v, err = w.c.Get(ctx, key).Result(); err == nil || errors.Is(err, goredis.Nil) {
				break
			}
			w.c.ReloadState(ctx) // slots of a removed node
			time.Sleep(100 * time.Millisecond)
		}
		got, _ := strconv.Atoi(v)
		switch {
		case err != nil && !errors.Is(err, goredis.Nil):
			w.t.Fatalf("GET %s: %v", key, err)
		case got > w.attempted[key]:
			w.t.Errorf("%s = %d, never written (last attempt %d)", key, got, w.attempted[key])
		case got < n:
			lost++
			if got < w.confirmed[key] {
				lostConfirmed++
			}
		}
	}
	w.t.Logf("writer: %d writes acknowledged, %d failed (first: %v), %d keys; longest gap without an acknowledged write %s (at %s)",
		w.writes, w.errors, w.firstErr, len(w.acked), w.maxGap.Round(time.Millisecond), w.gapAt.Format("15:04:05.000"))
	return lost, lostConfirmed
}

// checkConfirmed stops the writer, logs how many acknowledged writes were
// lost after what happened, and fails the test if one WAIT confirmed is.
func (w *writer) checkConfirmed(what string) {
	w.t.Helper()
	lost, lostConfirmed := w.check()
	w.t.Logf("%s: %d acknowledged writes lost, %d of them confirmed by WAIT 1", what, lost, lostConfirmed)
	if lostConfirmed != 0 {
		w.t.Errorf("%d writes confirmed by WAIT 1 lost", lostConfirmed)
	}
}

//go:build realnode

package e2enode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ackWriter commits sequential keys through the client Service and records
// every acknowledged one.
type ackWriter struct {
	e     *etcdE2E
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	acked []string
	fails int
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
					w.fails++
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

func (w *ackWriter) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
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

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"k8s.io/client-go/rest"
)

// ipCountFunction is the API server function that counts the Service IPs
// in use by listing every IPAddress: kube-apiserver's IPAddress-based
// ClusterIP allocator calls it (twice, for two metrics gauges) on every
// Service IP it allocates, so the cost of creating a Service grows with
// the number of Services in the cluster.
const ipCountFunction = "k8s.io/kubernetes/pkg/registry/core/service/ipallocator.(*Allocator).Used"

// apiserverHotspot sums the API server's CPU time spent in ipCountFunction,
// over the profiles taken so far.
type apiserverHotspot struct {
	mu      sync.Mutex
	seconds float64
}

func (h *apiserverHotspot) add(s float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seconds += s
}

func (h *apiserverHotspot) total() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seconds
}

// secondsIn returns the CPU seconds of the samples of a CPU profile whose
// stack holds function fn (each sample counted once).
func secondsIn(path, fn string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	p, err := profile.Parse(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		return 0, fmt.Errorf("%s: not a CPU profile", path)
	}
	var ns int64
	for _, s := range p.Sample {
		if stackHolds(s, fn) {
			ns += s.Value[idx]
		}
	}
	return float64(ns) / 1e9, nil
}

func stackHolds(s *profile.Sample, fn string) bool {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && line.Function.Name == fn {
				return true
			}
		}
	}
	return false
}

// profileChunk is the length of each CPU profile taken while a step runs:
// a step's profile is the set of chunks, and at most one chunk is lost
// when the step ends.
const profileChunk = 10 * time.Second

// profile takes CPU profiles of the API server and of the operator while
// a step runs, back to back, into Config.ProfileDir; the returned function
// stops it. Without ProfileDir it does nothing.
func (r *run) profile(ctx context.Context, step string) (stop func()) {
	if r.cfg.ProfileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(r.cfg.ProfileDir, 0o750); err != nil {
		r.logf("bench: profiles: %v", err)
		return func() {}
	}
	apiClient, err := rest.HTTPClientFor(r.cluster.Config)
	if err != nil {
		r.logf("bench: profiles: %v", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	take := func(component string, client *http.Client, url func() string, taken func(path string)) {
		defer wg.Done()
		logged := false
		for k := 0; ctx.Err() == nil; k++ {
			path := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("%s-%s-%03d.pb.gz", step, component, k))
			err := fetchProfile(ctx, client, url(), path)
			if err == nil && taken != nil {
				taken(path)
			}
			if err != nil && ctx.Err() == nil {
				// A profile the previous step asked for may still be
				// running (HTTP 500), the operator may be restarting:
				// try again shortly, and say so once per step.
				if !logged {
					r.logf("bench: profile of %s (trying again every 2 s): %v", component, err)
					logged = true
				}
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Second):
				}
			}
		}
	}
	seconds := int(profileChunk.Seconds())
	wg.Add(1)
	go take("apiserver", apiClient, func() string {
		return fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", r.cluster.Config.Host, seconds)
	}, func(path string) {
		s, err := secondsIn(path, ipCountFunction)
		if err != nil {
			r.logf("bench: profile: %v", err)
			return
		}
		r.ipCount.add(s)
	})
	// The baseline's cluster has no operator. The operator's address
	// changes when it is restarted.
	if r.mgr != nil {
		wg.Add(1)
		go take("operator", http.DefaultClient, func() string {
			return fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.pprofAddr, seconds)
		}, nil)
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

func fetchProfile(ctx context.Context, client *http.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

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

	"k8s.io/client-go/rest"
)

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
	take := func(component string, client *http.Client, url func() string) {
		defer wg.Done()
		logged := false
		for k := 0; ctx.Err() == nil; k++ {
			path := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("%s-%s-%03d.pb.gz", step, component, k))
			if err := fetchProfile(ctx, client, url(), path); err != nil && ctx.Err() == nil {
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
	})
	// The baseline's cluster has no operator. The operator's address
	// changes when it is restarted.
	if r.mgr != nil {
		wg.Add(1)
		go take("operator", http.DefaultClient, func() string {
			return fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.pprofAddr, seconds)
		})
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

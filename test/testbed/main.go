package testbed

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/test/hostproc"
)

// RunMain is the body of a TestMain that shares one cluster among all tests
// of a package: it starts the cluster, calls setup, runs the tests and
// stops the cluster, keeping component logs when a test failed or setup
// did. An interrupt (Ctrl-C) stops the cluster before the process exits.
// Tests are skipped entirely with -short, leaving only pure unit tests.
func RunMain(m *testing.M, opts Options, setup func(ctx context.Context, c *Cluster) error) int {
	if shortFlag() {
		return m.Run()
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	c, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting %s testbed: %v\n", opts.Mode, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "testbed: %s cluster up in %s (%s)\n", opts.Mode, time.Since(start).Round(100*time.Millisecond), c.Dir)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			c.Stop(true)
			os.Exit(130)
		}
	}()
	defer signal.Stop(sigs)

	code := 1
	if err := setup(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "testbed setup: %v\n", err)
	} else {
		code = m.Run()
	}
	c.Stop(code != 0)
	return code
}

func shortFlag() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.short" || a == "-test.short=true" {
			return true
		}
	}
	return false
}

// RequireCluster skips a test that needs the shared cluster when the tests
// run with -short (pure unit tests only, `make test-unit`).
func RequireCluster(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a cluster; -short runs unit tests only")
	}
}

// Namespace creates a namespace with a unique name derived from the test's
// name, so tests sharing a cluster do not see each other's objects. It is
// deleted when the test ends.
func Namespace(t testing.TB, c client.Client) string {
	t.Helper()
	RequireCluster(t)
	base := strings.ToLower(t.Name())
	base = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, base)
	if len(base) > 40 {
		base = base[:40]
	}
	name := strings.Trim(base, "-") + "-" + rand.String(5)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), ns)
	})
	return name
}

// Eventually polls cond until it returns nil, failing the test with cond's
// last error when timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	hostproc.Eventually(t, timeout, what, cond)
}

// Command opsmith-bench runs the benchmarks (`make bench`) and writes the
// report: JSON, and BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"opsmith.io/opsmith/test/bench"
)

func main() {
	cfg := bench.Config{Log: os.Stdout}
	flag.IntVar(&cfg.N, "n", 1000, "AppServices and MicroServiceDeploys to create (N of each)")
	flag.IntVar(&cfg.Workers, "workers", 16, "parallel creating clients, on both sides")
	flag.IntVar(&cfg.Nodes, "nodes", 10, "simulated nodes")
	flag.DurationVar(&cfg.IdleWindow, "idle-window", 5*time.Minute, "how long idle writes are counted")
	flag.DurationVar(&cfg.SyncPeriod, "sync-period", 2*time.Minute, "the operator's resync period (must be shorter than -idle-window)")
	flag.IntVar(&cfg.Changed, "changed", 100, "AppServices whose image is changed")
	flag.IntVar(&cfg.Unrelated, "unrelated", 1000, "unrelated ConfigMaps (and as many Secrets) to create")
	flag.IntVar(&cfg.ScaleTo, "scale-to", 10000, "scale curve: add MicroServiceDeploys up to this total (0: no scale curve)")
	flag.IntVar(&cfg.ScaleStep, "scale-step", 1000, "scale curve: MicroServiceDeploys added per step")
	flag.DurationVar(&cfg.ScaleBudget, "scale-budget", 0, "scale curve: start no step that would end after this much time (0: no limit)")
	flag.BoolVar(&cfg.ScaleBaseline, "scale-baseline", true, "scale curve: have the baseline take every step too, on a cluster of its own, taking turns with the operator's")
	flag.IntVar(&cfg.Repeat, "repeat", 2, "convergence: run the comparison this many times, on fresh clusters (paired: the CPU halves swapped each time, so use an even count), and report the geometric mean of the ratios")
	flag.BoolVar(&cfg.Paired, "paired", true, "convergence: run both sides of each repeat at the same time, each cluster bound to half of the CPUs (false: the baseline first, then the operator, each on the whole machine)")
	steps := flag.String("steps", "", "run only these steps, comma-separated, for tuning (of: "+strings.Join(bench.StepNames, ",")+"); empty: all")
	flag.StringVar(&cfg.ProfileDir, "profile-dir", "", "write CPU profiles of the API server and the operator, taken while each step runs, to this directory")
	flag.StringVar(&cfg.ClusterDir, "cluster-dir", "", "keep the simulated cluster's data and logs (the API server's audit log among them) in this directory")
	jsonOut := flag.String("json", "bench/report.json", "where to write the JSON report")
	mdOut := flag.String("markdown", "BENCHMARKS.md", "where to write the Markdown report")
	flag.Parse()
	if *steps != "" {
		cfg.Steps = strings.Split(*steps, ",")
	}
	if cfg.ScaleTo > cfg.N && cfg.ScaleStep <= 0 {
		fmt.Fprintln(os.Stderr, "-scale-step must be positive")
		os.Exit(2)
	}
	if cfg.SyncPeriod >= cfg.IdleWindow && (len(cfg.Steps) == 0 || slices.Contains(cfg.Steps, "idle")) {
		fmt.Fprintln(os.Stderr, "-sync-period must be shorter than -idle-window so that the idle window includes a resync")
		os.Exit(2)
	}

	// The benchmark's clients log nothing worth reading; without a logger
	// controller-runtime complains once, with a stack.
	log.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, runErr := bench.Run(ctx, cfg)
	if rep == nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", runErr)
		os.Exit(1)
	}
	rep.Cores = runtime.NumCPU()
	if err := rep.WriteJSON(*jsonOut); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	md := rep.Markdown("make bench BENCH_FLAGS='" + strings.Join(os.Args[1:], " ") + "'")
	if err := os.WriteFile(*mdOut, []byte(md), 0o644); err != nil { //nolint:gosec // a report for people to read
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(md)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", runErr)
		os.Exit(1)
	}
}

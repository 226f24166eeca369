package manager

import (
	"flag"
	"strconv"
	"strings"
)

// BindFlags binds the manager's command-line flags to o, with o's values
// as defaults, and then every kind's own flags.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.Var((*listFlag)(&o.Controllers), "controllers",
		"comma-separated controllers to run; known: "+strings.Join(Controllers(), ", "))
	fs.Var((*listFlag)(&o.Namespaces), "namespaces",
		"comma-separated namespaces to watch; empty watches all namespaces")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr,
		`address of the metrics endpoint; "0" disables it`)
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure,
		"serve metrics over HTTPS, allowing only callers authorized to get /metrics")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr,
		`address of the /healthz and /readyz endpoints; "0" disables them`)
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", o.PprofAddr,
		`address of the unauthenticated net/http/pprof endpoint (for example 127.0.0.1:6060); empty or "0" disables it`)
	fs.BoolVar(&o.LeaderElection, "leader-elect", o.LeaderElection,
		"elect a leader so that only one replica reconciles")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace,
		"namespace of the leader election Lease; defaults to the pod's namespace")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"reconciles each controller runs in parallel")
	fs.Var((*float32Flag)(&o.ClientQPS), "kube-api-qps", "requests per second the manager may send to the API server")
	fs.IntVar(&o.ClientBurst, "kube-api-burst", o.ClientBurst, "burst of requests above kube-api-qps")
	fs.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod,
		"how often every object is reconciled again even without a change")
	fs.DurationVar(&o.StatusProgressDelay, "status-progress-delay", o.StatusProgressDelay,
		"how long an AppService's or MicroServiceDeploy's status that reports only progress may be held back, so that one that settles sooner is written once; outcomes are written at once; 0 writes every change")
	for _, k := range kinds(o) {
		if k.Flags != nil {
			k.Flags(fs)
		}
	}
}

// listFlag is a comma-separated list; empty items are dropped.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listFlag) Set(s string) error {
	out := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	*l = out
	return nil
}

type float32Flag float32

func (f *float32Flag) String() string {
	if f == nil {
		return "0"
	}
	return strconv.FormatFloat(float64(*f), 'g', -1, 32)
}

func (f *float32Flag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		return err
	}
	*f = float32Flag(v)
	return nil
}

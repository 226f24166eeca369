// Command manager runs the opsmith controllers.
package main

import (
	"flag"
	"os"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"opsmith.io/opsmith/internal/controller/microservice"
	"opsmith.io/opsmith/internal/manager"
)

func main() {
	o := manager.DefaultOptions()
	var controllers, namespaces string
	flag.StringVar(&controllers, "controllers", strings.Join(o.Controllers, ","),
		"comma-separated controllers to run; known: "+strings.Join(manager.Controllers(), ", "))
	flag.StringVar(&namespaces, "namespaces", "",
		"comma-separated namespaces to watch; empty watches all namespaces")
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr,
		`address of the metrics endpoint; "0" disables it`)
	flag.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure,
		"serve metrics over HTTPS, allowing only callers authorized to get /metrics")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr,
		`address of the /healthz and /readyz endpoints; "0" disables them`)
	flag.StringVar(&o.PprofAddr, "pprof-bind-address", "",
		`address of the unauthenticated net/http/pprof endpoint (for example 127.0.0.1:6060); empty or "0" disables it`)
	flag.BoolVar(&o.LeaderElection, "leader-elect", o.LeaderElection,
		"elect a leader so that only one replica reconciles")
	flag.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "",
		"namespace of the leader election Lease; defaults to the pod's namespace")
	flag.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles,
		"reconciles each controller runs in parallel")
	qps := flag.Float64("kube-api-qps", float64(o.ClientQPS), "requests per second the manager may send to the API server")
	flag.IntVar(&o.ClientBurst, "kube-api-burst", o.ClientBurst, "burst of requests above kube-api-qps")
	flag.DurationVar(&o.SyncPeriod, "sync-period", o.SyncPeriod,
		"how often every object is reconciled again even without a change")
	flag.DurationVar(&o.StatusProgressDelay, "status-progress-delay", o.StatusProgressDelay,
		"how long an AppService's or MicroServiceDeploy's status that reports only progress may be held back, so that one that settles sooner is written once; outcomes are written at once; 0 writes every change")
	flag.StringVar(&o.MicroService.BaseDomain, "microservice-base-domain", o.MicroService.BaseDomain,
		"MicroServiceDeploy: base of the domain names <path>.<msName>.<base>")
	flag.StringVar(&o.MicroService.IngressClass, "microservice-ingress-class", o.MicroService.IngressClass,
		"MicroServiceDeploy: class of the Ingresses (empty: the cluster's default class)")
	flag.StringVar(&o.MicroService.AuthURL, "microservice-auth-url", o.MicroService.AuthURL,
		"MicroServiceDeploy: external authentication URL that checks callers of microservices with needAuth; without it their routes are not published")
	flag.StringVar(&o.MicroService.AuthSignin, "microservice-auth-signin", o.MicroService.AuthSignin,
		"MicroServiceDeploy: where unauthenticated browsers are sent (optional)")
	flag.StringVar(&o.MicroService.IngressNamespace, "microservice-ingress-namespace", o.MicroService.IngressNamespace,
		"MicroServiceDeploy: namespace of the ingress controller, the only source of traffic to pods with needAuth")
	var gateway, authService string
	flag.StringVar(&gateway, "microservice-gateway", "",
		"MicroServiceDeploy: route with Gateway API HTTPRoutes attached to this Gateway (namespace/name) instead of Ingresses")
	flag.StringVar(&authService, "microservice-auth-service", "",
		"MicroServiceDeploy with a Gateway: external authentication Service (namespace/name:port) that HTTPRoutes of needAuth microservices call")
	flag.StringVar(&o.MicroService.AuthPath, "microservice-auth-path", "",
		"MicroServiceDeploy with a Gateway: path prefix of the authentication Service's checks")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	var err error
	if gateway != "" {
		if o.MicroService.Gateway, err = microservice.ParseObjectRef(gateway, false); err != nil {
			log.Error(err, "invalid --microservice-gateway")
			os.Exit(2)
		}
	}
	if authService != "" {
		if o.MicroService.AuthService, err = microservice.ParseObjectRef(authService, true); err != nil {
			log.Error(err, "invalid --microservice-auth-service")
			os.Exit(2)
		}
	}
	o.ClientQPS = float32(*qps)
	o.Controllers = splitList(controllers)
	o.Namespaces = splitList(namespaces)

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "loading kubeconfig")
		os.Exit(1)
	}
	mgr, err := manager.New(cfg, o)
	if err != nil {
		log.Error(err, "creating manager")
		os.Exit(1)
	}
	log.Info("starting manager", "controllers", o.Controllers, "namespaces", o.Namespaces,
		"leaderElection", o.LeaderElection)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "running manager")
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	if out == nil {
		return []string{}
	}
	return out
}

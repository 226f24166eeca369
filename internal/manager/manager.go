package manager

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/controller/appservice"
	"opsmith.io/opsmith/internal/controller/etcdcluster"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/internal/controller/rediscluster"
	"opsmith.io/opsmith/internal/kind"
)

// Options configure a manager. The zero value is not usable: start from
// DefaultOptions.
type Options struct {
	// Controllers to run, by name; see Controllers().
	Controllers []string
	// Namespaces to watch; empty means all namespaces.
	Namespaces []string
	// MetricsAddr is the metrics listen address; "0" disables metrics.
	MetricsAddr string
	// MetricsSecure serves metrics over HTTPS with Kubernetes
	// authentication and authorization (TokenReview/SubjectAccessReview).
	MetricsSecure bool
	// ProbeAddr is the health and readiness probe address; "0" disables it.
	ProbeAddr string
	// PprofAddr serves net/http/pprof (profiles, and the heap after a
	// forced collection with /debug/pprof/heap?gc=1); "" or "0" disables
	// it. It has no authentication: bind it to a loopback address.
	PprofAddr string
	// LeaderElection makes only one replica of the manager active.
	LeaderElection          bool
	LeaderElectionNamespace string
	// MaxConcurrentReconciles per controller.
	MaxConcurrentReconciles int
	// ClientQPS and ClientBurst limit the manager's requests to the API
	// server (client-side rate limiting).
	ClientQPS   float32
	ClientBurst int
	// SyncPeriod is how often every watched object is reconciled again even
	// without a change.
	SyncPeriod time.Duration
	// StatusProgressDelay is how long the AppService and MicroServiceDeploy
	// controllers may hold back a status that reports only progress, so
	// that an object that settles within it is written once (see
	// apply.Pacer); 0 writes every change at once.
	StatusProgressDelay time.Duration
	// MicroService configures the MicroServiceDeploy controller.
	MicroService microservicedeploy.Config
	// Logger is the manager's and its controllers' logger; the zero value
	// uses controller-runtime's global logger (ctrl.SetLogger).
	Logger logr.Logger
	// AllowDuplicateControllers lets several managers run in one process
	// (tests do); controller-runtime otherwise refuses a second controller
	// of the same name because their metrics would mix.
	AllowDuplicateControllers bool
}

// LeaderElectionID names the Lease the manager replicas compete for.
const LeaderElectionID = "opsmith.opsmith.io"

// DefaultOptions are the options of the shipped binary.
func DefaultOptions() Options {
	return Options{
		Controllers:             Controllers(),
		MetricsAddr:             ":8443",
		MetricsSecure:           true,
		ProbeAddr:               ":8081",
		MaxConcurrentReconciles: 16,
		ClientQPS:               100,
		ClientBurst:             200,
		SyncPeriod:              10 * time.Hour,
		StatusProgressDelay:     5 * time.Second,
		MicroService:            microservicedeploy.DefaultConfig(),
	}
}

// kinds lists every controller the binary can run, configured by o.
// Adding a kind is one line here plus the kind's package (a kind with
// settings of its own also gets its Config field in Options, which its
// flags set).
func kinds(o *Options) []kind.Kind {
	return []kind.Kind{
		appservice.Kind(),
		etcdcluster.Kind(),
		microservicedeploy.Kind(&o.MicroService),
		rediscluster.Kind(),
	}
}

// Controllers lists the names of every controller the binary can run.
func Controllers() []string {
	var names []string
	for _, k := range kinds(&Options{}) {
		names = append(names, k.Name)
	}
	sort.Strings(names)
	return names
}

// Scheme returns a scheme with the built-in kinds and every opsmith kind.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	for _, k := range kinds(&Options{}) {
		utilruntime.Must(k.AddToScheme(s))
	}
	return s
}

// managedCache configures the cache to hold, of every child type a kind
// lists, only the objects opsmith labelled: unrelated objects of these
// types in the cluster cost no memory and cause no events.
func managedCache(ks []kind.Kind) map[client.Object]cache.ByObject {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{apply.LabelManagedBy: apply.ManagedByValue})}
	byObject := map[client.Object]cache.ByObject{}
	seen := map[reflect.Type]bool{}
	for _, k := range ks {
		for _, obj := range k.Children {
			if t := reflect.TypeOf(obj); !seen[t] {
				seen[t] = true
				byObject[obj] = managed
			}
		}
	}
	return byObject
}

// New builds a manager with the enabled controllers registered.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	ks := kinds(&o)
	for _, name := range o.Controllers {
		if !slices.ContainsFunc(ks, func(k kind.Kind) bool { return k.Name == name }) {
			return nil, fmt.Errorf("unknown controller %q (known: %s)", name, strings.Join(Controllers(), ", "))
		}
	}

	cfg = rest.CopyConfig(cfg)
	if o.ClientQPS > 0 {
		cfg.QPS, cfg.Burst = o.ClientQPS, o.ClientBurst
	}

	metricsOpts := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.MetricsSecure}
	if o.MetricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cacheOpts := cache.Options{
		SyncPeriod: &o.SyncPeriod,
		ByObject:   managedCache(ks),
		// managedFields are large and never read by opsmith: the apply
		// package compares object content, not field ownership.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if len(o.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: Scheme(),
		Logger: o.Logger,
		Cache:  cacheOpts,
		// Secrets are read by name from the API server, never listed or
		// cached: the manager's role can get the Secrets it is told
		// about, not enumerate the cluster's.
		Client:                        client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.ProbeAddr,
		PprofBindAddress:              o.PprofAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: &o.AllowDuplicateControllers},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding readiness check: %w", err)
	}

	env := kind.Env{
		Manager:             mgr,
		Controller:          controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles},
		StatusProgressDelay: o.StatusProgressDelay,
	}
	for _, k := range ks {
		if !slices.Contains(o.Controllers, k.Name) {
			continue
		}
		if err := k.Setup(env); err != nil {
			return nil, fmt.Errorf("setting up controller %s: %w", k.Name, err)
		}
	}
	return mgr, nil
}

package manager

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
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
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/controller/appservice"
	"opsmith.io/opsmith/internal/controller/etcdcluster"
	"opsmith.io/opsmith/internal/controller/microservice"
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
	MicroService microservice.Config
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
		MicroService:            microservice.DefaultConfig(),
	}
}

// setupFunc registers one controller with a manager.
type setupFunc func(mgr ctrl.Manager, o Options, opts controller.Options) error

var controllers = map[string]setupFunc{
	appservice.Name: func(mgr ctrl.Manager, o Options, opts controller.Options) error {
		return (&appservice.Reconciler{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Recorder:  mgr.GetEventRecorder(appservice.FieldManager),
			Pacer:     &apply.Pacer{Delay: o.StatusProgressDelay},
		}).SetupWithManager(mgr, opts)
	},
	etcdcluster.Name: func(mgr ctrl.Manager, _ Options, opts controller.Options) error {
		return (&etcdcluster.Reconciler{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Recorder:  mgr.GetEventRecorder(etcdcluster.FieldManager),
			Dial:      etcdcluster.DialEtcd,
		}).SetupWithManager(mgr, opts)
	},
	microservice.Name: func(mgr ctrl.Manager, o Options, opts controller.Options) error {
		return (&microservice.Reconciler{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Recorder:  mgr.GetEventRecorder(microservice.FieldManager),
			Config:    o.MicroService,
			Pacer:     &apply.Pacer{Delay: o.StatusProgressDelay},
		}).SetupWithManager(mgr, opts)
	},
}

// Controllers lists the names of every controller the binary can run.
func Controllers() []string {
	names := make([]string, 0, len(controllers))
	for n := range controllers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Scheme returns a scheme with the built-in kinds and every opsmith kind.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(appsv1alpha1.AddToScheme(s))
	utilruntime.Must(etcdv1alpha1.AddToScheme(s))
	utilruntime.Must(gatewayv1.Install(s))
	return s
}

// New builds a manager with the enabled controllers registered.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	for _, name := range o.Controllers {
		if _, ok := controllers[name]; !ok {
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

	// Only children that opsmith labelled are cached: unrelated objects of
	// these kinds in the cluster cost no memory and cause no events.
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{apply.LabelManagedBy: apply.ManagedByValue})}
	cacheOpts := cache.Options{
		SyncPeriod: &o.SyncPeriod,
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:                     managed,
			&corev1.Service{}:                        managed,
			&corev1.ServiceAccount{}:                 managed,
			&corev1.ConfigMap{}:                      managed,
			&autoscalingv2.HorizontalPodAutoscaler{}: managed,
			&networkingv1.NetworkPolicy{}:            managed,
			&networkingv1.Ingress{}:                  managed,
			&corev1.ResourceQuota{}:                  managed,
			&schedulingv1.PriorityClass{}:            managed,
			&corev1.Pod{}:                            managed,
			&corev1.PersistentVolumeClaim{}:          managed,
			&policyv1.PodDisruptionBudget{}:          managed,
		},
		// managedFields are large and never read by opsmith: the apply
		// package compares object content, not field ownership.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if o.MicroService.Gateway.Name != "" {
		cacheOpts.ByObject[&gatewayv1.HTTPRoute{}] = managed
	}
	if len(o.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        Scheme(),
		Cache:                         cacheOpts,
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

	copts := controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}
	for name, setup := range controllers {
		if !slices.Contains(o.Controllers, name) {
			continue
		}
		if err := setup(mgr, o, copts); err != nil {
			return nil, fmt.Errorf("setting up controller %s: %w", name, err)
		}
	}
	return mgr, nil
}

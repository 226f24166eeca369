package microservicedeploy

import (
	"flag"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/kind"
)

// Kind describes the MicroServiceDeploy controller, configured by *cfg
// (which its flags set), to the manager.
func Kind(cfg *Config) kind.Kind {
	children := []client.Object{
		&appsv1.Deployment{}, &corev1.Service{}, &corev1.ServiceAccount{}, &corev1.ConfigMap{},
		&autoscalingv2.HorizontalPodAutoscaler{}, &networkingv1.NetworkPolicy{}, &networkingv1.Ingress{},
		&corev1.ResourceQuota{}, &schedulingv1.PriorityClass{},
	}
	if cfg.Gateway.Name != "" {
		// Only with a Gateway: without one, the Gateway API CRDs may not
		// be installed at all.
		children = append(children, &gatewayv1.HTTPRoute{})
	}
	return kind.Kind{
		Name: Name,
		AddToScheme: func(s *runtime.Scheme) error {
			if err := appsv1alpha1.AddToScheme(s); err != nil {
				return err
			}
			return gatewayv1.Install(s)
		},
		Children: children,
		Flags:    func(fs *flag.FlagSet) { cfg.BindFlags(fs) },
		Setup: func(env kind.Env) error {
			mgr := env.Manager
			return (&Reconciler{
				Client:    mgr.GetClient(),
				APIReader: mgr.GetAPIReader(),
				Recorder:  mgr.GetEventRecorder(FieldManager),
				Config:    *cfg,
				Pacer:     &apply.Pacer{Delay: env.StatusProgressDelay},
			}).SetupWithManager(mgr, env.Controller)
		},
	}
}

// BindFlags binds the controller's settings to fs, with c's values as
// defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.BaseDomain, "microservice-base-domain", c.BaseDomain,
		"MicroServiceDeploy: base of the domain names <path>.<msName>.<base>")
	fs.StringVar(&c.IngressClass, "microservice-ingress-class", c.IngressClass,
		"MicroServiceDeploy: class of the Ingresses (empty: the cluster's default class)")
	fs.StringVar(&c.AuthURL, "microservice-auth-url", c.AuthURL,
		"MicroServiceDeploy: external authentication URL that checks callers of microservices with needAuth; without it their routes are not published")
	fs.StringVar(&c.AuthSignin, "microservice-auth-signin", c.AuthSignin,
		"MicroServiceDeploy: where unauthenticated browsers are sent (optional)")
	fs.StringVar(&c.IngressNamespace, "microservice-ingress-namespace", c.IngressNamespace,
		"MicroServiceDeploy: namespace of the ingress controller, the only source of traffic to pods with needAuth")
	fs.Var(&refFlag{&c.Gateway, false}, "microservice-gateway",
		"MicroServiceDeploy: route with Gateway API HTTPRoutes attached to this Gateway (namespace/name) instead of Ingresses")
	fs.Var(&refFlag{&c.AuthService, true}, "microservice-auth-service",
		"MicroServiceDeploy with a Gateway: external authentication Service (namespace/name:port) that HTTPRoutes of needAuth microservices call")
	fs.StringVar(&c.AuthPath, "microservice-auth-path", c.AuthPath,
		"MicroServiceDeploy with a Gateway: path prefix of the authentication Service's checks")
}

// refFlag is an ObjectRef flag: a malformed value fails flag parsing.
type refFlag struct {
	ref      *ObjectRef
	withPort bool
}

func (f *refFlag) String() string {
	if f == nil || f.ref == nil {
		return ""
	}
	return f.ref.String()
}

func (f *refFlag) Set(s string) error {
	ref, err := ParseObjectRef(s, f.withPort)
	if err != nil {
		return err
	}
	*f.ref = ref
	return nil
}

package microservicedeploy

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
)

// Builders of the shared route's objects (see route.go). Without a Gateway
// configured, a path's domain name is routed by an Ingress; with --microservice-gateway, by a
// Gateway API HTTPRoute attached to that Gateway. With needAuth, the
// HTTPRoute calls the configured authentication Service through the
// ExternalAuth filter (Gateway API experimental channel; a cluster with
// only the standard channel rejects the route and the instance's status
// says so).

// authConfigured reports whether callers of a needAuth route can be checked
// with the route kind in use.
func (c Config) authConfigured() bool {
	if c.Gateway.Name != "" {
		return c.AuthService.Name != ""
	}
	return c.AuthURL != ""
}

// authSetting names the flag that configures authentication for the route
// kind in use, for status messages.
func (c Config) authSetting() string {
	if c.Gateway.Name != "" {
		return "--microservice-auth-service"
	}
	return "--microservice-auth-url"
}

// HTTPRoute routes the path's domain name through the configured Gateway
// to the shared Service.
func HTTPRoute(p Path, cfg Config) *gatewayv1ac.HTTPRouteApplyConfiguration {
	rule := gatewayv1ac.HTTPRouteRule().
		WithMatches(gatewayv1ac.HTTPRouteMatch().
			WithPath(gatewayv1ac.HTTPPathMatch().
				WithType(gatewayv1.PathMatchPathPrefix).
				WithValue("/"))).
		WithBackendRefs(gatewayv1ac.HTTPBackendRef().
			WithName(gatewayv1.ObjectName(SharedName(p.MsName, p.Path))).
			WithPort(servicePort))
	if p.NeedAuth() && cfg.AuthService.Name != "" {
		auth := gatewayv1ac.HTTPExternalAuthFilter().
			WithExternalAuthProtocol(gatewayv1.HTTPRouteExternalAuthHTTPProtocol).
			WithBackendRef(gatewayv1ac.BackendObjectReference().
				WithName(gatewayv1.ObjectName(cfg.AuthService.Name)).
				WithNamespace(gatewayv1.Namespace(cfg.AuthService.Namespace)).
				WithPort(cfg.AuthService.Port))
		if cfg.AuthPath != "" {
			auth.WithHTTPAuthConfig(gatewayv1ac.HTTPAuthConfig().WithPath(cfg.AuthPath))
		}
		rule.WithFilters(gatewayv1ac.HTTPRouteFilter().
			WithType(gatewayv1.HTTPRouteFilterExternalAuth).
			WithExternalAuth(auth))
	}
	return gatewayv1ac.HTTPRoute(SharedName(p.MsName, p.Path), p.Namespace).
		WithLabels(p.labels()).
		WithOwnerReferences(p.owners()...).
		WithSpec(gatewayv1ac.HTTPRouteSpec().
			WithParentRefs(gatewayv1ac.ParentReference().
				WithName(gatewayv1.ObjectName(cfg.Gateway.Name)).
				WithNamespace(gatewayv1.Namespace(cfg.Gateway.Namespace))).
			WithHostnames(gatewayv1.Hostname(Host(cfg, p.MsName, p.Path))).
			WithRules(rule))
}

// route returns the desired route of a path and an empty object of its
// kind, and an empty object of the kind not in use (to remove after a
// change of configuration, or nil when that kind is not watched).
func route(p Path, cfg Config) (desired runtime.ApplyConfiguration, live, other client.Object) {
	meta := metav1.ObjectMeta{Name: SharedName(p.MsName, p.Path), Namespace: p.Namespace}
	if cfg.Gateway.Name != "" {
		return HTTPRoute(p, cfg), &gatewayv1.HTTPRoute{ObjectMeta: meta}, &networkingv1.Ingress{ObjectMeta: meta}
	}
	return Ingress(p, cfg), &networkingv1.Ingress{ObjectMeta: meta}, nil
}

// SharedName names the Service and route that all instances of one msName
// and path share.
func SharedName(msName, path string) string { return msName + "-" + path }

// Host is the domain name of an msName and path.
func Host(cfg Config, msName, path string) string {
	return path + "." + msName + "." + cfg.BaseDomain
}

// Path is what the instances of one msName and path share: the Service
// that selects all their pods and the route of their domain name.
type Path struct {
	Namespace, MsName, Path string
	// Instances are the live instances of this msName and path, sorted by
	// name. They own the shared objects together: when the last one is
	// deleted, the garbage collector deletes the shared objects.
	Instances []*appsv1alpha1.MicroServiceDeploy
}

// NeedAuth reports whether any instance of the path needs authentication:
// one route serves them all, so the strictest setting wins.
func (p Path) NeedAuth() bool {
	for _, m := range p.Instances {
		if m.Spec.NeedAuth {
			return true
		}
	}
	return false
}

func (p Path) labels() map[string]string {
	return map[string]string{
		LabelMicroService:        p.MsName,
		LabelPath:                p.Path,
		apply.LabelManagedBy:     apply.ManagedByValue,
		"app.kubernetes.io/name": p.MsName,
	}
}

func (p Path) owners() []*metav1ac.OwnerReferenceApplyConfiguration {
	refs := make([]*metav1ac.OwnerReferenceApplyConfiguration, 0, len(p.Instances))
	for _, m := range p.Instances {
		refs = append(refs, ownerReference(m, false))
	}
	return refs
}

// SharedService builds the Service that selects the pods of every instance
// of the path.
func SharedService(p Path) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(SharedName(p.MsName, p.Path), p.Namespace).
		WithLabels(p.labels()).
		WithOwnerReferences(p.owners()...).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(map[string]string{LabelMicroService: p.MsName, LabelPath: p.Path}).
			WithPorts(corev1ac.ServicePort().WithName(portName).WithPort(servicePort).
				WithTargetPort(intstr.FromString(portName)).WithProtocol(corev1.ProtocolTCP)))
}

// Ingress routes the path's domain name to the shared Service. With
// needAuth it carries the external authentication settings.
func Ingress(p Path, cfg Config) *networkingv1ac.IngressApplyConfiguration {
	ing := networkingv1ac.Ingress(SharedName(p.MsName, p.Path), p.Namespace).
		WithLabels(p.labels()).
		WithOwnerReferences(p.owners()...)
	if p.NeedAuth() && cfg.AuthURL != "" {
		annotations := map[string]string{"nginx.ingress.kubernetes.io/auth-url": cfg.AuthURL}
		if cfg.AuthSignin != "" {
			annotations["nginx.ingress.kubernetes.io/auth-signin"] = cfg.AuthSignin
		}
		ing.WithAnnotations(annotations)
	}
	spec := networkingv1ac.IngressSpec().
		WithRules(networkingv1ac.IngressRule().
			WithHost(Host(cfg, p.MsName, p.Path)).
			WithHTTP(networkingv1ac.HTTPIngressRuleValue().
				WithPaths(networkingv1ac.HTTPIngressPath().
					WithPath("/").
					WithPathType(networkingv1.PathTypePrefix).
					WithBackend(networkingv1ac.IngressBackend().
						WithService(networkingv1ac.IngressServiceBackend().
							WithName(SharedName(p.MsName, p.Path)).
							WithPort(networkingv1ac.ServiceBackendPort().WithName(portName)))))))
	if cfg.IngressClass != "" {
		spec.WithIngressClassName(cfg.IngressClass)
	}
	return ing.WithSpec(spec)
}

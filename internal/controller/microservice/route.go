package microservice

import (
	"fmt"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"
)

// Routes. Without a Gateway configured, a path's domain name is routed by
// an Ingress (Ingress in resources.go); with --microservice-gateway, by a
// Gateway API HTTPRoute attached to that Gateway. With needAuth, the
// HTTPRoute calls the configured authentication Service through the
// ExternalAuth filter (Gateway API experimental channel; a cluster with
// only the standard channel rejects the route and the instance's status
// says so).

// ObjectRef is a namespaced reference to a Gateway or an authentication
// Service, with an optional port.
type ObjectRef struct {
	Namespace, Name string
	Port            int32
}

// ParseObjectRef reads "namespace/name" or, with port, "namespace/name:port".
func ParseObjectRef(s string, withPort bool) (ObjectRef, error) {
	var ref ObjectRef
	ns, rest, ok := strings.Cut(s, "/")
	if !ok || ns == "" || rest == "" {
		return ref, fmt.Errorf("%q: want namespace/name", s)
	}
	ref.Namespace, ref.Name = ns, rest
	if withPort {
		name, port, ok := strings.Cut(rest, ":")
		p, err := strconv.ParseInt(port, 10, 32)
		if !ok || err != nil || p < 1 || p > 65535 {
			return ref, fmt.Errorf("%q: want namespace/name:port", s)
		}
		ref.Name, ref.Port = name, int32(p)
	}
	return ref, nil
}

func (r ObjectRef) String() string {
	if r.Name == "" {
		return ""
	}
	if r.Port != 0 {
		return fmt.Sprintf("%s/%s:%d", r.Namespace, r.Name, r.Port)
	}
	return r.Namespace + "/" + r.Name
}

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

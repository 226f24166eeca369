package microservicedeploy

import (
	"fmt"
	"strconv"
	"strings"
)

// Config is the operator-wide configuration of the MicroServiceDeploy
// controller.
type Config struct {
	// BaseDomain is the suffix of every microservice domain name:
	// <path>.<msName>.<BaseDomain>.
	BaseDomain string
	// IngressClass is the class of the Ingresses made for routes; empty
	// uses the cluster's default class.
	IngressClass string
	// AuthURL is the external authentication service that checks callers
	// of microservices with needAuth (ingress-nginx's auth-url).
	AuthURL string
	// AuthSignin is where unauthenticated browsers are sent (optional).
	AuthSignin string
	// IngressNamespace is the namespace of the ingress controller (or of
	// the Gateway's proxies): with needAuth, pods accept traffic only from
	// there.
	IngressNamespace string
	// Gateway, when set, routes domain names with HTTPRoutes attached to
	// this Gateway instead of Ingresses.
	Gateway ObjectRef
	// AuthService is the external authentication Service that HTTPRoutes
	// of needAuth microservices call (ExternalAuth filter), and AuthPath the
	// path prefix of its checks.
	AuthService ObjectRef
	AuthPath    string
}

// DefaultConfig is the configuration the manager starts with.
func DefaultConfig() Config {
	return Config{BaseDomain: "microservices.local", IngressNamespace: "ingress-nginx"}
}

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

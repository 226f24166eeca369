// Package gateway tests MicroServiceDeploy routing through the Gateway API:
// a manager configured with a Gateway publishes HTTPRoutes (with the
// ExternalAuth filter for needAuth) instead of Ingresses. It runs its own
// API server with the Gateway API CRDs (experimental channel) installed.
package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/managertest"
	"opsmith.io/opsmith/test/testbed"
)

var suite = &managertest.Suite{Options: func() manager.Options {
	o := manager.DefaultOptions()
	o.Controllers = []string{microservicedeploy.Name}
	o.SyncPeriod = 3 * time.Second
	o.MicroService.BaseDomain = "gw.test"
	o.MicroService.Gateway = microservicedeploy.ObjectRef{Namespace: "infra", Name: "public"}
	o.MicroService.AuthService = microservicedeploy.ObjectRef{Namespace: "auth", Name: "ext-auth", Port: 8080}
	o.MicroService.AuthPath = "/verify"
	return o
}()}

func TestMain(m *testing.M) {
	dir, err := testbed.ModuleDir("sigs.k8s.io/gateway-api")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	suite.CRDDirs = []string{filepath.Join(dir, "config", "crd", "experimental")}
	os.Exit(suite.Main(m))
}

func seedSample(t *testing.T, ns string) *appsv1alpha1.MicroServiceDeploy {
	t.Helper()
	sample := testbed.Sample(t, "apps_v1alpha1_microservicedeploy.yaml", ns)
	if err := suite.Client.Create(context.Background(), sample); err != nil {
		t.Fatal(err)
	}
	m := &appsv1alpha1.MicroServiceDeploy{}
	if err := suite.Client.Get(context.Background(), client.ObjectKeyFromObject(sample), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func route(t *testing.T, ns string) *gatewayv1.HTTPRoute {
	t.Helper()
	r := &gatewayv1.HTTPRoute{}
	testbed.Eventually(t, 20*time.Second, "HTTPRoute published", func() error {
		return suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ms-sample-v1"}, r)
	})
	return r
}

func TestHTTPRouteWithExternalAuth(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	// An Ingress opsmith made for this path before the operator was given
	// a Gateway: it is replaced by the HTTPRoute.
	old := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ms-sample-v1", Labels: map[string]string{
		"app.kubernetes.io/managed-by": "opsmith", microservicedeploy.LabelMicroService: "ms-sample", microservicedeploy.LabelPath: "v1",
	}}, Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: "ms-sample-v1", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}
	if err := suite.Client.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	m := seedSample(t, ns)

	r := route(t, ns)
	parent := r.Spec.ParentRefs[0]
	if parent.Name != "public" || parent.Namespace == nil || *parent.Namespace != "infra" {
		t.Errorf("parentRef %+v", parent)
	}
	if len(r.Spec.Hostnames) != 1 || r.Spec.Hostnames[0] != "v1.ms-sample.gw.test" {
		t.Errorf("hostnames %v", r.Spec.Hostnames)
	}
	rule := r.Spec.Rules[0]
	if b := rule.BackendRefs[0]; b.Name != "ms-sample-v1" || b.Port == nil || *b.Port != 80 {
		t.Errorf("backendRef %+v", b)
	}
	if len(rule.Filters) != 1 || rule.Filters[0].Type != gatewayv1.HTTPRouteFilterExternalAuth {
		t.Fatalf("filters %+v, want ExternalAuth", rule.Filters)
	}
	auth := rule.Filters[0].ExternalAuth
	if auth.BackendRef.Name != "ext-auth" || *auth.BackendRef.Namespace != "auth" || *auth.BackendRef.Port != 8080 || auth.HTTPAuthConfig.Path != "/verify" {
		t.Errorf("externalAuth %+v", auth)
	}
	if uids := r.OwnerReferences; len(uids) != 1 || uids[0].UID != m.UID {
		t.Errorf("owners %+v", r.OwnerReferences)
	}
	testbed.Eventually(t, 20*time.Second, "the Ingress of the old configuration removed", func() error {
		err := suite.Client.Get(ctx, client.ObjectKeyFromObject(old), &networkingv1.Ingress{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("Ingress still there (%v)", err)
	})

	// needAuth off: the filter goes.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := suite.Client.Get(ctx, client.ObjectKeyFromObject(m), m); err != nil {
			return err
		}
		m.Spec.NeedAuth = false
		return suite.Client.Update(ctx, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 20*time.Second, "ExternalAuth filter removed", func() error {
		r := route(t, ns)
		if n := len(r.Spec.Rules[0].Filters); n != 0 {
			return fmt.Errorf("%d filters left", n)
		}
		return nil
	})
}

// TestIdleHTTPRouteWritesNothing: zero writes hold for the HTTPRoute too.
func TestIdleHTTPRouteWritesNothing(t *testing.T) {
	ns := testbed.Namespace(t, suite.Client)
	seedSample(t, ns)
	route(t, ns)
	time.Sleep(2 * time.Second)
	managertest.ExpectIdle(t, suite.Cluster.Config, suite.Options, ns, microservicedeploy.Name, 15*time.Second, 4, func() string {
		return route(t, ns).ResourceVersion
	})
}

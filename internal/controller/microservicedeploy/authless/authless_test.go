// Package authless_test runs the MicroServiceDeploy controller as an
// operator with no external authentication configured, against a real API
// server. It is a test binary of its own because the package's shared
// manager (internal/controller/microservicedeploy) has an auth URL, and a
// second manager watching the same namespaces would publish the routes
// this test proves are withheld.
package authless_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/managertest"
	"opsmith.io/opsmith/test/testbed"
)

var suite = &managertest.Suite{Options: func() manager.Options {
	o := manager.DefaultOptions()
	o.Controllers = []string{microservicedeploy.Name}
	o.MicroService.AuthURL = "" // the point of this package
	return o
}()}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }

func progressing(t *testing.T, ns, name string) (metav1.Condition, string) {
	t.Helper()
	m := &appsv1alpha1.MicroServiceDeploy{}
	if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, m); err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(m.Status.Conditions, appsv1alpha1.ConditionProgressing)
	if c == nil || c.ObservedGeneration != m.Generation {
		return metav1.Condition{}, m.Status.Phase
	}
	return *c, m.Status.Phase
}

func setNeedAuth(t *testing.T, ns, name string, needAuth bool) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		m := &appsv1alpha1.MicroServiceDeploy{}
		if err := suite.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, m); err != nil {
			return err
		}
		m.Spec.NeedAuth = needAuth
		return suite.Client.Update(context.Background(), m)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNeedAuthWithoutAuthIsNotPublished: with needAuth and no external
// authentication configured, the route is not published (and a published
// one is withdrawn), Progressing says AuthNotConfigured and names the flag,
// and the pods are still protected by their NetworkPolicy. Without needAuth
// the route is published.
func TestNeedAuthWithoutAuthIsNotPublished(t *testing.T) {
	ctx := context.Background()
	ns := testbed.Namespace(t, suite.Client)
	m := &appsv1alpha1.MicroServiceDeploy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ms-sample-v1s0"},
		Spec: appsv1alpha1.MicroServiceDeploySpec{
			MsName: "ms-sample", Version: "1.0", Path: "v1", Image: "registry.local/ms:1", Replicas: 1, NeedAuth: true,
		},
	}
	if err := suite.Client.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	route := microservicedeploy.SharedName("ms-sample", "v1")
	withheld := func() {
		t.Helper()
		testbed.Eventually(t, 20*time.Second, "AuthNotConfigured reported", func() error {
			c, phase := progressing(t, ns, m.Name)
			if c.Reason != microservicedeploy.ReasonAuthNotConfigured || c.Status != metav1.ConditionFalse ||
				!strings.Contains(c.Message, "--microservice-auth-url") || phase != appsv1alpha1.PhaseFailed {
				return fmt.Errorf("Progressing %+v, phase %s", c, phase)
			}
			return nil
		})
		// The shared Service and the NetworkPolicy exist: the reconcile
		// went as far as the route, which it withheld.
		for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.NetworkPolicy{}} {
			name := route
			if _, ok := obj.(*networkingv1.NetworkPolicy); ok {
				name = m.Name
			}
			if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
				t.Errorf("%T %s: %v", obj, name, err)
			}
		}
		// Not for a moment: several reconciles (the Service, the
		// NetworkPolicy, the status) happened above.
		for range 5 {
			err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: route}, &networkingv1.Ingress{})
			if !apierrors.IsNotFound(err) {
				t.Fatalf("Ingress %s published without authentication: %v", route, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	withheld()

	setNeedAuth(t, ns, m.Name, false)
	testbed.Eventually(t, 20*time.Second, "route published without needAuth", func() error {
		if err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: route}, &networkingv1.Ingress{}); err != nil {
			return err
		}
		if c, _ := progressing(t, ns, m.Name); c.Reason == microservicedeploy.ReasonAuthNotConfigured || c.Reason == "" {
			return fmt.Errorf("Progressing %+v", c)
		}
		return nil
	})

	// needAuth again: the published route is withdrawn.
	setNeedAuth(t, ns, m.Name, true)
	testbed.Eventually(t, 20*time.Second, "route withdrawn", func() error {
		err := suite.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: route}, &networkingv1.Ingress{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("Ingress still there: %v", err)
	})
	withheld()
}

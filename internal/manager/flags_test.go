package manager

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"testing"

	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/controller/microservicedeploy"
)

func TestBindFlags(t *testing.T) {
	o := DefaultOptions()
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.BindFlags(fs)
	err := fs.Parse([]string{
		"--controllers", "appservice, etcdcluster,", "--namespaces", "a,b", "--kube-api-qps", "12.5",
		"--microservice-gateway", "infra/public", "--microservice-auth-service", "auth/ext:8080",
		"--microservice-base-domain", "example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Controllers, []string{"appservice", "etcdcluster"}) || !slices.Equal(o.Namespaces, []string{"a", "b"}) {
		t.Errorf("controllers %q namespaces %q", o.Controllers, o.Namespaces)
	}
	if o.ClientQPS != 12.5 {
		t.Errorf("qps %v", o.ClientQPS)
	}
	ms := o.MicroService
	if ms.Gateway != (microservicedeploy.ObjectRef{Namespace: "infra", Name: "public"}) ||
		ms.AuthService != (microservicedeploy.ObjectRef{Namespace: "auth", Name: "ext", Port: 8080}) ||
		ms.BaseDomain != "example.com" || ms.IngressNamespace != "ingress-nginx" {
		t.Errorf("microservice config %+v", ms)
	}

	for _, bad := range [][]string{{"--microservice-gateway", "public"}, {"--microservice-auth-service", "auth/ext"}, {"--kube-api-qps", "x"}} {
		o := DefaultOptions()
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.BindFlags(fs)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEveryKindIsRegisteredOnce(t *testing.T) {
	o := DefaultOptions()
	o.MicroService.Gateway = microservicedeploy.ObjectRef{Namespace: "infra", Name: "public"}
	names := map[string]bool{}
	for _, k := range kinds(&o) {
		if names[k.Name] || k.Name == "" || k.Setup == nil || k.AddToScheme == nil {
			t.Errorf("kind %q registered twice or incomplete", k.Name)
		}
		names[k.Name] = true
	}
	cached := managedCache(kinds(&o))
	seen := map[string]int{}
	for obj := range cached {
		seen[fmt.Sprintf("%T", obj)]++
	}
	for typ, n := range seen {
		if n != 1 {
			t.Errorf("%s cached %d times", typ, n)
		}
	}
	if seen["*v1.HTTPRoute"] != 1 || seen["*v1.Pod"] != 1 || seen["*v1.Deployment"] != 1 || seen["*v1.Secret"] != 0 {
		t.Errorf("cached types %v", seen)
	}
	// Secrets are never cached (they are read by name from the API
	// server), and every cached type holds only the objects opsmith
	// labelled.
	for obj, by := range cached {
		if by.Label == nil || by.Label.String() != apply.LabelManagedBy+"="+apply.ManagedByValue {
			t.Errorf("%T cached with selector %v, want only opsmith's objects", obj, by.Label)
		}
	}
}

package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReadManifests decodes every object of the YAML files in dir (not
// recursive), in file name order.
func ReadManifests(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		more, err := ReadManifestFile(f)
		if err != nil {
			return nil, err
		}
		objs = append(objs, more...)
	}
	return objs, nil
}

// ReadManifestFile decodes every object of one YAML file.
func ReadManifestFile(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// Apply server-side applies objects as field manager "testbed".
func Apply(ctx context.Context, c client.Client, objs ...*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("testbed"), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// CRDClient returns an uncached admin client of c whose scheme has the
// built-in kinds and those addToScheme adds, after installing the
// project's generated CRDs (config/crd/bases): what admission tests of the
// API types need.
func CRDClient(ctx context.Context, c *Cluster, addToScheme ...func(*runtime.Scheme) error) (client.Client, error) {
	s := runtime.NewScheme()
	for _, add := range append([]func(*runtime.Scheme) error{clientgoscheme.AddToScheme}, addToScheme...) {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	k8s, err := client.New(c.Config, client.Options{Scheme: s})
	if err != nil {
		return nil, err
	}
	return k8s, InstallCRDs(ctx, k8s, filepath.Join(RepoRoot(), "config", "crd", "bases"))
}

// InstallCRDs applies the CustomResourceDefinitions in dir (other objects
// there are skipped) and waits until the API server serves them.
func InstallCRDs(ctx context.Context, c client.Client, dir string) error {
	all, err := ReadManifests(dir)
	if err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	for _, o := range all {
		if o.GetKind() == "CustomResourceDefinition" {
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		return fmt.Errorf("no CRDs found in %s", dir)
	}
	if err := Apply(ctx, c, objs...); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, o := range objs {
		for {
			// Read unstructured: the caller's scheme need not know CRDs.
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
			if err := c.Get(ctx, client.ObjectKey{Name: o.GetName()}, u); err != nil {
				return err
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
				return err
			}
			// Established, and served: discovery (the client's REST
			// mapper) can lag the condition by a moment.
			if established(crd) && mapped(c, crd) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after 30s", o.GetName())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// mapped reports whether c's REST mapper resolves every served version of
// crd's kind.
func mapped(c client.Client, crd *apiextensionsv1.CustomResourceDefinition) bool {
	gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
	for _, v := range crd.Spec.Versions {
		if v.Served {
			if _, err := c.RESTMapper().RESTMapping(gk, v.Name); err != nil {
				return false
			}
		}
	}
	return true
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// ModuleDir returns the directory of a Go module the repository depends
// on, in the module cache (downloading it if needed): for example to
// install the CRDs a dependency ships.
func ModuleDir(module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating module %s: %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Sample reads the one object of config/samples/<file> and puts it in
// namespace ns.
func Sample(t testing.TB, file, ns string) *unstructured.Unstructured {
	t.Helper()
	objs, err := ReadManifestFile(filepath.Join(RepoRoot(), "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("%s holds %d objects, want 1", file, len(objs))
	}
	objs[0].SetNamespace(ns)
	return objs[0]
}

// Command devcluster is what `make run` runs: it starts a simulated cluster
// (or uses an existing one), installs the CRDs, runs the opsmith manager
// against it, applies the samples, tells you how to look at them and keeps
// everything running until Ctrl-C, then stops everything it started.
//
// It is a development entry point: the shipped manager binary does not
// link the testbed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/testbed"
)

func main() {
	root := testbed.RepoRoot()
	existing := flag.Bool("use-existing-cluster", os.Getenv("USE_EXISTING_CLUSTER") == "true",
		"run against the cluster of $KUBECONFIG (or ~/.kube/config) instead of starting one (env USE_EXISTING_CLUSTER=true)")
	dir := flag.String("dir", filepath.Join(root, "bin", "dev"), "directory of the local cluster: data, kubeconfig, logs")
	nodes := flag.Int("nodes", 3, "simulated nodes of the local cluster")
	samples := flag.String("samples", filepath.Join(root, "config", "samples"), "directory of sample resources to apply")
	namespace := flag.String("namespace", "default", "namespace to apply the samples in")
	flag.Parse()

	if err := run(root, *existing, *dir, *nodes, *samples, *namespace); err != nil {
		fmt.Fprintf(os.Stderr, "devcluster: %v\n", err)
		os.Exit(1)
	}
}

func run(root string, existing bool, dir string, nodes int, samples, namespace string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg *rest.Config
	var kubeconfig string
	if existing {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		var err error
		if cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig(); err != nil {
			return fmt.Errorf("loading kubeconfig: %w", err)
		}
		kubeconfig = rules.GetDefaultFilename()
		fmt.Printf("using the existing cluster at %s (kubeconfig %s)\n", cfg.Host, kubeconfig)
	} else {
		// A leftover directory belongs to a previous run that is over.
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		fmt.Println("starting a simulated cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes)...")
		c, err := testbed.Start(ctx, testbed.Options{Mode: testbed.Simulated, Dir: dir, Nodes: nodes, Log: os.Stdout})
		if err != nil {
			return err
		}
		defer func() {
			fmt.Println("stopping the cluster...")
			c.Stop(true)
		}()
		cfg, kubeconfig = c.Config, c.Kubeconfig
	}

	k8s, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return err
	}
	if err := testbed.InstallCRDs(ctx, k8s, filepath.Join(root, "config", "crd", "bases")); err != nil {
		return fmt.Errorf("installing CRDs: %w", err)
	}

	ports, err := testbed.FreePorts(2)
	if err != nil {
		return err
	}
	mgr, err := testbed.StartProcess("manager", filepath.Join(root, "bin", "manager"), []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		// The MicroServiceDeploy sample asks for tenant authentication;
		// a real cluster points this at its authentication service.
		"--microservice-auth-url=http://auth.opsmith.local/verify",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
	}, "")
	if err != nil {
		return err
	}
	defer mgr.Stop(15 * time.Second)

	objs, err := testbed.ReadManifests(samples)
	if err != nil {
		return err
	}
	for _, o := range objs {
		o.SetNamespace(namespace)
	}
	if err := testbed.Apply(ctx, k8s, objs...); err != nil {
		return fmt.Errorf("applying samples: %w", err)
	}

	fmt.Printf(`
opsmith is running against %s; the samples in %s are applied in namespace %q.

In another shell:
  export KUBECONFIG=%s
  export PATH=%s:$PATH    # kubectl built by make testbed
  kubectl get appservices,microservicedeploys,deployments,services,ingresses,hpa,pods -n %s
  kubectl describe appservice nginx-app -n %s

Manager metrics: https://127.0.0.1:%d/metrics (needs a bearer token); probes: http://127.0.0.1:%d/readyz
Press Ctrl-C to stop everything.
`, cfg.Host, samples, namespace, kubeconfig, filepath.Join(root, "bin"), namespace, namespace, ports[0], ports[1])

	select {
	case <-ctx.Done():
	case <-mgr.Done():
		return fmt.Errorf("the manager exited unexpectedly")
	}
	return nil
}

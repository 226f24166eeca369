package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/internal/manager"
	"opsmith.io/opsmith/test/testbed"
)

const (
	operatorNamespace = "opsmith-system"
	operatorSA        = "opsmith-controller-manager"
)

var (
	cluster *testbed.Cluster
	k8s     client.Client // uncached, cluster admin
	// metricsURL and probeURL of the manager under test.
	metricsURL, probeURL string
)

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.Simulated, Nodes: 2}, setup))
}

func setup(ctx context.Context, c *testbed.Cluster) error {
	cluster = c
	var err error
	if k8s, err = client.New(c.Config, client.Options{Scheme: manager.Scheme()}); err != nil {
		return err
	}
	if err := deployManifests(ctx); err != nil {
		return err
	}
	return startManager(ctx)
}

// deployManifests applies config/default as `make deploy` renders it.
func deployManifests(ctx context.Context) error {
	out, err := kubectl("kustomize", filepath.Join(testbed.RepoRoot(), "config", "default"))
	if err != nil {
		return err
	}
	path := filepath.Join(cluster.Dir, "deploy.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		return err
	}
	objs, err := testbed.ReadManifestFile(path)
	if err != nil {
		return err
	}
	// CRDs first, so that nothing else waits on them.
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	if err := testbed.Apply(ctx, k8s, crds...); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := kubectl("get", "appservices", "-A"); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("CRDs not served: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return testbed.Apply(ctx, k8s, rest...)
}

// startManager runs bin/manager out of cluster, authenticated as the
// ServiceAccount that config/default creates for the in-cluster manager.
func startManager(ctx context.Context) error {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: operatorSA}}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		return fmt.Errorf("requesting a token for %s: %w", operatorSA, err)
	}
	admin, err := clientcmd.LoadFromFile(cluster.Kubeconfig)
	if err != nil {
		return err
	}
	cfg := admin.DeepCopy()
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{"manager": {Token: tr.Status.Token}}
	cfg.Contexts[cfg.CurrentContext].AuthInfo = "manager"
	kubeconfig := filepath.Join(cluster.Dir, "manager.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return err
	}

	bin := filepath.Join(testbed.BinDir(), "manager")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s missing: run `make build`", bin)
	}
	ports, err := testbed.FreePorts(2)
	if err != nil {
		return err
	}
	metricsURL = fmt.Sprintf("https://127.0.0.1:%d/metrics", ports[0])
	probeURL = fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1])
	_, err = cluster.StartProcess("manager", bin,
		"--kubeconfig="+kubeconfig,
		"--leader-elect",
		"--leader-election-namespace="+operatorNamespace,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
		"--zap-log-level=debug",
		"--microservice-base-domain=e2e.test",
		"--microservice-auth-url=https://auth.e2e.test/verify",
	)
	return err
}

// kubectl runs the kubectl the testbed built, as cluster admin.
func kubectl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(testbed.BinDir(), "kubectl"), append([]string{"--kubeconfig=" + cluster.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Package operator installs opsmith into a testbed cluster the way users
// install it (the kustomize manifests of config/default, rendered by the
// kubectl the testbed built) and runs the manager binary against it with
// the credentials of the ServiceAccount those manifests create, so the
// shipped RBAC is what end-to-end tests and benchmarks exercise.
package operator

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"opsmith.io/opsmith/test/testbed"
)

// Namespace and ServiceAccount that config/default creates.
const (
	Namespace      = "opsmith-system"
	ServiceAccount = "opsmith-controller-manager"
)

// Kubectl runs the kubectl the testbed built, as cluster admin.
func Kubectl(c *testbed.Cluster, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(testbed.BinDir(), "kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Deploy applies config/default as `make deploy` renders it, CRDs first.
// Objects of the kinds in skip are left out (a benchmark leaves out the
// manager Deployment, whose pods would only be simulated).
func Deploy(ctx context.Context, c *testbed.Cluster, k8s client.Client, skip ...string) error {
	out, err := Kubectl(c, "kustomize", filepath.Join(testbed.RepoRoot(), "config", "default"))
	if err != nil {
		return err
	}
	path := filepath.Join(c.Dir, "deploy.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		return err
	}
	objs, err := testbed.ReadManifestFile(path)
	if err != nil {
		return err
	}
	var crds, rest []*unstructured.Unstructured
	for _, o := range objs {
		switch {
		case contains(skip, o.GetKind()):
		case o.GetKind() == "CustomResourceDefinition":
			crds = append(crds, o)
		default:
			rest = append(rest, o)
		}
	}
	if err := testbed.Apply(ctx, k8s, crds...); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := Kubectl(c, "get", "appservices,microservicedeploys", "-A"); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("CRDs not served: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return testbed.Apply(ctx, k8s, rest...)
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// Manager is a running manager binary.
type Manager struct {
	*testbed.Process
	// MetricsURL (HTTPS, needs an authorized token) and ProbeURL.
	MetricsURL, ProbeURL string
	// User is the Kubernetes user name the manager authenticates as.
	User string
}

// StartManager runs bin/manager out of cluster as the ServiceAccount of
// config/default, with leader election in its namespace and extra flags.
// Its log is LogDir/<name>.log; the cluster stops it.
func StartManager(ctx context.Context, c *testbed.Cluster, k8s client.Client, name string, args ...string) (*Manager, error) {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: ServiceAccount}}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		return nil, fmt.Errorf("requesting a token for %s: %w", ServiceAccount, err)
	}
	admin, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg := admin.DeepCopy()
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{"manager": {Token: tr.Status.Token}}
	cfg.Contexts[cfg.CurrentContext].AuthInfo = "manager"
	kubeconfig := filepath.Join(c.Dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return nil, err
	}
	bin := filepath.Join(testbed.BinDir(), "manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s missing: run `make build`", bin)
	}
	ports, err := testbed.FreePorts(2)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		MetricsURL: fmt.Sprintf("https://127.0.0.1:%d/metrics", ports[0]),
		ProbeURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]),
		User:       "system:serviceaccount:" + Namespace + ":" + ServiceAccount,
	}
	m.Process, err = c.StartProcess(name, bin, append([]string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect",
		"--leader-election-namespace=" + Namespace,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
	}, args...)...)
	return m, err
}

// WaitReady waits until the manager's readiness probe answers 200 and its
// metrics endpoint answers at all (it starts later: it first makes a
// self-signed certificate).
func (m *Manager) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ProbeURL, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, _, err := m.Metrics(ctx, ""); err == nil {
					return nil
				}
			}
		}
		if done, exitErr := m.Exited(); done {
			return fmt.Errorf("manager exited: %v (log %s)", exitErr, m.LogPath)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("manager not ready after %s (log %s)", timeout, m.LogPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Metrics fetches the metrics page with a bearer token: status code and
// body.
func (m *Manager) Metrics(ctx context.Context, token string) (int, string, error) {
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The manager serves a self-signed certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback endpoint under test
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.MetricsURL, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

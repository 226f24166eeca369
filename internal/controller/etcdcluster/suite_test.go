package etcdcluster_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/controller/etcdcluster"
	"opsmith.io/opsmith/test/testbed"
)

// The tests of this package share one API server (etcd + kube-apiserver;
// no kubelet, so member pods never run and etcd never answers: these tests
// cover the Kubernetes side, internal/etcd's tests the membership side
// against real etcd processes). The controller runs in a manager with the
// label-scoped cache the shipped manager uses; writes counts every request
// it sends other than GET.
var (
	k8s    client.Client
	cfg    *rest.Config
	writes atomic.Int64
)

const timeout = 20 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testbed.RunMain(m, testbed.Options{Mode: testbed.APIServer}, func(ctx context.Context, c *testbed.Cluster) error {
		cfg = c.Config
		level := zapcore.ErrorLevel
		if os.Getenv("OPSMITH_TEST_VERBOSE") != "" {
			level = zapcore.DebugLevel
		}
		ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(level)))
		var err error
		if k8s, err = client.New(c.Config, client.Options{Scheme: scheme()}); err != nil {
			return err
		}
		if err := testbed.InstallCRDs(ctx, k8s, filepath.Join(testbed.RepoRoot(), "config", "crd", "bases")); err != nil {
			return err
		}
		stop, err := startManager(ctx, c.Config)
		if err != nil {
			return err
		}
		c.OnStop(stop)
		return nil
	}))
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(etcdv1alpha1.AddToScheme(s))
	return s
}

type countWrites struct{ next http.RoundTripper }

func (c countWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		writes.Add(1)
	}
	return c.next.RoundTrip(r)
}

func startManager(ctx context.Context, c *rest.Config) (func(), error) {
	c = rest.CopyConfig(c)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countWrites{rt} })
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{apply.LabelManagedBy: apply.ManagedByValue})}
	mgr, err := ctrl.NewManager(c, ctrl.Options{
		Scheme:  scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: managed, &corev1.PersistentVolumeClaim{}: managed,
			&corev1.Service{}: managed, &policyv1.PodDisruptionBudget{}: managed,
		}},
		Controller: config.Controller{SkipNameValidation: ptrTrue()},
	})
	if err != nil {
		return nil, err
	}
	if err := (&etcdcluster.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorder(etcdcluster.FieldManager), Dial: etcdcluster.DialEtcd,
	}).SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 4}); err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(os.Stderr, "manager stopped with error: %v\n", err)
		}
	}, nil
}

func ptrTrue() *bool { t := true; return &t }

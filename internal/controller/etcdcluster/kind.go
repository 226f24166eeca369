package etcdcluster

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	etcdv1alpha1 "opsmith.io/opsmith/api/etcd/v1alpha1"
	"opsmith.io/opsmith/internal/kind"
)

// Kind describes the EtcdCluster controller to the manager.
func Kind() kind.Kind {
	return kind.Kind{
		Name:        Name,
		AddToScheme: etcdv1alpha1.AddToScheme,
		Children: []client.Object{
			&corev1.Pod{}, &corev1.PersistentVolumeClaim{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{},
		},
		Setup: func(env kind.Env) error {
			mgr := env.Manager
			return (&Reconciler{
				Client:    mgr.GetClient(),
				APIReader: mgr.GetAPIReader(),
				Recorder:  mgr.GetEventRecorder(FieldManager),
				Dial:      DialEtcd,
			}).SetupWithManager(mgr, env.Controller)
		},
	}
}

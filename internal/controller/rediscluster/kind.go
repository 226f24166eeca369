package rediscluster

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/kind"
)

// Kind describes the RedisCluster controller to the manager. Of Secrets,
// the cache holds only those opsmith labelled (the generated password and
// redis.conf); a Secret the user names is read from the API server.
func Kind() kind.Kind {
	return kind.Kind{
		Name:        Name,
		AddToScheme: redisv1alpha1.AddToScheme,
		Children: []client.Object{
			&corev1.Pod{}, &corev1.PersistentVolumeClaim{}, &corev1.Service{}, &corev1.Secret{}, &policyv1.PodDisruptionBudget{},
		},
		Setup: func(env kind.Env) error {
			mgr := env.Manager
			return (&Reconciler{
				Client:    mgr.GetClient(),
				APIReader: mgr.GetAPIReader(),
				Recorder:  mgr.GetEventRecorder(FieldManager),
			}).SetupWithManager(mgr, env.Controller)
		},
	}
}

package rediscluster

import (
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	redisv1alpha1 "opsmith.io/opsmith/api/redis/v1alpha1"
	"opsmith.io/opsmith/internal/kind"
)

// Kind describes the RedisCluster controller to the manager. Its Secrets
// (the generated password, redis.conf, a password Secret the user names)
// are not cached: the manager reads Secrets by name from the API server.
func Kind() kind.Kind {
	return kind.Kind{
		Name:        Name,
		AddToScheme: redisv1alpha1.AddToScheme,
		Children: []client.Object{
			&corev1.Pod{}, &corev1.PersistentVolumeClaim{}, &corev1.Service{}, &policyv1.PodDisruptionBudget{},
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

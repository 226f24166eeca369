package appservice

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "opsmith.io/opsmith/api/apps/v1alpha1"
	"opsmith.io/opsmith/internal/apply"
	"opsmith.io/opsmith/internal/kind"
)

// Kind describes the AppService controller to the manager.
func Kind() kind.Kind {
	return kind.Kind{
		Name:        Name,
		AddToScheme: appsv1alpha1.AddToScheme,
		Children:    []client.Object{&appsv1.Deployment{}, &corev1.Service{}},
		Setup: func(env kind.Env) error {
			mgr := env.Manager
			return (&Reconciler{
				Client:    mgr.GetClient(),
				APIReader: mgr.GetAPIReader(),
				Recorder:  mgr.GetEventRecorder(FieldManager),
				Pacer:     &apply.Pacer{Delay: env.StatusProgressDelay},
			}).SetupWithManager(mgr, env.Controller)
		},
	}
}

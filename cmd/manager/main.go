// Command manager runs the opsmith controllers.
package main

import (
	"flag"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"opsmith.io/opsmith/internal/manager"
)

func main() {
	o := manager.DefaultOptions()
	o.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "loading kubeconfig")
		os.Exit(1)
	}
	mgr, err := manager.New(cfg, o)
	if err != nil {
		log.Error(err, "creating manager")
		os.Exit(1)
	}
	log.Info("starting manager", "controllers", o.Controllers, "namespaces", o.Namespaces,
		"leaderElection", o.LeaderElection)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "running manager")
		os.Exit(1)
	}
}

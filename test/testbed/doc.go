// Package testbed starts real Kubernetes control planes on loopback for
// tests and for `make run`, from binaries the project builds itself into
// bin/ (see hack/tools and the Makefile's testbed target).
//
// Three modes:
//
//   - APIServer: etcd and kube-apiserver. Enough for controller tests: the
//     real API server validates, defaults, runs CEL rules and serves watches.
//     controller-runtime's envtest can use the same binaries through
//     KUBEBUILDER_ASSETS=bin.
//   - Simulated: the same plus kube-controller-manager, kube-scheduler and
//     kwok, which runs simulated nodes. Deployments roll out, ReplicaSets
//     create pods, the scheduler binds them to kwok nodes and kwok reports
//     them Running and Ready, garbage collection and quotas work.
//   - RealNode: kube-controller-manager, kube-scheduler and one real node
//     (containerd, runc, a CNI bridge, a kubelet, kube-proxy, CoreDNS and
//     kube-network-policies, which enforces NetworkPolicies) on this
//     machine; Linux and root only. Its default StorageClass hands out
//     local volumes, provisioned by the testbed itself (volumes.go), that a
//     non-root pod with fsGroup can write.
//
// Every process listens on 127.0.0.1 on ports chosen free at start, so
// several clusters (and whatever else runs on the machine) coexist. Stop
// ends every process it started, with SIGTERM then SIGKILL after a deadline
// (an API server can ignore SIGTERM for a long time); processes also get
// SIGKILL from the kernel when the process that started them dies, so an
// interrupted test run leaves nothing behind. Logs of every component are
// kept in the cluster's directory when a run fails.
package testbed

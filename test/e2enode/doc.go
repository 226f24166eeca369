// Package e2enode holds the end-to-end tests on the real-node testbed:
// opsmith deployed in the cluster with `make deploy` (the kustomize
// manifests, the shipped RBAC, the manager image built by `make images`),
// driven only through the API as a user would, against real containers on
// a real kubelet. The tests need Linux and root; they are built with the
// realnode tag and run by `make test-e2e`.
//
// Every operand's suite lives in this one package (etcd today; Redis and
// OpenSearch next), so that they share the one real node TestMain starts:
// a node costs about 15 s to start and stop cleanly, and only one can run
// on a machine at a time. Tests isolate themselves by namespace.
package e2enode

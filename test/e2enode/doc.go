// Package e2enode holds the end-to-end tests on the real-node testbed:
// opsmith deployed in the cluster with `make deploy` (the kustomize
// manifests, the shipped RBAC, the manager image built by `make images`),
// driven only through the API as a user would, against real containers on
// a real kubelet. The tests need Linux and root; they are built with the
// realnode tag and run by `make test-e2e`.
package e2enode

// Package e2e holds end-to-end tests on a simulated cluster (real
// kube-apiserver, controller-manager and scheduler; kwok nodes). opsmith is
// installed the way users install it (the kustomize manifests of
// config/default) and the manager binary runs with the credentials of the
// ServiceAccount those manifests create, so the shipped RBAC is what the
// tests exercise. The tests drive it only through the API.
package e2e

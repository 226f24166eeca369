// Package manager builds the opsmith controller manager from its options:
// the scheme, the cache scope (watched namespaces, only the children opsmith
// labels), leader election, probes, the authenticated metrics endpoint and
// the set of enabled controllers. cmd/manager only parses flags and calls
// New; tests call New too, so they run the manager exactly as shipped.
package manager

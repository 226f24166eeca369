// Command coredns is CoreDNS with only the plugins the real-node testbed's
// cluster DNS needs, in CoreDNS' own order (a custom build, as CoreDNS
// documents it): serving cluster.local from the Kubernetes API and
// forwarding everything else to the node's resolver.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// The subset of CoreDNS' directive list (core/dnsserver/zdirectives.go),
	// in the same relative order.
	dnsserver.Directives = []string{
		"bind", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes", "forward",
	}
}

func main() { coremain.Run() }

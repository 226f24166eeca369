// Command etcd is the etcd server of the 3.5 line, built from
// go.etcd.io/etcd/server/v3 at the version pinned in go.mod, for the opsmith
// etcd container image of that version (test/images). etcdctl of the same
// version is a tool of this module: go build go.etcd.io/etcd/etcdctl/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

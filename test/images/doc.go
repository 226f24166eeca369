// Package images builds the container images of the real-node testbed from
// local files, without a registry or a Docker engine: static Go programs
// built by the Makefile, etcd built from its Go modules, and Redis and
// busybox taken from Debian packages.
//
// Each image is one deterministic layer (sorted entries, fixed times,
// numeric owners: the same inputs give the same digest) in a
// docker-archive written with go-containerregistry's tarball package,
// which containerd 1.6 imports with
//
//	ctr -a <socket> -n k8s.io images import bin/images/<name>.tar
//
// The references are the constants of this package (PauseRef, ManagerRef,
// Etcd36Ref, Etcd35Ref, RedisRef, BusyboxRef, HTTPEchoRef), so tests and
// the testbed name images by constant. Every image runs as 65532:65532 by
// default and has /etc/passwd and /etc/group (root, nonroot) and a
// world-writable /tmp.
//
// `make images` (hack/images.mk) builds the Go programs into bin/ and runs
// cmd/opsmith-images, which downloads the Debian packages with apt-get
// download into bin/images/debian and writes bin/images/<name>.tar and
// bin/images/images.json: a JSON array of {name, ref, archive (relative to
// the index), digest (manifest), id (config digest, the image ID the CRI
// reports)}; ReadIndex reads it. An image whose inputs did not change is
// not written again: the hash of its inputs is a label of the image config
// (InputsLabel), compared on the next run, so a run with nothing to do
// takes a few seconds.
//
// The tests of this package check the archives that `make images` wrote
// (`make test` runs it first; with -short they are skipped): config and
// files, and, as root, the programs chrooted into each unpacked image,
// and an import into a throwaway containerd.
package images

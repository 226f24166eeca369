// Package images builds the container images of the real-node testbed from
// local files, without a registry or a Docker engine: static Go programs
// built by the Makefile, etcd built from its Go modules, and Redis and
// busybox taken from Debian packages.
//
// Each image is one deterministic layer (sorted entries, fixed times,
// numeric owners) written as a docker-archive with go-containerregistry's
// tarball package; containerd imports it with
//
//	ctr -a <socket> -n k8s.io images import <archive>
//
// Build writes one archive per image and an index (images.json) listing
// each image's reference, archive and digests. An image whose inputs (file
// contents, modes, owners and config) did not change since the last run is
// not written again: the inputs' hash is kept as a label in the image
// config and compared on the next run.
//
// The refs the images carry are the constants of this package, so tests
// and the testbed refer to them by name. `make images` (hack/images.mk)
// builds the Go binaries into bin/ and then runs cmd/opsmith-images, which
// downloads the Debian packages with apt-get download into bin/images/debian
// and writes bin/images/*.tar and bin/images/images.json. The tests of this
// package check the archives that `make images` wrote.
package images

# Container images of the real-node testbed, built from local files without
# a registry or a Docker engine (package test/images): one docker-archive per
# image in bin/images/ and bin/images/images.json, ready for
#   ctr -a <socket> -n k8s.io images import bin/images/<name>.tar
# Included by the Makefile. The Go programs are built here (rebuilt when
# their sources change); opsmith-images then downloads the Debian packages
# (Redis, busybox) into bin/images/debian and writes only the archives whose
# inputs changed, so a run with nothing to do takes a few seconds.

IMAGES_DIR      := $(BIN)/images
# The etcd versions of the etcd images: keep them equal to Etcd36Version and
# Etcd35Version in test/images/refs.go and to go.etcd.io/etcd/server/v3 in
# hack/tools/etcd/go.mod and hack/tools/etcd35/go.mod (opsmith-images checks
# the binaries' --version against the constants).
ETCD_36_VERSION := 3.6.16
ETCD_35_VERSION := 3.5.35
# Extra opsmith-images flags, for example IMAGES_FLAGS='-manager-ref opsmith.local/manager:pr1'.
IMAGES_FLAGS    ?=

# The flags of bin/etcd's build (no -trimpath), so the two etcd 3.6 builds
# share the Go build cache and the second one only links.
IMAGE_GO_FLAGS := -ldflags "-s -w"
ETCD_36_DIR    := $(BIN)/etcd-v$(ETCD_36_VERSION)
ETCD_35_DIR    := $(BIN)/etcd-v$(ETCD_35_VERSION)
IMAGE_INPUTS   := $(IMAGES_DIR)/bin/pause $(IMAGES_DIR)/bin/http-echo $(IMAGES_DIR)/bin/manager \
	$(ETCD_36_DIR)/etcd $(ETCD_36_DIR)/etcdctl $(ETCD_35_DIR)/etcd $(ETCD_35_DIR)/etcdctl

# Sources of the programs, read once per make run.
MANAGER_SRCS := go.mod go.sum $(shell find cmd api internal -name '*.go' -not -name '*_test.go')
IMAGES_SRCS  := go.mod go.sum $(shell find test/images -name '*.go' -not -name '*_test.go')

##@ Testbed images

.PHONY: images
images: $(BIN)/opsmith-images $(IMAGE_INPUTS) ## Build the container images of the real-node testbed into bin/images (docker-archives + images.json).
	$(BIN)/opsmith-images -bin $(BIN) -out $(IMAGES_DIR) $(IMAGES_FLAGS)

$(BIN)/opsmith-images: $(IMAGES_SRCS)
	go build -o $@ ./test/images/cmd/opsmith-images

$(IMAGES_DIR)/bin/pause: $(filter test/images/cmd/pause/%,$(IMAGES_SRCS))
	CGO_ENABLED=0 go build $(IMAGE_GO_FLAGS) -o $@ ./test/images/cmd/pause

$(IMAGES_DIR)/bin/http-echo: $(filter test/images/cmd/http-echo/%,$(IMAGES_SRCS))
	CGO_ENABLED=0 go build $(IMAGE_GO_FLAGS) -o $@ ./test/images/cmd/http-echo

$(IMAGES_DIR)/bin/manager: $(MANAGER_SRCS)
	CGO_ENABLED=0 go build $(IMAGE_GO_FLAGS) -o $@ ./cmd/manager

# etcd 3.6 from the testbed's module (which also builds bin/etcd), etcd 3.5
# from its own: the two minor versions cannot share a module. etcdctl is a
# tool of each module (go.mod "tool" lines).
$(ETCD_36_DIR)/etcd: hack/tools/etcd/go.mod hack/tools/etcd/go.sum hack/tools/etcd/main.go
	cd hack/tools/etcd && CGO_ENABLED=0 go build $(IMAGE_GO_FLAGS) -o $@ .

$(ETCD_36_DIR)/etcdctl: hack/tools/etcd/go.mod hack/tools/etcd/go.sum
	cd hack/tools/etcd && CGO_ENABLED=0 go build $(IMAGE_GO_FLAGS) -o $@ go.etcd.io/etcd/etcdctl/v3

$(ETCD_35_DIR)/etcd: hack/tools/etcd35/go.mod hack/tools/etcd35/go.sum hack/tools/etcd35/main.go
	cd hack/tools/etcd35 && CGO_ENABLED=0 go build $(IMAGE_GO_FLAGS) -o $@ .

$(ETCD_35_DIR)/etcdctl: hack/tools/etcd35/go.mod hack/tools/etcd35/go.sum
	cd hack/tools/etcd35 && CGO_ENABLED=0 go build $(IMAGE_GO_FLAGS) -o $@ go.etcd.io/etcd/etcdctl/v3

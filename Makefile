# opsmith — Kubernetes operators. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
BIN  := $(ROOT)/bin
export OPSMITH_BIN_DIR := $(BIN)

# Pinned versions of every tool and testbed component.
KUBE_VERSION            := v1.37.2
CONTROLLER_GEN_VERSION  := v0.23.0
GOLANGCI_LINT_VERSION   := v2.15.0
KWOK_VERSION            := v0.8.0

KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37

CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT  := $(BIN)/golangci-lint
KUBECTL        := $(BIN)/kubectl
KUBE_BINS      := $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kube-scheduler $(BIN)/kubectl \
                  $(BIN)/kubelet $(BIN)/kube-proxy

# The manager image `make deploy` runs.
IMG ?= opsmith-manager:latest
# go test flags, for example TEST_FLAGS='-run TestDrift -v'.
TEST_FLAGS ?=
# opsmith-bench flags, for example BENCH_FLAGS='-n 10000'.
BENCH_FLAGS ?=

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the Go markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths=./api/... paths=./internal/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy functions of the API types.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: fmt
fmt: ## Format the code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet -tags realnode ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: $(CONTROLLER_GEN) ## Fail if generated files are stale or code is not gofmt-ed.
	hack/verify-generated.sh

##@ Testing

.PHONY: test
# Everything the tests need is built first, two jobs at a time: on a cold
# machine one build's module downloads and apt's package downloads overlap
# another's compiling.
test: ## Unit, controller (real kube-apiserver), end-to-end (simulated cluster) and real-node tests.
	$(MAKE) -j2 --output-sync=target testbed-node verify vet build
	go test ./... -count=1 -timeout 40m $(TEST_FLAGS)
	$(MAKE) test-e2e

.PHONY: test-e2e
test-e2e: testbed-node build ## End-to-end tests on a real node (Linux, root): opsmith deployed with `make deploy`, real containers.
	go test -tags realnode ./test/e2enode/... -count=1 -timeout 30m -v $(TEST_FLAGS)

.PHONY: bench
bench: testbed build ## Benchmarks on a simulated cluster; writes BENCHMARKS.md, bench/report.json and bench/output.log (BENCH_FLAGS='-n 1000').
	@mkdir -p bench
	go build -o $(BIN)/opsmith-bench ./test/bench/cmd/opsmith-bench
	$(BIN)/opsmith-bench $(BENCH_FLAGS) 2>&1 | tee bench/output.log

.PHONY: test-unit
test-unit: ## Pure unit tests only (no cluster).
	go test -short ./... -count=1 $(TEST_FLAGS)

##@ Build

.PHONY: build
build: ## Build the manager binary into bin/.
	go build -o $(BIN)/manager ./cmd/manager

.PHONY: run
run: testbed manifests build ## Start a local simulated cluster, install the CRDs, run the manager and apply the samples.
	go build -o $(BIN)/devcluster ./test/devcluster
	$(BIN)/devcluster

##@ Testbed: Kubernetes components built from the Go module proxy into bin/

.PHONY: testbed
testbed: $(KUBE_BINS) $(BIN)/etcd $(BIN)/kwok $(BIN)/kwok-stages/.done ## Build the testbed components that are missing or outdated.

.PHONY: testbed-node
testbed-node: testbed $(BIN)/coredns $(BIN)/kube-network-policies images ## Also what the real node needs: kubelet, kube-proxy, CoreDNS, the NetworkPolicy agent, local images, Debian packages.
	hack/install-node-deps.sh

# One go build for all six: they share most of their packages. Rebuilt when
# the pinned versions in hack/tools/kube change.
$(KUBE_BINS) &: hack/tools/kube/go.mod hack/tools/kube/go.sum
	@mkdir -p $(BIN)
	@echo "building Kubernetes $(KUBE_VERSION) components (several minutes on a cold cache)"
	cd hack/tools/kube && go build -ldflags "$(KUBE_LDFLAGS)" -o $(BIN)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
		k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
	@touch $(KUBE_BINS)

# CoreDNS with the plugins the real node's cluster DNS uses.
$(BIN)/coredns: hack/tools/coredns/go.mod hack/tools/coredns/go.sum hack/tools/coredns/main.go
	@mkdir -p $(BIN)
	cd hack/tools/coredns && CGO_ENABLED=0 go build -ldflags "-s -w" -o $(BIN)/coredns .

# The NetworkPolicy agent (sigs.k8s.io/kube-network-policies) as a host
# process; hack/tools/kube-network-policies/main.go says how it diverts.
$(BIN)/kube-network-policies: hack/tools/kube-network-policies/go.mod hack/tools/kube-network-policies/go.sum \
		hack/tools/kube-network-policies/main.go
	@mkdir -p $(BIN)
	cd hack/tools/kube-network-policies && CGO_ENABLED=0 go build -ldflags "-s -w" -o $(BIN)/kube-network-policies .

$(BIN)/etcd: hack/tools/etcd/go.mod hack/tools/etcd/go.sum hack/tools/etcd/main.go
	@mkdir -p $(BIN)
	cd hack/tools/etcd && CGO_ENABLED=0 go build -ldflags "-s -w" -o $(BIN)/etcd .

$(BIN)/kwok: Makefile
	@mkdir -p $(BIN)
	GOBIN=$(BIN) CGO_ENABLED=0 go install -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
	@touch $@

# kwok's own Stage definitions, from the module at the pinned version.
$(BIN)/kwok-stages/.done: Makefile
	@mkdir -p $(BIN)/kwok-stages
	dir=$$(go mod download -json sigs.k8s.io/kwok@$(KWOK_VERSION) | sed -n 's/^\s*"Dir": "\(.*\)",/\1/p'); \
	cp $$dir/kustomize/stage/node/fast/node-initialize.yaml \
	   $$dir/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
	   $$dir/kustomize/stage/pod/fast/pod-ready.yaml \
	   $$dir/kustomize/stage/pod/fast/pod-complete.yaml \
	   $$dir/kustomize/stage/pod/fast/pod-delete.yaml $(BIN)/kwok-stages/
	@chmod u+w $(BIN)/kwok-stages/*.yaml
	@touch $@

##@ Tools

$(CONTROLLER_GEN): Makefile
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	@touch $@

$(GOLANGCI_LINT): Makefile
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@touch $@

##@ Deployment (uses $$KUBECONFIG)

.PHONY: install
install: manifests $(KUBECTL) ## Install the CRDs into the cluster.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: manifests $(KUBECTL) ## Remove the CRDs (and with them every custom resource!) from the cluster.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests $(KUBECTL) ## Install CRDs, RBAC and the manager (image $(IMG)) into the cluster.
	$(KUBECTL) kustomize config/default | sed 's|image: opsmith-manager:latest|image: $(IMG)|' | \
		$(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUBECTL) ## Remove everything `make deploy` installed.
	$(KUBECTL) kustomize config/default | $(KUBECTL) delete --ignore-not-found -f -

include hack/images.mk

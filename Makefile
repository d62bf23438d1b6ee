# image-registry-operator: see README.md. Everything builds from the Go module
# proxy into _output/ (git-ignored), so a second run reuses it.

SHELL := /usr/bin/env bash -o errexit -o pipefail -o nounset
GO ?= go
BIN_DIR := $(CURDIR)/_output/bin
# Packages of the operator's own binaries (the ext_auth plugin is a main package too).
CMDS := ./cmd/... ./plugin/...
E2E_TIMEOUT ?= 60m
# The real docker_auth 1.13.0 binary for the docker_auth e2e scenarios
# (.ci/run sets it to ../shared/tools/docker_auth/auth_server); without it
# only those scenarios skip. A relative path is taken from the repository root.
IRO_DOCKER_AUTH_BIN ?=

.PHONY: all build generate verify lint test test-unit test-e2e tools run bench images images-test clean help

all: build

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build the operator, registry-auth and k8s-docker-authn into _output/bin.
	@mkdir -p $(BIN_DIR)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN_DIR)/ $(CMDS)

generate: ## Regenerate clients, deepcopy and CRDs from pkg/apis.
	hack/update-codegen.sh

verify: lint ## Fail when generated code is stale or code is unformatted.
	hack/verify-codegen.sh

lint: ## go vet and gofmt.
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/...
	cd hack/bench && $(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go' | grep -v '^pkg/generated/'))"; \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: test-unit test-e2e images-test ## Run all tests: unit (with -race) and e2e against a real control plane.

test-unit: ## Unit tests with the race detector.
	$(GO) test -race -count=1 ./...

tools: ## Build etcd, kube-apiserver, kube-controller-manager, kubectl, registry and crane (cached).
	hack/build-tools.sh

test-e2e: tools build images ## e2e tests against a local etcd + kube-apiserver + kube-controller-manager.
	IRO_BIN_DIR=$(BIN_DIR) IRO_DOCKER_AUTH_BIN=$(if $(IRO_DOCKER_AUTH_BIN),$(abspath $(IRO_DOCKER_AUTH_BIN))) $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/... 2>&1 | tee _output/e2e.log

run: tools build images ## Bring up a local control plane, the operator and the examples; Ctrl-C stops all.
	hack/run.sh

images: build ## Build the operator image as an OCI layout in _output/images (no Docker engine needed; reproducible).
	cd hack/tools/images && $(GO) run . --bin-dir $(BIN_DIR) --out $(CURDIR)/_output/images/image-registry-operator

images-test: build ## Check that the image build is reproducible and the image runs the operator.
	cd hack/tools/images && IMAGES_BIN_DIR=$(BIN_DIR) $(GO) test -count=1 ./...

bench: tools build ## Scale benchmark on the real control plane (not part of test); BENCH_ARGS=--n=100,1000 for a quicker run.
	cd hack/bench && $(GO) build -o $(BIN_DIR)/bench .
	_output/bin/bench --bin-dir $(BIN_DIR) $(BENCH_ARGS)

clean: ## Remove build outputs (keeps the Go caches).
	rm -rf _output

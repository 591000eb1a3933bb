# Shoal. `make demo` runs it locally; `make test` runs every test. Both build what they
# need: tools come from the Go modules pinned in hack/tools, the local control plane
# (kube-apiserver, etcd, kubectl) from hack/controlplane; everything lands in bin/.

SHELL := /usr/bin/env bash -o pipefail -c
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/shoal-dev/shoal/internal/version.Version=$(VERSION)
IMG ?= shoal:$(VERSION)
# A release tag vX.Y.Z gives chart version X.Y.Z; anything else a semver pre-release.
CHART_VERSION ?= $(if $(filter v%,$(VERSION)),$(patsubst v%,%,$(VERSION)),0.0.0-$(VERSION))
GO_TEST_FLAGS ?= -count=1 -timeout 30m

CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
HELM := $(BIN)/helm
CONTROLPLANE := $(BIN)/kube-apiserver
STRIPE_MOCK := $(BIN)/stripe-mock
VERSITYGW := $(BIN)/versitygw

.PHONY: all
all: build

##@ Development

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-z-]+:.*##/ {printf "  %-14s %s\n", $$1, $$2} /^##@/ {printf "\n%s\n", substr($$0, 5)}' $(MAKEFILE_LIST)

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC into config/ and the Helm chart.
	$(CONTROLLER_GEN) rbac:roleName=shoal-operator crd paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	hack/sync-chart.sh

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: fmt
fmt: ## gofmt every Go file.
	gofmt -s -w $$(git ls-files --cached --others --exclude-standard '*.go')

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint (errcheck, staticcheck, govet and more; see .golangci.yml).
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: generate manifests fmt ## Regenerate everything and fail on any difference, new files included.
	go mod tidy
	cd hack/tools && go mod tidy
	cd hack/controlplane && go mod tidy
	@if [ -n "$$(git status --porcelain --untracked-files=all)" ]; then \
		echo "make verify: generated or formatted files differ from what is committed:"; \
		git status --porcelain --untracked-files=all; git --no-pager diff --stat; exit 1; \
	fi

.PHONY: build
build: ## Build bin/shoal.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/shoal .

.PHONY: test
test: manifests generate backends build localcluster $(CONTROLPLANE) $(HELM) $(STRIPE_MOCK) $(VERSITYGW) ## Run every test against real servers: kube-apiserver, ClickHouse, PostgreSQL, Kafka, S3, stripe-mock.
	KUBEBUILDER_ASSETS=$(BIN) SHOAL_BIN=$(BIN) go test $(GO_TEST_FLAGS) ./...

.PHONY: backends
backends: ## Install the Debian packages of the test servers (ClickHouse, PostgreSQL) when missing.
	hack/backends.sh

.PHONY: run
run: build manifests ## Run the operator against the current kubeconfig with config/platform.yaml.
	$(BIN)/shoal operator --config config/platform.yaml

.PHONY: demo
demo: backends build localcluster $(CONTROLPLANE) $(STRIPE_MOCK) $(VERSITYGW) ## Start a local control plane with real backends, the operator and sample tenants.
	hack/demo.sh

.PHONY: localcluster
localcluster: ## Build bin/shoal-localcluster, the local control plane runner the demo uses.
	go build -o $(BIN)/shoal-localcluster ./hack/localcluster

.PHONY: helm
helm: $(HELM) manifests ## Lint and package the Helm chart into dist/.
	$(HELM) lint charts/shoal
	$(HELM) package charts/shoal --version $(CHART_VERSION) --app-version $(VERSION) -d dist

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

##@ Tools (built from pinned Go modules, never downloaded)

.PHONY: tools controlplane bin/controller-gen bin/golangci-lint bin/helm bin/stripe-mock bin/versitygw
tools: $(CONTROLLER_GEN) $(GOLANGCI_LINT) $(HELM) $(STRIPE_MOCK) $(VERSITYGW) ## Build controller-gen, golangci-lint, helm and the test servers stripe-mock and versitygw.
controlplane: $(CONTROLPLANE) ## Build kube-apiserver, etcd and kubectl.
bin/controller-gen: $(CONTROLLER_GEN)
bin/golangci-lint: $(GOLANGCI_LINT)
bin/helm: $(HELM)
bin/stripe-mock: $(STRIPE_MOCK)
bin/versitygw: $(VERSITYGW)

$(CONTROLLER_GEN): hack/tools/go.mod
	cd hack/tools && go build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT): hack/tools/go.mod
	cd hack/tools && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

$(HELM): hack/tools/go.mod
	cd hack/tools && CGO_ENABLED=0 go build -o $@ helm.sh/helm/v3/cmd/helm

$(STRIPE_MOCK): hack/tools/go.mod
	cd hack/tools && CGO_ENABLED=0 go build -o $@ github.com/stripe/stripe-mock

$(VERSITYGW): hack/tools/go.mod
	cd hack/tools && CGO_ENABLED=0 go build -o $@ github.com/versity/versitygw/cmd/versitygw

$(CONTROLPLANE): hack/controlplane/go.mod hack/controlplane.sh
	hack/controlplane.sh

.PHONY: clean
clean: ## Remove bin/ and dist/.
	rm -rf $(BIN) dist

##@ Benchmarks

.PHONY: bench-tenants
bench-tenants: backends build localcluster $(CONTROLPLANE) $(STRIPE_MOCK) $(VERSITYGW) ## Time provisioning N Shared tenants on a local cluster (N=100; BENCH_FLAGS="--concurrency 8 --json").
	hack/bench.sh tenants $(or $(N),100) $(BENCH_FLAGS)

.PHONY: bench-ingest
bench-ingest: build ## Ingest API events/s against a raw franz-go producer, one run (BENCH_FLAGS="--rounds 3 --json").
	hack/bench.sh ingest $(BENCH_FLAGS)

.PHONY: bench-process
bench-process: backends build localcluster $(CONTROLPLANE) $(STRIPE_MOCK) $(VERSITYGW) ## Processor rows/s against a direct batched ClickHouse insert, one run (BENCH_FLAGS="--rows 500000 --json").
	hack/bench.sh process $(BENCH_FLAGS)

.PHONY: bench-query
bench-query: backends build localcluster $(CONTROLPLANE) $(STRIPE_MOCK) $(VERSITYGW) ## Query API p50/p99 against the same SQL straight to ClickHouse, and rollup against raw (BENCH_FLAGS="--events 10000000 --json").
	hack/bench.sh query $(BENCH_FLAGS)

.PHONY: bench-freshness
bench-freshness: backends build localcluster $(CONTROLPLANE) $(STRIPE_MOCK) $(VERSITYGW) ## Ingest-ack-to-queryable p50/p99 at 10k events/s (BENCH_FLAGS="--batch-max-wait 250ms,500ms,1s").
	hack/bench.sh freshness $(BENCH_FLAGS)

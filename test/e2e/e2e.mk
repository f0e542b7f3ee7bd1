# End-to-end lab: a real control plane as local processes (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok fake GPU nodes, Crossplane core
# out of cluster) and the function over mTLS on loopback. Included by the top
# Makefile. Every binary is built from a pinned module under test/tools into
# $(BIN), keyed by version, so only the first run pays for the builds.
#
#   make e2e            build what is missing, then run the lab tests
#   make e2e-tools      only build the lab binaries
#   E2E_RUN=Project make e2e    run only the tests matching a regexp
#   E2E_KEEP_LOGS=1 make e2e    keep the component logs even on success
#   E2E_FLAVOURS=claims make e2e  only the claim flavour's lab
#   make e2e-packages   the packages flavour: the Configuration installed by
#                       Crossplane's package manager from a loopback registry

KUBE_VERSION           := v1.35.4
KWOK_VERSION           := v0.7.0
# Crossplane core the lab runs: the CLI's version by default. Each core
# minor builds from its own pinned module (their dependencies differ):
# make e2e-core-v2.3 runs the v2 flavour against v2.3.4.
E2E_CORE_VERSION       ?= $(CROSSPLANE_VERSION)
CROSSPLANE_CORE        := $(BIN)/crossplane-core-$(E2E_CORE_VERSION)
CROSSPLANE_CORE_TOOLS  := test/tools/crossplane-core$(if $(filter v2.3.%,$(E2E_CORE_VERSION)),-v2.3)
KUBE_APISERVER         := $(BIN)/kube-apiserver-$(KUBE_VERSION)
KUBE_CONTROLLER_MANAGER := $(BIN)/kube-controller-manager-$(KUBE_VERSION)
KUBE_SCHEDULER         := $(BIN)/kube-scheduler-$(KUBE_VERSION)
KWOK                   := $(BIN)/kwok-$(KWOK_VERSION)
# The packages flavour's OCI registry (go-containerregistry, its own module).
E2E_REGISTRY           := $(BIN)/e2e-registry
# The function as the last release built it, for the upgrade scenarios
# (TestUsageUpgrade): built from that commit's tree (git archive), so the
# lab runs exactly what users have installed.
PREVIOUS_RELEASE        := v0.1.0
PREVIOUS_RELEASE_COMMIT := ad7d7a3cf305182375192921b2a52f12f1f98f36
FUNCTION_PREVIOUS       := $(BIN)/function-$(PREVIOUS_RELEASE)
# Debian's etcd-server is used when no etcd is on PATH (see e2e-etcd).
ETCD                   ?= $(shell command -v etcd 2>/dev/null || echo /usr/bin/etcd)
E2E_TIMEOUT            ?= 30m
E2E_RUN                ?= .
# v2: apis/*/ (namespaced composites); claims: apis/kalypsoprojects + apis/claims/*.
# packages (make e2e-packages, not in the default list): the Configuration
# package installed by Crossplane's package manager from a loopback registry.
E2E_FLAVOURS           ?= v2 claims

KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(KUBE_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z

# One go build for the three control plane binaries: they share most packages,
# so building them together is much faster than three builds. The outputs are
# written to a scratch directory and renamed, so an interrupted build never
# leaves a half-written binary under its final name.
$(KUBE_APISERVER) $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) &:
	@mkdir -p $(BIN)
	@tmp=$$(mktemp -d $(BIN)/.kube-build.XXXXXX) && trap 'rm -rf $$tmp' EXIT && \
	cd test/tools/kube && go build -trimpath -ldflags "$(KUBE_LDFLAGS)" -o $$tmp/ \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler && \
	for b in kube-apiserver kube-controller-manager kube-scheduler; do mv $$tmp/$$b $(BIN)/$$b-$(KUBE_VERSION); done

$(KWOK):
	@mkdir -p $(BIN)
	cd test/tools/kwok && go build -trimpath \
		-ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$(KWOK_VERSION:v%=%)" \
		-o $@.tmp sigs.k8s.io/kwok/cmd/kwok && mv $@.tmp $@

$(CROSSPLANE_CORE):
	@mkdir -p $(BIN)
	cd $(CROSSPLANE_CORE_TOOLS) && go build -trimpath \
		-ldflags "-s -w -X github.com/crossplane/crossplane/v2/internal/version.version=$(E2E_CORE_VERSION)" \
		-o $@.tmp github.com/crossplane/crossplane/v2/cmd/crossplane && mv $@.tmp $@

$(FUNCTION_PREVIOUS):
	@mkdir -p $(BIN)
	@tmp=$$(mktemp -d $(BIN)/.previous.XXXXXX) && trap 'rm -rf $$tmp' EXIT && \
	git archive $(PREVIOUS_RELEASE_COMMIT) | tar -x -C $$tmp && \
	cd $$tmp && go build -trimpath -ldflags "-X main.version=$(PREVIOUS_RELEASE)" -o $@.tmp ./fn/cmd/function && mv $@.tmp $@

$(E2E_REGISTRY): $(wildcard test/e2e/registry/*.go) test/e2e/registry/go.mod test/e2e/registry/go.sum
	@mkdir -p $(BIN)
	cd test/e2e/registry && GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o $@.tmp . && mv $@.tmp $@

# etcd from Debian (3.4.x). The lab turns the WatchList feature gate off on
# kube-apiserver because this etcd lacks RequestWatchProgress.
.PHONY: e2e-etcd
e2e-etcd:
	@command -v etcd >/dev/null 2>&1 || test -x $(ETCD) || { \
		echo "etcd not found: installing Debian etcd-server"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null; }

.PHONY: e2e-tools
e2e-tools: e2e-etcd $(KUBE_APISERVER) $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) $(KWOK) $(CROSSPLANE_CORE) $(FUNCTION_PREVIOUS)

# The v2 and the claim flavour define the same kind names, so each runs in a
# lab of its own, one after the other; a flavour none of whose tests match
# E2E_RUN starts no lab. Both run even when the first fails.
.PHONY: e2e
e2e: e2e-tools function
	@rc=0; for flavour in $(E2E_FLAVOURS); do \
		echo "e2e: ---- $$flavour flavour ----"; \
		E2E_FLAVOUR=$$flavour \
		E2E_ETCD=$(ETCD) \
		E2E_KUBE_APISERVER=$(KUBE_APISERVER) \
		E2E_KUBE_CONTROLLER_MANAGER=$(KUBE_CONTROLLER_MANAGER) \
		E2E_KUBE_SCHEDULER=$(KUBE_SCHEDULER) \
		E2E_KWOK=$(KWOK) \
		E2E_CROSSPLANE=$(CROSSPLANE_CORE) \
		E2E_CROSSPLANE_VERSION=$(E2E_CORE_VERSION) \
		E2E_FUNCTION=$(FUNCTION) \
		E2E_FUNCTION_PREVIOUS=$(FUNCTION_PREVIOUS) \
		E2E_REGISTRY=$(E2E_REGISTRY) \
		E2E_CROSSPLANE_CLI=$(CROSSPLANE) \
		E2E_PACKAGE_ORG=$(PACKAGE_ORG) \
		E2E_PACKAGE_VERSION=$(VERSION) \
		E2E_XPKG_DIR=$(OUTPUT) \
		E2E_LOG_ROOT=$(BIN)/e2e-logs \
		go test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -run '$(E2E_RUN)' -v ./test/e2e/... || rc=1; \
	done; exit $$rc

# The packages flavour: builds the packages (make xpkg) and the loopback
# registry, then runs only that flavour's lab (see test/e2e/README.md).
.PHONY: e2e-packages
e2e-packages: xpkg $(E2E_REGISTRY)
	@$(MAKE) --no-print-directory e2e E2E_FLAVOURS=packages

# The v2 flavour against Crossplane core v2.3.4 (CI runs it after make e2e).
.PHONY: e2e-core-v2.3
e2e-core-v2.3:
	@$(MAKE) --no-print-directory e2e E2E_CORE_VERSION=v2.3.4 E2E_FLAVOURS=v2

# make scale: TestScale alone in the v2 lab, at a size where the comparison
# with the bound and the idle traffic mean something; it writes its table
# into test/scale/README.md (see there). Inside make e2e the scenario runs
# with its small defaults (20 servers, 4 applications, 2 projects × 2
# environments, 60 s idle) and writes nothing. Override on the command line:
#   make scale SCALE_SERVERS=1000 SCALE_APPS=50 SCALE_PROJECTS=20 SCALE_ENVS=3
SCALE_SERVERS  ?= 100
SCALE_APPS     ?= 10
SCALE_PROJECTS ?= 5
SCALE_ENVS     ?= 2
SCALE_IDLE     ?= 5m
SCALE_TIMEOUT  ?= 90m
# SCALE_RESTART=1: restart Crossplane core (SIGTERM) once everything is
# settled, and report the circuit breakers that opens.
SCALE_RESTART  ?=

.PHONY: scale
scale:
	@SCALE_SERVERS=$(SCALE_SERVERS) SCALE_APPS=$(SCALE_APPS) SCALE_PROJECTS=$(SCALE_PROJECTS) \
		SCALE_ENVS=$(SCALE_ENVS) SCALE_IDLE=$(SCALE_IDLE) SCALE_RESTART=$(SCALE_RESTART) SCALE_REPORT=test/scale/README.md \
		$(MAKE) --no-print-directory e2e E2E_FLAVOURS=v2 E2E_RUN='^TestScale$$' E2E_TIMEOUT=$(SCALE_TIMEOUT)

# make core-memory: TestCoreMemory alone in the v2 lab with 5,000 unrelated
# pods: Crossplane core's RSS from a fresh core without them, with them, with
# a server not available (readPods off, as shipped) and with readPods on; the
# table goes into test/scale/README.md. Inside make e2e it runs with 300 pods,
# writes nothing, and fails only if core lists pods without readPods.
MEMORY_PODS   ?= 5000
MEMORY_SETTLE ?= 60s

.PHONY: core-memory
core-memory:
	@MEMORY_PODS=$(MEMORY_PODS) MEMORY_SETTLE=$(MEMORY_SETTLE) MEMORY_REPORT=test/scale/README.md \
		$(MAKE) --no-print-directory e2e E2E_FLAVOURS=v2 E2E_RUN='^TestCoreMemory$$' E2E_TIMEOUT=$(SCALE_TIMEOUT)

# Kalypso on Crossplane. `make render` runs the function on the examples;
# `make test` runs every check CI runs. Only Go is needed: tools are built
# from pinned modules under test/tools into .bin/, keyed by version.

# One package path for the image, the packages, the dependency and every
# Composition's functionRef: a Function installed as a dependency is named
# after its package path without the registry.
PACKAGE_REGISTRY ?= xpkg.crossplane.io
PACKAGE_ORG      ?= kalypsoserving
FUNCTION_PACKAGE := $(PACKAGE_REGISTRY)/$(PACKAGE_ORG)/function-kalypso
FUNCTION_NAME    := $(PACKAGE_ORG)-function-kalypso
# The released version; generated files (crossplane.yaml, examples) carry it.
VERSION          ?= v0.1.0
# The Function and the Configuration are released with the same VERSION; the
# Configuration's dependsOn accepts any patch of that minor (README,
# "Versions and upgrades"): >=vX.Y.0, <vX.Y+1.0. Crossplane v2.2.1 parses it
# with Masterminds semver v1.5.0 (internal/controller/pkg/resolver), which
# takes only a comma for AND ("improper constraint" for a space) and matches
# a pre-release only against bounds that have one: a pre-release VERSION
# (v0.2.0-rc.1) gets -0 on both bounds.
version_xyz              := $(subst ., ,$(firstword $(subst -, ,$(subst +, ,$(VERSION:v%=%)))))
ifneq ($(words $(version_xyz)),3)
$(error VERSION=$(VERSION) is not vMAJOR.MINOR.PATCH[-PRERELEASE])
endif
version_pre              := $(if $(findstring -,$(VERSION)),-0)
FUNCTION_VERSION_RANGE   := >=v$(word 1,$(version_xyz)).$(word 2,$(version_xyz)).0$(version_pre), <v$(word 1,$(version_xyz)).$(shell expr $(word 2,$(version_xyz)) + 1).0$(version_pre)

BIN                    := $(CURDIR)/.bin
CROSSPLANE_VERSION     := v2.2.1
CONTROLLER_GEN_VERSION := v0.20.1
# promtool checks every PromQL expression the function ships; built from
# its own tools module (test/tools/promtool: prometheus needs k8s.io
# v0.37.1, the main module stays on v0.35.4). About 5-10 minutes cold.
PROMETHEUS_VERSION     := v0.316.0
PROMTOOL               := $(BIN)/promtool-$(PROMETHEUS_VERSION)
CROSSPLANE             := $(BIN)/crossplane-$(CROSSPLANE_VERSION)
CONTROLLER_GEN         := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
FUNCTION               := $(BIN)/function
VALIDATE_DIR           := $(BIN)/validate-$(CROSSPLANE_VERSION)

export GOFLAGS := -mod=mod -buildvcs=false

.PHONY: all
all: generate test

# ---- tools ---------------------------------------------------------------
$(CROSSPLANE):
	cd test/tools/crossplane && go build -trimpath \
		-ldflags "-s -w -X github.com/crossplane/crossplane/v2/internal/version.version=$(CROSSPLANE_VERSION)" \
		-o $@ github.com/crossplane/crossplane/v2/cmd/crank

$(CONTROLLER_GEN):
	cd test/tools/controller-gen && go build -trimpath -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(PROMTOOL):
	cd test/tools/promtool && go build -trimpath -o $@ github.com/prometheus/prometheus/cmd/promtool

.PHONY: tools
tools: $(CROSSPLANE) $(CONTROLLER_GEN) $(PROMTOOL)

.PHONY: function
function:
	go build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(FUNCTION) ./fn/cmd/function

# ---- generated files -----------------------------------------------------
# gen writes every generated file under $(1): CRD schemas, XRDs,
# Compositions, the Configuration metadata and the examples' functions.yaml.
gen = $(CONTROLLER_GEN) crd paths=./input/... output:crd:dir=$(1)/package/input && \
	$(CONTROLLER_GEN) crd paths=./apis/... output:crd:dir=$(1)/.crds && \
	go run ./apis/internal/xrdgen -crds $(1)/.crds -apis $(1)/apis -examples $(1)/examples \
		-configuration $(1)/crossplane.yaml -function-name $(FUNCTION_NAME) \
		-function-package $(FUNCTION_PACKAGE) -version $(VERSION) \
		-function-version-range '$(FUNCTION_VERSION_RANGE)' && \
	rm -rf $(1)/.crds

.PHONY: generate
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./apis/... paths=./input/... paths=./fn/compose/keda/...
	$(call gen,$(CURDIR))

# Regenerates into a scratch tree and compares: fails when a generated file
# is stale or missing.
.PHONY: check-generated
check-generated: $(CONTROLLER_GEN)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	$(call gen,$$tmp) >/dev/null && \
	for f in $$(cd $$tmp && find . -type f | sort); do \
		cmp -s $$tmp/$$f $$f || { echo "stale generated file $$f: run make generate"; diff -u $$f $$tmp/$$f | head -20; exit 1; }; \
	done && echo "generated files are up to date"

# ---- tests ---------------------------------------------------------------
.PHONY: vet
vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	go vet ./...

.PHONY: unit
unit:
	go test -count=1 ./...

# Fuzz targets (package:target); `make fuzz FUZZTIME=10m` for a long run.
FUZZ_TARGETS := ./fn:FuzzRunFunction ./fn/project:FuzzQuotaHard ./fn/tritonserver:FuzzParsers
FUZZTIME     ?= 30s

.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} || exit 1; \
	done

.PHONY: test
test: vet unit check-generated render-check promql fuzz-short

# promtool checks the generated rules file (every rule and ScaledObject
# query a server ships; `unit` fails when it is stale) and runs the unit
# tests on synthetic Triton series (test/promql/README.md).
.PHONY: promql
promql: $(PROMTOOL)
	$(PROMTOOL) check rules test/promql/generated/*.rules.yaml
	cd test/promql && $(PROMTOOL) test rules *.test.yaml

# A short fuzz pass for CI; the seed corpora also run in `unit`. Budgets are
# execution counts (about 5 s each here), not durations: with a -fuzztime
# duration, Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when a loaded worker misses the deadline (go.dev/issue/75804,
# fixed in Go 1.27; it failed a CI run here with no crasher written).
FUZZ_SHORT := ./fn:FuzzRunFunction:8000x ./fn/project:FuzzQuotaHard:15000x ./fn/tritonserver:FuzzParsers:15000x

.PHONY: fuzz-short
fuzz-short:
	@for t in $(FUZZ_SHORT); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; count=$${rest#*:}; \
		echo "fuzz $$pkg:$$name for $$count"; \
		go test -run '^$$' -fuzz "^$$name$$" -fuzztime $$count $$pkg || exit 1; \
	done

# ---- render --------------------------------------------------------------
RENDER := CROSSPLANE=$(CROSSPLANE) FUNCTION=$(FUNCTION) bash test/render/render.sh

.PHONY: render
render: function $(CROSSPLANE)
	@$(RENDER) print

.PHONY: render-golden
render-golden: function $(CROSSPLANE)
	@$(RENDER) golden

.PHONY: render-check
render-check: function $(CROSSPLANE)
	@bash test/validate/prepare.sh $(VALIDATE_DIR)
	@VALIDATE_DIR=$(VALIDATE_DIR) $(RENDER) check

# Regenerates the observed files of the examples' stages named ready* or
# running*: renders the stage from nothing observed, marks what it composed as observed and ready,
# and renders again until nothing changes (a project composes a namespace's
# contents once the namespace exists, and one object of a kind it composes
# for the first time: compose.HoldBackNewKinds).
.PHONY: observed
observed: function $(CROSSPLANE)
	go build -o $(BIN)/observe ./test/render/observe
	@for d in examples/*/stages/*/ready* examples/*/stages/*/running*; do \
		x=$$(dirname $$(dirname $$(dirname $$d)))/$$(basename $$(dirname $$d)).yaml; \
		echo "# Generated by make observed." > $$d/observed.yaml; \
		for i in 1 2 3 4 5 6 7 8 9 10; do \
			{ echo "# Generated by make observed."; $(RENDER) case $$x $$d | $(BIN)/observe; } > $$d/observed.next || exit 1; \
			if cmp -s $$d/observed.next $$d/observed.yaml; then break; fi; \
			[ $$i -lt 10 ] || { echo "$$d: still changing after 10 renders" >&2; exit 1; }; \
			mv $$d/observed.next $$d/observed.yaml; \
		done; \
		rm -f $$d/observed.next; \
	done

.PHONY: clean
clean:
	rm -rf $(BIN)
-include test/e2e/e2e.mk
-include test/package/package.mk
-include test/load/load.mk

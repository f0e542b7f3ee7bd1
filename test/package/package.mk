# Packages without Docker: the function's runtime image and the three
# Crossplane packages, built with the pinned crossplane CLI and
# test/package/pkgtool (go-containerregistry, its own module). Included by the
# top Makefile; everything is written to _output/ (git-ignored).
#
#   make image            static binaries + reproducible runtime image tarballs,
#                         one per platform (FUNCTION_PLATFORMS)
#   make xpkg             images + one Function package per platform + both
#                         Configurations
#   make xpkg-inspect     digests, layers and YAML objects of what xpkg built
#   make xpkg-repro       builds everything twice from scratch, compares digests
#   make xpkg-push-test   pushes the packages to an in-memory registry on
#                         127.0.0.1 and reads them back (no network)
#   make xpkg-push REGISTRY=registry.example.com
#                         pushes the packages with the pinned CLI (the Function
#                         as one multi-platform index)
#   make pkgtool-test     unit tests of test/package/pkgtool
#
# See test/package/README.md.

OUTPUT             := $(CURDIR)/_output
PKG_STAGE          := $(OUTPUT)/stage
PKGTOOL_DIR        := test/package/pkgtool
PKGTOOL            := $(BIN)/pkgtool
# One Function package per platform, each embedding that platform's runtime
# image (a GOARCH cross-compile of the static binary, no Docker); xpkg-push
# pushes them as one OCI image index, whose entries' platforms the CLI takes
# from each package's config (cmd/crank/xpkg/push.go). The first platform is
# the one Crossplane's package manager reads package.yaml from: it pulls the
# tag without a platform, which go-containerregistry resolves to linux/amd64.
FUNCTION_PLATFORMS := amd64 arm64
image_binary        = $(OUTPUT)/linux_$(1)/function
runtime_image       = $(OUTPUT)/function-kalypso-runtime-$(VERSION)-linux-$(1).tar
function_xpkg       = $(OUTPUT)/function-kalypso-$(VERSION)-linux-$(1).xpkg
RUNTIME_IMAGES     := $(foreach a,$(FUNCTION_PLATFORMS),$(call runtime_image,$(a)))
FUNCTION_XPKGS     := $(foreach a,$(FUNCTION_PLATFORMS),$(call function_xpkg,$(a)))
# a.xpkg,b.xpkg: what `crossplane xpkg push -f` takes for an index.
comma              := ,
FUNCTION_XPKG_LIST := $(subst $(eval) ,$(comma),$(strip $(FUNCTION_XPKGS)))
CONFIGURATION_XPKG := $(OUTPUT)/configuration-kalypso-$(VERSION).xpkg
CLAIMS_XPKG        := $(OUTPUT)/configuration-kalypso-claims-$(VERSION).xpkg
XPKGS              := $(FUNCTION_XPKGS) $(CONFIGURATION_XPKG) $(CLAIMS_XPKG)

# Image inputs. Every timestamp in the image is SOURCE_DATE_EPOCH (default 0).
SOURCE_DATE_EPOCH ?= 0
IMAGE_REVISION    ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
IMAGE_SOURCE      ?= https://github.com/kalypsoserving/function-kalypso
CA_BUNDLE         ?= /etc/ssl/certs/ca-certificates.crt

# Package contents. The CLI's --examples-root defaults to ./examples, which
# would pull every example and render stage of the repository into every
# package: each package gets its own staged examples root instead.
FUNCTION_EXAMPLES      := examples/platform/environmentconfig.yaml
CONFIGURATION_APIS     := $(foreach k,kalypsoprojects kalypsoapplications kalypsotritonservers,apis/$(k)/definition.yaml apis/$(k)/composition.yaml)
CONFIGURATION_EXAMPLES := $(sort $(wildcard examples/projects/*.yaml examples/applications/*.yaml examples/tritonservers/*.yaml examples/platform/*.yaml))
CLAIMS_NAME            := configuration-kalypso-claims
CLAIMS_APIS            := apis/kalypsoprojects/definition.yaml apis/kalypsoprojects/composition.yaml \
                          $(sort $(wildcard apis/claims/*/definition.yaml apis/claims/*/composition.yaml))
CLAIMS_EXAMPLES        := $(sort $(wildcard examples/claims/*.yaml examples/projects/*.yaml examples/platform/*.yaml))

$(PKGTOOL): $(wildcard $(PKGTOOL_DIR)/*.go) $(PKGTOOL_DIR)/go.mod $(PKGTOOL_DIR)/go.sum
	cd $(PKGTOOL_DIR) && GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o $@ .

.PHONY: pkgtool-test
pkgtool-test:
	cd $(PKGTOOL_DIR) && GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go test -count=1 ./...

.PHONY: image
image: $(PKGTOOL)
	@set -e; for arch in $(FUNCTION_PLATFORMS); do \
		echo "image linux/$$arch"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath \
			-ldflags "-s -w -X main.version=$(VERSION)" -o $(call image_binary,$$arch) ./fn/cmd/function; \
		$(PKGTOOL) image -arch $$arch -binary $(call image_binary,$$arch) -ca-bundle $(CA_BUNDLE) \
			-o $(call runtime_image,$$arch) -tag $(FUNCTION_PACKAGE):$(VERSION) -version $(VERSION) \
			-revision "$(IMAGE_REVISION)" -source $(IMAGE_SOURCE) -epoch "$(SOURCE_DATE_EPOCH)"; \
	done

.PHONY: xpkg-function
xpkg-function: image $(CROSSPLANE)
	$(PKGTOOL) stage -root $(PKG_STAGE)/function/examples -strip examples $(FUNCTION_EXAMPLES)
	@set -e; for arch in $(FUNCTION_PLATFORMS); do \
		echo "xpkg build function-kalypso linux/$$arch"; \
		$(CROSSPLANE) xpkg build --package-root=package --examples-root=$(PKG_STAGE)/function/examples \
			--embed-runtime-image-tarball=$(call runtime_image,$$arch) -o $(call function_xpkg,$$arch); \
	done

# Both Configurations are built from staging roots holding only what they
# ship; the claim flavour's copy of crossplane.yaml is renamed. Both must
# depend on this build's Function package and on FUNCTION_VERSION_RANGE (the
# top Makefile derives it from VERSION).
.PHONY: xpkg-configuration
xpkg-configuration: $(CROSSPLANE) $(PKGTOOL)
	$(PKGTOOL) stage -root $(PKG_STAGE)/configuration/package -meta crossplane.yaml \
		-want-dependency '$(FUNCTION_PACKAGE)@$(FUNCTION_VERSION_RANGE)' $(CONFIGURATION_APIS)
	$(PKGTOOL) stage -root $(PKG_STAGE)/configuration/examples -strip examples $(CONFIGURATION_EXAMPLES)
	$(CROSSPLANE) xpkg build --package-root=$(PKG_STAGE)/configuration/package \
		--examples-root=$(PKG_STAGE)/configuration/examples -o $(CONFIGURATION_XPKG)
	$(PKGTOOL) stage -root $(PKG_STAGE)/claims/package -meta crossplane.yaml -name $(CLAIMS_NAME) \
		-want-dependency '$(FUNCTION_PACKAGE)@$(FUNCTION_VERSION_RANGE)' $(CLAIMS_APIS)
	$(PKGTOOL) stage -root $(PKG_STAGE)/claims/examples -strip examples $(CLAIMS_EXAMPLES)
	$(CROSSPLANE) xpkg build --package-root=$(PKG_STAGE)/claims/package \
		--examples-root=$(PKG_STAGE)/claims/examples -o $(CLAIMS_XPKG)

.PHONY: xpkg
xpkg: xpkg-function xpkg-configuration
	@echo "file sha256 / image digest / digest once pushed / file"
	@$(PKGTOOL) inspect -short $(RUNTIME_IMAGES) $(FUNCTION_XPKG_LIST) $(CONFIGURATION_XPKG) $(CLAIMS_XPKG)

.PHONY: xpkg-inspect
xpkg-inspect: $(PKGTOOL)
	@$(PKGTOOL) inspect $(RUNTIME_IMAGES) $(FUNCTION_XPKG_LIST) $(CONFIGURATION_XPKG) $(CLAIMS_XPKG)

# Two builds from scratch (the Go build cache stays warm) must give the same
# bytes and digests.
.PHONY: xpkg-repro
xpkg-repro: $(PKGTOOL)
	@for i in 1 2; do \
		rm -rf $(PKG_STAGE) $(foreach a,$(FUNCTION_PLATFORMS),$(call image_binary,$(a))) $(RUNTIME_IMAGES) $(XPKGS) && \
		$(MAKE) --no-print-directory xpkg >/dev/null && \
		$(PKGTOOL) inspect -short $(RUNTIME_IMAGES) $(FUNCTION_XPKG_LIST) $(CONFIGURATION_XPKG) $(CLAIMS_XPKG) > $(OUTPUT)/digests-$$i.txt || exit 1; \
	done; \
	cat $(OUTPUT)/digests-1.txt; \
	diff -u $(OUTPUT)/digests-1.txt $(OUTPUT)/digests-2.txt && echo "reproducible: two builds, identical files and digests"

.PHONY: xpkg-push-test
xpkg-push-test: xpkg
	$(PKGTOOL) pushtest -crossplane $(CROSSPLANE) -org $(PACKAGE_ORG) -version $(VERSION) \
		function-kalypso=$(FUNCTION_XPKG_LIST) configuration-kalypso=$(CONFIGURATION_XPKG) \
		$(CLAIMS_NAME)=$(CLAIMS_XPKG)

# Pushes with the pinned CLI; credentials come from `crossplane xpkg login` or
# the docker config. The Function goes first: the Configurations depend on it.
# It is pushed as one index of its per-platform packages.
ifneq ($(filter xpkg-push,$(MAKECMDGOALS)),)
ifeq ($(REGISTRY),)
$(error xpkg-push needs REGISTRY, e.g. make xpkg-push REGISTRY=registry.example.com)
endif
endif
.PHONY: xpkg-push
xpkg-push: xpkg
	@test "$(REGISTRY)" = "$(PACKAGE_REGISTRY)" || echo "note: the Configurations depend on $(FUNCTION_PACKAGE):$(VERSION)," \
		"not $(REGISTRY)/$(PACKAGE_ORG)/function-kalypso; to change that, run make generate and this target with PACKAGE_REGISTRY=$(REGISTRY)"
	$(CROSSPLANE) xpkg push -f $(FUNCTION_XPKG_LIST) $(REGISTRY)/$(PACKAGE_ORG)/function-kalypso:$(VERSION)
	$(CROSSPLANE) xpkg push -f $(CONFIGURATION_XPKG) $(REGISTRY)/$(PACKAGE_ORG)/configuration-kalypso:$(VERSION)
	$(CROSSPLANE) xpkg push -f $(CLAIMS_XPKG) $(REGISTRY)/$(PACKAGE_ORG)/$(CLAIMS_NAME):$(VERSION)

.PHONY: xpkg-clean
xpkg-clean:
	rm -rf $(OUTPUT)

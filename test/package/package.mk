# Packages without Docker: the function's runtime image and the three
# Crossplane packages, built with the pinned crossplane CLI and
# test/package/pkgtool (go-containerregistry, its own module). Included by the
# top Makefile; everything is written to _output/ (git-ignored).
#
#   make image            static binary + reproducible runtime image tarball
#   make xpkg             image + the Function package + both Configurations
#   make xpkg-inspect     digests, layers and YAML objects of what xpkg built
#   make xpkg-repro       builds everything twice from scratch, compares digests
#   make xpkg-push-test   pushes the packages to an in-memory registry on
#                         127.0.0.1 and reads them back (no network)
#   make xpkg-push REGISTRY=registry.example.com
#                         pushes the three packages with the pinned CLI
#   make pkgtool-test     unit tests of test/package/pkgtool
#
# See test/package/README.md.

OUTPUT             := $(CURDIR)/_output
PKG_STAGE          := $(OUTPUT)/stage
PKGTOOL_DIR        := test/package/pkgtool
PKGTOOL            := $(BIN)/pkgtool
IMAGE_BINARY       := $(OUTPUT)/linux_amd64/function
RUNTIME_IMAGE      := $(OUTPUT)/function-kalypso-runtime-$(VERSION).tar
FUNCTION_XPKG      := $(OUTPUT)/function-kalypso-$(VERSION).xpkg
CONFIGURATION_XPKG := $(OUTPUT)/configuration-kalypso-$(VERSION).xpkg
CLAIMS_XPKG        := $(OUTPUT)/configuration-kalypso-claims-$(VERSION).xpkg
XPKGS              := $(FUNCTION_XPKG) $(CONFIGURATION_XPKG) $(CLAIMS_XPKG)

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
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
		-ldflags "-s -w -X main.version=$(VERSION)" -o $(IMAGE_BINARY) ./fn/cmd/function
	$(PKGTOOL) image -binary $(IMAGE_BINARY) -ca-bundle $(CA_BUNDLE) -o $(RUNTIME_IMAGE) \
		-tag $(FUNCTION_PACKAGE):$(VERSION) -version $(VERSION) -revision "$(IMAGE_REVISION)" \
		-source $(IMAGE_SOURCE) -epoch "$(SOURCE_DATE_EPOCH)"

.PHONY: xpkg-function
xpkg-function: image $(CROSSPLANE)
	$(PKGTOOL) stage -root $(PKG_STAGE)/function/examples -strip examples $(FUNCTION_EXAMPLES)
	$(CROSSPLANE) xpkg build --package-root=package --examples-root=$(PKG_STAGE)/function/examples \
		--embed-runtime-image-tarball=$(RUNTIME_IMAGE) -o $(FUNCTION_XPKG)

# Both Configurations are built from staging roots holding only what they
# ship; the claim flavour's copy of crossplane.yaml is renamed. Both must
# depend on this build's Function package and version.
.PHONY: xpkg-configuration
xpkg-configuration: $(CROSSPLANE) $(PKGTOOL)
	$(PKGTOOL) stage -root $(PKG_STAGE)/configuration/package -meta crossplane.yaml \
		-want-dependency $(FUNCTION_PACKAGE)@$(VERSION) $(CONFIGURATION_APIS)
	$(PKGTOOL) stage -root $(PKG_STAGE)/configuration/examples -strip examples $(CONFIGURATION_EXAMPLES)
	$(CROSSPLANE) xpkg build --package-root=$(PKG_STAGE)/configuration/package \
		--examples-root=$(PKG_STAGE)/configuration/examples -o $(CONFIGURATION_XPKG)
	$(PKGTOOL) stage -root $(PKG_STAGE)/claims/package -meta crossplane.yaml -name $(CLAIMS_NAME) \
		-want-dependency $(FUNCTION_PACKAGE)@$(VERSION) $(CLAIMS_APIS)
	$(PKGTOOL) stage -root $(PKG_STAGE)/claims/examples -strip examples $(CLAIMS_EXAMPLES)
	$(CROSSPLANE) xpkg build --package-root=$(PKG_STAGE)/claims/package \
		--examples-root=$(PKG_STAGE)/claims/examples -o $(CLAIMS_XPKG)

.PHONY: xpkg
xpkg: xpkg-function xpkg-configuration
	@echo "file sha256 / image digest / digest once pushed / file"
	@$(PKGTOOL) inspect -short $(RUNTIME_IMAGE) $(XPKGS)

.PHONY: xpkg-inspect
xpkg-inspect: $(PKGTOOL)
	@$(PKGTOOL) inspect $(RUNTIME_IMAGE) $(XPKGS)

# Two builds from scratch (the Go build cache stays warm) must give the same
# bytes and digests.
.PHONY: xpkg-repro
xpkg-repro: $(PKGTOOL)
	@for i in 1 2; do \
		rm -rf $(PKG_STAGE) $(IMAGE_BINARY) $(RUNTIME_IMAGE) $(XPKGS) && \
		$(MAKE) --no-print-directory xpkg >/dev/null && \
		$(PKGTOOL) inspect -short $(RUNTIME_IMAGE) $(XPKGS) > $(OUTPUT)/digests-$$i.txt || exit 1; \
	done; \
	cat $(OUTPUT)/digests-1.txt; \
	diff -u $(OUTPUT)/digests-1.txt $(OUTPUT)/digests-2.txt && echo "reproducible: two builds, identical files and digests"

.PHONY: xpkg-push-test
xpkg-push-test: xpkg
	$(PKGTOOL) pushtest -crossplane $(CROSSPLANE) -org $(PACKAGE_ORG) -version $(VERSION) \
		function-kalypso=$(FUNCTION_XPKG) configuration-kalypso=$(CONFIGURATION_XPKG) \
		$(CLAIMS_NAME)=$(CLAIMS_XPKG)

# Pushes with the pinned CLI; credentials come from `crossplane xpkg login` or
# the docker config. The Function goes first: the Configurations depend on it.
ifneq ($(filter xpkg-push,$(MAKECMDGOALS)),)
ifeq ($(REGISTRY),)
$(error xpkg-push needs REGISTRY, e.g. make xpkg-push REGISTRY=registry.example.com)
endif
endif
.PHONY: xpkg-push
xpkg-push: xpkg
	@test "$(REGISTRY)" = "$(PACKAGE_REGISTRY)" || echo "note: the Configurations depend on $(FUNCTION_PACKAGE):$(VERSION)," \
		"not $(REGISTRY)/$(PACKAGE_ORG)/function-kalypso; to change that, run make generate and this target with PACKAGE_REGISTRY=$(REGISTRY)"
	$(CROSSPLANE) xpkg push -f $(FUNCTION_XPKG) $(REGISTRY)/$(PACKAGE_ORG)/function-kalypso:$(VERSION)
	$(CROSSPLANE) xpkg push -f $(CONFIGURATION_XPKG) $(REGISTRY)/$(PACKAGE_ORG)/configuration-kalypso:$(VERSION)
	$(CROSSPLANE) xpkg push -f $(CLAIMS_XPKG) $(REGISTRY)/$(PACKAGE_ORG)/$(CLAIMS_NAME):$(VERSION)

.PHONY: xpkg-clean
xpkg-clean:
	rm -rf $(OUTPUT)

# syntax=docker/dockerfile:1
# The function's runtime image, for teams with Docker. `make image` builds an
# equivalent image without Docker, for linux/amd64 and linux/arm64, and
# `make xpkg` embeds each in a Function package of its own. With buildx,
# `docker buildx build --platform linux/amd64,linux/arm64 .` cross-compiles
# on the build machine's platform (no emulation): the binary is static.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY apis/ apis/
COPY fn/ fn/
COPY input/ input/
ARG VERSION=v0.1.0
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /function ./fn/cmd/function

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /function /function
EXPOSE 9443
USER 65532:65532
ENTRYPOINT ["/function"]

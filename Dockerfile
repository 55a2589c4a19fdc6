# foodpipe from this source tree:
#
#   docker build -t foodpipe:local .
#   docker run --rm foodpipe:local version
#
# docker compose builds it the same way (docker-compose.yml). Release images
# are made by goreleaser from the released binaries instead (Dockerfile.release).
# Needs BuildKit, the default builder since Docker Engine 23.

# The toolchain go.mod names. It runs on the build machine's own platform and
# cross-compiles, so a multi-arch build (--platform linux/amd64,linux/arm64)
# needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
WORKDIR /src
ARG TARGETOS TARGETARCH
# Stamp the binary as a release does (`foodpipe version`); left empty it says "dev".
ARG VERSION="" COMMIT="" DATE=""
# The module and build caches survive between builds, so a change to one
# file does not download and compile every dependency again.
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE" \
      -o /usr/local/bin/foodpipe .

# distroless static: no shell, no package manager, no libc (the binary is
# static); the "nonroot" tag runs as uid 65532. The same base as the release image.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /usr/local/bin/foodpipe /usr/local/bin/foodpipe
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/foodpipe"]
CMD ["--help"]

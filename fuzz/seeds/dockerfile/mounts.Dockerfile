# syntax=docker/dockerfile:1.4-labs
ARG GO_VERSION=1.22
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache/go-build,sharing=locked \
    --mount=type=bind,source=go.mod,target=go.mod \
    --mount=type=secret,id=netrc,target=/root/.netrc,required=true \
    --mount=type=secret,id=aws,env=AWS_KEY \
    --mount=type=ssh,id=default \
    --mount=type=tmpfs,target=/tmp \
    --network=none --security=insecure \
    go build -o /app ./cmd/app
COPY --link --chown=10001:10001 --chmod=0755 --exclude=*.md --parents ./cmd/*/main.go /x/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a.tar.gz /
ADD --keep-git-dir=true git@github.com:moby/buildkit.git#v0.14 /bk
FROM scratch
COPY --from=build /app /app
ENTRYPOINT ["/app"]

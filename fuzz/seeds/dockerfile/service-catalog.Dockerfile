# Built with BuildKit: a cache mount that lasts from one build to the next
# (where a package manager would keep its downloads), a build secret read
# during the build and never stored in the image (an npm or pip token), the
# automatic platform arguments, and COPY --chmod.
FROM --platform=$BUILDPLATFORM local/busybox:1 AS build
ARG TARGETARCH
WORKDIR /src
COPY items.txt .
RUN --mount=type=cache,target=/var/cache/catalog \
    --mount=type=secret,id=catalog_token,required \
    sh -c 'test -s /run/secrets/catalog_token \
      && cp items.txt /var/cache/catalog/items.txt \
      && sort items.txt > index.txt \
      && echo "$TARGETARCH" > arch.txt'

FROM local/busybox:1
COPY --from=build /src/index.txt /src/arch.txt /app/
COPY --chmod=755 serve.sh /app/serve.sh
CMD ["/app/serve.sh"]

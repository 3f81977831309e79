# Multi-stage: the build stage renders the config, the runtime stage only copies it.
FROM local/busybox:1 AS build
ARG GREETING=hi
WORKDIR /src
COPY routes.txt .
RUN mkdir -p /out && sed "s/^/${GREETING} /" routes.txt > /out/routes.conf

FROM local/busybox:1 AS runtime
COPY --from=build /out/routes.conf /etc/gateway/routes.conf
COPY gateway.sh /bin/gateway
CMD ["/bin/gateway"]

FROM runtime AS debug
RUN echo debug > /etc/gateway/mode

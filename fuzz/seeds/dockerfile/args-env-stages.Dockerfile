ARG BASE=debian:bookworm-slim
ARG SERVICE
FROM ${BASE} AS common
ENV APP_HOME=/app \
    SRC=services/${SERVICE:-api} \
    EMPTY=
ENV LEGACY space separated value
ARG FILES="a.txt b.txt"
COPY ${SRC}/ $APP_HOME/
COPY ["libs/common", "${SRC:+services/x}", "/dest with space/"]
ADD ${FILES} ${UNSET:?must be set} /files/
COPY --from=0 /a /b
COPY --from=nginx:latest /etc/nginx /etc/nginx

# comment between continuation lines
FROM common AS test
COPY ../escape ./../../x /y
COPY * .??* [ab]*.go \*.txt /all/
RUN echo a \
# a comment inside a continuation
    b \

FROM test

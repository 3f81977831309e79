# syntax=docker/dockerfile:1.7
FROM alpine:3.20 AS build
RUN <<EOF
apk add --no-cache build-base
make -C /src
EOF
RUN <<-"INDENTED" bash
	echo "$HOME is not expanded"
	INDENTED
COPY <<CONF <<'RAW' /etc/app/
port=${PORT:-8080}
CONF
literal $PORT
RAW
RUN python3 <<PY > /out.txt && cat /out.txt
print("hi")
PY

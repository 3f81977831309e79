# The shared runtime image that other services build FROM (see `requires`).
FROM local/busybox:1
RUN mkdir -p /app /etc/shop && echo "app:x:10001:10001::/app:/bin/sh" >> /etc/passwd
COPY motd.txt /etc/shop/motd.txt
ENV SHOP_RUNTIME=1

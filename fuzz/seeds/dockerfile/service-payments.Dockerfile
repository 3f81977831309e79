# Built from the repo root (`context: .`), like
# `docker build -f services/payments/Dockerfile .`, to share libs/common.
FROM local/busybox:1
COPY libs/common/ /app/lib/
COPY services/payments/pay.sh /app/pay.sh
CMD ["/app/pay.sh"]

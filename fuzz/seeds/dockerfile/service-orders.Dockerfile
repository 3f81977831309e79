# Built FROM the base image of this very run: `requires: [base]` passes BASE_IMAGE.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY app.sh /app/app.sh
USER 10001
CMD ["/app/app.sh"]

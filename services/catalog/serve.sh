#!/bin/sh
# Serves the catalog index.
exec httpd -f -p 8080 -h /app

#!/bin/sh
cat /etc/gateway/routes.conf

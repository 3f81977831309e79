#!/bin/sh
echo "orders service: $(cat /etc/shop/motd.txt)"

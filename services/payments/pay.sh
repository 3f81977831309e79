#!/bin/sh
echo "payments using $(cat /app/lib/version.txt)"

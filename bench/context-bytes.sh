#!/usr/bin/env bash
# Bytes sent to the engine for services built from the repo root, in one
# invocation: the tar pipeline streams (its size, from `pipeline plan`)
# against what `docker build -f services/x/Dockerfile .` sends (the classic
# builder's "Sending build context" line), on a gen-monorepo.py tree.
#
#   bench/context-bytes.sh [--services 50]
set -euo pipefail
cd "$(dirname "$0")/.."
services=50
[ "${1:-}" = --services ] && services=$2
scripts/stack up >/dev/null
. bench/lib.sh
repo=$work/repo
python3 ../shared/bench/gen-monorepo.py "$repo" --services "$services" >/dev/null
cd "$repo"
"$bin" plan --offline --output json > "$work/plan.json"
printf '%-8s %14s %14s %8s\n' service docker_bytes pipeline_bytes ratio
python3 - "$work/plan.json" <<'PY' | while read -r name ours; do
import json, sys
for s in json.load(open(sys.argv[1]))["services"]:
    print(s["name"], s["context_bytes"])
PY
  ctx=$("$bin" services --output json < /dev/null | python3 -c "import json,sys; print(next(s['context'] for s in json.load(sys.stdin) if s['name']=='$name'))")
  [ "$ctx" = . ] || continue
  DOCKER_BUILDKIT=0 docker build -f "services/$name/Dockerfile" --build-arg SVC000_IMAGE=local/busybox:1 \
    -t "bench-bytes/$name" . > "$work/build.log" 2>&1 < /dev/null
  line=$(grep -m1 'Sending build context' "$work/build.log")
  theirs=$(python3 -c "
import re
n, unit = re.search(r'([0-9.]+)([kMG]?B)', '''$line''').groups()
print(int(float(n) * {'B': 1, 'kB': 1e3, 'MB': 1e6, 'GB': 1e9}[unit]))")
  printf '%-8s %14s %14s %8.1f\n' "$name" "$theirs" "$ours" "$(python3 -c "print($theirs / $ours)")"
done

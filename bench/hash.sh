#!/usr/bin/env bash
# Hashing throughput on one large build context, against sha256sum over the
# same bytes, in one invocation. The page cache is warmed first so both read
# from memory and the figures compare hashing, not the disk.
#
#   sha256sum:        sha256sum over every file of the context (one process)
#   pipeline, cold:   pipeline plan --offline with the index deleted (reads and hashes everything)
#   pipeline, index:  the same with the index kept (what a no-op run does)
#
#   bench/hash.sh [--mb 1024] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
mb=1024 rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --mb) mb=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--mb N] [--rounds R]" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
repo=$work/repo
python3 ../shared/bench/gen-monorepo.py "$repo" --services 1 --big-context-mb "$mb" >/dev/null
ctx=$repo/services/big
cat "$ctx"/* >/dev/null
# Settled files (see src/index.rs) so the index may keep them.
sleep 3
bytes=$(du -sb "$ctx" | cut -f1)


sums=() cold=() warm=()
for _ in $(seq "$rounds"); do
  sums+=("$(timed sh -c "sha256sum '$ctx'/*")")
  rm -f "$repo/.pipeline/index"
  cold+=("$(cd "$repo" && timed "$bin" plan --offline big)")
  warm+=("$(cd "$repo" && timed "$bin" plan --offline big)")
done
s=$(best "${sums[@]}") c=$(best "${cold[@]}") w=$(best "${warm[@]}")
mbs() { calc "round($bytes / $1 / 1048576)"; }
printf 'context: %d MiB in %d files, best of %d\n' "$((bytes / 1048576))" "$(ls "$ctx" | wc -l)" "$rounds"
printf '%-28s %8s %8s\n' "" seconds MiB/s
printf '%-28s %8.2f %8s\n' "sha256sum" "$s" "$(mbs "$s")"
printf '%-28s %8.2f %8s\n' "pipeline plan, no index" "$c" "$(mbs "$c")"
printf '%-28s %8.2f %8s\n' "pipeline plan, with index" "$w" "$(mbs "$w")"
printf 'pipeline (no index) / sha256sum throughput: %.2f\n' "$(calc "$s / $c")"

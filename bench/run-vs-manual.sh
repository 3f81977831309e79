#!/usr/bin/env bash
# Cold `pipeline run` against the manual process it replaces, in one
# invocation, on the same images, engine and registry:
#
#   manual:   docker login; per service in `requires` order:
#             docker build -f services/x/Dockerfile -t <registry>/<repo>:latest <context> && docker push …
#   pipeline: pipeline run (build, push once, add latest + git tag in the registry)
#
# Each round copies the sample (or a gen-monorepo.py tree with --gen N) with a
# fresh repository prefix and a fresh nonce in every Dockerfile, so nothing is
# in the registry and no build step is in the engine's cache: both sides are cold.
#
#   bench/run-vs-manual.sh [--rounds 3] [--gen N]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 gen=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--gen SERVICES]" >&2; exit 2 ;;
  esac
done
scripts/stack up
eval "$(scripts/stack env)"
. bench/lib.sh
loop_py=$PWD/bench/manual-loop.py
export DOCKER_BUILDKIT=0 DOCKER_CONFIG=$work/docker-config CI=true

# make_tree DIR PREFIX NONCE: the sample (or a generated repo) with a fresh prefix and nonce.
make_tree() {
  local dir=$1 prefix=$2 nonce=$3
  if [ "$gen" -gt 0 ]; then
    python3 ../shared/bench/gen-monorepo.py "$dir" --services "$gen" --registry "$PIPELINE_TEST_REGISTRY" >/dev/null
    sed -i "s#repository_prefix: .*#repository_prefix: $prefix#" "$dir/pipeline.yaml"
  else
    mkdir -p "$dir"
    cp -r services libs k8s charts pipeline.yaml .dockerignore "$dir/"
    sed -i "s#repository_prefix: .*#repository_prefix: $prefix#" "$dir/pipeline.yaml"
  fi
  for f in "$dir"/services/*/Dockerfile; do
    # A LABEL right after each FROM busts the engine's step cache.
    sed -i "/^FROM /a LABEL bench.nonce=$nonce" "$f"
  done
  (cd "$dir" && git init -q 2>/dev/null; git add -A && git -c user.email=b@b -c user.name=b commit -qm bench)
}

# The manual loop, driven by `pipeline services --output json` for the
# order and settings only (it builds and pushes nothing itself).
manual() {
  local dir=$1
  (
    cd "$dir"
    echo "$PIPELINE_TEST_REGISTRY_PASSWORD" | docker login -u "$PIPELINE_TEST_REGISTRY_USER" --password-stdin "$PIPELINE_TEST_REGISTRY" >/dev/null 2>&1
    "$bin" services --output json | python3 "$loop_py" "$PIPELINE_TEST_REGISTRY" --push > "$dir/manual.sh"
    bash -e "$dir/manual.sh"
  )
}

printf '%-6s %12s %12s %8s\n' round manual_s pipeline_s ratio
total_m=0 total_p=0
for i in $(seq "$rounds"); do
  id=$(date +%s%N)
  make_tree "$work/m$i" "bench-m-$id/" "m$id"
  make_tree "$work/p$i" "bench-p-$id/" "p$id"
  t0=$(now); manual "$work/m$i"; t1=$(now)
  (cd "$work/p$i" && "$bin" run --progress none -q); t2=$(now)
  m=$(calc "$t1 - $t0"); p=$(calc "$t2 - $t1")
  total_m=$(calc "$total_m + $m"); total_p=$(calc "$total_p + $p")
  printf '%-6s %12.2f %12.2f %8.2f\n' "$i" "$m" "$p" "$(calc "$m / $p")"
done
printf '%-6s %12.2f %12.2f %8.2f   (manual / pipeline; >1 means pipeline is faster)\n' all "$total_m" "$total_p" "$(calc "$total_m / $total_p")"

#!/usr/bin/env bash
# Cold `pipeline run` against the manual processes it replaces, in one
# invocation, on the same images, engine and registry:
#
#   classic:  the loop the seed replaced: docker login; per service in
#             `requires` order, DOCKER_BUILDKIT=0 docker build -f
#             services/x/Dockerfile -t <registry>/<repo>:latest <context> && docker push …
#   buildkit: the same loop with BuildKit builds through the Engine API
#             (DOCKER_BUILDKIT=1 with the 20.10 CLI, --network host), as a
#             user on a current Docker would write it
#   pipeline: pipeline run (BuildKit, build.jobs parallel builds, push once,
#             add latest + git tag in the registry, patch the overlay)
#
# Each round copies the sample (or a gen-monorepo.py tree with --gen N) with a
# fresh repository prefix and a fresh nonce in every Dockerfile, so nothing is
# in the registry and no build step is in the engine's cache: all three are
# cold. --gen takes several sizes (--gen 20,50), each measured in turn.
#
#   bench/run-vs-manual.sh [--rounds 3] [--gen N[,N...]]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 gens=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --gen) gens=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--gen SERVICES[,SERVICES...]]" >&2; exit 2 ;;
  esac
done
scripts/stack up
eval "$(scripts/stack env)"
. bench/lib.sh
loop_py=$PWD/bench/manual-loop.py
export DOCKER_CONFIG=$work/docker-config CI=true
export CATALOG_TOKEN=${CATALOG_TOKEN:-bench-token}

# make_tree DIR PREFIX NONCE GEN: the sample (or a generated repo) with a
# fresh prefix and nonce.
make_tree() {
  local dir=$1 prefix=$2 nonce=$3 gen=$4
  if [ "$gen" -gt 0 ]; then
    python3 ../shared/bench/gen-monorepo.py "$dir" --services "$gen" --registry "$PIPELINE_TEST_REGISTRY" >/dev/null
    # The bench engine runs with --bridge=none: RUN steps use the host network.
    sed -i 's/^build:$/build:\n  network: host/' "$dir/pipeline.yaml"
  else
    mkdir -p "$dir"
    cp -r services libs k8s charts pipeline.yaml .dockerignore "$dir/"
  fi
  sed -i "s#repository_prefix: .*#repository_prefix: $prefix#" "$dir/pipeline.yaml"
  for f in "$dir"/services/*/Dockerfile; do
    # A LABEL right after each FROM busts the engine's step cache.
    sed -i "/^FROM /a LABEL bench.nonce=$nonce" "$f"
  done
  (cd "$dir" && git init -q 2>/dev/null; git add -A && git -c user.email=b@b -c user.name=b commit -qm bench)
}

# A manual loop (`classic` or `buildkit`), driven by `pipeline services
# --output json` for the order and settings only (it builds and pushes
# nothing itself).
manual() {
  local dir=$1 kind=$2
  (
    cd "$dir"
    echo "$PIPELINE_TEST_REGISTRY_PASSWORD" | docker login -u "$PIPELINE_TEST_REGISTRY_USER" --password-stdin "$PIPELINE_TEST_REGISTRY" >/dev/null 2>&1
    local flags=(--push)
    [ "$kind" = buildkit ] && flags+=(--buildkit)
    "$bin" services --output json | python3 "$loop_py" "$PIPELINE_TEST_REGISTRY" "${flags[@]}" > "$dir/manual.sh"
    bash -e "$dir/manual.sh"
  )
}

for gen in ${gens//,/ }; do
  what="the sample"; [ "$gen" -gt 0 ] && what="$gen generated services"
  echo "== cold runs, $what, $rounds rounds"
  printf '%-6s %10s %10s %10s %9s %9s\n' round classic_s buildkit_s pipeline_s vs_classic vs_buildkit
  total_c=0 total_b=0 total_p=0
  for i in $(seq "$rounds"); do
    id=$(date +%s%N)
    make_tree "$work/c$gen-$i" "bench-c-$id/" "c$id" "$gen"
    make_tree "$work/b$gen-$i" "bench-b-$id/" "b$id" "$gen"
    make_tree "$work/p$gen-$i" "bench-p-$id/" "p$id" "$gen"
    t0=$(now); manual "$work/c$gen-$i" classic; t1=$(now)
    manual "$work/b$gen-$i" buildkit; t2=$(now)
    (cd "$work/p$gen-$i" && "$bin" run --progress none -q); t3=$(now)
    c=$(calc "$t1 - $t0"); b=$(calc "$t2 - $t1"); p=$(calc "$t3 - $t2")
    total_c=$(calc "$total_c + $c"); total_b=$(calc "$total_b + $b"); total_p=$(calc "$total_p + $p")
    printf '%-6s %10.2f %10.2f %10.2f %9.2f %9.2f\n' "$i" "$c" "$b" "$p" "$(calc "$p / $c")" "$(calc "$p / $b")"
  done
  printf '%-6s %10.2f %10.2f %10.2f %9.2f %9.2f   (pipeline / loop; <1 means pipeline is faster)\n' all \
    "$total_c" "$total_b" "$total_p" "$(calc "$total_p / $total_c")" "$(calc "$total_p / $total_b")"
done

#!/usr/bin/env bash
# Cold `pipeline run` against the manual processes it replaces, in one
# invocation, on the same images, engine and registry, on gen-monorepo.py
# trees of N services (every fifth builds from the repo root, every tenth
# requires svc000):
#
#   classic:  the loop the seed replaced: docker login; per service in
#             `requires` order, DOCKER_BUILDKIT=0 docker build -f
#             services/x/Dockerfile -t <registry>/<repo>:latest <context>, docker push …
#   buildkit: the same loop with BuildKit builds through the Engine API
#             (DOCKER_BUILDKIT=1 with the 20.10 CLI, --network host), as a
#             user on a current Docker would write it
#   pipeline: pipeline run (BuildKit, build.jobs parallel builds, push once,
#             add latest + git tag in the registry, patch the overlay)
#
# Timed: for the loops, the login and the loop (the loop's script is written
# beforehand); for pipeline, the whole `pipeline run`. The three run one
# after the other, in an order that rotates per round.
#
# Cold, the way bench/pool.sh does it: every measured run gets a fresh
# repository prefix (nothing in the registry) and a fresh tree whose
# services/*/src/ holds a bench-salt.txt with a per-run value (bench_salt in
# lib.sh). Every service COPYs its src/ right after FROM, so from there on no
# step can match the build cache of an earlier run, with either builder. (A
# LABEL nonce does not do: the trees are byte-identical from one invocation
# to the next, and BuildKit keys a COPY on its sources and parent filesystem,
# which a LABEL changes neither of.) Every build's log is kept (the loops
# build without -q, BuildKit with --progress plain; pipeline writes
# .pipeline/logs/) and checked (bench_cold): a step taken from the cache other
# than FROM fails the bench. FROM local/busybox:1 is local, and a dependent's
# FROM is svc000 as built earlier in the same run. The images a run tagged
# are removed after it, outside the timing; the build cache is not pruned
# (the salt makes every step miss, and the engine is shared with the stack
# tests).
#
# The machine is shared: the load average at the start of each round is
# shown, and at the start and end of the bench.
#
# Only generated trees: the sample's services share no folder that every
# build copies first, and its catalog needs BuildKit (a secret, a cache
# mount, COPY --chmod), which the classic loop cannot build.
#
#   bench/run-vs-manual.sh [--rounds 3] [--gen N[,N...]]   (default --gen 20,50)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 gens=20,50
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --gen) gens=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--gen SERVICES[,SERVICES...]]" >&2; exit 2 ;;
  esac
done
for gen in ${gens//,/ }; do
  if ! [ "$gen" -gt 0 ] 2>/dev/null; then
    echo "--gen takes service counts above 0 (the sample cannot be measured cold against the classic loop)" >&2
    exit 2
  fi
done
bench_t0=$(date +%s.%N)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
scripts/stack up >/dev/null
eval "$(scripts/stack env)"
cargo_t0=$(date +%s.%N)
. bench/lib.sh
cargo_s=$(calc "$(now) - $cargo_t0")
loop_py=$PWD/bench/manual-loop.py
export DOCKER_CONFIG=$work/docker-config CI=true
echo "$(nproc) CPUs; load average $load_start at the start; docker $(docker version --format '{{.Server.Version}}'), $(docker info --format '{{.Images}}') images in the engine"

# keep_failed DIR WHAT: stops the bench, keeping the run's tree (with its
# logs) outside $work.
keep_failed() {
  local keep
  keep=$(mktemp -d /tmp/bench-run-vs-manual-failed.XXXXXX)
  cp -a "$1" "$keep/"
  echo "$2; tree and logs kept in $keep" >&2
  exit 1
}

# make_tree DIR PREFIX SALT: a copy of the template with a fresh prefix and
# a salt in every service's src/.
make_tree() {
  cp -a "$template" "$1"
  sed -i "s#repository_prefix: .*#repository_prefix: $2#" "$1/pipeline.yaml"
  bench_salt "$1" "$3"
  (cd "$1" && git add -A && git -c user.email=b@b -c user.name=b commit -qm salt)
}

# measure KIND DIR: one cold run of KIND (classic, buildkit, pipeline) in
# the tree DIR; prints its seconds. Its build logs are checked and the
# images it tagged removed afterwards, outside the timing.
measure() {
  local kind=$1 dir=$2 prefix t0 t1 rc=0 steps logs
  prefix=$(sed -n 's/^  repository_prefix: //p' "$dir/pipeline.yaml")
  if [ "$kind" = pipeline ]; then
    t0=$(now)
    (cd "$dir" && "$bin" run --progress none -q) >"$dir.out" 2>&1 || rc=$?
    t1=$(now)
    logs=$dir/.pipeline/logs
    [ "$rc" -eq 0 ] || { tail -n 20 "$dir.out" >&2; keep_failed "$dir" "pipeline run failed (exit $rc)"; }
    python3 -c '
import json, sys
bad = {n: s["status"] for n, s in json.load(open(sys.argv[1]))["services"].items() if s["status"] != "built"}
sys.exit(f"not every service was built: {bad}" if bad else None)' "$dir/.pipeline/results.json" ||
      keep_failed "$dir" "pipeline run did not build every service"
  else
    local flags=(--push --logs "$dir/logs")
    [ "$kind" = buildkit ] && flags+=(--buildkit)
    mkdir "$dir/logs"
    (cd "$dir" && "$bin" services --output json) | python3 "$loop_py" "$PIPELINE_TEST_REGISTRY" "${flags[@]}" >"$dir/manual.sh"
    t0=$(now)
    (
      cd "$dir"
      echo "$PIPELINE_TEST_REGISTRY_PASSWORD" | docker login -u "$PIPELINE_TEST_REGISTRY_USER" --password-stdin "$PIPELINE_TEST_REGISTRY" >/dev/null 2>&1
      bash -e manual.sh
    ) >"$dir.out" 2>&1 || rc=$?
    t1=$(now)
    logs=$dir/logs
    if [ "$rc" -ne 0 ]; then
      # The loop stops at the failed build: its log is the newest.
      tail -n 20 "$dir.out" "$(find "$logs" -name '*.log' -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)" >&2
      keep_failed "$dir" "the $kind loop failed (exit $rc)"
    fi
  fi
  local files=("$logs"/*.log)
  [ "${#files[@]}" -eq "$gen" ] || keep_failed "$dir" "$kind: ${#files[@]} build logs for $gen services"
  steps=$(bench_cold "$kind" "${files[@]}") || keep_failed "$dir" "$kind run not cold"
  echo "$steps" >>"$work/steps-$kind"
  remove_images "${DOCKER_HOST:-unix:///var/run/docker.sock}" "$PIPELINE_TEST_REGISTRY/$prefix*"
  calc "$t1 - $t0"
}

kinds=(classic buildkit pipeline)
for gen in ${gens//,/ }; do
  template=$work/template-$gen
  python3 ../shared/bench/gen-monorepo.py "$template" --services "$gen" --registry "$PIPELINE_TEST_REGISTRY" >/dev/null
  # The bench engine runs with --bridge=none: RUN steps use the host network.
  sed -i 's/^build:$/build:\n  network: host/' "$template/pipeline.yaml"
  (cd "$template" && git -c user.email=b@b -c user.name=b commit -qam network)
  rm -f "$work"/steps-*
  echo
  echo "== cold runs, $gen generated services, $rounds rounds"
  printf '%-6s %10s %10s %10s %9s %9s  %s\n' round classic_s buildkit_s pipeline_s vs_classic vs_buildkit "order, load average"
  declare -A secs=()
  for i in $(seq "$rounds"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    order=()
    for k in 0 1 2; do order+=("${kinds[(i - 1 + k) % 3]}"); done
    for kind in "${order[@]}"; do
      id=$(date +%s%N)
      dir=$work/$kind-$gen-$i
      make_tree "$dir" "bench-${kind:0:1}-$id/" "$kind-$id"
      secs[$kind,$i]=$(measure "$kind" "$dir")
      rm -rf "$dir"
    done
    c=${secs[classic,$i]} b=${secs[buildkit,$i]} p=${secs[pipeline,$i]}
    printf '%-6s %10.2f %10.2f %10.2f %9.2f %9.2f  %s, %s\n' "$i" "$c" "$b" "$p" \
      "$(calc "$p / $c")" "$(calc "$p / $b")" "${order[*]}" "$load"
  done
  total() { local k=$1 i s=0; for i in $(seq "$rounds"); do s=$(calc "$s + ${secs[$k,$i]}"); done; echo "$s"; }
  med() { local k=$1 i v=(); for i in $(seq "$rounds"); do v+=("${secs[$k,$i]}"); done; median "${v[@]}"; }
  for row in all median; do
    if [ "$row" = all ]; then f=total; else f=med; fi
    c=$($f classic) b=$($f buildkit) p=$($f pipeline)
    printf '%-6s %10.2f %10.2f %10.2f %9.2f %9.2f' "$row" "$c" "$b" "$p" "$(calc "$p / $c")" "$(calc "$p / $b")"
    [ "$row" = all ] && printf '  (pipeline / loop; <1: pipeline is faster)'
    echo
  done
  checked=""
  for kind in "${kinds[@]}"; do
    checked+="${checked:+, }$kind $(paste -sd+ "$work/steps-$kind" | python3 -c 'print(eval(input()))')"
  done
  echo "cold: every build's log checked, no step from the build cache but FROM; steps run: $checked"
  unset secs
done
echo
echo "load average: $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
printf 'bench wall time: %.0f s (%.0f s of it cargo build --release)\n' "$(calc "$(now) - $bench_t0")" "$cargo_s"

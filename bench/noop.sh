#!/usr/bin/env bash
# The incremental case, in one invocation, on a gen-monorepo.py tree of N
# services (small contexts; every fifth builds from the repo root):
#
#   cold:        pipeline run on an empty registry (build, push, tag)
#   no-op:       pipeline run again, nothing changed (median of R rounds)
#   plan:        pipeline plan (the same look-ups, no engine)
#   docker warm: `docker build` of every service with a warm layer cache,
#                the loop users run today (median of R rounds; no push)
#
#   bench/noop.sh [--services 50] [--rounds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
services=50 rounds=5
while [ $# -gt 0 ]; do
  case $1 in
    --services) services=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--services N] [--rounds R]" >&2; exit 2 ;;
  esac
done
scripts/stack up >/dev/null
eval "$(scripts/stack env)"
. bench/lib.sh
export DOCKER_BUILDKIT=0 CI=true
repo=$work/repo
python3 ../shared/bench/gen-monorepo.py "$repo" --services "$services" --registry "$PIPELINE_TEST_REGISTRY" >/dev/null
sed -i "s#repository_prefix: .*#repository_prefix: bench-noop-$(date +%s%N)/#" "$repo/pipeline.yaml"
# The bench engine runs with --bridge=none: RUN steps use the host network.
sed -i 's/^build:$/build:\n  network: host/' "$repo/pipeline.yaml"
(cd "$repo" && git -c user.email=b@b -c user.name=b commit -qam prefix)


cold=$(cd "$repo" && timed "$bin" run --progress none -q)
noop=() plan=() warm=()
for _ in $(seq "$rounds"); do
  noop+=("$(cd "$repo" && timed "$bin" run --progress none -q)")
  plan+=("$(cd "$repo" && timed "$bin" plan -q)")
done
# The manual loop: one `docker build` per service, in requires order, with
# the settings pipeline would use (read from `pipeline services`).
(cd "$repo" && "$bin" services --output json) | python3 bench/manual-loop.py bench-warm > "$work/docker-loop.sh"
(cd "$repo" && bash -e "$work/docker-loop.sh")   # warms the layer cache
for _ in $(seq "$rounds"); do
  warm+=("$(cd "$repo" && timed bash -e "$work/docker-loop.sh")")
done
noop_m=$(median "${noop[@]}") plan_m=$(median "${plan[@]}") warm_m=$(median "${warm[@]}")
printf '%-34s %10s\n' "$services services" seconds
printf '%-34s %10.2f\n' "pipeline run, cold" "$cold"
printf '%-34s %10.3f\n' "pipeline run, no-op (median)" "$noop_m"
printf '%-34s %10.3f\n' "pipeline plan, no-op (median)" "$plan_m"
printf '%-34s %10.2f\n' "docker build loop, warm (median)" "$warm_m"
printf 'no-op run / warm docker loop: %.3f   no-op run / cold run: %.3f\n' \
  "$(calc "$noop_m / $warm_m")" "$(calc "$noop_m / $cold")"

#!/usr/bin/env bash
# A pool of engines (`builders:`) against one engine, in one invocation, on
# a gen-monorepo.py tree of N services (every fifth builds from the repo
# root, every tenth requires svc000), all built cold:
#
#   1 engine:   builders: [unix:///var/run/docker.sock] with jobs J
#   2 engines:  the same plus engine B ($PIPELINE_TEST_ENGINE_B), jobs J each
#   1 engine, 2J (the control): the first engine alone with as many build
#               slots as the two have, to tell what the second engine brings
#               from what more concurrent builds bring
#
# J is the generated config's build.jobs (2). For each, `pipeline run
# --progress plain`: its wall time (median over R rounds; the order of the
# three rotates per round), where the time goes (from the log's own clock,
# 0.1 s resolution: start to first `build`, first `build` to the last build's
# end, i.e. its `push` line, then pushes, tags and patch to the last line),
# how busy the build slots were (sum of each service's `build`..`push`
# interval; duration_ms in the results file also counts the wait for a slot
# and the push, so it is shown but is not busy time), and the spread: which
# engine built each service (the results file's `builder`), and whether that
# was the engine the FNV-1a hash of its name prefers, the one its
# requirement was built on, or an idle one that took it.
#
# Cold: every measured run gets a fresh repository prefix (nothing in the
# registry) and a fresh tree whose services/*/src/ holds a bench-salt.txt
# with a per-run value (bench_salt in lib.sh): every service COPYs its src/,
# so from the COPY on no step can match the build cache of an earlier run,
# on either engine. The service logs are checked (bench_cold): any step
# reported CACHED other than FROM fails the bench. FROM local/busybox:1 is
# local on both engines (scripts/stack loads it), so neither pulls a base;
# a dependent built on another engine than svc000 pulls svc000 from the
# registry, which is counted. `docker builder prune -af` on both engines is
# not the default: the salt already makes every step miss, and the engines
# are shared with the stack tests, whose builds a prune would disturb; pass
# --prune to do it before each measured run anyway. The images each run
# tagged are removed from both engines after it (outside the timing).
#
# The machine's CPU use during each run (not niced) is shown too, and
# each engine's image count: engine A is shared with the stack tests and
# holds far more than engine B.
#
# Builds here are small (COPY 160 KB, one RUN) and the machine has few
# cores: two engines on one host share the same CPUs and disk, so the pool
# is not expected to be faster here; the bench shows what it costs.
#
#   bench/pool.sh [--services 50] [--rounds 1] [--prune]
set -euo pipefail
cd "$(dirname "$0")/.."
services=50 rounds=1 prune=0
while [ $# -gt 0 ]; do
  case $1 in
    --services) services=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --prune) prune=1; shift ;;
    *) echo "usage: $0 [--services N] [--rounds R] [--prune]" >&2; exit 2 ;;
  esac
done
bench_t0=$(date +%s.%N)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
scripts/stack up >/dev/null
eval "$(scripts/stack env)"
cargo_t0=$(date +%s.%N)
. bench/lib.sh
cargo_s=$(calc "$(now) - $cargo_t0")
export CI=true
engine_a=unix:///var/run/docker.sock
engine_b=$PIPELINE_TEST_ENGINE_B
base=local/busybox:1
for host in "$engine_a" "$engine_b"; do
  if ! docker -H "$host" image inspect "$base" >/dev/null 2>&1; then
    echo "$base is not in $host: run scripts/stack up" >&2
    exit 1
  fi
done

# The tree every run copies: generated once, adapted to the local stack.
template=$work/template
python3 ../shared/bench/gen-monorepo.py "$template" --services "$services" --registry "$PIPELINE_TEST_REGISTRY" >/dev/null
# The bench engines run with --bridge=none: RUN steps use the host network.
sed -i 's/^build:$/build:\n  network: host/' "$template/pipeline.yaml"
jobs=$(awk '/^build:/ {b = 1; next} /^[^ ]/ {b = 0} b && $1 == "jobs:" {print $2}' "$template/pipeline.yaml")
jobs=${jobs:-2}
push_jobs=$(awk '/^build:/ {b = 1; next} /^[^ ]/ {b = 0} b && $1 == "push_jobs:" {print $2}' "$template/pipeline.yaml")

# make_tree DIR PREFIX SALT JOBS HOST...: a copy of the template with a
# fresh prefix, a salt file in every service's src/, and HOST... as its
# builders, JOBS slots each.
make_tree() {
  local dir=$1 prefix=$2 salt=$3 slots=$4 host
  shift 4
  cp -a "$template" "$dir"
  sed -i "s#repository_prefix: .*#repository_prefix: $prefix#" "$dir/pipeline.yaml"
  bench_salt "$dir" "$salt"
  echo "builders:" >>"$dir/pipeline.yaml"
  for host in "$@"; do
    printf '  - host: %s\n    jobs: %s\n' "$host" "$slots" >>"$dir/pipeline.yaml"
  done
  (cd "$dir" && git add -A && git -c user.email=b@b -c user.name=b commit -qm salt)
}

# remove_run_images PREFIX: what a run tagged or pulled, from both engines.
remove_run_images() {
  local host
  for host in "$engine_a" "$engine_b"; do
    remove_images "$host" "$PIPELINE_TEST_REGISTRY/$1*"
  done
}

# CPU ticks of the whole machine: busy (user, system, irq, softirq, steal;
# niced processes, such as a fuzzer soaking up idle time, are left out) and
# all.
cpu_ticks() { awk '$1 == "cpu" {print $2 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

# keep_failed DIR WHAT: stops the bench, keeping the run's tree (with its
# .pipeline/), plain log and summary outside $work.
keep_failed() {
  local keep
  keep=$(mktemp -d /tmp/bench-pool-failed.XXXXXX)
  cp -a "$1" "$1.out" "$1.log" "$keep/"
  echo "$2; tree, log and results kept in $keep (reproduce: cd $keep/$(basename "$1") && $bin run --progress plain)" >&2
  exit 1
}

# measure KIND ROUND: one cold run, KIND `one` (engine A, J slots), `two`
# (A and B, J each) or `wide` (A, 2J); appends its figures to
# $work/runs.jsonl. A failed run stops the bench, keeping its tree.
measure() {
  local kind=$1 round=$2 id dir t0 t1 cpu0 cpu1 rc=0 slots=$jobs hosts=("$engine_a")
  [ "$kind" = two ] && hosts+=("$engine_b")
  [ "$kind" = wide ] && slots=$((2 * jobs))
  id=$(date +%s%N)
  dir=$work/run-$kind-$round
  make_tree "$dir" "bench-pool-$kind-$id/" "$id" "$slots" "${hosts[@]}"
  if [ "$prune" = 1 ]; then
    docker -H "$engine_a" builder prune -af >/dev/null
    docker -H "$engine_b" builder prune -af >/dev/null
  fi
  if ! docker -H "$engine_b" version >/dev/null 2>&1; then
    echo "engine B ($engine_b) does not answer (stopped by a concurrent test?)" >&2
    exit 1
  fi
  cpu0=$(cpu_ticks) t0=$(now)
  (cd "$dir" && "$bin" run --progress plain >"$dir.out" 2>"$dir.log") || rc=$?
  t1=$(now) cpu1=$(cpu_ticks)
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$dir.log" >&2
    keep_failed "$dir" "pipeline run ($kind) failed (exit $rc)"
  fi
  # The service logs hold every step (the plain log may leave some out).
  bench_cold "$kind" "$dir"/.pipeline/logs/*.log >/dev/null || keep_failed "$dir" "pipeline run ($kind) was not cold"
  python3 - "$dir" "$kind" "$round" "$(calc "$t1 - $t0")" "$cpu0 $cpu1" "$slots" "${hosts[@]}" >>"$work/runs.jsonl" <<'PY' ||
import json, re, sys
from collections import defaultdict

d, kind, rnd, wall, cpu, slots = sys.argv[1:7]
hosts = sys.argv[7:]
busy0, all0, busy1, all1 = map(int, cpu.split())
res = json.load(open(f"{d}/.pipeline/results.json"))["services"]
bad = {n: s["status"] for n, s in res.items() if s["status"] != "built"}
if bad:
    sys.exit(f"{kind}: not every service was built: {bad}")

# The plain log: `[  12.3s] svc007    build`.
line = re.compile(r"^\[\s*([0-9.]+)s\] (\S+)\s+(.*)$")
start, end, last, lost = {}, {}, 0.0, []
for text in open(f"{d}.log"):
    m = line.match(text)
    if not m:
        continue
    t, who, what = float(m[1]), m[2], m[3]
    last = max(last, t)
    if what == "build":
        start.setdefault(who, t)
    elif what == "push":
        end[who] = t
    elif "is left out" in what or "does not answer any more" in what:
        lost.append(what)
if lost:
    sys.exit(f"{kind}: an engine was lost during the run: {lost}")

def fnv1a(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h

# The spread, and where each service went (config order: A, then B).
requires = {}
for text in open(f"{d}/pipeline.yaml"):
    m = re.match(r"  (\S+):$", text)
    if m:
        svc = m[1]
    m = re.match(r"    requires: \[(.*)\]", text)
    if m:
        requires[svc] = [r.strip() for r in m[1].split(",")]
count, busy, dur = defaultdict(int), defaultdict(float), defaultdict(float)
placed = defaultdict(int)
pulled = 0
builds = []
for n, s in res.items():
    e = "AB"[hosts.index(s["builder"])]
    count[e] += 1
    took = end[n] - start[n]
    builds.append(took)
    busy[e] += took
    dur[e] += s["duration_ms"] / 1000
    near = [res[r]["builder"] for r in requires.get(n, [])]
    if near and any(b != s["builder"] for b in near):
        pulled += 1
    if len(hosts) > 1:
        if hosts[fnv1a(n) % len(hosts)] == s["builder"]:
            placed["preferred"] += 1
        elif near and all(b == s["builder"] for b in near):
            placed["requirement"] += 1
        else:
            placed["idle"] += 1
builds.sort()
print(json.dumps({
    "kind": kind, "round": int(rnd), "wall": float(wall),
    "first_build": min(start.values()), "last_built": max(end.values()), "last_line": last,
    "busy": sum(busy.values()), "median_build": builds[len(builds) // 2],
    "durations": sum(dur.values()), "count": count, "busy_by": busy, "dur_by": dur,
    "placed": placed, "dependents": sum(1 for n in res if n in requires), "pulled": pulled,
    "slots": len(hosts) * int(slots), "cpu": 100 * (busy1 - busy0) / (all1 - all0),
}))
PY
    keep_failed "$dir" "the $kind run is not a clean cold run"
  remove_run_images "bench-pool-$kind-$id/"
}

for round in $(seq "$rounds"); do
  case $((round % 3)) in
    1) order="one two wide" ;;
    2) order="two wide one" ;;
    0) order="wide one two" ;;
  esac
  for kind in $order; do
    measure "$kind" "$round"
  done
done

state() { docker -H "$1" info --format '{{.Images}} images, {{.ServerVersion}}'; }
python3 - "$work/runs.jsonl" "$services" "$rounds" "$jobs" "$push_jobs" "$engine_a" "$engine_b" "$(nproc)" \
  "$(state "$engine_a")" "$(state "$engine_b")" <<'PY'
import json, statistics, sys

path, services, rounds, jobs, push_jobs, engine_a, engine_b, nproc, state_a, state_b = sys.argv[1:]
jobs, rounds = int(jobs), int(rounds)
runs = [json.loads(l) for l in open(path)]
kinds = ("one", "two", "wide")
by = {k: [r for r in runs if r["kind"] == k] for k in kinds}

def med(kind, f):
    return statistics.median(f(r) for r in by[kind])

def row(label, f, fmt="{:.2f}", note="", only=kinds):
    cells = [fmt.format(med(k, f)) if k in only else "" for k in kinds]
    print(f"{label:<42} {cells[0]:>9} {cells[1]:>9} {cells[2]:>9}  {note}".rstrip())

def phase(r):
    return r["last_built"] - r["first_build"]

median_of = f"median of {rounds} rounds" if rounds > 1 else "1 round"
print(f"{services} services, cold, {median_of}; {nproc} CPUs; build.jobs J={jobs}, push_jobs {push_jobs}")
print(f"engine A {engine_a} ({state_a})")
print(f"engine B {engine_b} ({state_b})")
print()
print(f"{'':<42} {'1 engine':>9} {'2 engines':>9} {'control':>9}")
print(f"{'engines x jobs':<42} {'A x ' + str(jobs):>9} {'A+B x ' + str(jobs):>9} {'A x ' + str(2 * jobs):>9}")
row("pipeline run, wall s", lambda r: r["wall"])
if rounds > 1:
    for k in kinds:
        walls = "  ".join(f"{r['wall']:.2f}" for r in sorted(by[k], key=lambda r: r["round"]))
        print(f"  {k}, per round: {walls}")
row("  outside the log's clock s", lambda r: r["wall"] - r["last_line"], note="process start before the log's 0.0s, exit")
row("  log start -> first build s", lambda r: r["first_build"], note="hashing, look-ups, ECR repositories")
row("  first build -> last build done s", phase, note="the build phase")
row("  last build done -> end s", lambda r: r["last_line"] - r["last_built"], note="last push, tags, patch")
row("build time per service, median s", lambda r: r["median_build"], note="`build` to `push` line")
row("busy build time, sum s", lambda r: r["busy"])
row("slots busy in the build phase %", lambda r: 100 * r["busy"] / (r["slots"] * phase(r)), "{:.0f}")
row("busy / slots s", lambda r: r["busy"] / r["slots"], note="the wall if builds were packed perfectly")
row("wall - busy / slots s", lambda r: r["wall"] - r["busy"] / r["slots"], note="not building: pipeline's own time, idle slots, last pushes")
row("machine CPU busy during the run %", lambda r: r["cpu"], "{:.0f}", note=f"of {nproc} CPUs, niced processes left out")
row("sum of duration_ms s", lambda r: r["durations"], note="also counts waiting for a slot, and the push")
print()
print("spread" + (" (medians over the rounds)" if rounds > 1 else ""))
for e in "AB":
    only = kinds if e == "A" else ("two",)
    row(f"  engine {e}: services", lambda r: r["count"].get(e, 0), "{:.0f}", only=only)
    row(f"  engine {e}: busy s", lambda r: r["busy_by"].get(e, 0), only=only)
    row(f"  engine {e}: sum of duration_ms s", lambda r: r["dur_by"].get(e, 0), only=only)
for what, label in (("preferred", "on the engine its name's hash prefers"),
                    ("requirement", "on its requirement's engine instead"),
                    ("idle", "taken by an idle engine")):
    row(f"  {label}", lambda r: r["placed"].get(what, 0), "{:.0f}", only=("two",))
row(f"  dependents that pulled svc000 (of {by['two'][0]['dependents']})", lambda r: r["pulled"], "{:.0f}", only=("two",))
print()
walls = {k: med(k, lambda r: r["wall"]) for k in kinds}
print(f"1 engine / 2 engines: {walls['one'] / walls['two']:.2f}   control (1 engine, {2 * jobs} jobs) / 2 engines: "
      f"{walls['wide'] / walls['two']:.2f}   (>1: the pool is faster)")
print(f"Both engines run on this machine's {nproc} CPUs: a second engine adds build slots, not CPU.")
PY
echo "load average: $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
printf 'bench wall time: %.0f s (%.0f s of it cargo build --release)\n' "$(calc "$(now) - $bench_t0")" "$cargo_s"

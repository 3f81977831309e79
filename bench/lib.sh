# shellcheck shell=bash
# Sourced by every benchmark after it has read its options: the release
# binary ($bin), a scratch folder removed on exit ($work), and the timing
# helpers, so all figures are taken the same way.

cargo build --release --locked --quiet
# shellcheck disable=SC2034 # used by the benches that source this file
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/pipeline
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
best() { python3 -c 'import sys; print(min(float(x) for x in sys.argv[1:]))' "$@"; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
# Seconds `"$@"` takes, its output dropped.
timed() { local t0; t0=$(now); "$@" >/dev/null; calc "$(now) - $t0"; }

# remove_images HOST PATTERN: the images of the engine HOST whose reference
# matches PATTERN (a `reference=` filter), such as the ones a run tagged or
# pulled. By tag first: an image the classic builder made is the parent of
# the images built on it, and the engine refuses to remove a parent by ID
# even forced; untagged, it goes with its last child.
remove_images() {
  docker -H "$1" image ls --format '{{.Repository}}:{{.Tag}}' --filter "reference=$2" |
    awk '!/:<none>$/' | xargs -r docker -H "$1" rmi >/dev/null
  docker -H "$1" image ls -q --filter "reference=$2" | sort -u | xargs -r docker -H "$1" rmi -f >/dev/null
}

# Cold builds. gen-monorepo.py trees are byte-identical from one run to the
# next, so an engine that built one before holds every step of it in its
# build cache. A nonce in the Dockerfile does not help: BuildKit keys a COPY
# on its sources and its parent filesystem, and a LABEL changes neither.
#
# bench_salt DIR SALT: SALT in a bench-salt.txt in every services/*/src/ of
# the tree DIR. Every generated service COPYs its src/ first thing after
# FROM, so with a salt used once, from that COPY on no step can match the
# build cache of an earlier run, on either builder.
bench_salt() {
  local svc
  for svc in "$1"/services/*/; do
    if [ ! -d "$svc/src" ]; then
      echo "bench_salt: $svc has no src/ to salt" >&2
      return 1
    fi
    echo "$2" >"$svc/src/bench-salt.txt"
  done
}

# bench_cold WHAT LOG...: checks that the build logs LOG... (one per service)
# took no step from the build cache but a FROM (the base image, or an image
# built earlier in the same run, such as a requirement), and prints how many
# other steps they ran. Reads BuildKit's plain progress (`#6 [2/3] COPY …`,
# `#6 CACHED`, as `docker build --progress plain` and pipeline's service logs
# write it) and the classic builder's (`Step 2/3 : COPY …`, ` ---> Using
# cache`). Fails, naming the first cached steps, if one was; and if a log
# shows no step at all (a quiet build, whose cache hits cannot be seen).
bench_cold() {
  python3 - "$@" <<'PY'
import os, re, sys

what, logs = sys.argv[1], sys.argv[2:]
if not logs:
    sys.exit(f"{what}: no build logs to check")
ran, hits, blind = 0, [], []
for log in logs:
    svc = os.path.basename(log).removesuffix(".log")
    names, step, steps = {}, None, 0
    for text in open(log, errors="replace"):
        text = text.rstrip("\n")
        if m := re.match(r"#(\d+) (\[.*)$", text):
            names.setdefault(m[1], m[2])
        elif m := re.match(r"#(\d+) (CACHED|DONE)", text):
            name = names.get(m[1], "")
            if re.match(r"\[[^\]]*\d+/\d+\] ", name) and not re.match(r"\[[^\]]*\] FROM ", name):
                steps += 1
                if m[2] == "CACHED":
                    hits.append(f"{svc}: {name}")
            elif m[2] == "CACHED" and "FROM" not in name:
                hits.append(f"{svc}: {name or '#' + m[1]}")
        elif m := re.match(r"Step \d+/\d+ : (.*)$", text):
            step = m[1]
            if not re.match(r"(FROM|ARG) ", step, re.I):
                steps += 1
        elif text.strip() == "---> Using cache" and step and not re.match(r"FROM ", step, re.I):
            hits.append(f"{svc}: {step}")
    ran += steps
    if steps == 0:
        blind.append(svc)
if hits:
    sys.exit(f"{what}: not cold, {len(hits)} steps from the build cache: {hits[:5]}")
if blind:
    sys.exit(f"{what}: no build step in the logs of {blind[:5]}: cannot tell whether they were cold")
print(ran)
PY
}

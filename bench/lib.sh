# Sourced by every benchmark after it has read its options: the release
# binary ($bin), a scratch folder removed on exit ($work), and the timing
# helpers, so all figures are taken the same way.

cargo build --release --locked --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/pipeline
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
best() { python3 -c 'import sys; print(min(float(x) for x in sys.argv[1:]))' "$@"; }
median() { python3 -c 'import sys, statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
# Seconds `"$@"` takes, its output dropped.
timed() { local t0; t0=$(now); "$@" >/dev/null; calc "$(now) - $t0"; }

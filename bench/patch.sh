#!/usr/bin/env bash
# Patching throughput, in one invocation: `pipeline patch` over N raw
# manifest files (multi-document, comments, init containers) of a
# gen-monorepo.py tree, against a `sed -i` loop doing the textual part of the
# same job (what hand-written Makefiles do; it understands no YAML).
#
#   bench/patch.sh [--files 1000] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
files=1000 rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --files) files=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--files N] [--rounds R]" >&2; exit 2 ;;
  esac
done
. bench/lib.sh
repo=$work/repo
python3 ../shared/bench/gen-monorepo.py "$repo" --services 50 --files 1 --file-kb 1 >/dev/null
cd "$repo"
python3 - "$files" <<'PY'
import os, sys
n = int(sys.argv[1])
os.makedirs("k8s/raw", exist_ok=True)
for i in range(n):
    s, t = f"svc{i % 50:03d}", f"svc{(i * 7 + 3) % 50:03d}"
    with open(f"k8s/raw/app{i:04d}.yaml", "w") as f:
        f.write(f"""# app {i}: generated for the patch benchmark
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
  labels: {{app: app{i}}}  # flow mapping
spec:
  replicas: 2
  selector:
    matchLabels: {{app: app{i}}}
  template:
    metadata:
      labels: {{app: app{i}}}
    spec:
      initContainers:
        - name: init
          image: {t}:latest   # pinned by pipeline
      containers:
        - name: main
          image: "{s}:latest"
          resources:
            limits: {{cpu: 100m, memory: 64Mi}}
        - name: proxy
          image: envoyproxy/envoy:v1.30.1
---
apiVersion: v1
kind: Service
metadata:
  name: app{i}
spec:
  selector: {{app: app{i}}}
  ports:
    - port: 80
""")
PY
sed -i 's#^  kustomize: .*#  raw: ["k8s/raw/*.yaml"]#' pipeline.yaml
git add -A && git -c user.email=b@b -c user.name=b commit -qm raw
# A results file with a digest per service, as `pipeline run` writes it.
"$bin" services --output json | python3 -c '
import json, sys, hashlib
services = {}
for s in json.load(sys.stdin):
    d = "sha256:" + hashlib.sha256(s["name"].encode()).hexdigest()
    services[s["name"]] = {"status": "built", "repository": "127.0.0.1:5000/" + s["repository"],
        "digest": d, "tags": ["in-0", "latest"], "input_digest": d, "duration_ms": 0, "error": None}
json.dump({"schema": 1, "git": {"sha": None, "dirty": False}, "registry": "127.0.0.1:5000",
    "services": services, "manifests": []}, open("results.json", "w"))
'
sed_script=$work/pin.sed
python3 -c '
import json
r = json.load(open("results.json"))
for name, s in r["services"].items():
    print("s#image: (\"?)" + name + ":latest#image: \\1" + s["repository"] + "@" + s["digest"] + "#")
' > "$sed_script"
patch=() check=() seds=()
for _ in $(seq "$rounds"); do
  git checkout -q -- k8s
  t0=$(now); "$bin" patch --results results.json -q; t1=$(now)
  patch+=("$(calc "$t1 - $t0")")
  t0=$(now); "$bin" patch --results results.json --check -q >/dev/null; t1=$(now)
  check+=("$(calc "$t1 - $t0")")
  git checkout -q -- k8s
  t0=$(now); sed -i -E -f "$sed_script" k8s/raw/*.yaml; t1=$(now)
  seds+=("$(calc "$t1 - $t0")")
done
git checkout -q -- k8s
"$bin" patch --results results.json -q
changed=$(git diff --name-only | wc -l)
p=$(best "${patch[@]}") c=$(best "${check[@]}") s=$(best "${seds[@]}")
printf '%d files (%d changed), best of %d\n' "$files" "$changed" "$rounds"
printf '%-32s %8s %10s\n' "" seconds files/s
printf '%-32s %8.3f %10.0f\n' "pipeline patch" "$p" "$(calc "$files / $p")"
printf '%-32s %8.3f %10.0f\n' "pipeline patch --check (no-op)" "$c" "$(calc "$files / $c")"
printf '%-32s %8.3f %10.0f\n' "sed -i (text only, baseline)" "$s" "$(calc "$files / $s")"

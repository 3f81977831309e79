#!/usr/bin/env python3
"""The manual loop the benchmarks compare against, as shell lines.

Reads `pipeline services --output json` on stdin (used for the order and the
settings only; pipeline builds nothing here) and prints one
`docker build -f services/x/Dockerfile -t PREFIX/<repository>:latest <context>`
per service in `requires` order, with its target, build args and
`<NAME>_IMAGE`; with --push, each followed by `docker push`.

With --buildkit the builds go through BuildKit, as a current Docker does:
the Debian 20.10 CLI (`$BUILDKIT_DOCKER`, default /usr/bin/docker, which
speaks BuildKit to the engine without buildx) with `DOCKER_BUILDKIT=1` and
`--network host` (the bench engine has no bridge network). Otherwise the
classic builder (`DOCKER_BUILDKIT=0`).

    pipeline services --output json | manual-loop.py PREFIX [--push] [--buildkit] > loop.sh
"""
import json, shlex, sys

prefix = sys.argv[1]
push = "--push" in sys.argv[2:]
buildkit = "--buildkit" in sys.argv[2:]
services = {s["name"]: s for s in json.load(sys.stdin)}
done, order = set(), []
while len(order) < len(services):
    for n, s in sorted(services.items()):
        if n not in done and all(r in done for r in s["requires"]):
            done.add(n)
            order.append(n)


def ref(name):
    return prefix + "/" + services[name]["repository"] + ":latest"


for n in order:
    s = services[n]
    if buildkit:
        args = ["env", "DOCKER_BUILDKIT=1", "${BUILDKIT_DOCKER:-/usr/bin/docker}", "build", "--network", "host"]
    else:
        args = ["env", "DOCKER_BUILDKIT=0", "docker", "build"]
    args += ["-q", "-f", s["dockerfile"], "-t", ref(n)]
    if s.get("target"):
        args += ["--target", s["target"]]
    for k, v in s.get("build_args", {}).items():
        args += ["--build-arg", k + "=" + v]
    for r in s["requires"]:
        arg = "".join(c.upper() if c.isalnum() else "_" for c in r) + "_IMAGE"
        args += ["--build-arg", arg + "=" + ref(r)]
    args.append(s["context"])
    line = " ".join(a if a.startswith("${") else shlex.quote(a) for a in args) + " >/dev/null 2>&1"
    if push:
        line += " && docker push -q " + shlex.quote(ref(n)) + " >/dev/null"
    print(line)

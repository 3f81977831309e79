#!/usr/bin/env python3
"""The manual loop the benchmarks compare against, as shell lines.

Reads `pipeline services --output json` on stdin (used for the order and the
settings only; pipeline builds nothing here) and prints one
`docker build -f services/x/Dockerfile -t PREFIX/<repository>:latest <context>`
per service in `requires` order, with its target, build args and
`<NAME>_IMAGE`; with --push, each followed by `docker push` on a line of its
own (so that `bash -e` stops at a failed build instead of going on without
it).

With --buildkit the builds go through BuildKit, as a current Docker does:
the Debian 20.10 CLI (`$BUILDKIT_DOCKER`, default /usr/bin/docker, which
speaks BuildKit to the engine without buildx) with `DOCKER_BUILDKIT=1` and
`--network host` (the bench engine has no bridge network). Otherwise the
classic builder (`DOCKER_BUILDKIT=0`).

Builds are quiet (`-q`, output dropped) unless --logs DIR is given: then each
build writes its full output to DIR/<service>.log (`--progress plain` with
BuildKit), where the steps taken from the build cache can be seen
(`#5 CACHED`; the classic builder's ` ---> Using cache`).

    pipeline services --output json | manual-loop.py PREFIX [--push] [--buildkit] [--logs DIR] > loop.sh
"""
import json, shlex, sys

prefix = sys.argv[1]
opts = sys.argv[2:]
push = "--push" in opts
buildkit = "--buildkit" in opts
logs = opts[opts.index("--logs") + 1] if "--logs" in opts else None
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
        if logs:
            args += ["--progress", "plain"]
    else:
        args = ["env", "DOCKER_BUILDKIT=0", "docker", "build"]
    if not logs:
        args.append("-q")
    args += ["-f", s["dockerfile"], "-t", ref(n)]
    if s.get("target"):
        args += ["--target", s["target"]]
    for k, v in s.get("build_args", {}).items():
        args += ["--build-arg", k + "=" + v]
    for r in s["requires"]:
        arg = "".join(c.upper() if c.isalnum() else "_" for c in r) + "_IMAGE"
        args += ["--build-arg", arg + "=" + ref(r)]
    args.append(s["context"])
    out = shlex.quote(f"{logs}/{n}.log") if logs else "/dev/null"
    print(" ".join(a if a.startswith("${") else shlex.quote(a) for a in args) + f" >{out} 2>&1")
    if push:
        print("docker push -q " + shlex.quote(ref(n)) + " >/dev/null")

#!/usr/bin/env python3
"""A CI split of the suite into N shards (`mpspec run --shard k/N`, k = 1..N) runs every test
exactly once. CTest: `harness.shard` (N = 4, the binary of the build tree under test).

How, and why this way. GoogleTest's `--gtest_list_tests` ignores the sharding variables, so
a shard's tests are only seen by running the binary; running the real suite N times would
cost N whole-suite runs. So each shard runs the real conformance binary through the real
command, `mpspec run --no-build --shard k/N`, against a driver that cannot work: `cat`,
which answers each request with the request itself, so every test ends within milliseconds
(its `hello` is refused) and a shard of the whole suite takes about a second. This exercises the whole --shard path end to end: the option, the
harness's computation of the shard's part of the binary's test list, the GTEST_SHARD_INDEX /
GTEST_TOTAL_SHARDS it gives the binary, GoogleTest's own choice of tests, the results read
back (--json). The results themselves (all FAIL) are not judged. Checked:

* the shards are disjoint and their union is the binary's whole list (for --filter, the
  list of that filter);
* GoogleTest ran the tests the harness assigned to the shard (`gtest.shard_of`), in their
  order: the binary's first attempt ran under GTEST_SHARD_INDEX=k-1 and GTEST_TOTAL_SHARDS=N,
  its `[ RUN ]` lines (run.log) are the first tests of the assigned part, all of them when
  the binary was not resumed, and run.log has no "sharding disagrees" line. The first
  check alone would not do: the runner makes up for tests a shard left out by running them
  unsharded. (The binary may be resumed: with such a driver the suite is sometimes killed
  by SIGPIPE, writing to a driver it has stopped, and `mpspec run` resumes after a crash of
  the binary with the tests not run yet, naming them; those attempts are not sharded.)
* the shards' sizes differ by at most one.

The harness's unit tests (test_shard.py) run this same check against tests/fake_conformance.py.

usage: shard_check.py --build-dir DIR [--shards N] [--filter PATTERN] [--keep DIR]
exit status: 0 the check holds; 1 it does not; 2 bad usage; 3 `mpspec run` could not run
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "harness"))

from mpspec_cli import gtest  # noqa: E402
from mpspec_cli.build import conformance_binary  # noqa: E402

LAUNCHER = os.path.join(ROOT, "mpspec")


def full_list(binary, gfilter=None, env=None):
    cmd = [binary, "--gtest_list_tests"] + (["--gtest_filter=" + gfilter] if gfilter else [])
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, timeout=120, env=env).stdout
    return gtest.parse_test_list(out.decode("utf-8", "replace"))


def run_shard(build_dir, k, n, workdir, gfilter=None, launcher=LAUNCHER, env=None):
    """`mpspec run --shard k/n` with a driver that cannot work; returns (exit status, [tests],
    run.log)."""
    driver = shutil.which("cat") or "/bin/cat"
    art = os.path.join(workdir, "shard-%d" % k)
    out_json = os.path.join(workdir, "shard-%d.json" % k)
    cmd = [sys.executable, launcher, "run", "--no-build", "--build-dir", build_dir,
           "--driver", driver, "--shard", "%d/%d" % (k, n), "--artifacts", art,
           "--json", out_json]
    if gfilter:
        cmd += ["--filter", gfilter]
    e = dict(os.environ if env is None else env, MPSPEC_NO_SETUP="1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, timeout=600)
    text = p.stdout.decode("utf-8", "replace")
    if p.returncode not in (0, 1):  # 1: the driver fails the tests, as intended
        raise RuntimeError("`%s` exited with %d:\n%s" % (" ".join(cmd), p.returncode, text))
    with open(out_json, encoding="utf-8") as f:
        tests = [r["test"] for r in json.load(f)]
    with open(os.path.join(art, "run.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    return p.returncode, tests, log


def first_attempt_problems(log, assigned, k, n, resumed):
    """What is wrong with the first (sharded) attempt of the binary in run.log."""
    lines = log.splitlines()
    if not lines or not re.match(r"\$ GTEST_TOTAL_SHARDS=%d GTEST_SHARD_INDEX=%d " % (n, k - 1),
                                 lines[0]):
        return ["shard %d/%d: the binary's first attempt ran without GTEST_TOTAL_SHARDS=%d "
                "GTEST_SHARD_INDEX=%d: %s" % (k, n, n, k - 1, lines[0] if lines else "no log")]
    ran = []
    for line in lines[1:]:
        if line.startswith("$ "):
            break
        m = re.match(r"\[ RUN      \] (\S+)", line)
        if m:
            ran.append(m.group(1))
    if ran != assigned[:len(ran)] or (not resumed and len(ran) != len(assigned)):
        first = next((i for i, (x, y) in enumerate(zip(ran, assigned)) if x != y),
                     min(len(ran), len(assigned)))
        return ["shard %d/%d: GoogleTest ran %d test(s), the harness assigned %d; they differ "
                "from position %d (%s vs %s)"
                % (k, n, len(ran), len(assigned), first,
                   ran[first] if first < len(ran) else "-",
                   assigned[first] if first < len(assigned) else "-")]
    return []


def check(build_dir, n=4, gfilter=None, workdir=None, launcher=LAUNCHER, env=None, out=sys.stdout):
    """Returns a list of problems (empty: every test runs in exactly one of the n shards)."""
    binary = conformance_binary(build_dir)
    expected = full_list(binary, gfilter, env)
    problems = []
    owner = {}
    sizes = []
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mpspec-shard-check-")
        workdir = tmp.name
    try:
        for k in range(1, n + 1):
            _, tests, log = run_shard(build_dir, k, n, workdir, gfilter, launcher, env)
            sizes.append(len(tests))
            attempts = [l for l in log.splitlines() if l.startswith("$ ")]
            out.write("shard %d/%d: %d test(s), %d attempt(s) of the binary\n"
                      % (k, n, len(tests), len(attempts)))
            assigned = gtest.shard_of(expected, k - 1, n)
            if sorted(tests) != sorted(assigned):
                problems.append("shard %d/%d: mpspec run reported %d test(s), %d assigned"
                                % (k, n, len(tests), len(assigned)))
            if assigned:  # (more shards than tests: the binary need not run at all)
                problems += first_attempt_problems(log, assigned, k, n, len(attempts) > 1)
            for line in log.splitlines():
                if "sharding disagrees" in line:
                    problems.append("shard %d/%d: %s" % (k, n, line))
            for t in tests:
                if t in owner:
                    problems.append("%s runs in shard %d/%d and in shard %d/%d"
                                    % (t, owner[t], n, k, n))
                owner.setdefault(t, k)
    finally:
        if tmp is not None:
            tmp.cleanup()
    missing = [t for t in expected if t not in owner]
    extra = sorted(t for t in owner if t not in set(expected))
    if missing:
        problems.append("%d test(s) in no shard: %s" % (len(missing), " ".join(missing[:10])))
    if extra:
        problems.append("%d test(s) not in the binary's list: %s" % (len(extra), " ".join(extra[:10])))
    if sizes and max(sizes) - min(sizes) > 1:
        problems.append("unbalanced shards: %s" % sizes)
    out.write("%d test(s) in the binary's list%s, %d run across %d shards\n"
              % (len(expected), " (filter %s)" % gfilter if gfilter else "", sum(sizes), n))
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build-dir", required=True, help="build tree with the conformance binary")
    p.add_argument("--shards", type=int, default=4, help="N (default: 4)")
    p.add_argument("--filter", help="a gtest filter (default: the whole suite)")
    p.add_argument("--keep", metavar="DIR", help="keep each shard's reports and run.log here")
    a = p.parse_args(argv)
    if a.shards < 1:
        p.error("--shards must be at least 1")
    build_dir = os.path.abspath(a.build_dir)
    if not os.path.exists(conformance_binary(build_dir)):
        print("shard_check: no conformance binary in %s" % build_dir, file=sys.stderr)
        return 3
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    try:
        problems = check(build_dir, a.shards, a.filter, a.keep and os.path.abspath(a.keep))
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
        print("shard_check: %s" % e, file=sys.stderr)
        return 3
    for msg in problems:
        print("FAIL: %s" % msg)
    print("shard check: %s" % ("FAILED" if problems else "every test in exactly one shard"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

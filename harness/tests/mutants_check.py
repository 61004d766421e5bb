#!/usr/bin/env python3
"""The suite must catch every mutant (CTest: suite.mutants).

For each backend of harness/backends.toml with `mutant = true`, runs

    ./mpspec run --backend <mutant> --no-build --build-dir <build> --json <reports>/<mutant>.json

limited to the test suites its `must_fail` list names (e.g. `Barrier.*:BarrierProp.*`, the
chapter of the mutated type; `--whole-suite` runs everything), and requires that run to FAIL
(exit status 1, not 0; 2 or 3 are set-up errors), with every test of the entry's `must_fail` list among the unexpected results (FAIL, TIMEOUT, CRASH).
Prints which tests caught each mutant. Exit status 0 when every mutant is caught as required.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "harness"))

from mpspec_cli import backends  # noqa: E402
from mpspec_cli.errors import UserError  # noqa: E402

CAUGHT = ("FAIL", "TIMEOUT", "CRASH")


def suite_filter(tests):
    """The gtest filter of every test suite named in `tests` ("Suite.Name" items), in order."""
    suites = []
    for t in tests:
        suite = t.split(".", 1)[0]
        if suite and suite not in suites:
            suites.append(suite)
    return ":".join(s + ".*" for s in suites)


def check(name, entry, args, reports):
    out_json = os.path.join(reports, "%s.json" % name)
    cmd = [sys.executable, os.path.join(ROOT, "mpspec"), "run", "--backend", name, "--no-build",
           "--build-dir", args.build_dir, "--json", out_json]
    if args.watchdog:
        cmd += ["--watchdog", str(args.watchdog)]
    scope = suite_filter(entry.must_fail)
    if scope and not args.whole_suite:
        cmd += ["--filter", scope]
    multiplier = args.timeout_multiplier or entry.timeout_multiplier
    if multiplier:
        cmd += ["--timeout-multiplier", str(multiplier)]
    artifacts = os.path.join(os.path.abspath(args.build_dir), "mpspec-artifacts", name)
    cmd += ["--artifacts", artifacts]
    if os.path.exists(out_json):
        os.remove(out_json)
    print("== %s: %s" % (name, " ".join(cmd)), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, errors="replace")
    output = p.stdout
    lines = [l for l in output.splitlines() if l.strip()]
    closing = lines[-1] if lines else "(no output)"
    if p.returncode not in (0, 1) or not os.path.exists(out_json):
        print(output)
        print("%s: ERROR: the run could not be judged (exit status %d)" % (name, p.returncode))
        return False
    with open(out_json, encoding="utf-8") as f:
        records = json.load(f)
    ran = {r["test"] for r in records}
    caught = [r["test"] for r in records if not r["expected"] and r["status"] in CAUGHT]
    problems = []
    if p.returncode == 0:
        problems.append("the suite PASSED against this mutant")
    for t in entry.must_fail:
        if t not in ran:
            problems.append("%s (listed in must_fail) is not in the suite" % t)
        elif t not in caught:
            status = next(r["status"] for r in records if r["test"] == t)
            problems.append("%s did not catch it (it ended %s)" % (t, status))
    print("%s: %s" % (name, closing))
    print("%s: caught by %d test(s): %s" % (name, len(caught), ", ".join(caught) or "none"))
    if problems:
        print(output)
        for pr in problems:
            print("%s: NOT CAUGHT AS REQUIRED: %s" % (name, pr))
        return False
    print("%s: OK (every test of must_fail caught it)" % name)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True, help="build tree with the suite and drivers")
    ap.add_argument("--reports", help="where <mutant>.json goes (default: a temporary folder)")
    ap.add_argument("--watchdog", type=float, help="per-run watchdog, passed to mpspec run")
    ap.add_argument("--timeout-multiplier", type=float, help="passed to mpspec run")
    ap.add_argument("--whole-suite", action="store_true",
                    help="run every test against each mutant, not only the suites of its must_fail")
    ap.add_argument("--only", action="append", metavar="NAME", help="check only these mutants")
    args = ap.parse_args(argv)
    try:
        registry = backends.load(os.path.join(ROOT, "harness", "backends.toml"))
    except UserError as e:
        print("mutants_check: error: %s" % e)
        return 2
    mutants = {n: b for n, b in registry.items() if b.mutant and (not args.only or n in args.only)}
    if not mutants:
        print("mutants_check: error: no mutant backend%s in harness/backends.toml"
              % (" named " + ", ".join(args.only) if args.only else ""))
        return 2
    with tempfile.TemporaryDirectory(prefix="mpspec-mutants-") as tmp:
        reports = os.path.abspath(args.reports or tmp)
        os.makedirs(reports, exist_ok=True)
        ok = [check(n, b, args, reports) for n, b in mutants.items()]
    good = sum(ok)
    print("mutants: %d of %d caught as required" % (good, len(ok)))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A stand-in for the conformance binary, for the harness's own tests (no build needed).

Behaves like a GoogleTest binary as far as `mpspec run` can tell: `--gtest_list_tests`,
`--gtest_filter=`, `--gtest_output=json:FILE`, the console format, skip messages, RapidCheck's
closing `RC_PARAMS="reproduce=..."` line. What each test does comes from the JSON file named by
FAKE_GTEST_SCENARIO:

    {"tests": [{"name": "Lock.A", "outcome": "pass|fail|skip|crash|hang",
                "message": "...", "clauses": "[lock.x]", "output": ["line", ...],
                "rapidcheck": false}, ...],
     "record": "/path/to/file"}    # optional: argv and the MPSPEC_* environment are appended

`crash` kills the process with SIGSEGV in the middle of the test (before the JSON report is
written); `hang` sleeps until killed. GoogleTest's sharding variables (GTEST_TOTAL_SHARDS,
GTEST_SHARD_INDEX) are honoured as GoogleTest does: a run keeps the j-th test the filter
selects when j % total == index; `--gtest_list_tests` ignores them. A scenario's
`"shard_skew": K` makes the fake shard as if the index were index + K (a binary whose
sharding disagrees with the harness's).
"""

import fnmatch
import json
import os
import signal
import sys
import time


def matches(name, gfilter):
    if not gfilter:
        return True
    pos, _, neg = gfilter.partition("-")
    pos_pats = [p for p in pos.split(":") if p] or ["*"]
    neg_pats = [p for p in neg.split(":") if p]
    return (any(fnmatch.fnmatchcase(name, p) for p in pos_pats)
            and not any(fnmatch.fnmatchcase(name, p) for p in neg_pats))


def main():
    with open(os.environ["FAKE_GTEST_SCENARIO"], encoding="utf-8") as f:
        scenario = json.load(f)
    gfilter, report, listing = None, None, False
    for a in sys.argv[1:]:
        if a.startswith("--gtest_filter="):
            gfilter = a.split("=", 1)[1]
        elif a.startswith("--gtest_output=json:"):
            report = a.split(":", 1)[1]
        elif a == "--gtest_list_tests":
            listing = True
        elif a.startswith("--gtest_color="):
            pass
        else:
            print("unknown argument '%s'" % a)
            return 2
    if scenario.get("record"):
        with open(scenario["record"], "a", encoding="utf-8") as f:
            env = {k: v for k, v in os.environ.items() if k.startswith(("MPSPEC_", "RC_PARAMS"))}
            env.update({k: v for k, v in os.environ.items() if k.startswith("GTEST_")})
            f.write(json.dumps({"argv": sys.argv[1:], "env": env}) + "\n")
    tests = [t for t in scenario["tests"] if matches(t["name"], gfilter)]
    if listing:
        suite = None
        for t in tests:
            s, n = t["name"].split(".", 1)
            if s != suite:
                print(s + ".")
                suite = s
            print("  " + n)
        return 0
    if "GTEST_TOTAL_SHARDS" in os.environ:
        total, index = int(os.environ["GTEST_TOTAL_SHARDS"]), int(os.environ["GTEST_SHARD_INDEX"])
        if not 0 <= index < total:
            print("Invalid environment variables: we require 0 <= GTEST_SHARD_INDEX < "
                  "GTEST_TOTAL_SHARDS")
            return 1
        index = (index + scenario.get("shard_skew", 0)) % total
        tests = [t for j, t in enumerate(tests) if j % total == index]

    out = sys.stdout
    out.write("[==========] Running %d tests from fake.\n" % len(tests))
    suites = {}
    failed, rc_failed = [], False
    for t in tests:
        s, n = t["name"].split(".", 1)
        out.write("[ RUN      ] %s\n" % t["name"])
        for line in t.get("output", []):
            out.write(line + "\n")
        out.flush()
        outcome = t.get("outcome", "pass")
        case = {"name": n, "file": "fake.cpp", "line": 1, "status": "RUN", "result": "COMPLETED",
                "timestamp": "2025-01-01T00:00:00Z", "time": "0.25s", "classname": s}
        if "clauses" in t:
            case["clauses"] = t["clauses"]
        if outcome == "crash":
            out.flush()
            os.kill(os.getpid(), signal.SIGSEGV)
        if outcome == "hang":
            out.flush()
            time.sleep(3600)
        if outcome == "fail":
            msg = t.get("message", "boom")
            out.write("fake.cpp:1: Failure\n%s\n" % msg)
            out.write("[  FAILED  ] %s (250 ms)\n" % t["name"])
            case["failures"] = [{"failure": "fake.cpp:1\n" + msg, "type": ""}]
            failed.append(t["name"])
            rc_failed = rc_failed or t.get("rapidcheck", False)
        elif outcome == "skip":
            out.write("fake.cpp:1: Skipped\n%s\n\n" % t.get("message", ""))
            out.write("[  SKIPPED ] %s (250 ms)\n" % t["name"])
            case["result"] = "SKIPPED"
        else:
            out.write("[       OK ] %s (250 ms)\n" % t["name"])
        out.flush()
        suites.setdefault(s, []).append(case)
    out.write("[==========] %d tests ran.\n" % len(tests))
    for name in failed:
        out.write("[  FAILED  ] %s\n" % name)
    if report:
        doc = {"tests": len(tests), "failures": len(failed), "disabled": 0, "errors": 0,
               "name": "AllTests",
               "testsuites": [{"name": s, "tests": len(c), "testsuite": c} for s, c in suites.items()]}
        with open(report, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
    if rc_failed:
        sys.stderr.write("Some of your RapidCheck properties had failures. To reproduce these, "
                         "run with:\nRC_PARAMS=\"max_success=200 reproduce=BchdlNGdvJ3XzIXa\"\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""`mpspec mutants` end to end, against the fake conformance binary (tests/fake_conformance.py):
which tests catch a mutant, must_fail, the kill rate, the exit status."""

import contextlib
import io
import json
import os
import stat
import sys
import unittest

import support
from mpspec_cli import mutantscmd
from mpspec_cli.errors import UserError

REGISTRY = """
[backends.reference]
driver = "{root}/driver.sh reference"
description = "not a mutant"

[backends.mutant-caught]
driver = "{root}/driver.sh caught"
description = "caught by Widget.Poke"
mutant = true
must_fail = ["Widget.Poke"]

[backends.mutant-crash]
driver = "{root}/driver.sh crash"
description = "crashes the binary in Widget.Poke"
mutant = true
must_fail = ["Widget.Poke"]

[backends.mutant-missed]
driver = "{root}/driver.sh missed"
description = "nothing notices"
mutant = true
must_fail = ["Widget.Poke"]

[backends.mutant-partial]
driver = "{root}/driver.sh partial"
description = "caught, but not by the must_fail test"
mutant = true
must_fail = ["Widget.MakeEmpty", "Widget.Poke"]

[backends.mutant-hangs]
driver = "{root}/driver.sh hangs"
description = "wedges Widget.Poke"
mutant = true
timeout_multiplier = 0.5
must_fail = ["Widget.Poke"]

[backends.mutant-nodriver]
driver = "{root}/missing-driver.sh"
description = "its driver is not built"
mutant = true
must_fail = ["Widget.Poke"]
"""

TESTS = [
    {"name": "Widget.MakeEmpty", "outcome": "pass", "clauses": "[widget.make.empty]"},
    {"name": "Widget.Poke", "outcome": "pass", "clauses": "[widget.poke.kill] [widget.make.empty]"},
    {"name": "WidgetProp.Anything", "outcome": "pass", "clauses": "[widget.strict.only]"},
    {"name": "Protocol.Hello", "outcome": "pass", "clauses": "[protocol.hello.first]"},
]


def outcomes(**by_test):
    """TESTS with some outcomes changed: outcomes(Widget_Poke="fail")."""
    return [dict(t, outcome=by_test.get(t["name"].replace(".", "_"), t["outcome"])) for t in TESTS]


def install_switching_binary(build_dir, scenarios, variable, expression):
    """A conformance binary that runs the fake with the scenario <scenarios>/<key>.json, key
    being `expression` (a shell expansion of $variable), or <scenarios>/default.json."""
    path = os.path.join(build_dir, "conformance", "tests", "mpspec_conformance")
    support.write(path, """#!/bin/sh
key="%s"
FAKE_GTEST_SCENARIO="%s/$key.json"
[ -f "$FAKE_GTEST_SCENARIO" ] || FAKE_GTEST_SCENARIO="%s/default.json"
export FAKE_GTEST_SCENARIO
exec '%s' '%s' "$@"
""" % (expression, scenarios, scenarios, sys.executable,
       os.path.join(support.HERE, "fake_conformance.py")))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    assert variable in expression
    return path


class MutantsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path)
        support.write(os.path.join(self.root, "driver.sh"), "#!/bin/sh\n")
        self.registry = support.write(os.path.join(self.root, "harness", "backends.toml"), REGISTRY)
        self.build = os.path.join(self.root, "build")
        self.scenarios = os.path.join(self.tmp.path, "scenarios")
        self.record = os.path.join(self.tmp.path, "record.jsonl")
        # The driver command's last word picks the scenario: what the mutant breaks.
        install_switching_binary(self.build, self.scenarios, "MPSPEC_DRIVER", "${MPSPEC_DRIVER##* }")
        for key, tests in (("default", TESTS), ("caught", outcomes(Widget_Poke="fail")),
                           ("crash", outcomes(Widget_Poke="crash")), ("missed", TESTS),
                           ("partial", outcomes(Widget_Poke="fail")),
                           ("hangs", outcomes(Widget_Poke="hang"))):
            support.write(os.path.join(self.scenarios, key + ".json"),
                          json.dumps({"tests": tests, "record": self.record}))

    def mutants(self, *only, **kw):
        opts = mutantscmd.MutantsOptions(build_dir=self.build, only=list(only),
                                         registry=self.registry, root=self.root,
                                         artifacts=os.path.join(self.tmp.path, "art"), **kw)
        out = io.StringIO()
        with contextlib.redirect_stderr(io.StringIO()):
            rc = mutantscmd.main(opts, out)
        return rc, out.getvalue()

    def read_json(self, path):
        with open(path) as f:
            return json.load(f)

    def test_every_mutant_caught(self):
        out_json = os.path.join(self.tmp.path, "mutants.json")
        reports = os.path.join(self.tmp.path, "reports")
        rc, out = self.mutants("mutant-caught", "mutant-crash", json=out_json, reports=reports)
        self.assertEqual(rc, 0, out)
        self.assertIn("mutant-caught: caught by 1 test(s) (FAIL 1): Widget.Poke FAIL", out)
        self.assertIn("mutant-crash: caught by 1 test(s) (CRASH 1): Widget.Poke CRASH", out)
        self.assertIn("ends FAIL, TIMEOUT, CRASH", out)
        self.assertIn("kill rate: 2 of 2 mutants caught (100%)", out)
        doc = self.read_json(out_json)
        self.assertEqual((doc["mutants"], doc["caught"], doc["kill_rate"], doc["ok"]), (2, 2, 100.0, True))
        self.assertEqual(doc["caught_statuses"], ["FAIL", "TIMEOUT", "CRASH"])
        self.assertEqual(doc["results"][1]["caught_by"], [{"test": "Widget.Poke", "status": "CRASH"}])
        # Each mutant ran the suites of its must_fail list only, with its own artifacts folder.
        with open(self.record) as f:
            runs = [json.loads(l) for l in f]
        runs = [r for r in runs if "--gtest_list_tests" not in r["argv"]]
        self.assertIn("--gtest_filter=Widget.*", runs[0]["argv"])
        self.assertEqual(runs[0]["env"]["MPSPEC_ARTIFACTS"],
                         os.path.join(self.tmp.path, "art", "mutant-caught"))
        records = self.read_json(os.path.join(reports, "mutant-caught.json"))
        self.assertEqual([(r["test"], r["status"]) for r in records],
                         [("Widget.MakeEmpty", "PASS"), ("Widget.Poke", "FAIL")])

    def test_mutant_not_caught_lowers_the_kill_rate(self):
        out_json = os.path.join(self.tmp.path, "mutants.json")
        rc, out = self.mutants("mutant-caught", "mutant-missed", "mutant-partial", "mutant-crash",
                               json=out_json)
        self.assertEqual(rc, 1)
        self.assertIn("mutant-missed: NOT CAUGHT: no test ended FAIL/TIMEOUT/CRASH", out)
        self.assertIn("mutant-missed: caught by 0 test(s): none", out)
        self.assertIn("kill rate: 3 of 4 mutants caught (75%)", out)
        self.assertIn("must_fail: 2 of 4 mutants", out)
        doc = self.read_json(out_json)
        self.assertEqual((doc["mutants"], doc["caught"], doc["kill_rate"], doc["ok"]), (4, 3, 75.0, False))
        verdicts = {r["mutant"]: r["verdict"] for r in doc["results"]}
        self.assertEqual(verdicts, {"mutant-caught": "OK", "mutant-missed": "NOT CAUGHT",
                                    "mutant-partial": "MUST_FAIL MISSED", "mutant-crash": "OK"})

    def test_must_fail_test_that_passes_fails_the_check(self):
        rc, out = self.mutants("mutant-partial")
        self.assertEqual(rc, 1, "caught (kill rate 100%), but not by every test of must_fail")
        self.assertIn("kill rate: 1 of 1 mutants caught (100%)", out)
        self.assertIn("NOT CAUGHT AS REQUIRED: Widget.MakeEmpty did not catch it (it ended PASS)", out)

    def test_timeout_catches(self):
        rc, out = self.mutants("mutant-hangs", watchdog=1.5)
        self.assertEqual(rc, 0, out)
        self.assertIn("caught by 1 test(s) (TIMEOUT 1): Widget.Poke TIMEOUT", out)
        self.assertIn("timeout multiplier 0.5", out)

    def test_run_that_cannot_be_judged(self):
        rc, out = self.mutants("mutant-caught", "mutant-nodriver")
        self.assertEqual(rc, 1)
        self.assertIn("mutant-nodriver: ERROR: the run could not be judged", out)
        self.assertIn("kill rate: 1 of 2 mutants caught (50%)", out)
        with self.assertRaises(UserError) as cm:
            self.mutants("mutant-nodriver")
        self.assertEqual(cm.exception.status, 3, "nothing could run: the environment")

    def test_unknown_mutant(self):
        for name in ("mutant-nope", "reference"):
            with self.subTest(name=name), self.assertRaises(UserError) as cm:
                self.mutants(name)
            self.assertEqual(cm.exception.status, 2)
            self.assertIn("mutant-caught", str(cm.exception))

    def test_suite_filter(self):
        self.assertEqual(mutantscmd.suite_filter(["A.x", "B.y", "A.z", "AProp.p"]), "A.*:B.*:AProp.*")
        self.assertEqual(mutantscmd.suite_filter([]), "")

    def test_whole_suite(self):
        rc, out = self.mutants("mutant-caught", whole_suite=True)
        self.assertEqual(rc, 0, out)
        self.assertIn("(the whole suite)", out)
        self.assertIn("(4 test(s)", out)


class MutantsCliTest(unittest.TestCase):
    def test_wrapper_and_cli_bad_input(self):
        import mutants_check
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = mutants_check.main(["--only", "no-such-mutant"])
        self.assertEqual(rc, 2)
        self.assertIn("unknown mutant(s): no-such-mutant", err.getvalue())


if __name__ == "__main__":
    unittest.main()

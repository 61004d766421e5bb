"""`mpspec run --repeat N` end to end, against the fake conformance binary: a test whose verdict
flips between repeats is reported, a stable run is not; per-repeat artifacts and records."""

import contextlib
import dataclasses
import io
import json
import os
import unittest
from unittest import mock

import support
from mpspec_cli import cli, repeat, report, runner
from test_mutants import TESTS, install_switching_binary, outcomes

REGISTRY = """
[backends.fake]
driver = "{root}/driver.sh"
description = "a fake"
"""


class RepeatTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path)
        support.write(os.path.join(self.root, "driver.sh"), "#!/bin/sh\n")
        self.registry = support.write(os.path.join(self.root, "harness", "backends.toml"), REGISTRY)
        self.build = os.path.join(self.root, "build")
        self.scenarios = os.path.join(self.tmp.path, "scenarios")
        self.art = os.path.join(self.tmp.path, "art")
        # The repeat's artifacts folder (…/repeat-02) picks the scenario: what that repeat sees.
        install_switching_binary(self.build, self.scenarios, "MPSPEC_ARTIFACTS",
                                 "${MPSPEC_ARTIFACTS##*/}")

    def scenario(self, key, tests):
        support.write(os.path.join(self.scenarios, key + ".json"), json.dumps({"tests": tests}))

    def options(self, **kw):
        base = dict(backend="fake", root=self.root, registry=self.registry, build_dir=self.build,
                    no_build=True, artifacts=self.art)
        base.update(kw)
        return runner.RunOptions(**base)

    def repeat(self, n, opts=None, **kw):
        out = io.StringIO()
        with contextlib.redirect_stderr(io.StringIO()):
            rc = repeat.main(opts or self.options(), n, out=out, **kw)
        return rc, out.getvalue()

    def test_flip_between_pass_and_fail_is_reported(self):
        self.scenario("default", TESTS)
        self.scenario("repeat-02", outcomes(Widget_Poke="fail"))
        out_json = os.path.join(self.tmp.path, "out", "records.json")
        junit = os.path.join(self.tmp.path, "out", "junit.xml")
        rc, out = self.repeat(3, json_path=out_json, junit=junit)
        self.assertEqual(rc, 1)
        self.assertIn("Verdicts that changed between repeats (1 test(s)):", out)
        row = next(l for l in out.splitlines() if l.strip().startswith("Widget.Poke "))
        self.assertIn("PASS 2, FAIL 1", row)
        self.assertIn("PASS FAIL PASS", row)
        self.assertIn("repeat 2  FAIL     Widget.Poke: boom", out)
        self.assertIn("1 test(s) changed verdict; unexpected results in repeat(s) 2", out)
        self.assertIn("3 repeat(s) of 4 test(s) in", out)
        # Per-repeat totals: repeat, PASS, FAIL, passed, failed, skipped, time, artifacts.
        lines = out.splitlines()
        head = lines.index(next(l for l in lines if l.strip().startswith("repeat  PASS")))
        self.assertEqual(lines[head + 2].split()[:6], ["2", "3", "1", "3", "1", "0"])
        # Artifacts per repeat: histories and run.log are not overwritten.
        for k in (1, 2, 3):
            self.assertTrue(os.path.exists(os.path.join(self.art, "repeat-%02d" % k, "run.log")))
            self.assertTrue(os.path.exists(os.path.join(self.tmp.path, "out", "junit.repeat-%02d.xml" % k)))
        with open(out_json) as f:
            records = json.load(f)
        if getattr(report, "LATEST_REPORT", None):  # every repeat's records, where explain looks
            with open(os.path.join(self.art, report.LATEST_REPORT)) as f:
                self.assertEqual(json.load(f), records)
            self.assertTrue(os.path.exists(os.path.join(self.art, "repeat-02", report.LATEST_REPORT)))
        self.assertEqual(len(records), 12)
        self.assertEqual([r["repeat"] for r in records], [1] * 4 + [2] * 4 + [3] * 4)
        self.assertEqual([r["status"] for r in records if r["test"] == "Widget.Poke"],
                         ["PASS", "FAIL", "PASS"])
        self.assertEqual(set(records[0]) - {"repeat"},
                         set(runner.TestResult("t", "b", "PASS", "PASS", True, None, [], 0, "", []).record()))

    def test_stable_run_reports_nothing(self):
        self.scenario("default", TESTS)
        rc, out = self.repeat(2)
        self.assertEqual(rc, 0, out)
        self.assertIn("No verdict changed between the 2 repeats.", out)
        self.assertNotIn("Verdicts that changed", out)
        self.assertNotIn("Unexpected results", out)
        self.assertIn("no verdict changed; every result expected in every repeat", out)

    def test_stable_failure_is_not_a_flip_but_fails(self):
        self.scenario("default", outcomes(Widget_Poke="fail"))
        rc, out = self.repeat(2)
        self.assertEqual(rc, 1)
        self.assertNotIn("Verdicts that changed", out)
        self.assertIn("no verdict changed; unexpected results in repeat(s) 1, 2", out)

    def test_build_once_same_options(self):
        self.scenario("default", TESTS)
        seen = []
        real = runner.run

        def spy(opts):
            seen.append(opts)
            return real(dataclasses.replace(opts, no_build=True))

        with mock.patch.object(runner, "run", spy):
            rc, _ = self.repeat(3, self.options(no_build=False, filter="Widget.*", seed=5))
        self.assertEqual(rc, 0)
        self.assertEqual([o.no_build for o in seen], [False, True, True], "set-up and build once")
        self.assertEqual({(o.filter, o.seed, o.backend) for o in seen}, {("Widget.*", 5, "fake")})
        self.assertEqual([o.artifacts for o in seen],
                         [os.path.join(self.art, "repeat-%02d" % k) for k in (1, 2, 3)])

    def test_default_artifacts_folder(self):
        self.assertEqual(repeat.backend_name(self.options(artifacts=None)), "fake")
        self.assertEqual(repeat.backend_name(runner.RunOptions()), "reference")
        self.assertEqual(repeat.backend_name(runner.RunOptions(driver="x")), "custom")
        self.assertEqual(repeat.numbered("a/b.xml", 3), "a/b.repeat-03.xml")

    def test_changed_tests_and_counts(self):
        self.assertEqual(repeat.status_counts(["PASS", "FAIL", "PASS", None]), "PASS 2, FAIL 1, (not run) 1")


class RepeatCliTest(unittest.TestCase):
    def main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(list(argv))
            except SystemExit as e:
                rc = e.code
        return rc, err.getvalue()

    def test_bad_repeat_values(self):
        for value in ("0", "-1", "x", "1.5"):
            with self.subTest(value=value):
                rc, err = self.main("run", "--no-build", "--repeat", value)
                self.assertEqual(rc, 2)
                self.assertIn("--repeat", err)
                self.assertNotIn("Traceback", err)


if __name__ == "__main__":
    unittest.main()

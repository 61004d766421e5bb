"""`mpspec run --shard I/N`: the option, the choice of a shard's tests, the run end to end
against the fake conformance binary (which shards as GoogleTest does), expectations across
shards, and shard_check.py (CTest harness.shard runs it on the real binary)."""

import contextlib
import io
import json
import os
import unittest

import support
import shard_check
from mpspec_cli import cli, gtest, report, runner
from mpspec_cli.errors import UserError

REGISTRY = """
[backends.fake]
driver = "{root}/driver.sh"
description = "a fake"

[backends.fake-exp]
driver = "{root}/driver.sh"
expectations = "exp.toml"
description = "with expectations"
"""

# Ten tests of three suites, in the order the binary lists (and runs) them.
TESTS = ["Widget.MakeEmpty", "Widget.Poke", "Widget.Third", "WidgetProp.Anything",
         "WidgetProp.Other", "Protocol.Hello", "Protocol.Bye", "Protocol.Three", "Protocol.Four",
         "Protocol.Five"]


def scenario_tests(outcomes=None):
    outcomes = outcomes or {}
    return [{"name": t, "outcome": outcomes.get(t, "pass"), "clauses": "[widget.make.empty]"}
            for t in TESTS]


class ParseShardTest(unittest.TestCase):
    def test_valid(self):
        self.assertEqual(runner.parse_shard("1/4"), (1, 4))
        self.assertEqual(runner.parse_shard("4/4"), (4, 4))
        self.assertEqual(runner.parse_shard(" 2 / 3 "), (2, 3))
        self.assertEqual(runner.parse_shard("1/1"), (1, 1))

    def test_invalid(self):
        for text, words in (("0/4", "1-based"), ("5/4", "from 1 to 4"), ("1/0", "at least 1"),
                            ("x", "I/N"), ("1/", "I/N"), ("1/4/2", "I/N"), ("", "I/N"),
                            ("-1/4", "1-based")):
            with self.subTest(text=text):
                with self.assertRaises(ValueError) as cm:
                    runner.parse_shard(text)
                self.assertIn(words, str(cm.exception))


class ShardOfTest(unittest.TestCase):
    def test_partition(self):
        names = ["S.T%d" % i for i in range(23)]
        for n in (1, 2, 3, 4, 7, 23, 30):
            with self.subTest(n=n):
                parts = [gtest.shard_of(names, i, n) for i in range(n)]
                self.assertEqual(sorted(sum(parts, [])), sorted(names))
                self.assertEqual(sum(len(p) for p in parts), len(names), "disjoint")
                self.assertLessEqual(max(map(len, parts)) - min(map(len, parts)), 1)
        self.assertEqual(gtest.shard_of(names[:6], 1, 4), ["S.T1", "S.T5"])

    def test_disabled_tests_do_not_count(self):
        names = ["A.One", "A.DISABLED_Two", "DISABLED_B.X", "P/DISABLED_C.Y", "A.Three",
                 "A.Four"]
        # GoogleTest numbers only the tests it would run: One 0, Three 1, Four 2.
        self.assertEqual(gtest.shard_of(names, 0, 2), ["A.One", "A.Four"])
        self.assertEqual(gtest.shard_of(names, 1, 2), ["A.Three"])

    def test_bad_index(self):
        with self.assertRaises(ValueError):
            gtest.shard_of(["A.B"], 4, 4)


class CliShardTest(unittest.TestCase):
    def main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(list(argv))
            except SystemExit as e:  # argparse
                rc = e.code
        return rc, out.getvalue(), err.getvalue()

    def test_bad_values_exit_2(self):
        for value in ("0/4", "5/4", "abc", "2/0", "1/-3"):
            with self.subTest(value=value):
                rc, _, err = self.main("run", "--no-build", "--shard", value)
                self.assertEqual(rc, 2)
                self.assertIn("--shard", err)
                self.assertNotIn("Traceback", err)

    def test_help_says_one_based(self):
        rc, out, _ = self.main("run", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--shard I/N", out)
        self.assertIn("1-based", " ".join(out.split()))


class ShardRunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path)
        support.write(os.path.join(self.root, "driver.sh"), "#!/bin/sh\n")
        self.registry = support.write(os.path.join(self.root, "harness", "backends.toml"), REGISTRY)
        self.build = os.path.join(self.root, "build")
        support.install_fake_binary(self.build)
        self.record = os.path.join(self.tmp.path, "record.jsonl")
        for k in runner.SHARD_VARS + ("FAKE_GTEST_SCENARIO",):
            self._restore_env(k)

    def _restore_env(self, key):
        old = os.environ.get(key)
        self.addCleanup(lambda: os.environ.__setitem__(key, old) if old is not None
                        else os.environ.pop(key, None))

    def scenario(self, tests, **extra):
        path = os.path.join(self.tmp.path, "scenario.json")
        support.write(path, json.dumps(dict({"tests": tests, "record": self.record}, **extra)))
        os.environ["FAKE_GTEST_SCENARIO"] = path
        if os.path.exists(self.record):
            os.remove(self.record)

    def run_quietly(self, **kw):
        base = dict(backend="fake", root=self.root, registry=self.registry, build_dir=self.build,
                    no_build=True, artifacts=os.path.join(self.tmp.path, "art"))
        base.update(kw)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            run = runner.run(runner.RunOptions(**base))
        self.stderr = err.getvalue()
        return run

    def runs(self):
        """The binary's run invocations (not its listings) since the last call: (argv, env)."""
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            calls = [json.loads(l) for l in f]
        os.remove(self.record)
        return [(c["argv"], c["env"]) for c in calls if "--gtest_list_tests" not in c["argv"]]

    def test_four_shards_cover_every_test_once(self):
        self.scenario(scenario_tests())
        seen = []
        for k in range(1, 5):
            run = self.run_quietly(shard=(k, 4))
            names = [r.test for r in run.results]
            self.assertEqual(names, TESTS[k - 1::4])
            self.assertEqual(run.shard, (k, 4))
            self.assertEqual(run.warnings, [])
            (argv, env), = self.runs()  # one attempt, sharded by GoogleTest's variables
            self.assertEqual(env["GTEST_TOTAL_SHARDS"], "4")
            self.assertEqual(env["GTEST_SHARD_INDEX"], str(k - 1))
            self.assertNotIn("--gtest_filter", " ".join(argv))
            self.assertIn("shard %d/4" % k, self.stderr)
            seen += names
        self.assertEqual(sorted(seen), sorted(TESTS))
        self.assertEqual(len(seen), len(set(seen)))

    def test_shard_of_a_filter(self):
        self.scenario(scenario_tests())
        run = self.run_quietly(shard=(2, 2), filter="Protocol.*")
        self.assertEqual([r.test for r in run.results], ["Protocol.Bye", "Protocol.Four"])
        (argv, env), = self.runs()
        self.assertIn("--gtest_filter=Protocol.*", argv)
        self.assertEqual((env["GTEST_TOTAL_SHARDS"], env["GTEST_SHARD_INDEX"]), ("2", "1"))

    def test_more_shards_than_tests(self):
        self.scenario(scenario_tests())
        run = self.run_quietly(shard=(3, 3), filter="Widget.Poke")
        self.assertEqual(run.results, [])
        self.assertTrue(run.ok)
        self.assertEqual(self.runs(), [], "the binary is not run for an empty shard")

    def test_summary_and_junit_say_which_shard(self):
        self.scenario(scenario_tests())
        run = self.run_quietly(shard=(2, 4))
        out = io.StringIO()
        report.terminal(run, out)
        self.assertIn("fake (shard 2/4): PASS 3", out.getvalue())
        root = report.junit(run).getroot()
        values = {p.get("value") for p in root.findall("./testsuite/properties/property[@name='shard']")}
        self.assertEqual(values, {"2/4"})

    def test_no_shard_ignores_inherited_variables(self):
        os.environ["GTEST_TOTAL_SHARDS"], os.environ["GTEST_SHARD_INDEX"] = "4", "1"
        self.scenario(scenario_tests())
        run = self.run_quietly()
        self.assertEqual([r.test for r in run.results], TESTS)
        (_, env), = self.runs()
        self.assertNotIn("GTEST_TOTAL_SHARDS", env)
        self.assertIsNone(run.shard)

    def test_bad_shard_option_is_a_user_error(self):
        self.scenario(scenario_tests())
        with self.assertRaises(UserError) as cm:
            self.run_quietly(shard=(5, 4))
        self.assertEqual(cm.exception.status, 2)

    def test_crash_resumes_unsharded_with_the_shards_remaining_tests(self):
        self.scenario(scenario_tests({"Widget.Third": "crash"}))
        run = self.run_quietly(shard=(1, 2))  # Widget.MakeEmpty, Widget.Third, WidgetProp.Other, ...
        by = {r.test: r.status for r in run.results}
        self.assertEqual(list(by), TESTS[0::2])
        self.assertEqual(by["Widget.Third"], "CRASH")
        self.assertEqual({s for t, s in by.items() if t != "Widget.Third"}, {"PASS"})
        first, second = self.runs()
        self.assertEqual(first[1]["GTEST_SHARD_INDEX"], "0")
        self.assertNotIn("GTEST_TOTAL_SHARDS", second[1])
        self.assertIn("--gtest_filter=" + ":".join(TESTS[4::2]), second[0])
        self.assertEqual(run.warnings, [])

    def test_disagreeing_binary_is_reported_and_made_up_for(self):
        self.scenario(scenario_tests(), shard_skew=1)
        run = self.run_quietly(shard=(1, 2))
        self.assertEqual([r.test for r in run.results], TESTS[0::2])
        self.assertTrue(all(r.status == "PASS" for r in run.results))
        self.assertEqual(len(run.warnings), 1)
        self.assertIn("sharding disagrees", run.warnings[0])
        self.assertIn("another shard", run.warnings[0])
        self.assertIn("left out", run.warnings[0])
        with open(run.log) as f:
            self.assertIn("sharding disagrees", f.read())

    def test_expectations_apply_and_other_shards_entries_are_not_stale(self):
        support.write(os.path.join(self.root, "exp.toml"), """
[[expect]]
test = "Widget.MakeEmpty"
clause = "widget.make.empty"
status = "FAIL"
reason = "known, in shard 1/2"

[[expect]]
test = "Widget.Poke"
clause = "widget.make.empty"
status = "FAIL"
reason = "known, in shard 2/2"
""")
        self.scenario(scenario_tests({"Widget.MakeEmpty": "fail", "Widget.Poke": "fail"}))
        run = self.run_quietly(backend="fake-exp", shard=(1, 2))
        by = {r.test: r for r in run.results}
        self.assertNotIn("Widget.Poke", by)
        self.assertEqual(by["Widget.MakeEmpty"].status, "XFAIL")
        self.assertEqual(run.errors, [], "Widget.Poke exists: it is in the other shard")
        self.assertTrue(run.ok)
        # A filter leaves it out as well: still not stale.
        run = self.run_quietly(backend="fake-exp", shard=(1, 2), filter="Protocol.*")
        self.assertEqual(run.errors, [])
        # An entry naming a test that no shard has is still an error.
        support.write(os.path.join(self.root, "exp.toml"), """
[[expect]]
test = "Widget.Gone"
clause = "widget.make.empty"
status = "FAIL"
reason = "renamed since"
""")
        run = self.run_quietly(backend="fake-exp", shard=(2, 2))
        self.assertFalse(run.ok)
        self.assertIn("Widget.Gone, which does not exist", run.errors[0])


class ShardCheckTest(unittest.TestCase):
    """shard_check.py end to end (through ./mpspec) against the fake binary."""

    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.build = os.path.join(self.tmp.path, "build")
        support.install_fake_binary(self.build)

    def check(self, **extra):
        path = support.write(os.path.join(self.tmp.path, "scenario.json"),
                             json.dumps(dict({"tests": scenario_tests()}, **extra)))
        env = dict(os.environ, FAKE_GTEST_SCENARIO=path)
        for k in runner.SHARD_VARS:
            env.pop(k, None)
        out = io.StringIO()
        return shard_check.check(self.build, 4, env=env, out=out), out.getvalue()

    def test_holds(self):
        problems, out = self.check()
        self.assertEqual(problems, [])
        self.assertIn("10 test(s) in the binary's list, 10 run across 4 shards", out)

    def test_catches_a_disagreeing_binary(self):
        problems, _ = self.check(shard_skew=1)
        self.assertTrue(any("sharding disagrees" in p for p in problems), problems)
        self.assertTrue(any("GoogleTest ran" in p for p in problems), problems)

    def test_first_attempt_rule(self):
        assigned = ["A.One", "A.Two", "A.Three"]
        log = ("$ GTEST_TOTAL_SHARDS=2 GTEST_SHARD_INDEX=0 bin --gtest_color=no\n"
               "[ RUN      ] A.One\n[       OK ] A.One (1 ms)\n[ RUN      ] A.Two\n"
               "[mpspec] the binary was killed by signal SIGPIPE; resuming with 1 test(s)\n"
               "$ bin --gtest_filter=A.Three\n[ RUN      ] A.Three\n")
        self.assertEqual(shard_check.first_attempt_problems(log, assigned, 1, 2, True), [])
        self.assertTrue(shard_check.first_attempt_problems(log, assigned, 1, 2, False),
                        "not resumed: the first attempt must run them all")
        self.assertTrue(shard_check.first_attempt_problems(log, assigned, 2, 2, True),
                        "wrong GTEST_SHARD_INDEX")
        self.assertTrue(shard_check.first_attempt_problems(
            log.replace("A.Two", "A.Nine"), assigned, 1, 2, True))


if __name__ == "__main__":
    unittest.main()

"""`mpspec run` end to end, against a fake conformance binary (tests/fake_conformance.py)."""

import contextlib
import io
import json
import os
import unittest

import support
from mpspec_cli import cli, runner
from mpspec_cli.errors import EnvError, UserError

REGISTRY = """
[backends.fake]
driver = "{root}/driver.sh --x"
description = "a fake"
profile = "core"
start_method = "spawn"

[backends.fake-exp]
driver = "{root}/driver.sh"
expectations = "exp.toml"
description = "with expectations"
"""

PASSING = [
    {"name": "Widget.MakeEmpty", "outcome": "pass", "clauses": "[widget.make.empty]"},
    {"name": "Widget.Poke", "outcome": "fail", "message": "poke failed\n history saved to art/Widget.Poke-s1.history.json",
     "clauses": "[widget.poke.kill] [widget.make.empty]"},
    {"name": "WidgetProp.Anything", "outcome": "skip", "message": "UNSUPPORTED: no widgets here",
     "clauses": "[widget.strict.only]"},
    {"name": "Protocol.Hello", "outcome": "pass", "clauses": "[protocol.hello.first]"},
]


class RunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path)
        support.write(os.path.join(self.root, "driver.sh"), "#!/bin/sh\n")
        self.registry = support.write(os.path.join(self.root, "harness", "backends.toml"), REGISTRY)
        self.build = os.path.join(self.root, "build")
        support.install_fake_binary(self.build)
        self.record = os.path.join(self.tmp.path, "record.jsonl")
        self.env = contextlib.ExitStack()
        self.addCleanup(self.env.close)

    def scenario(self, tests):
        path = support.write_scenario(self.tmp.path, tests, self.record)
        old = os.environ.get("FAKE_GTEST_SCENARIO")
        os.environ["FAKE_GTEST_SCENARIO"] = path
        self.addCleanup(lambda: os.environ.__setitem__("FAKE_GTEST_SCENARIO", old) if old
                        else os.environ.pop("FAKE_GTEST_SCENARIO", None))

    def options(self, **kw):
        base = dict(backend="fake", root=self.root, registry=self.registry, build_dir=self.build,
                    no_build=True, artifacts=os.path.join(self.tmp.path, "art"))
        base.update(kw)
        return runner.RunOptions(**base)

    def run_quietly(self, opts):
        with contextlib.redirect_stderr(io.StringIO()):
            return runner.run(opts)

    def invocations(self):
        with open(self.record) as f:
            return [json.loads(l) for l in f]

    def test_results_env_and_log(self):
        self.scenario(PASSING)
        run = self.run_quietly(self.options(seed=7, timeout_multiplier=2.5))
        by = {r.test: r for r in run.results}
        self.assertEqual([r.test for r in run.results],
                         ["Widget.MakeEmpty", "Widget.Poke", "WidgetProp.Anything", "Protocol.Hello"])
        self.assertEqual(by["Widget.MakeEmpty"].status, "PASS")
        self.assertEqual(by["Widget.Poke"].status, "FAIL")
        self.assertEqual(by["Widget.Poke"].artifacts, [os.path.join(self.root, "art", "Widget.Poke-s1.history.json")])
        self.assertEqual(by["WidgetProp.Anything"].status, "UNSUPPORTED")
        self.assertEqual(by["WidgetProp.Anything"].message, "UNSUPPORTED: no widgets here")
        self.assertFalse(run.ok)
        calls = self.invocations()
        env = calls[-1]["env"]
        self.assertEqual(env["MPSPEC_DRIVER"], os.path.join(self.root, "driver.sh") + " --x")
        self.assertEqual(env["MPSPEC_ARTIFACTS"], os.path.join(self.tmp.path, "art"))
        self.assertEqual(env["MPSPEC_START_METHOD"], "spawn")
        self.assertEqual(float(env["MPSPEC_TIMEOUT_MULTIPLIER"]), 2.5)
        self.assertIn("seed=7", env["RC_PARAMS"])
        with open(run.log) as f:
            self.assertIn("[ RUN      ] Widget.Poke", f.read())

    def test_all_pass_is_ok(self):
        self.scenario([dict(t, outcome="pass") for t in PASSING])
        self.assertTrue(self.run_quietly(self.options()).ok)

    def test_crash_resumes_with_the_rest(self):
        tests = [dict(t, outcome="pass") for t in PASSING]
        tests[1]["outcome"] = "crash"
        self.scenario(tests)
        run = self.run_quietly(self.options())
        by = {r.test: r for r in run.results}
        self.assertEqual(by["Widget.Poke"].status, "CRASH")
        self.assertIn("SIGSEGV", by["Widget.Poke"].message)
        self.assertEqual(by["Widget.Poke"].clauses, ["widget.poke.kill", "widget.make.empty"],
                         "clauses of a crashed test come from the sources")
        self.assertEqual(by["Widget.MakeEmpty"].status, "PASS")
        self.assertEqual(by["Protocol.Hello"].status, "PASS")
        runs = [c["argv"] for c in self.invocations() if "--gtest_list_tests" not in c["argv"]]
        self.assertEqual(len(runs), 2)
        self.assertIn("--gtest_filter=WidgetProp.Anything:Protocol.Hello", runs[1])

    def test_watchdog(self):
        tests = [dict(t, outcome="pass") for t in PASSING]
        tests[1]["outcome"] = "hang"
        self.scenario(tests)
        run = self.run_quietly(self.options(watchdog=1.5))
        by = {r.test: r for r in run.results}
        self.assertEqual(by["Widget.MakeEmpty"].status, "PASS")
        self.assertEqual(by["Widget.Poke"].status, "TIMEOUT")
        self.assertIn("watchdog", by["Widget.Poke"].message)
        self.assertEqual(by["Protocol.Hello"].status, "TIMEOUT")
        self.assertIn("not run", by["Protocol.Hello"].message)

    def test_clause_filter(self):
        self.scenario(PASSING)
        run = self.run_quietly(self.options(filter="widget.poke"))
        self.assertEqual([r.test for r in run.results], ["Widget.Poke"])
        with self.assertRaises(UserError):
            self.run_quietly(self.options(filter="widget.nothing"))
        with self.assertRaises(UserError):
            self.run_quietly(self.options(filter="Nope.*"))

    def test_expectations(self):
        support.write(os.path.join(self.root, "exp.toml"), """
[[expect]]
test = "Widget.Poke"
clause = "widget.poke.kill"
status = "FAIL"
reason = "known"

[[expect]]
test = "Protocol.Hello"
clause = "protocol.hello.first"
status = "FAIL"
reason = "stale"
""")
        self.scenario(PASSING)
        run = self.run_quietly(self.options(backend="fake-exp"))
        by = {r.test: r for r in run.results}
        self.assertEqual(by["Widget.Poke"].status, "XFAIL")
        self.assertEqual(by["Protocol.Hello"].status, "XPASS")
        self.assertFalse(run.ok)
        support.write(os.path.join(self.root, "exp.toml"), """
[[expect]]
test = "Widget.Gone"
clause = "widget.make.empty"
status = "FAIL"
reason = "renamed since"
""")
        self.scenario([dict(t, outcome="pass") for t in PASSING])
        run = self.run_quietly(self.options(backend="fake-exp"))
        self.assertTrue(all(r.expected for r in run.results))
        self.assertFalse(run.ok, "an entry naming an unknown test fails the run")
        self.assertIn("Widget.Gone, which does not exist", run.errors[0])

    def test_environment_errors(self):
        self.scenario(PASSING)
        with self.assertRaises(EnvError) as cm:
            self.run_quietly(self.options(build_dir=os.path.join(self.tmp.path, "nobuild")))
        self.assertIn("no conformance binary", str(cm.exception))
        os.remove(os.path.join(self.root, "driver.sh"))
        with self.assertRaises(EnvError) as cm:
            self.run_quietly(self.options())
        self.assertIn("driver.sh", str(cm.exception))

    def test_binary_that_cannot_start(self):
        os.environ["FAKE_GTEST_SCENARIO"] = os.path.join(self.tmp.path, "missing.json")
        self.addCleanup(os.environ.pop, "FAKE_GTEST_SCENARIO", None)
        with self.assertRaises(EnvError) as cm:
            self.run_quietly(self.options())
        self.assertIn("--gtest_list_tests", str(cm.exception))


class CliTest(unittest.TestCase):
    """The real command line (repository registry), for its user-error paths."""

    def main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(list(argv))
            except SystemExit as e:  # argparse
                rc = e.code
        return rc, out.getvalue(), err.getvalue()

    def test_unknown_backend(self):
        rc, _, err = self.main("run", "--backend", "nope", "--no-build")
        self.assertEqual(rc, 2)
        self.assertIn("unknown backend 'nope'", err)
        self.assertIn("reference", err)
        self.assertNotIn("Traceback", err)

    def test_missing_build(self):
        tmp = support.TempDir()
        self.addCleanup(tmp.cleanup)
        rc, _, err = self.main("run", "--no-build", "--build-dir", tmp.path)
        self.assertEqual(rc, 3)
        self.assertIn("no conformance binary", err)

    def test_bad_option_values(self):
        for argv in (["run", "--timeout-multiplier", "0"], ["run", "--seed", "x"],
                     ["run", "--backend", "a", "--driver", "b"], ["run", "--start-method", "clone"],
                     ["frobnicate"]):
            with self.subTest(argv=argv):
                rc, _, err = self.main(*argv)
                self.assertEqual(rc, 2)
                self.assertNotIn("Traceback", err)

    def test_no_command_prints_help(self):
        rc, _, err = self.main()
        self.assertEqual(rc, 2)
        self.assertIn("usage:", err)

    def test_backends(self):
        rc, out, _ = self.main("backends")
        self.assertEqual(rc, 0)
        for name in ("reference", "cpython", "cpython-spawn", "mutant-never-blocks", "mutant-release-unheld-ok"):
            self.assertIn(name + ":", out.replace(" (mutant):", ":"))
        self.assertIn("expectations: harness/expectations/cpython.toml", out)

    def test_unknown_preset(self):
        rc, _, err = self.main("test", "--preset", "nosuch")
        self.assertEqual(rc, 2)
        self.assertIn("unknown preset 'nosuch'", err)


if __name__ == "__main__":
    unittest.main()

"""Discovered backends ([discover.cpython] of harness/backends.toml) and unavailable backends
(`check` commands, interpreters older than min_version), with a fake directory tree of
interpreters: shell scripts that answer the version probe."""

import contextlib
import io
import os
import stat
import unittest

import support
from mpspec_cli import backends, cli, runner
from mpspec_cli.errors import EnvError, UserError


def fake_python(path, answer, status=0):
    """An executable that prints `answer` for the version probe."""
    support.write(path, "#!/bin/sh\necho '%s'\nexit %d\n" % (answer, status))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


DISCOVER = """
[discover.cpython]
interpreters = ["{tree}/usr/bin/python3.*", "{tree}/usr/bin/python3", "{tree}/pyenv/versions/*/bin/python3"]
driver = "{{interpreter}} {{root}}/harness/drivers/cpython.py"
expectations = "harness/expectations/cpython.toml"
overrides = "harness/expectations/cpython-{{version}}.toml"
min_version = "3.8"
description = "CPython {{full_version}} ({{interpreter}})"
profile = "core"
"""


class DiscoveryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = os.path.join(self.tmp.path, "repo")
        tree = self.tree = os.path.join(self.tmp.path, "tree")
        fake_python(tree + "/usr/bin/python3.11", "CPython 3.11.2")
        os.symlink("python3.11", tree + "/usr/bin/python3")  # the same interpreter: once
        fake_python(tree + "/usr/bin/python3.11-config", "CPython 3.11.2")  # not a python
        support.write(tree + "/usr/bin/python3.10", "not executable")
        fake_python(tree + "/pyenv/versions/3.11.7/bin/python3", "CPython 3.11.7")  # 3.11 taken
        fake_python(tree + "/pyenv/versions/3.12.1/bin/python3", "CPython 3.12.1")
        fake_python(tree + "/pyenv/versions/3.9.18/bin/python3", "CPython 3.9.18")
        fake_python(tree + "/pyenv/versions/3.7.16/bin/python3", "CPython 3.7.16")
        fake_python(tree + "/pyenv/versions/pypy3.9/bin/python3", "PyPy 3.9.18")
        fake_python(tree + "/pyenv/versions/2.7.18/bin/python3", "CPython 2.7.18")
        fake_python(tree + "/pyenv/versions/broken/bin/python3", "CPython 3.13.0", status=1)
        support.write(os.path.join(self.root, "harness", "expectations", "cpython-3.12.toml"), "")

    def registry(self, static='[backends.cpython]\ndriver = "{python} x"\n', discover=True):
        text = static + DISCOVER.format(tree=self.tree)
        path = support.write(os.path.join(self.root, "harness", "backends.toml"), text)
        return backends.load(path, discover=discover)

    def test_one_backend_per_cpython_3_version(self):
        reg = self.registry()
        self.assertEqual(list(reg), ["cpython", "cpython-3.7", "cpython-3.9", "cpython-3.11",
                                     "cpython-3.12"])
        b = reg["cpython-3.11"]
        self.assertTrue(b.discovered)
        self.assertEqual(b.description, "CPython 3.11.2 (%s/usr/bin/python3.11)" % self.tree)
        self.assertEqual(b.driver_command("/b", "/r", "/p"),
                         "%s/usr/bin/python3.11 /r/harness/drivers/cpython.py" % self.tree)
        self.assertEqual(b.profile, "core")
        self.assertIsNone(b.start_method)
        self.assertIsNone(b.why_unavailable("/b", "/r", "/p"))
        self.assertEqual(b.expectations_paths("/b", self.root, "/p"),
                         [os.path.join(self.root, "harness/expectations/cpython.toml")])
        # A per-version overrides file that exists is added after the common one.
        self.assertEqual(reg["cpython-3.12"].expectations_paths("/b", self.root, "/p"),
                         [os.path.join(self.root, "harness/expectations/cpython.toml"),
                          os.path.join(self.root, "harness/expectations/cpython-3.12.toml")])

    def test_old_versions_are_listed_unavailable_with_the_reason(self):
        b = self.registry()["cpython-3.7"]
        why = b.why_unavailable("/b", "/r", "/p")
        self.assertIn("Python 3.7.16 is older than 3.8", why)
        with self.assertRaises(EnvError) as cm:
            backends.require_available(b, "/b", "/r", "/p")
        self.assertIn("backend 'cpython-3.7' is unavailable here", str(cm.exception))

    def test_a_registry_entry_keeps_its_name(self):
        reg = self.registry('[backends."cpython-3.12"]\ndriver = "mine"\n')
        self.assertEqual(reg["cpython-3.12"].driver, "mine")
        self.assertFalse(reg["cpython-3.12"].discovered)

    def test_absent_directories_and_no_discovery(self):
        self.assertEqual(list(self.registry(discover=False)), ["cpython"])
        path = support.write(os.path.join(self.tmp.path, "b.toml"),
                             '[backends.x]\ndriver = "d"\n[discover.cpython]\n'
                             'interpreters = ["/nonexistent/*/python3"]\n')
        self.assertEqual(list(backends.load(path)), ["x"])

    def test_invalid_sections(self):
        bad = {
            "unknown kind": '[discover.pypy]\ninterpreters = ["x"]\n',
            "unknown key": '[discover.cpython]\ninterpreters = ["x"]\nfoo = 1\n',
            "no patterns": '[discover.cpython]\ninterpreters = []\n',
            "min_version": '[discover.cpython]\ninterpreters = ["x"]\nmin_version = "three"\n',
            "name": '[discover.cpython]\ninterpreters = ["x"]\nname = "py"\n',
            "placeholder": '[discover.cpython]\ninterpreters = ["x"]\ndriver = "{interp}"\n',
            "check": '[backends.x]\ndriver = "d"\ncheck = ""\n',
        }
        for what, text in bad.items():
            with self.subTest(what):
                path = support.write(os.path.join(self.tmp.path, "bad.toml"),
                                     '[backends.y]\ndriver = "d"\n' + text)
                with self.assertRaises(UserError):
                    backends.load(path)


class CheckCommandTest(unittest.TestCase):
    def test_check_command(self):
        ok = backends.Backend("ok", "d", check="true")
        self.assertIsNone(ok.why_unavailable("/b", "/r", "/p"))
        bad = backends.Backend("bad", "d", check="echo noise; echo 'no module named frob' >&2; exit 1")
        why = bad.why_unavailable("/b", "/r", "/p")
        self.assertTrue(why.startswith("no module named frob (check: "), why)
        with self.assertRaises(EnvError):
            backends.require_available(bad, "/b", "/r", "/p")


class RunAndListTest(unittest.TestCase):
    """`mpspec run` refuses an unavailable backend before building; per-version overrides
    replace the common entries."""

    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path)
        support.write(os.path.join(self.root, "driver.sh"), "#!/bin/sh\n")
        self.build = os.path.join(self.root, "build")
        support.install_fake_binary(self.build)
        tree = os.path.join(self.tmp.path, "tree")
        fake_python(tree + "/bin/python3.12", "CPython 3.12.1")
        fake_python(tree + "/bin/python3.6", "CPython 3.6.15")
        self.registry = support.write(os.path.join(self.root, "harness", "backends.toml"), """
[backends.gone]
driver = "{root}/driver.sh"
check = "echo 'cannot import frob'; exit 1"

[discover.cpython]
interpreters = ["%s/bin/python3.*"]
driver = "{root}/driver.sh {interpreter}"
expectations = "common.toml"
overrides = "v-{version}.toml"
min_version = "3.8"
""" % tree)
        entry = """
[[expect]]
test = "Widget.Poke"
clause = "widget.poke.kill"
status = "%s"
reason = "r"
"""
        support.write(os.path.join(self.root, "common.toml"), entry % "PASS")
        support.write(os.path.join(self.root, "v-3.12.toml"), entry % "FAIL")
        scenario = support.write_scenario(self.tmp.path, [
            {"name": "Widget.MakeEmpty", "outcome": "pass", "clauses": "[widget.make.empty]"},
            {"name": "Widget.Poke", "outcome": "fail", "message": "m",
             "clauses": "[widget.poke.kill]"},
            {"name": "WidgetProp.Anything", "outcome": "pass", "clauses": ""},
            {"name": "Protocol.Hello", "outcome": "pass", "clauses": "[protocol.hello.first]"},
        ])
        old = os.environ.get("FAKE_GTEST_SCENARIO")
        os.environ["FAKE_GTEST_SCENARIO"] = scenario
        self.addCleanup(lambda: os.environ.__setitem__("FAKE_GTEST_SCENARIO", old) if old
                        else os.environ.pop("FAKE_GTEST_SCENARIO", None))

    def run_backend(self, name):
        opts = runner.RunOptions(backend=name, root=self.root, registry=self.registry,
                                 build_dir=self.build, no_build=False,
                                 artifacts=os.path.join(self.tmp.path, "art"))
        with contextlib.redirect_stderr(io.StringIO()):
            return runner.run(opts)

    def test_unavailable_backends_are_refused_before_any_build(self):
        for name, text in (("gone", "cannot import frob"),
                           ("cpython-3.6", "Python 3.6.15 is older than 3.8")):
            with self.subTest(name):
                with self.assertRaises(EnvError) as cm:
                    self.run_backend(name)  # no_build=False: would build (and fail) otherwise
                self.assertIn("backend '%s' is unavailable here" % name, str(cm.exception))
                self.assertIn(text, str(cm.exception))

    def test_overrides_replace_common_entries(self):
        opts = runner.RunOptions(backend="cpython-3.12", root=self.root, registry=self.registry,
                                 build_dir=self.build, no_build=True,
                                 artifacts=os.path.join(self.tmp.path, "art"))
        with contextlib.redirect_stderr(io.StringIO()):
            run = runner.run(opts)
        by = {r.test: r for r in run.results}
        self.assertEqual(by["Widget.Poke"].status, "XFAIL")
        self.assertTrue(run.ok)


class RepositoryRegistryTest(unittest.TestCase):
    def test_repository_entries(self):
        path = os.path.join(support.HARNESS, "backends.toml")
        reg = backends.load(path)
        mp = reg["multiprocess"]
        self.assertEqual(mp.expectations, "harness/expectations/multiprocess.toml")
        self.assertIn("--module multiprocess", mp.driver)
        self.assertIn("--check", mp.check)
        self.assertEqual(mp.driver.split()[0], "/usr/bin/python3")
        for name, b in reg.items():
            if b.discovered:
                self.assertRegex(name, r"^cpython-3\.\d+$")
                self.assertNotIn(name, backends.load(path, discover=False))

    def test_mpspec_backends_shows_availability(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(cli.main(["backends"]), 0)
        text = out.getvalue()
        self.assertIn("multiprocess: ", text)
        reg = backends.load(os.path.join(support.HARNESS, "backends.toml"))
        for name, b in reg.items():
            self.assertIn("\n%s:" % name, "\n" + text.replace(" (mutant):", ":"))
            if b.unavailable:
                self.assertIn("unavailable:  %s" % b.unavailable, text)


if __name__ == "__main__":
    unittest.main()

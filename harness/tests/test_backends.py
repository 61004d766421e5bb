"""The backend registry: loading, validation, placeholders."""

import os
import shlex
import unittest

import support
from mpspec_cli import backends
from mpspec_cli.errors import UserError


class RegistryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.reg = backends.load(os.path.join(support.HARNESS, "backends.toml"))

    def registry(self, text):
        return backends.load(support.write(os.path.join(self.tmp.path, "b.toml"), text))

    def test_repository_registry(self):
        static = backends.load(os.path.join(support.HARNESS, "backends.toml"), discover=False)
        self.assertEqual([n for n, b in static.items() if not b.mutant],
                         ["reference", "cpython", "cpython-spawn", "multiprocess", "fasteners",
                          "boost-interprocess", "reference-manager", "cpython-manager"])
        self.assertTrue({"mutant-never-blocks", "mutant-release-unheld-ok"} <= set(static))
        # Discovered backends (test_backend_discovery.py) come after the registry's own.
        self.assertEqual(list(self.reg)[:len(static)], list(static))
        self.assertIsNone(self.reg["reference"].expectations)
        self.assertEqual(self.reg["cpython"].expectations, "harness/expectations/cpython.toml")
        self.assertEqual(self.reg["cpython-spawn"].start_method, "spawn")
        nb = self.reg["mutant-never-blocks"]
        self.assertTrue(nb.mutant)
        self.assertTrue({"Lock.NonBlockingOnHeldReturnsFalse", "Lock.BlockingAcquireWaitsForRelease",
                         "LockProp.HistoriesAreLinearizable"} <= set(nb.must_fail))
        self.assertIn("Lock.ReleaseUnheldRaisesValueError", self.reg["mutant-release-unheld-ok"].must_fail)
        for b in self.reg.values():
            self.assertTrue(b.description, b.name)

    def test_timeout_multiplier(self):
        reg = self.registry('[backends.x]\ndriver = "d"\nmutant = true\ntimeout_multiplier = 0.25\n')
        self.assertEqual(reg["x"].timeout_multiplier, 0.25)
        self.assertIsNone(self.reg["reference"].timeout_multiplier)
        self.assertEqual(self.reg["mutant-filelock-pidfile"].timeout_multiplier, 0.25)

    def test_must_fail_names_existing_tests(self):
        from mpspec_cli import clauses
        names = {t.name for t in clauses.scan_tests(support.ROOT)}
        for b in self.reg.values():
            for t in b.must_fail:
                self.assertIn(t, names, "%s: must_fail names unknown test %s" % (b.name, t))

    def test_placeholders(self):
        cmd = self.reg["cpython-spawn"].driver_command("/b", "/my root", "/usr/bin/python3")
        self.assertEqual(shlex.split(cmd), ["/usr/bin/python3", "/my root/harness/drivers/cpython.py",
                                            "--start-method", "spawn"])
        ref = self.reg["reference"].driver_command("/b d", "/r", "py")
        self.assertEqual(shlex.split(ref), ["/b d/conformance/backends/reference/mpspec_driver_reference"])
        self.assertEqual(self.reg["cpython"].expectations_path("/b", "/r", "py"),
                         "/r/harness/expectations/cpython.toml")

    def test_lookup_lists_known_backends(self):
        with self.assertRaises(UserError) as cm:
            backends.lookup(self.reg, "cpyton")
        msg = str(cm.exception)
        self.assertIn("unknown backend 'cpyton'", msg)
        self.assertIn("reference, cpython", msg)

    def test_invalid_entries(self):
        bad = {
            "no driver": '[backends.x]\ndescription = "d"\n',
            "unknown key": '[backends.x]\ndriver = "d"\ndrvier = "e"\n',
            "placeholder": '[backends.x]\ndriver = "{bulid}/d"\n',
            "profile": '[backends.x]\ndriver = "d"\nprofile = "loose"\n',
            "must_fail without mutant": '[backends.x]\ndriver = "d"\nmust_fail = ["A.B"]\n',
            "timeout_multiplier without mutant": '[backends.x]\ndriver = "d"\ntimeout_multiplier = 0.5\n',
            "timeout_multiplier zero": '[backends.x]\ndriver = "d"\nmutant = true\ntimeout_multiplier = 0\n',
            "timeout_multiplier string": '[backends.x]\ndriver = "d"\nmutant = true\ntimeout_multiplier = "x"\n',
            "no table": 'x = 1\n',
            "syntax": '[backends.x\n',
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(UserError):
                    self.registry(text)

    def test_missing_files(self):
        build = os.path.join(self.tmp.path, "build")
        present = support.write(os.path.join(build, "present"), "")
        cmd = "%s %s/absent --flag /usr/bin/elsewhere" % (present, build)
        self.assertEqual(backends.missing_files(cmd, build, "/nonexistent-root"), [build + "/absent"])


if __name__ == "__main__":
    unittest.main()

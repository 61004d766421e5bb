"""Expectation files: validation, XFAIL / XPASS, entries naming unknown tests."""

import os
import unittest

import support
from mpspec_cli import expectations as ex
from mpspec_cli import tomlload
from mpspec_cli.errors import UserError


def entry(status, test="Lock.X"):
    return ex.Expectation(test, "lock.x", status if isinstance(status, list) else [status], "why", 1)


class ApplyTest(unittest.TestCase):
    def test_no_entry(self):
        self.assertEqual(ex.apply("PASS", None), ("PASS", True))
        self.assertEqual(ex.apply("FAIL", None), ("FAIL", False))
        self.assertEqual(ex.apply("TIMEOUT", None), ("TIMEOUT", False))
        self.assertEqual(ex.apply("CRASH", None), ("CRASH", False))
        self.assertEqual(ex.apply("UNSUPPORTED", None), ("UNSUPPORTED", True))
        self.assertEqual(ex.apply("UNRESOLVED", None), ("UNRESOLVED", True))

    def test_expected_failure_is_xfail(self):
        self.assertEqual(ex.apply("FAIL", entry("FAIL")), ("XFAIL", True))
        self.assertEqual(ex.apply("TIMEOUT", entry(["TIMEOUT"])), ("XFAIL", True))

    def test_other_failure_stays_unexpected(self):
        self.assertEqual(ex.apply("CRASH", entry("FAIL")), ("CRASH", False))

    def test_unexpected_pass_is_xpass(self):
        self.assertEqual(ex.apply("PASS", entry("FAIL")), ("XPASS", False))

    def test_intermittent(self):
        e = entry(["FAIL", "PASS"])
        self.assertEqual(ex.apply("PASS", e), ("PASS", True))
        self.assertEqual(ex.apply("FAIL", e), ("XFAIL", True))

    def test_skips_are_neutral(self):
        self.assertEqual(ex.apply("UNSUPPORTED", entry("FAIL")), ("UNSUPPORTED", True))
        self.assertEqual(ex.apply("UNRESOLVED", entry("FAIL")), ("UNRESOLVED", True))


class ParseTest(unittest.TestCase):
    GOOD = '''
[[expect]]
test = "Lock.A"
clause = "[lock.a]"
status = "FAIL"
reason = "because"

[[expect]]
test = "Lock.B"
clause = "lock.b"
status = ["FAIL", "PASS"]
reason = "racy"
'''

    def parse(self, text):
        return ex.parse(tomlload.loads(text), "e.toml")

    def test_good(self):
        e = self.parse(self.GOOD)
        self.assertEqual(e["Lock.A"].status, ["FAIL"])
        self.assertEqual(e["Lock.A"].clause, "lock.a", "brackets are optional")
        self.assertEqual(e["Lock.B"].status, ["FAIL", "PASS"])
        self.assertEqual(e["Lock.B"].index, 2)

    def test_empty_file_is_fine(self):
        self.assertEqual(self.parse("# nothing yet\n"), {})

    def test_errors(self):
        bad = {
            "bad status": self.GOOD.replace('status = "FAIL"', 'status = "XFAIL"'),
            "missing": self.GOOD.replace('reason = "because"', ""),
            "unknown key": self.GOOD.replace('reason = "because"', 'reason = "b"\nfoo = 1'),
            "duplicate": self.GOOD.replace('"Lock.B"', '"Lock.A"'),
            "not a name": self.GOOD.replace('"Lock.A"', '"just words"'),
            "top level": "expectations = 1\n",
            "empty list": self.GOOD.replace('["FAIL", "PASS"]', "[]"),
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(UserError) as cm:
                    self.parse(text)
                self.assertIn("e.toml", str(cm.exception))

    def test_unknown_tests_and_clause_mismatch(self):
        e = self.parse(self.GOOD)
        errors, warnings = ex.check_entries(e, {"Lock.A"}, {"Lock.A": ["lock.other"]}, "e.toml")
        self.assertEqual(len(errors), 1)
        self.assertIn("Lock.B, which does not exist", errors[0])
        self.assertEqual(len(warnings), 1)
        self.assertIn("[lock.a], which the test does not check", warnings[0])
        errors, warnings = ex.check_entries(e, {"Lock.A", "Lock.B"}, {"Lock.A": ["lock.a"]})
        self.assertEqual((errors, warnings), ([], []))


class RepositoryFilesTest(unittest.TestCase):
    def test_cpython_expectations(self):
        e = ex.load(os.path.join(support.HARNESS, "expectations", "cpython.toml"))
        c = e["Lock.ConcurrentReleaseExactlyOne"]
        self.assertEqual(c.clause, "lock.release.concurrent")
        self.assertEqual(c.status, ["FAIL", "PASS"])

    def test_every_file_names_existing_tests_and_clauses(self):
        from mpspec_cli import clauses
        t = clauses.trace(support.ROOT)
        names = {x.name for x in t.tests}
        by_test = {x.name: x.clauses for x in t.tests}
        d = os.path.join(support.HARNESS, "expectations")
        for f in sorted(os.listdir(d)):
            if f.endswith(".toml"):
                with self.subTest(file=f):
                    e = ex.load(os.path.join(d, f))
                    errors, warnings = ex.check_entries(e, names, by_test, f)
                    self.assertEqual(errors + warnings, [])
                    for x in e.values():
                        self.assertIn(x.clause, t.clauses, "%s names an unknown clause" % x.test)

    def test_missing_file(self):
        with self.assertRaises(UserError):
            ex.load("/nonexistent/x.toml")


if __name__ == "__main__":
    unittest.main()

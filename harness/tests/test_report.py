"""Reports: terminal summary, JUnit XML, JSON records (built from the gtest fixtures)."""

import io
import json
import os
import unittest
import xml.etree.ElementTree as ET

import support
from mpspec_cli import clauses, expectations, gtest, report, runner


def fixture_run(expected=None):
    """A Run made from fixtures/gtest (the same path `mpspec run` takes after the binary)."""
    text = support.fixture("console.txt")
    attempt = runner._Attempt(1, False, gtest.parse_json_report(support.fixture("report.json")),
                              gtest.parse_console(text), text)
    raw = runner._from_attempt(attempt, 1200.0, "/work")
    spec, _ = clauses.scan_spec(support.ROOT)
    results = runner.finalize(raw, list(raw), expected or {}, {}, "demo")
    return runner.Run("demo", "demo-driver --flag", "core", results, spec, log="/tmp/run.log")


class ResultsTest(unittest.TestCase):
    def test_statuses_and_messages(self):
        run = fixture_run()
        by = {r.test: r for r in run.results}
        self.assertEqual(by["Lock.ReleaseByOtherThread"].status, "UNSUPPORTED")
        self.assertEqual(by["Lock.ReleaseByOtherThread"].message, "UNSUPPORTED: reference lacks feature 'threads'")
        self.assertEqual(by["Lock.TimedAcquireSucceedsWhenReleased"].status, "UNRESOLVED")
        prop = by["LockProp.HistoriesAreLinearizable"]
        self.assertIn('reproduce with: RC_PARAMS="max_success=200 reproduce=Bchdl', prop.message)
        self.assertIn("seed=9876543210", prop.message)
        self.assertEqual(prop.artifacts, ["/tmp/artifacts/LockProp.HistoriesAreLinearizable-s17.history.json"])
        self.assertNotIn("reproduce", by["Lock.ReleaseUnheldRaisesValueError"].message)
        self.assertFalse(run.ok)

    def test_expectations(self):
        e = {
            "Lock.ReleaseUnheldRaisesValueError": expectations.Expectation(
                "Lock.ReleaseUnheldRaisesValueError", "lock.release.unheld", ["FAIL"], "known", 1),
            "Lock.ConcurrentReleaseExactlyOne": expectations.Expectation(
                "Lock.ConcurrentReleaseExactlyOne", "lock.release.concurrent", ["FAIL"], "racy", 2),
        }
        by = {r.test: r for r in fixture_run(e).results}
        x = by["Lock.ReleaseUnheldRaisesValueError"]
        self.assertEqual((x.status, x.expected), ("XFAIL", True))
        self.assertTrue(x.message.startswith("expected (FAIL): known"))
        xp = by["Lock.ConcurrentReleaseExactlyOne"]
        self.assertEqual((xp.status, xp.expected), ("XPASS", False))
        self.assertIn("but it passed", xp.message)


class TerminalTest(unittest.TestCase):
    def test_summary(self):
        out = io.StringIO()
        report.terminal(fixture_run(), out)
        text = out.getvalue()
        lines = text.rstrip("\n").splitlines()
        self.assertEqual(lines[-1], "2 passed, 4 failed, 2 skipped")
        self.assertIn("Tests not PASS (6 of 8)", text)
        self.assertIn("<- unexpected", text)
        table = [l for l in lines if l.startswith("[lock.acquire.wakes]")]
        self.assertEqual(len(table), 1)
        self.assertIn("MUST", table[0])
        self.assertIn("TIMEOUT (1/3)", table[0])
        self.assertTrue(any(l.startswith("[lock.construct.unlocked]") and l.endswith("PASS") for l in lines))
        self.assertIn("profile core (claimed by demo): does not conform", text)

    def test_closing_line_counts(self):
        def r(status, expected=True):
            return runner.TestResult("A.B", "x", status, status, expected, None, [], 0.0, "", [])
        self.assertEqual(report.closing_line([r("PASS"), r("XFAIL")]), "2 passed, 0 failed")
        self.assertEqual(report.closing_line([r("PASS"), r("XPASS", False), r("UNSUPPORTED")]),
                         "1 passed, 1 failed, 1 skipped")


class JunitJsonTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)

    def test_junit_is_well_formed(self):
        run = fixture_run()
        run.results[0].output = "bad \x01 control char"
        path = os.path.join(self.tmp.path, "sub", "r.xml")
        report.write_junit(run, path)
        root = ET.parse(path).getroot()
        self.assertEqual(root.tag, "testsuites")
        self.assertEqual(root.get("tests"), "8")
        self.assertEqual(root.get("failures"), "2")
        self.assertEqual(root.get("errors"), "2")
        cases = root.findall("./testsuite/testcase")
        self.assertEqual(len(cases), 8)
        first = cases[0]
        self.assertEqual(first.get("classname"), "demo.Lock")
        clause_props = [p.get("value") for p in first.findall("./properties/property[@name='clause']")]
        self.assertEqual(clause_props, ["lock.construct.unlocked", "lock.acquire.nonblocking"])
        by = {c.get("name"): c for c in cases}
        self.assertIsNotNone(by["ReleaseUnheldRaisesValueError"].find("failure"))
        self.assertIsNotNone(by["KilledHolderKeepsLock"].find("error"))
        self.assertIsNotNone(by["ReleaseByOtherThread"].find("skipped"))

    def test_json_records(self):
        path = os.path.join(self.tmp.path, "r.json")
        report.write_json(fixture_run(), path)
        with open(path) as f:
            records = json.load(f)
        self.assertEqual(len(records), 8)
        for rec in records:
            self.assertTrue({"test", "backend", "status", "expected", "clauses", "duration_s",
                             "message", "artifacts"} <= set(rec))
        prop = next(r for r in records if r["test"] == "LockProp.HistoriesAreLinearizable")
        self.assertEqual(prop["status"], "FAIL")
        self.assertFalse(prop["expected"])
        self.assertIn("lock.acquire.exclusive", prop["clauses"])


if __name__ == "__main__":
    unittest.main()

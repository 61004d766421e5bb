"""Parsing the conformance binary's JSON report, console output and test list."""

import json
import unittest

import support
from mpspec_cli import gtest


class JsonReportTest(unittest.TestCase):
    def setUp(self):
        self.results = gtest.parse_json_report(support.fixture("report.json"))

    def test_statuses(self):
        r = self.results
        self.assertEqual(len(r), 8)
        self.assertEqual(r["Lock.ConstructUnlocked"].status, "PASS")
        self.assertEqual(r["Lock.ReleaseUnheldRaisesValueError"].status, "FAIL")
        self.assertEqual(r["Lock.KilledHolderKeepsLock"].status, "CRASH")
        self.assertEqual(r["Lock.KilledWaiterDoesNotDisturb"].status, "TIMEOUT")
        self.assertTrue(r["Lock.ReleaseByOtherThread"].skipped)
        self.assertFalse(r["Lock.ConstructUnlocked"].skipped)

    def test_clauses_time_and_messages(self):
        r = self.results["Lock.ConstructUnlocked"]
        self.assertEqual(r.clauses, ["lock.construct.unlocked", "lock.acquire.nonblocking"])
        self.assertAlmostEqual(r.duration_s, 0.012)
        f = self.results["Lock.ReleaseUnheldRaisesValueError"]
        self.assertIn("lock_test.cpp:212", f.message)
        self.assertIn("history saved to", f.message, "both failures are kept")

    def test_filtered_out_tests_are_left_out(self):
        doc = json.loads(support.fixture("report.json"))
        doc["testsuites"][0]["testsuite"][0]["status"] = "NOTRUN"
        doc["testsuites"][0]["testsuite"][0]["result"] = "SUPPRESSED"
        self.assertNotIn("Lock.ConstructUnlocked", gtest.parse_json_report(doc))

    def test_not_a_report(self):
        with self.assertRaises(ValueError):
            gtest.parse_json_report('{"hello": 1}')
        with self.assertRaises(ValueError):
            gtest.parse_json_report("not json")


class ConsoleTest(unittest.TestCase):
    def setUp(self):
        self.c = gtest.parse_console(support.fixture("console.txt"))

    def test_segments(self):
        c = self.c
        self.assertEqual(len(c.order), 8)
        self.assertIsNone(c.running)
        self.assertEqual(c.tests["Lock.ConstructUnlocked"].ended, "OK")
        self.assertEqual(c.tests["Lock.ReleaseByOtherThread"].ended, "SKIPPED")
        self.assertEqual(c.tests["LockProp.HistoriesAreLinearizable"].ended, "FAILED")
        self.assertAlmostEqual(c.tests["Lock.KilledWaiterDoesNotDisturb"].duration_s, 2.71)

    def test_skip_messages(self):
        unsupported = gtest.skip_reason(self.c.tests["Lock.ReleaseByOtherThread"].text)
        self.assertEqual(unsupported, "UNSUPPORTED: reference lacks feature 'threads'")
        self.assertEqual(gtest.classify_skip(unsupported), "UNSUPPORTED")
        unresolved = gtest.skip_reason(self.c.tests["Lock.TimedAcquireSucceedsWhenReleased"].text)
        self.assertTrue(unresolved.startswith("UNRESOLVED: the timed waiter"))
        self.assertEqual(gtest.classify_skip(unresolved), "UNRESOLVED")
        self.assertEqual(gtest.classify_skip("no reason given"), "UNRESOLVED")

    def test_rapidcheck(self):
        self.assertEqual(self.c.reproduce,
                         ['RC_PARAMS="max_success=200 reproduce=BchdlNGdvJ3XzIXaz5WZyRUZs92bpRHdzlmbnRnbhB3bjJXZzVGT"'])
        self.assertEqual(self.c.seed, "seed=9876543210 max_success=200")
        prop = self.c.tests["LockProp.HistoriesAreLinearizable"].text
        self.assertTrue(gtest.uses_rapidcheck(prop))
        self.assertFalse(gtest.uses_rapidcheck(self.c.tests["Lock.ConstructUnlocked"].text))

    def test_artifacts(self):
        prop = self.c.tests["LockProp.HistoriesAreLinearizable"].text
        self.assertEqual(gtest.artifacts_in(prop),
                         ["/tmp/artifacts/LockProp.HistoriesAreLinearizable-s17.history.json"])
        self.assertEqual(gtest.artifacts_in("nothing here"), [])
        self.assertEqual(gtest.artifacts_in("history: not linearizable (1 object)\n"
                                            "the checker saved to memory nothing"), [])
        self.assertEqual(gtest.artifacts_in("picture: out/a.html, history saved to b.history.json."),
                         ["out/a.html", "b.history.json"])

    def test_truncated_output_leaves_the_running_test(self):
        text = support.fixture("console.txt")
        cut = text[: text.index("[  FAILED  ] Lock.KilledHolderKeepsLock (300 ms)")]
        c = gtest.parse_console(cut)
        self.assertEqual(c.running, "Lock.KilledHolderKeepsLock")
        self.assertIsNone(c.tests["Lock.KilledHolderKeepsLock"].ended)
        self.assertIn("CRASH:", c.tests["Lock.KilledHolderKeepsLock"].text)

    def test_summary_lines_do_not_end_tests(self):
        c = gtest.parse_console("[ RUN      ] A.B\n[  FAILED  ] A.C\nstill A.B\n")
        self.assertEqual(c.running, "A.B")
        self.assertIn("still A.B", c.tests["A.B"].text)


class RealOutputTest(unittest.TestCase):
    """Real output of the binary (fixtures/gtest/never-blocks.*)."""

    def test_report_and_console_agree(self):
        report = gtest.parse_json_report(support.fixture("never-blocks.report.json"))
        console = gtest.parse_console(support.fixture("never-blocks.console.txt"))
        self.assertEqual(sorted(report), sorted(console.order))
        ended = {"PASS": "OK", "FAIL": "FAILED"}
        for name, r in report.items():
            self.assertEqual(ended[r.status], console.tests[name].ended, name)
            self.assertTrue(r.clauses, name)
        self.assertEqual(report["Lock.ConstructUnlocked"].status, "PASS")
        self.assertEqual(report["LockProp.HistoriesAreLinearizable"].status, "FAIL")
        self.assertEqual(len(console.reproduce), 1)
        self.assertIn("reproduce=", console.reproduce[0])
        prop = console.tests["LockProp.HistoriesAreLinearizable"].text
        self.assertTrue(gtest.uses_rapidcheck(prop))
        self.assertEqual(gtest.artifacts_in(prop),
                         ["/src/mpspec-artifacts/sample/LockProp.HistoriesAreLinearizable-s15.history.json"])


class ListTest(unittest.TestCase):
    def test_list(self):
        names = gtest.parse_test_list(support.fixture("list.txt"))
        self.assertEqual(len(names), 9)
        self.assertEqual(names[0], "Lock.ConstructUnlocked")
        self.assertEqual(names[7], "LockProp.HistoriesAreLinearizable")
        self.assertEqual(names[8], "Param/Suite.Case/0")

    def test_noise_is_ignored(self):
        self.assertEqual(gtest.parse_test_list("Note: filter\nA.\n  B\n"), ["A.B"])


if __name__ == "__main__":
    unittest.main()

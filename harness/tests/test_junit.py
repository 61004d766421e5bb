"""`mpspec run --junit`: the document parsed back, per testcase its clause, status and
expectation properties, and the shape CI readers (GitLab, Jenkins' JUnit plugin) rely on."""

import os
import unittest
import xml.etree.ElementTree as ET

import support
from mpspec_cli import expectations, gtest, report, runner


def make_run(shard=None):
    raw = {
        "Lock.ReleaseUnheld": gtest.RawResult("Lock.ReleaseUnheld", "FAIL", 0.5,
                                              "boom \x01 bad byte\nsecond line",
                                              ["lock.release.unheld", "lock.release.error"],
                                              output="console \x02 line\n"),
        "Lock.Construct": gtest.RawResult("Lock.Construct", "PASS", 0.25, "", ["lock.construct.unlocked"]),
        "Lock.Known": gtest.RawResult("Lock.Known", "FAIL", 1.0, "known failure",
                                      ["lock.release.concurrent"]),
        "Lock.Stale": gtest.RawResult("Lock.Stale", "PASS", 0.1, "", ["lock.context.exit"]),
        "Event.Kill": gtest.RawResult("Event.Kill", "CRASH", 2.0, "CRASH: driver died", None,
                                      artifacts=["/tmp/a/Event.Kill.history.json"]),
        "Event.Threads": gtest.RawResult("Event.Threads", "UNSUPPORTED", 0.0,
                                         "UNSUPPORTED: no threads", ["event.set.wakes"]),
    }
    expected = {
        "Lock.Known": expectations.Expectation("Lock.Known", "lock.release.concurrent",
                                               ["FAIL", "PASS"], "racy <on> \"this\" & that", 1),
        "Lock.Stale": expectations.Expectation("Lock.Stale", "lock.context.exit", ["FAIL"],
                                               "fixed since", 2),
    }
    results = runner.finalize(raw, list(raw), expected, {"Event.Kill": ["event.kill.waiter"]},
                              "demo")
    return runner.Run("demo", "demo-driver --x", "core", results, {}, shard=shard)


def props(el):
    return [(p.get("name"), p.get("value")) for p in el.findall("./properties/property")]


class JunitTest(unittest.TestCase):
    def setUp(self):
        tmp = support.TempDir()
        self.addCleanup(tmp.cleanup)
        self.path = os.path.join(tmp.path, "out", "r.xml")
        report.write_junit(make_run(shard=(3, 4)), self.path)
        self.root = ET.parse(self.path).getroot()  # well-formed, control characters dropped
        self.cases = {"%s.%s" % (c.get("classname").split(".", 1)[1], c.get("name")): c
                      for c in self.root.iter("testcase")}

    def test_shape(self):
        self.assertEqual(self.root.tag, "testsuites")
        self.assertEqual([s.get("name") for s in self.root.findall("testsuite")],
                         ["demo.Lock", "demo.Event"])
        self.assertEqual({k: self.root.get(k) for k in ("tests", "failures", "errors", "skipped")},
                         {"tests": "6", "failures": "2", "errors": "1", "skipped": "2"})
        lock = self.root.find("testsuite[@name='demo.Lock']")
        self.assertEqual({k: lock.get(k) for k in ("tests", "failures", "errors", "skipped", "time")},
                         {"tests": "4", "failures": "2", "errors": "0", "skipped": "1",
                          "time": "1.850"})
        self.assertEqual(list(self.root), self.root.findall("testsuite"),
                         "only <testsuite> under <testsuites>")
        for suite in self.root.findall("testsuite"):
            self.assertEqual(suite[0].tag, "properties", "suite properties come first")
            self.assertEqual(props(suite), [("backend", "demo"), ("driver", "demo-driver --x"),
                                            ("shard", "3/4")])
        for name, case in self.cases.items():
            self.assertEqual(case.get("classname"), "demo." + name.split(".")[0])
            float(case.get("time"))
            self.assertEqual(case[0].tag, "properties", "%s: properties first" % name)
            verdicts = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            self.assertLessEqual(len(verdicts), 1, name)

    def test_clause_properties(self):
        p = props(self.cases["Lock.ReleaseUnheld"])
        self.assertEqual([v for k, v in p if k == "clause"],
                         ["lock.release.unheld", "lock.release.error"])
        self.assertIn(("clauses", "[lock.release.unheld] [lock.release.error]"), p)
        # A crashed test's clauses come from the sources.
        self.assertEqual([v for k, v in props(self.cases["Event.Kill"]) if k == "clause"],
                         ["event.kill.waiter"])

    def test_status_and_expectation_properties(self):
        def d(name):
            return dict(props(self.cases[name]))
        unheld = d("Lock.ReleaseUnheld")
        self.assertEqual((unheld["status"], unheld["raw_status"], unheld["expected"]),
                         ("FAIL", "FAIL", "false"))
        self.assertNotIn("expectation_status", unheld)
        known = d("Lock.Known")
        self.assertEqual((known["status"], known["raw_status"], known["expected"]),
                         ("XFAIL", "FAIL", "true"))
        self.assertEqual(known["expectation_status"], "FAIL/PASS")
        self.assertEqual(known["expectation_clause"], "lock.release.concurrent")
        self.assertEqual(known["expectation_reason"], 'racy <on> "this" & that')
        stale = d("Lock.Stale")
        self.assertEqual((stale["status"], stale["raw_status"], stale["expected"],
                          stale["expectation_status"]), ("XPASS", "PASS", "false", "FAIL"))
        self.assertEqual(d("Event.Threads")["status"], "UNSUPPORTED")
        self.assertEqual(d("Event.Kill")["artifact"], "/tmp/a/Event.Kill.history.json")
        self.assertEqual(d("Lock.Construct")["backend"], "demo")

    def test_verdict_elements(self):
        f = self.cases["Lock.ReleaseUnheld"].find("failure")
        self.assertEqual(f.get("type"), "FAIL")
        self.assertEqual(f.get("message"), "FAIL: boom  bad byte")
        self.assertIn("second line", f.text)
        self.assertEqual(self.cases["Lock.Stale"].find("failure").get("type"), "XPASS")
        self.assertEqual(self.cases["Event.Kill"].find("error").get("type"), "CRASH")
        self.assertTrue(self.cases["Lock.Known"].find("skipped").get("message").startswith("XFAIL: "))
        self.assertTrue(self.cases["Event.Threads"].find("skipped").get("message")
                        .startswith("UNSUPPORTED: "))
        self.assertIsNone(self.cases["Lock.Construct"].find("system-out"))
        self.assertEqual(self.cases["Lock.ReleaseUnheld"].find("system-out").text,
                         "console  line\n")

    def test_unsharded_run_has_no_shard_property(self):
        root = report.junit(make_run()).getroot()
        self.assertEqual(root.findall(".//property[@name='shard']"), [])


if __name__ == "__main__":
    unittest.main()

"""The HTML report without a browser: merging reports (merge.py), the page (html.py), the
history timelines (timeline.py), `mpspec report` and `run --html` / <artifacts>/report.json.
(test_html_chromium.py renders the page in headless Chromium.)"""

import contextlib
import io
import json
import os
import shutil
import tempfile
import unittest
from unittest import mock

import support
from mpspec_cli import cli, clauses, gtest, html, merge, report, runner, timeline
from mpspec_cli.errors import UserError

FIXTURES = os.path.join(support.ROOT, "fixtures", "reports")
MUTANT_REPORT = os.path.join(FIXTURES, "never-blocks", "report.json")
REFERENCE_REPORT = os.path.join(FIXTURES, "reference", "report.json")


def record(test, status="PASS", backend="demo", clauses=("lock.acquire.free",), expected=None,
           message="", artifacts=()):
    r = {"test": test, "backend": backend, "status": status, "clauses": list(clauses),
         "duration_s": 0.01, "message": message, "artifacts": list(artifacts)}
    if expected is not None:
        r["expected"] = expected
    return r


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mpspec-html-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write_report(self, name, records):
        return support.write(os.path.join(self.tmp, name), json.dumps(records))


def history(ops, annotations=()):
    return {"format": "mpspec-history/1", "objects": {"L": "Lock"}, "ops": ops,
            "annotations": list(annotations)}


def op(i, process, invoke, ret, status="ok", value=True, method="acquire", thread=0, **extra):
    o = {"id": i, "process": process, "thread": thread, "object": "L", "method": method,
         "args": extra.pop("args", {}), "status": status, "invoke_ns": invoke, "return_ns": ret}
    if status == "ok":
        o["value"] = value
    o.update(extra)
    return o


class MergeTest(Tmp):
    def test_columns_rows_and_worst_status(self):
        a = self.write_report("a.json", [
            record("Lock.A", "PASS", "reference", ["lock.acquire.free"]),
            record("Lock.B", "FAIL", "reference", ["lock.acquire.free", "lock.release.held"],
                   expected=False),
            record("Lock.C", "UNSUPPORTED", "reference", []),
        ])
        b = self.write_report("b.json", [record("Lock.A", "XFAIL", "cpython", ["lock.acquire.free"])])
        spec, _ = clauses.scan_spec(support.ROOT)
        m = merge.build(merge.load_all([a, b]), spec)
        self.assertEqual([c.key for c in m.columns], ["reference", "cpython"])
        labels = [r.label for r in m.rows]
        # Spec order (acquire before release), the tests naming no clause last.
        self.assertEqual(labels, ["lock.acquire.free", "lock.release.held", merge.NO_CLAUSE])
        row = m.rows[0]
        self.assertEqual(row.status("reference"), "FAIL")
        self.assertEqual(merge.cell_text(row.cells["reference"]), "FAIL 1/2")
        self.assertEqual(row.status("cpython"), "XFAIL")
        self.assertIsNone(m.rows[1].status("cpython"))
        self.assertEqual(m.columns[0].counts(), (1, 1, 1))  # passed, failed, skipped
        self.assertEqual(m.columns[0].tally(), {"FAIL": 1, "UNSUPPORTED": 1, "PASS": 1})
        self.assertEqual(m.rows[0].clause.level, "MUST")

    def test_same_backend_from_two_reports_gets_two_columns(self):
        linux = self.write_report(os.path.join("linux", "reference.json"),
                                  [record("Lock.A", "PASS", "reference")])
        mac = self.write_report(os.path.join("macos", "reference.json"),
                                [record("Lock.A", "TIMEOUT", "reference", expected=False)])
        m = merge.build(merge.load_all([linux, mac]))
        self.assertEqual([c.key for c in m.columns], ["reference @ linux/reference",
                                                      "reference @ macos/reference"])
        m = merge.build(merge.load_all(["L=" + linux, "M=" + mac]))
        self.assertEqual([c.key for c in m.columns], ["reference @ L", "reference @ M"])
        # The merged records keep the columns apart when read back.
        out = os.path.join(self.tmp, "merged.json")
        merge.write_json(m, out)
        again = merge.build(merge.load_all([out]))
        self.assertEqual([c.key for c in again.columns], ["reference @ L", "reference @ M"])
        self.assertEqual(again.rows[0].status("reference @ M"), "TIMEOUT")

    def test_default_labels(self):
        self.assertEqual(merge.default_labels(["a/x.json", "b/y.json"]), ["x", "y"])
        self.assertEqual(merge.default_labels(["a/r.json", "b/r.json"]), ["a/r", "b/r"])

    def test_artifacts_are_found_next_to_the_report(self):
        d = os.path.join(self.tmp, "ci")
        h = support.write(os.path.join(d, "histories", "T-s1.history.json"), "{}")
        rel = support.write(os.path.join(d, "T-s2.history.json"), "{}")
        path = self.write_report(os.path.join("ci", "report.json"), [record(
            "Lock.A", "FAIL", artifacts=["/elsewhere/mpspec-artifacts/T-s1.history.json",
                                         "T-s2.history.json", "/gone/T-s3.history.json"])])
        got = merge.load_report(path).records[0]["artifacts"]
        self.assertEqual(got, [h, rel, "/gone/T-s3.history.json"])

    def test_bad_reports(self):
        for text, words in (("{}", "not an mpspec report"), ("[{\"test\": \"A\", \"status\": \"MEH\"}]",
                                                              "unknown status"),
                            ("[1]", "not an object"), ("nope", "not JSON")):
            p = support.write(os.path.join(self.tmp, "bad.json"), text)
            with self.assertRaises(UserError) as c:
                merge.load_report(p)
            self.assertIn(words, str(c.exception))
        with self.assertRaises(UserError):
            merge.load_report(os.path.join(self.tmp, "missing.json"))

    def test_expected_defaults_by_status(self):
        r = merge.normalize({"test": "A", "status": "FAIL"}, "x")
        self.assertFalse(r["expected"])
        self.assertTrue(merge.normalize({"test": "A", "status": "XFAIL"}, "x")["expected"])

    def test_terminal(self):
        a = self.write_report("a.json", [record("Lock.A", "FAIL", "reference", expected=False)])
        out = io.StringIO()
        merge.terminal(merge.build(merge.load_all([a])), out)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0].split(), ["clause", "reference"])
        self.assertEqual(lines[1].split(), ["[lock.acquire.free]", "FAIL"])
        self.assertEqual(lines[-1], "reference: FAIL 1; 0 passed, 1 failed, 0 skipped")


class TimelineTest(unittest.TestCase):
    def test_lanes_kinds_and_linearizability(self):
        h = history([
            op(0, "a", 100, 200, args={"block": True, "timeout": None}),
            op(1, "b", 300, 400, args={"block": False}),  # breaks: True on a held lock
            op(2, "a", 500, 600, status="error", method="release",
               error={"kind": "ValueError", "message": "<released> & gone"}),
            op(3, "c", 150, None, status="info"),  # killed at 350 (annotation, no reason)
            op(4, "b", 700, None, status="info", reason="pending"),
            op(5, "a", 650, 900, status="timeout", thread=1),
        ], [{"kind": "kill", "actor": "c", "signal": 9, "time_ns": 350},
            {"kind": "linearizability", "object": "L", "type": "Lock", "verdict": "not linearizable",
             "prefix_ops": [0], "breaks_at": 1}])
        svg = timeline.render(h)
        for actor in ("a/0", "a/1", "b", "c"):
            self.assertIn('data-actor="%s"' % actor, svg)
        self.assertIn('class="op op-ok lin-prefix" data-op="0"', svg)
        self.assertIn('class="op op-ok lin-break" data-op="1"', svg)
        self.assertIn('class="op op-error lin-other" data-op="2"', svg)
        self.assertIn('class="op op-killed lin-other" data-op="3"', svg)
        self.assertIn('class="op op-open lin-other" data-op="4"', svg)
        self.assertIn('class="op op-timeout lin-other" data-op="5"', svg)
        self.assertIn("L.acquire(block=True, timeout=None)", svg)  # hover text
        self.assertIn("raised ValueError: &lt;released&gt; &amp; gone", svg)
        self.assertNotIn("<released>", svg)
        self.assertIn("#1 of the longest linearizable prefix", svg)
        self.assertIn('class="lin-line"', svg)
        self.assertIn('class="kill"', svg)
        self.assertIn("still running when the history was taken", svg)
        self.assertIn("L (Lock): not linearizable; longest linearizable prefix 1 op(s), breaks at #1", svg)

    def test_without_annotation_says_so(self):
        svg = timeline.render(history([op(0, "a", 1, 2)]))
        self.assertIn("no linearizability annotation", svg)
        self.assertNotIn("lin-", svg.split("</svg>")[0].split("<svg", 1)[1].replace("lin-line", ""))

    def test_large_history_is_windowed_around_the_break(self):
        ops = [op(i, "a" if i % 2 else "b", 10 * i, 10 * i + 5) for i in range(50)]
        h = history(ops, [{"kind": "linearizability", "object": "L", "prefix_ops": [],
                           "breaks_at": 40}])
        svg = timeline.render(h, max_ops=10)
        self.assertIn("ops 36 to 45 of 50", svg)
        self.assertIn('data-op="40"', svg)
        self.assertNotIn('data-op="3"', svg)

    def test_load_rejects_other_documents(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write('{"format": "other"}')
        self.addCleanup(os.unlink, f.name)
        with self.assertRaises(timeline.HistoryError):
            timeline.load(f.name)
        with self.assertRaises(timeline.HistoryError):
            timeline.load(f.name + ".missing")

    def test_words(self):
        self.assertEqual(timeline.py({"a": [True, None, "x"]}), "{'a': [True, None, 'x']}")
        self.assertEqual(timeline.duration(1500), "+1.500 µs")
        self.assertEqual(timeline.duration(12), "+12 ns")


class PageTest(Tmp):
    def matrix(self, records, **kw):
        return merge.build(merge.load_all([self.write_report("r.json", records)]), **kw)

    def test_cells_links_and_escaping(self):
        hist = support.write(os.path.join(self.tmp, "T-s1.history.json"), json.dumps(history(
            [op(0, "a", 1, 2), op(1, "b", 3, 4)],
            [{"kind": "linearizability", "object": "L", "prefix_ops": [0], "breaks_at": 1}])))
        m = self.matrix([
            record("Lock.A", "PASS"),
            record("Lock.<B>", "FAIL", expected=False, message="x.cpp:3\nValue of: <script>alert(1)</script>\nbad & worse",
                   artifacts=[hist]),
        ])
        page = html.render(m, generated="now")
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        self.assertNotIn("<script>alert", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn("Lock.&lt;B&gt;", page)
        self.assertIn('data-clause="lock.acquire.free" data-column="demo"', page)
        self.assertIn('class="cell st-FAIL unexp"', page)
        self.assertIn('href="#col-0:lock.acquire.free">FAIL 1/2', page)
        self.assertIn('<summary>bad &amp; worse</summary>', page)  # the telling line
        self.assertIn('id="h-0-1-0"', page)  # the failing test's timeline
        self.assertIn('class="op op-ok lin-break"', page)
        self.assertIn('href="#h-0-1-0"', page)
        for status in html.STATUS_STYLE:
            self.assertIn(".st-%s{" % status, page)
        # Self-contained: nothing fetched.
        for needle in ("http://", "https://", "<link", "src=", "@import", "url("):
            self.assertNotIn(needle, page.replace('xmlns="http://www.w3.org/2000/svg"', ""))

    def test_histories_are_capped(self):
        hist = support.write(os.path.join(self.tmp, "T.history.json"),
                             json.dumps(history([op(0, "a", 1, 2)])))
        m = self.matrix([record("T%d.X" % i, "FAIL", artifacts=[hist] * 5) for i in range(6)])
        with mock.patch.object(html, "MAX_TIMELINES", 7):
            plan, ids = html.plan_histories(m)
            page = html.render(m)
        self.assertEqual([len(f) for _, _, f in plan], [3, 3, 1])
        self.assertEqual(page.count('<svg class="timeline"'), 7)
        self.assertIn("3 more test(s) with histories not drawn", page)

    def test_thousands_of_tests(self):
        recs = [record("S%d.T%d" % (i // 50, i), "PASS" if i % 7 else "FAIL",
                       clauses=["lock.acquire.free", "x.c%d" % (i % 40)]) for i in range(3000)]
        page = html.render(self.matrix(recs))
        self.assertEqual(page.count('<tr id="t-0-'), 3000)
        self.assertLess(len(page), 3_000_000)

    def test_preview_line(self):
        self.assertEqual(html.preview_line("a.cpp:1\nValue of: x\n  Actual: 1\nExpected: 2\nwhy"), "why")
        self.assertEqual(html.preview_line("UNSUPPORTED: no threads"), "UNSUPPORTED: no threads")
        self.assertEqual(html.preview_line("a.cpp:1\nValue of: x\n  Actual: 1"), "Value of: x")
        self.assertEqual(html.preview_line("a.cpp:1"), "a.cpp:1")


class FixtureTest(Tmp):
    """The checked-in failing run (fixtures/reports/, also what the Chromium test renders)."""

    def test_fixture_renders_with_linearizability(self):
        m = merge.build(merge.load_all([MUTANT_REPORT, REFERENCE_REPORT]),
                        clauses.scan_spec(support.ROOT)[0])
        self.assertEqual([c.key for c in m.columns], ["mutant-never-blocks", "reference"])
        page = html.render(m)
        self.assertIn('class="cell st-FAIL unexp" data-clause="lock.acquire.exclusive" '
                      'data-column="mutant-never-blocks"', page)
        self.assertIn("lin-break", page)
        self.assertIn("lin-prefix", page)
        self.assertIn('data-actor="b"', page)
        self.assertNotIn("cannot draw", page)

    def test_report_command(self):
        out_html = os.path.join(self.tmp, "out", "r.html")
        out_json = os.path.join(self.tmp, "out", "r.json")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = cli.main(["report", MUTANT_REPORT, REFERENCE_REPORT, "--html", out_html,
                           "--json", out_json, "--title", "CI <matrix>"])
        self.assertEqual(rc, 0)
        self.assertIn("mutant-never-blocks: PASS 4, FAIL 19", buf.getvalue())
        with open(out_html, encoding="utf-8") as f:
            self.assertIn("<title>CI &lt;matrix&gt;</title>", f.read())
        with open(out_json, encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)), 23 + 23)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            self.assertEqual(cli.main(["report", REFERENCE_REPORT]), 0)
        self.assertIn("[lock.acquire.free]", buf.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(cli.main(["report", os.path.join(self.tmp, "none.json")]), 2)
        self.assertIn("cannot read report", err.getvalue())


class RunReportsTest(Tmp):
    """`run` writes <artifacts>/report.json always, and --html."""

    def run_of(self):
        spec, _ = clauses.scan_spec(support.ROOT)
        raw = {"Lock.A": gtest.RawResult("Lock.A", "PASS", 0.1, clauses=["lock.acquire.free"]),
               "Lock.B": gtest.RawResult("Lock.B", "FAIL", 0.2, "nope",
                                         clauses=["lock.release.held"])}
        results = runner.finalize(raw, ["Lock.A", "Lock.B"], {}, {}, "demo")
        return runner.Run("demo", "demo-driver", "core", results, spec,
                          artifacts_dir=os.path.join(self.tmp, "art"))

    def test_latest_and_html(self):
        run = self.run_of()
        path = report.write_latest(run)
        self.assertEqual(path, os.path.join(self.tmp, "art", "report.json"))
        with open(path, encoding="utf-8") as f:
            self.assertEqual([r["test"] for r in json.load(f)], ["Lock.A", "Lock.B"])
        out = os.path.join(self.tmp, "run.html")
        report.write_html(run, out)
        with open(out, encoding="utf-8") as f:
            page = f.read()
        self.assertIn("<title>mpspec run: demo</title>", page)
        self.assertIn('class="cell st-FAIL unexp" data-clause="lock.release.held"', page)
        self.assertIsNone(report.write_latest(runner.Run("x", "d", None, [], {})))

    def test_cmd_run_writes_them(self):
        run = self.run_of()
        out = os.path.join(self.tmp, "r.html")
        with mock.patch.object(runner, "run", return_value=run), \
                contextlib.redirect_stdout(io.StringIO()):
            rc = cli.main(["run", "--no-build", "--html", out])
        self.assertEqual(rc, 1)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "art", "report.json")))
        self.assertTrue(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()

"""`mpspec explain`: resolving labels, citations, reports and verdicts, the text and JSON output."""

import io
import json
import os
import time
import unittest

import support
from mpspec_cli import clauses, cli, explain
from mpspec_cli.errors import UserError

MODEL_HPP = """\
// The widget model.
struct Widget {
  // [widget.make.empty] a new widget holds nothing
  static bool empty() { return true; }
  // [widget.make.empty.extra] is another label; so is [shared_widget.make.empty]
};
"""

LIBMP_CPP = "void make() {}  // [widget.make.empty]\n"

EXPECTATIONS = """\
[[expect]]
test = "Widget.Poke"
status = ["FAIL"]
clause = "widget.make.empty"
reason = "pokes are not implemented"
"""

CHAPTER = support.SPEC_CHAPTER.replace(
    "# Widget\n",
    "# Widget\n\nModel: `spec/models/widget.hpp` (state: the contents).\n\n## 1. Making\n", 1)


def record(test, status, clauses_, backend="fake", expected=None, message="", expectation=None):
    return {"test": test, "backend": backend, "status": status,
            "expected": status in ("PASS", "XFAIL", "UNSUPPORTED") if expected is None else expected,
            "expectation": expectation, "clauses": clauses_, "duration_s": 0.1,
            "message": message, "artifacts": []}


def write_report(path, records, mtime=None):
    support.write(path, json.dumps(records))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


class Tree(unittest.TestCase):
    """A small repository: the widget chapter, its tests, a model, libmp, an expectations file."""

    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path, spec=CHAPTER)
        support.write(os.path.join(self.root, "spec", "models", "widget.hpp"), MODEL_HPP)
        support.write(os.path.join(self.root, "reference", "src", "widget.cpp"), LIBMP_CPP)
        support.write(os.path.join(self.root, "harness", "expectations", "fake.toml"), EXPECTATIONS)
        self.trace = clauses.trace(self.root)

    def run_explain(self, label, **kw):
        out, err = io.StringIO(), io.StringIO()
        rc = explain.main(self.root, label, out, err, **kw)
        return rc, out.getvalue(), err.getvalue()


class ResolveTest(Tree):
    def test_label_with_or_without_brackets(self):
        for arg in ("widget.make.empty", "[widget.make.empty]", " [widget.make.empty] "):
            c, under = explain.resolve(arg, self.trace.clauses)
            self.assertEqual(c.label, "widget.make.empty")
            self.assertEqual(under, [])

    def test_prefix_lists_clauses_under_it(self):
        c, under = explain.resolve("widget", self.trace.clauses)
        self.assertIsNone(c)
        self.assertEqual([x.label for x in under][:2], ["widget.make.empty", "widget.poke.kill"])
        c, under = explain.resolve("widget.make.", self.trace.clauses)
        self.assertIsNone(c, "a trailing dot asks for the prefix only")
        self.assertEqual([x.label for x in under], ["widget.make.empty"])
        c, under = explain.resolve("widget.make.empty.", self.trace.clauses)
        self.assertEqual((c.label, under), ("widget.make.empty", []), "nothing under it: the clause")

    def test_unknown_label_is_a_usage_error_with_suggestions(self):
        with self.assertRaises(UserError) as cm:
            explain.resolve("widget.mkae.empty", self.trace.clauses)
        self.assertEqual(cm.exception.status, 2)
        self.assertIn("no clause [widget.mkae.empty]", str(cm.exception))
        self.assertIn("did you mean [widget.make.empty]", str(cm.exception))
        with self.assertRaises(UserError) as cm:
            explain.resolve("make.empty", self.trace.clauses)
        self.assertIn("[widget.make.empty]", str(cm.exception), "a label's tail finds it")
        with self.assertRaises(UserError) as cm:
            explain.resolve("zzz.qqq", self.trace.clauses)
        self.assertIn("`./mpspec spec` lists every clause", str(cm.exception))

    def test_a_test_name_says_what_it_names(self):
        with self.assertRaises(UserError) as cm:
            explain.resolve("Widget.Poke", self.trace.clauses, self.trace.tests)
        self.assertIn("Widget.Poke is a test, not a clause", str(cm.exception))
        self.assertIn("[widget.poke.kill] [widget.make.empty]", str(cm.exception))


class CitationTest(Tree):
    def test_label_pattern_matches_whole_labels_only(self):
        p = clauses.label_pattern("lock.release")
        for text in ("[lock.release]", '"lock.release"', "see lock.release.", "(lock.release)"):
            self.assertTrue(p.search(text), text)
        for text in ("shared_lock.release", "lock.release.held", "lock.released", "xlock.release"):
            self.assertFalse(p.search(text), text)

    def test_citations_by_category(self):
        c = self.trace.clauses["widget.make.empty"]
        suite = [os.path.join(self.root, t.file) for t in self.trace.tests]
        found = explain.find_citations(self.root, c, suite)
        where = [(x.category, x.where) for x in found]
        self.assertIn(("model", "spec/models/widget.hpp:3"), where)
        self.assertNotIn(("model", "spec/models/widget.hpp:5"), where, "other labels are not it")
        self.assertIn(("libmp", "reference/src/widget.cpp:1"), where)
        self.assertIn(("expectations", "harness/expectations/fake.toml:4"), where)
        # The MPSPEC_CLAUSES calls are the Tests section; the clause's own line is not a citation,
        # but the withdrawn clause that names it is.
        self.assertFalse(any(x.file.startswith("conformance/tests") for x in found), where)
        self.assertIn(("spec", "spec/widget/widget.md:15"), where)
        self.assertNotIn(c.where, [x.where for x in found])
        self.assertEqual(where[0][0], "model", "the model comes first")

    def test_chapter_model_paragraph(self):
        line, text, files = explain.chapter_model(self.root, self.trace.clauses["widget.fast"])
        self.assertEqual(line, 3)
        self.assertTrue(text.startswith("Model: `spec/models/widget.hpp`"))
        self.assertEqual(files, ["spec/models/widget.hpp"])
        self.assertIsNone(explain.chapter_model(self.root, self.trace.clauses["protocol.kill"]))


class ReportsTest(Tree):
    def test_newest_report_per_backend_wins(self):
        now = time.time()
        write_report(os.path.join(self.root, "mpspec-artifacts", "fake", "report.json"),
                     [record("Widget.Poke", "PASS", ["widget.poke.kill"])], now - 100)
        newer = write_report(os.path.join(self.tmp.path, "elsewhere.json"),
                             [record("Widget.Poke", "FAIL", ["widget.poke.kill"])], now)
        build = os.path.join(self.tmp.path, "build")
        write_report(os.path.join(build, "mpspec-reports", "other.json"),
                     [record("Widget.Poke", "PASS", [], backend="other")], now - 50)
        found = explain.load_reports(self.root)
        self.assertEqual(list(found), ["fake"])
        found = explain.load_reports(self.root, [newer], build)
        self.assertEqual(sorted(found), ["fake", "other"])
        self.assertEqual(found["fake"].path, newer)

    def test_backend_name_without_records_comes_from_the_path(self):
        path = write_report(os.path.join(self.root, "mpspec-artifacts", "empty-one", "report.json"), [])
        self.assertEqual(explain.read_report(path).backend, "empty-one")
        path = write_report(os.path.join(self.tmp.path, "r", "mutant-x.json"), [])
        self.assertEqual(explain.read_report(path).backend, "mutant-x")

    def test_bad_reports(self):
        support.write(os.path.join(self.root, "mpspec-artifacts", "broken", "report.json"), "{nope")
        warnings = []
        self.assertEqual(explain.load_reports(self.root, warn=warnings.append), {})
        self.assertEqual(len(warnings), 1)
        self.assertIn("not JSON", warnings[0])
        bad = support.write(os.path.join(self.tmp.path, "bad.json"), '{"a": 1}')
        with self.assertRaises(UserError) as cm:
            explain.load_reports(self.root, [bad])
        self.assertIn("not a report of `mpspec run`", str(cm.exception))
        with self.assertRaises(UserError):
            explain.load_reports(self.root, [os.path.join(self.tmp.path, "missing.json")])

    def test_worst_status_of_the_tests_naming_the_clause(self):
        path = write_report(os.path.join(self.root, "mpspec-artifacts", "fake", "report.json"), [
            record("Widget.MakeEmpty", "PASS", ["widget.make.empty"]),
            record("Widget.Poke", "FAIL", ["widget.poke.kill", "widget.make.empty"],
                   message="/x/widget_test.cpp:7\nFAIL: poke went wrong"),
            record("WidgetProp.Anything", "XFAIL", ["widget.strict.only"]),
        ])
        reports = explain.load_reports(self.root)
        v, = explain.clause_verdicts("widget.make.empty", ["Widget.MakeEmpty", "Widget.Poke"], reports)
        self.assertEqual((v.status, v.unexpected), ("FAIL", True))
        self.assertEqual(v.summary(), "FAIL 1/2 (unexpected)")
        self.assertEqual(explain.why_line(v.records[1]), "poke went wrong")
        v, = explain.clause_verdicts("widget.strict.only", [], reports)
        self.assertEqual(v.summary(), "XFAIL", "a record's own clauses count too")
        v, = explain.clause_verdicts("widget.order", [], reports)
        self.assertEqual(v.summary(), "not run")
        self.assertEqual(v.report.path, path)
        self.assertEqual(explain.worst(["PASS", "SOMETHING-NEW", "XFAIL"]), "SOMETHING-NEW")


class OutputTest(Tree):
    def setUp(self):
        super().setUp()
        write_report(os.path.join(self.root, "mpspec-artifacts", "fake", "report.json"), [
            record("Widget.MakeEmpty", "PASS", ["widget.make.empty"]),
            record("Widget.Poke", "XFAIL", ["widget.poke.kill", "widget.make.empty"],
                   expectation={"status": ["FAIL"], "clause": "widget.make.empty",
                                "reason": "pokes are not implemented"}),
        ])

    def test_text(self):
        rc, text, err = self.run_explain("[widget.make.empty]")
        self.assertEqual(rc, 0)
        self.assertEqual(err, "")
        self.assertTrue(text.startswith("[widget.make.empty]  MUST, core\n"), text)
        self.assertIn("spec/widget/widget.md:7  (Widget › 1. Making)", text)
        self.assertIn("A new widget is empty.", text)
        self.assertIn("Model\n  spec/widget/widget.md:3\n", text)
        self.assertIn("spec/models/widget.hpp:3", text)
        self.assertIn("  libmp\n    reference/src/widget.cpp:1", text)
        self.assertIn("Tests (2)\n", text)
        self.assertRegex(text, r"conformance/tests/widget/widget_test\.cpp:2\s+Widget\.MakeEmpty")
        self.assertRegex(text, r"fake\s+XFAIL 1/2\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+"
                               r"mpspec-artifacts/fake/report\.json")
        self.assertIn("Widget.Poke  XFAIL  expected: pokes are not implemented", text)

    def test_text_without_reports_or_tests(self):
        os.remove(os.path.join(self.root, "mpspec-artifacts", "fake", "report.json"))
        rc, text, _ = self.run_explain("widget.order")
        self.assertEqual(rc, 0)
        self.assertIn("Tests (0)\n  none\n", text)
        self.assertIn("no reports found", text)

    def test_prefix_listing(self):
        rc, text, _ = self.run_explain("widget.make")
        self.assertEqual(rc, 0)
        self.assertIn("1 clause under [widget.make.]", text)
        self.assertRegex(text, r"\[widget\.make\.empty\]\s+MUST, core\s+2 tests\s+A new widget")

    def test_json(self):
        rc, text, _ = self.run_explain("widget.make.empty", want_json=True)
        self.assertEqual(rc, 0)
        doc = json.loads(text)
        self.assertEqual((doc["label"], doc["level"], doc["profile"]), ("widget.make.empty", "MUST", "core"))
        self.assertEqual(doc["text"], "A new widget is empty. *Source: reasoning.*")
        self.assertEqual(doc["model"]["files"], ["spec/models/widget.hpp"])
        self.assertEqual([t["test"] for t in doc["tests"]], ["Widget.MakeEmpty", "Widget.Poke"])
        self.assertEqual(doc["verdicts"][0]["backend"], "fake")
        self.assertEqual(doc["verdicts"][0]["status"], "XFAIL")
        self.assertIn({"category": "libmp", "file": "reference/src/widget.cpp", "line": 1,
                       "text": "void make() {} // [widget.make.empty]"}, doc["citations"])
        rc, text, _ = self.run_explain("widget", want_json=True)
        self.assertEqual(json.loads(text)["prefix"], "widget")


class ClauseBodyTest(unittest.TestCase):
    def test_whole_paragraph_and_list_item(self):
        text = ("# T\n\n## 2. Things\n\n**[t.a.b]** MUST, core. First line\ncontinues here.\n\n"
                "- [t.p] MUST, strict, when the feature `x` is declared. Item\n  goes on.\n"
                "- [t.q] MAY. Next.\n")
        found, problems = clauses.parse_spec_text(text, "t.md")
        self.assertEqual(problems, [])
        a, p, q = found
        self.assertEqual((a.body, a.end_line, a.chapter, a.section),
                         ("First line\ncontinues here.", 6, "T", "2. Things"))
        self.assertEqual((p.profile, p.condition), ("strict", "when the feature `x` is declared"))
        self.assertEqual((p.body, p.end_line), ("Item\ngoes on.", 9))
        self.assertEqual(p.header, "MUST, strict, when the feature `x` is declared")
        self.assertEqual((q.body, q.end_line), ("Next.", 10))


class CommandLineTest(unittest.TestCase):
    """`mpspec explain` on the repository itself."""

    def run_cli(self, *argv):
        import contextlib
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli.main(list(argv))
        return rc, out.getvalue(), err.getvalue()

    def test_known_clause(self):
        rc, text, _ = self.run_cli("explain", "lock.release.unheld")
        self.assertEqual(rc, 0)
        self.assertIn("[lock.release.unheld]  MUST, core", text)
        self.assertIn("spec/models/lock.hpp:", text)
        self.assertIn("Lock.ReleaseUnheldRaisesValueError", text)

    def test_unknown_clause(self):
        rc, text, err = self.run_cli("explain", "lock.relase.unheld")
        self.assertEqual(rc, 2)
        self.assertIn("did you mean [lock.release.unheld]", err)


if __name__ == "__main__":
    unittest.main()

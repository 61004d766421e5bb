"""Clause and test scanning, traceability, `mpspec spec`, --filter mapping."""

import io
import json
import os
import unittest

import support
from mpspec_cli import clauses, speccmd
from mpspec_cli.errors import UserError


class SpecScanTest(unittest.TestCase):
    def test_chapter_and_protocol_clauses(self):
        found, problems = clauses.parse_spec_text(support.SPEC_CHAPTER, "spec/widget/widget.md")
        self.assertEqual(problems, [])
        by = {c.label: c for c in found}
        self.assertNotIn("widget.example", by, "a label inside a fenced code block is no clause")
        self.assertEqual((by["widget.make.empty"].level, by["widget.make.empty"].profile), ("MUST", "core"))
        self.assertEqual(by["widget.make.empty"].line, 3)
        self.assertEqual(by["widget.poke.kill"].condition, "when the backend declares kill")
        self.assertEqual((by["widget.fast"].level, by["widget.fast"].profile), ("SHOULD", "strict"))
        self.assertEqual((by["widget.order"].level, by["widget.order"].profile), ("MAY", None))
        self.assertEqual(by["widget.old"].level, "withdrawn")
        self.assertFalse(any(c.protocol for c in found))

        proto, problems = clauses.parse_spec_text(support.PROTOCOL, "spec/protocol.md")
        self.assertEqual(problems, [])
        self.assertEqual([c.label for c in proto], ["protocol.hello.first", "protocol.kill"])
        self.assertTrue(all(c.protocol and c.level == "MUST" for c in proto))
        self.assertEqual(proto[1].condition, "when the feature `kill` is declared")

    def test_malformed_headers_are_reported(self):
        text = "**[a.b]** Must do things.\n\n**[a.c]** MUST. No profile.\n"
        found, problems = clauses.parse_spec_text(text, "x.md")
        self.assertEqual(len(problems), 2)
        self.assertIn("[a.b] has no level", problems[0])
        self.assertIn("[a.c] has no profile", problems[1])

    def test_the_repository_spec_parses(self):
        found, problems = clauses.scan_spec(support.ROOT)
        self.assertEqual(problems, [])
        self.assertIn("lock.release.unheld", found)
        self.assertEqual(found["lock.release.unheld"].level, "MUST")
        self.assertTrue(found["protocol.kill"].protocol)


class TestScanTest(unittest.TestCase):
    def test_tests_and_their_clauses(self):
        tests = clauses.parse_test_source(support.TESTS_CPP, "t.cpp")
        self.assertEqual([t.name for t in tests],
                         ["Widget.MakeEmpty", "Widget.Poke", "WidgetProp.Anything", "Protocol.Hello"])
        self.assertEqual(tests[1].clauses, ["widget.poke.kill", "widget.make.empty"])
        self.assertEqual(tests[1].line, 5)
        self.assertEqual(tests[2].clauses, ["widget.strict.only"])

    def test_missing_clauses_macro(self):
        tests = clauses.parse_test_source("TEST(A, B) {\n  int x;\n}\nTEST(A, C) { MPSPEC_CLAUSES(\"[a.c]\"); }\n", "t.cpp")
        self.assertIsNone(tests[0].clauses_text)
        self.assertEqual(tests[1].clauses, ["a.c"])

    def test_comment_stripping_keeps_strings_and_lines(self):
        src = 'a("//not a comment"); // gone\n/* x\n y */ b;\n'
        out = clauses.strip_comments(src)
        self.assertIn('"//not a comment"', out)
        self.assertNotIn("gone", out)
        self.assertEqual(out.count("\n"), src.count("\n"))


class TraceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)

    def spec(self, root):
        out = io.StringIO()
        return speccmd.main(root, False, out), out.getvalue()

    def test_clean_tree(self):
        root = support.make_tree(self.tmp.path)
        t = clauses.trace(root)
        self.assertEqual(t.errors, [])
        self.assertEqual(t.by_clause["widget.make.empty"], ["Widget.MakeEmpty", "Widget.Poke"])
        self.assertEqual(t.by_clause["protocol.kill"], [])  # untested protocol clause: fine
        rc, text = self.spec(root)
        self.assertEqual(rc, 0, text)
        self.assertIn("every MUST clause has a test", text)
        self.assertIn("Driver protocol", text)

    def test_untested_must_clause_fails(self):
        spec = support.SPEC_CHAPTER + "\n**[widget.lonely]** MUST, core. Nobody tests this.\n"
        root = support.make_tree(self.tmp.path, spec=spec)
        rc, text = self.spec(root)
        self.assertEqual(rc, 1)
        self.assertIn("MUST clause [widget.lonely] has no test", text)
        self.assertIn("(NO TEST)", text)
        self.assertNotIn("[widget.fast] has no test", text)  # SHOULD: not an error

    def test_draft_chapter_only_warns(self):
        spec = ("**Status: draft.** Clauses may lack tests for now.\n\n" + support.SPEC_CHAPTER +
                "\n**[widget.lonely]** MUST, core. Nobody tests this yet.\n")
        root = support.make_tree(self.tmp.path, spec=spec)
        rc, text = self.spec(root)
        self.assertEqual(rc, 0, text)
        self.assertIn("(draft: no test yet)", text)
        self.assertIn("warning:", text)
        self.assertIn("[widget.lonely] has no test yet (draft chapter)", text)

    def test_unknown_and_withdrawn_labels_fail(self):
        tests = support.TESTS_CPP + ('TEST(Widget, Typo) {\n  MPSPEC_CLAUSES("[widget.mkae.empty]");\n}\n'
                                     'TEST(Widget, Old) {\n  MPSPEC_CLAUSES("[widget.old]");\n}\n'
                                     'TEST(Widget, Nothing) {\n}\n')
        root = support.make_tree(self.tmp.path, tests=tests)
        t = clauses.trace(root)
        joined = "\n".join(t.errors)
        self.assertIn("names [widget.mkae.empty], which is not a clause", joined)
        self.assertIn("names [widget.old], which is withdrawn", joined)
        self.assertIn("Widget.Nothing names no clause", joined)
        self.assertEqual(len(t.errors), 3)
        rc, _ = self.spec(root)
        self.assertEqual(rc, 1)

    def test_mixed_levels_warn(self):
        tests = support.TESTS_CPP + 'TEST(Widget, Mixed) {\n  MPSPEC_CLAUSES("[widget.make.empty] [widget.fast]");\n}\n'
        t = clauses.trace(support.make_tree(self.tmp.path, tests=tests))
        self.assertEqual(t.errors, [])
        self.assertEqual(len(t.warnings), 1)

    def test_json_output(self):
        root = support.make_tree(self.tmp.path)
        out = io.StringIO()
        self.assertEqual(speccmd.main(root, True, out), 0)
        doc = json.loads(out.getvalue())
        c = {x["label"]: x for x in doc["clauses"]}
        self.assertEqual(c["widget.make.empty"]["tests"], ["Widget.MakeEmpty", "Widget.Poke"])
        self.assertEqual(c["widget.make.empty"]["file"], os.path.join("spec", "widget", "widget.md"))
        self.assertEqual(doc["errors"], [])

    def test_suite_sources_follow_the_cmake_target(self):
        root = support.make_tree(self.tmp.path)
        checker = support.write(os.path.join(root, "conformance", "tests", "checker", "checker_test.cpp"),
                                "TEST(Checker, SelfTest) {}\n")
        other = support.write(os.path.join(root, "conformance", "tests", "widget", "extra_test.cpp"),
                              'TEST(Widget, Extra) {\n  MPSPEC_CLAUSES("[widget.make.empty]");\n}\n')
        names = [t.name for t in clauses.scan_tests(root)]
        self.assertIn("Widget.Extra", names)
        self.assertNotIn("Checker.SelfTest", names, "the checker's self-tests are another binary")
        support.write(os.path.join(root, "conformance", "tests", "CMakeLists.txt"),
                      "# the suite\nadd_executable(mpspec_conformance\n  main.cpp\n"
                      "  widget/widget_test.cpp)  # not extra_test.cpp\n"
                      "add_executable(other checker/checker_test.cpp widget/extra_test.cpp)\n")
        names = [t.name for t in clauses.scan_tests(root)]
        self.assertEqual(names, ["Widget.MakeEmpty", "Widget.Poke", "WidgetProp.Anything", "Protocol.Hello"])
        self.assertTrue(os.path.exists(checker) and os.path.exists(other))

    def test_no_spec_folder_is_a_user_error(self):
        with self.assertRaises(UserError):
            clauses.trace(self.tmp.path)


class FilterTest(unittest.TestCase):
    TESTS = clauses.parse_test_source(support.TESTS_CPP, "t.cpp")

    def test_clause_or_gtest(self):
        for p in ("lock", "lock.release", "[lock.release.unheld]", "lock.release.", "lock,protocol.kill"):
            self.assertTrue(clauses.is_clause_filter(p), p)
        for p in ("Lock.*", "Lock.ReleaseHeld", "*Timeout*", "-LockProp.*", "Lock.A:Lock.B"):
            self.assertFalse(clauses.is_clause_filter(p), p)

    def test_prefixes_select_tests(self):
        self.assertEqual(clauses.tests_for_clauses(self.TESTS, "widget.make"),
                         ["Widget.MakeEmpty", "Widget.Poke"])
        self.assertEqual(clauses.tests_for_clauses(self.TESTS, "[widget.poke.kill]"), ["Widget.Poke"])
        self.assertEqual(clauses.tests_for_clauses(self.TESTS, "widget.strict, protocol"),
                         ["WidgetProp.Anything", "Protocol.Hello"])
        self.assertEqual(clauses.tests_for_clauses(self.TESTS, "widget.mak"), [],
                         "a prefix matches whole label parts only")

    def test_resolve_filter(self):
        from mpspec_cli.runner import resolve_filter
        self.assertIsNone(resolve_filter(None, self.TESTS))
        self.assertEqual(resolve_filter("Widget.*", self.TESTS), "Widget.*")
        self.assertEqual(resolve_filter("widget.poke", self.TESTS), "Widget.Poke")
        with self.assertRaises(UserError) as cm:
            resolve_filter("nosuch.clause", self.TESTS)
        self.assertIn("no test names a clause matching", str(cm.exception))

    def test_gtest_filter_semantics(self):
        m = clauses.gtest_filter_matches
        self.assertTrue(m("Lock.A", "Lock.*"))
        self.assertFalse(m("LockProp.A", "Lock.*"))
        self.assertTrue(m("LockProp.A", "Lock.*:LockProp.*"))
        self.assertFalse(m("Lock.A", "*-Lock.A"))
        self.assertTrue(m("Lock.B", "-Lock.A"))


if __name__ == "__main__":
    unittest.main()

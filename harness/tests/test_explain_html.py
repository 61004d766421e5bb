"""`mpspec spec --html FILE`: the spec as one page, its anchors, escaping and verdict badges."""

import io
import json
import os
import re
import unittest

import support
from mpspec_cli import clauses, explain, speccmd
from mpspec_cli.errors import UserError

HOSTILE = """\
# Gadget <script>alert(1)</script>

An intro with `<b>code</b>`, a & b, "quotes", <img src=x onerror=alert(2)> and
[a bad link](javascript:alert(3)), [a good one](https://example.org/?a=1&b=2) and
[the widget chapter](../widget/widget.md).

## 1. Tables & lists

| kind | meaning |
|---|---|
| `a|b` | <i>not italic</i> & **bold** |

- one *item*
- two, with [gadget.tag.escape]
  continued
  - nested

1. first
2. second

```cpp
if (a < b && c > d) { return "<x>"; }
```

**[gadget.tag.escape]** MUST, core. `<tag>` & <script>x</script> are *text*.

**[gadget.tag.failing]** MUST, core. This one fails somewhere.
"""

TESTS = support.TESTS_CPP + """\
TEST(Gadget, Escapes) {
  MPSPEC_CLAUSES("[gadget.tag.escape]");
}
TEST(Gadget, Fails) {
  MPSPEC_CLAUSES("[gadget.tag.failing]");
}
"""


def block(page, label):
    """The HTML of the clause whose anchor is `label`."""
    start = page.index('id="%s"' % label)
    end = page.index("</aside>", start)
    return page[start:end]


class RepositoryPageTest(unittest.TestCase):
    """The real spec: every clause has exactly one anchor, and the page is self-contained."""

    @classmethod
    def setUpClass(cls):
        cls.trace = clauses.trace(support.ROOT)
        cls.page = speccmd.render_html(support.ROOT, cls.trace, {})

    def test_every_clause_has_one_anchor(self):
        ids = re.findall(r'\bid="([^"]+)"', self.page)
        counts = {}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        self.assertEqual([i for i, n in counts.items() if n > 1], [], "ids are unique")
        missing = [label for label in self.trace.clauses if counts.get(label) != 1]
        self.assertEqual(missing, [])
        self.assertIn('id="lock.release.unheld"', self.page)

    def test_self_contained(self):
        self.assertTrue(self.page.startswith("<!DOCTYPE html>"))
        self.assertNotIn("<script", self.page)
        self.assertNotRegex(self.page, r'<(link|img)\b')
        self.assertNotRegex(self.page, r'(src|href)="(https?:)?//')

    def test_chapters_in_order_with_a_table_of_contents(self):
        order = speccmd.chapter_order(support.ROOT)
        self.assertEqual(order[0], os.path.join("spec", "README.md"))
        self.assertLess(order.index(os.path.join("spec", "sync", "lock.md")),
                        order.index(os.path.join("spec", "sync", "rlock.md")))
        toc = self.page[self.page.index('<nav class="toc">'):self.page.index("</nav>")]
        self.assertIn('href="#ch-sync-lock"', toc)
        self.assertLess(self.page.index('id="ch-sync-lock"'), self.page.index('id="ch-sync-rlock"'))


class PageTest(unittest.TestCase):
    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path, tests=TESTS)
        support.write(os.path.join(self.root, "spec", "gadget", "gadget.md"), HOSTILE)
        support.write(os.path.join(self.root, "mpspec-artifacts", "fake", "report.json"), json.dumps([
            {"test": "Gadget.Escapes", "backend": "fake", "status": "PASS", "expected": True,
             "clauses": ["gadget.tag.escape"], "message": ""},
            {"test": "Gadget.Fails", "backend": "fake", "status": "FAIL", "expected": False,
             "clauses": ["gadget.tag.failing"], "message": "it <broke> & \"died\""},
            {"test": "Widget.MakeEmpty", "backend": "fake", "status": "PASS", "expected": True,
             "clauses": ["widget.make.empty"], "message": ""}]))
        self.trace = clauses.trace(self.root)
        self.page = speccmd.render_html(self.root, self.trace, explain.load_reports(self.root))

    def test_escaping(self):
        page = self.page
        self.assertNotIn("<script", page)
        self.assertNotIn("<img", page)
        self.assertNotIn("<i>", page)
        self.assertNotIn("javascript:", page.split("<main>")[1].replace("[a bad link](javascript:alert(3))", ""),
                         "a javascript: link is left as text")
        self.assertIn("Gadget &lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn("<code>&lt;b&gt;code&lt;/b&gt;</code>", page)
        self.assertIn("a &amp; b, &quot;quotes&quot;, &lt;img src=x onerror=alert(2)&gt;", page)
        self.assertIn('<a href="https://example.org/?a=1&amp;b=2">a good one</a>', page)
        self.assertIn("<code>&lt;tag&gt;</code> &amp; &lt;script&gt;x&lt;/script&gt; are <em>text</em>",
                      page)
        self.assertIn("if (a &lt; b &amp;&amp; c &gt; d) { return &quot;&lt;x&gt;&quot;; }", page)
        self.assertIn("it &lt;broke&gt; &amp; &quot;died&quot;", page, "messages in tooltips too")

    def test_markdown_subset(self):
        page = self.page
        self.assertIn("<td><code>a|b</code></td>", page, "a pipe inside code stays in its cell")
        self.assertIn("<strong>bold</strong>", page)
        self.assertIn("<li>one <em>item</em></li>", page)
        self.assertIn('<a class="xref" href="#gadget.tag.escape">[gadget.tag.escape]</a> continued',
                      page)
        self.assertRegex(page, r"<ul>\n<li>nested</li>\n</ul>")
        self.assertIn("<ol>\n<li>first</li>\n<li>second</li>\n</ol>", page)
        self.assertIn('<a href="#ch-widget-widget">the widget chapter</a>', page)
        self.assertIn('<pre><code class="language-cpp">', page)
        self.assertNotIn("**", re.sub(r"<pre>.*?</pre>", "", page.split("<main>")[1], flags=re.S))
        self.assertIn("<li>two, with", page, "the items of a tight list hold no <p>")

    def test_clause_badges_tests_and_verdicts(self):
        c = block(self.page, "widget.make.empty")
        self.assertIn('<span class="badge lvl-must">MUST</span>', c)
        self.assertIn('<span class="badge prof-core">core</span>', c)
        self.assertIn("Widget.MakeEmpty", c)
        self.assertIn('class="v s-pass"', c)
        self.assertIn("A new widget is empty.", c)
        c = block(self.page, "widget.poke.kill")
        self.assertIn('<span class="cond">when the backend declares kill</span>', c)
        c = block(self.page, "widget.order")
        self.assertIn('<span class="badge lvl-may">MAY</span>', c)
        self.assertNotIn("prof-", c)
        self.assertIn("no test", c)
        self.assertIn('id="protocol.kill"', self.page, "list-item clauses have anchors too")

    def test_failing_verdict_is_shown(self):
        c = block(self.page, "gadget.tag.failing")
        self.assertIn('class="v s-fail unexpected"', c)
        self.assertIn("fake <b>FAIL (unexpected)</b>", c)
        self.assertIn("Gadget.Fails FAIL (unexpected)", c)
        ok = block(self.page, "gadget.tag.escape")
        self.assertIn("fake <b>PASS</b>", ok)
        self.assertNotIn("s-fail", ok)

    def test_spec_command_writes_the_page(self):
        out, err = io.StringIO(), io.StringIO()
        path = os.path.join(self.tmp.path, "out", "spec.html")
        os.makedirs(os.path.dirname(path))
        rc = speccmd.main(self.root, False, out, html_file=path, err=err)
        self.assertEqual(rc, 0, out.getvalue())
        self.assertIn("wrote %s" % path, out.getvalue())
        self.assertNotIn("(NO TEST)", out.getvalue(), "the clause tables are not printed")
        with open(path, encoding="utf-8") as f:
            self.assertIn('id="gadget.tag.failing"', f.read())
        with self.assertRaises(UserError):
            speccmd.main(self.root, False, out, html_file=os.path.join(self.tmp.path, "no", "dir", "x.html"))


if __name__ == "__main__":
    unittest.main()

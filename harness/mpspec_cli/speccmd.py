"""`mpspec spec`: every clause with the tests that name it; fails on traceability errors.

`mpspec spec --html FILE` also renders the whole spec as one self-contained HTML page (inline
CSS, no script, nothing fetched): the chapters in the order of spec/README.md's table, a table
of contents, every clause with an anchor named by its label (`FILE#lock.release.unheld`), a
badge of its level and profile, and beside it the tests that name it and each backend's
latest verdict from the JSON reports `mpspec explain` reads (`explain.load_reports`).

The page's Markdown reader handles the subset the spec is written in: ATX headings, paragraphs,
`-` / `*` / `1.` lists (nested by indentation), pipe tables, fenced code blocks, and inline
`code`, **bold**, *italic*, [links](url) and clause references `[label]` (made links to the
clause's anchor). `_` is never emphasis (labels contain it). Everything else is text, escaped.
"""

import datetime
import html
import json
import os
import re
from collections import Counter

from . import clauses as cl
from . import explain
from .errors import EXIT_FAILED, EXIT_OK, UserError


def as_json(t):
    return {
        "clauses": [
            {"label": c.label, "level": c.level, "profile": c.profile, "condition": c.condition,
             "file": c.file, "line": c.line, "protocol": c.protocol, "tests": t.by_clause[c.label]}
            for c in t.clauses.values()
        ],
        "tests": [{"test": x.name, "file": x.file, "line": x.line, "clauses": x.clauses}
                  for x in t.tests],
        "errors": t.errors,
        "warnings": t.warnings,
    }


def _table(out, items, t):
    lw = max([len("[%s]" % c.label) for c in items] + [6])
    vw = max(len(c.level + (", " + c.profile if c.profile else "")) for c in items)
    for c in items:
        tests = t.by_clause[c.label]
        if tests:
            shown = ", ".join(tests)
        elif c.level == "withdrawn":
            shown = "(withdrawn)"
        elif c.level == "MUST" and not c.protocol and c.draft:
            shown = "(draft: no test yet)"
        elif c.level == "MUST" and not c.protocol:
            shown = "(NO TEST)"
        else:
            shown = "(no test)"
        level = c.level + (", " + c.profile if c.profile else "")
        out.write("  %-*s  %-*s  %s\n" % (lw, "[%s]" % c.label, vw, level, shown))


def _summary(t, out):
    """Warnings, errors and the closing lines; returns the exit status."""
    normative = [c for c in t.clauses.values() if not c.protocol]
    protocol = [c for c in t.clauses.values() if c.protocol]
    by_level = {lv: sum(1 for c in normative if c.level == lv) for lv in cl.LEVELS + ("withdrawn",)}
    tested = sum(1 for c in normative if t.by_clause[c.label])
    for w in t.warnings:
        out.write("warning: %s\n" % w)
    for e in t.errors:
        out.write("error: %s\n" % e)
    out.write("%d clauses (%s), %d with tests; %d protocol clauses; %d tests in %s\n" % (
        len(normative), ", ".join("%d %s" % (n, lv) for lv, n in by_level.items() if n), tested,
        len(protocol), len(t.tests), os.path.join("conformance", "tests")))
    if t.errors:
        out.write("%d traceability error(s)\n" % len(t.errors))
        return EXIT_FAILED
    out.write("every MUST clause has a test\n")
    return EXIT_OK


def main(root, want_json, out, html_file=None, reports=(), build_dir=None, err=None):
    """`mpspec spec [--json] [--html FILE [--reports FILE...] [--build-dir DIR]]`.

    With `html_file` the page is written there and, unless `want_json`, only the warnings,
    errors and closing lines are printed (not the clause tables). Exit status: 1 on a
    traceability error, else 0; UserError (2) for a bad report given or an unwritable FILE."""
    t = cl.trace(root)
    if html_file:
        found = explain.load_reports(
            root, reports, build_dir,
            warn=(lambda m: err.write("mpspec: warning: %s\n" % m)) if err else None)
        page = render_html(root, t, found)
        try:
            with open(html_file, "w", encoding="utf-8") as f:
                f.write(page)
        except OSError as e:
            raise UserError("cannot write %s: %s" % (html_file, e.strerror or e))
    if want_json:
        json.dump(as_json(t), out, indent=2)
        out.write("\n")
        return EXIT_FAILED if t.errors else EXIT_OK
    if html_file:
        status = _summary(t, out)
        out.write("wrote %s (%d clauses; verdicts of %d backend%s)\n"
                  % (html_file, len(t.clauses), len(found), "" if len(found) == 1 else "s"))
        return status

    chapters, protocol = {}, []
    for c in t.clauses.values():
        (protocol if c.protocol else chapters.setdefault(c.file, [])).append(c)
    for f, items in chapters.items():
        out.write("%s (%d clauses)\n" % (f, len(items)))
        _table(out, items, t)
        out.write("\n")
    if protocol:
        files = sorted({c.file for c in protocol})
        out.write("Driver protocol (%s, %d clauses): binding on drivers, checked by the "
                  "Protocol.* tests; never gating here\n" % (", ".join(files), len(protocol)))
        _table(out, protocol, t)
        out.write("\n")
    return _summary(t, out)


# ------------------------------------------------------------------------------ HTML page


def chapter_order(root):
    """The spec's Markdown files, relative to the root: spec/README.md, then the chapters in
    the order of its table (§1), then any other .md file by path."""
    spec = os.path.join(root, "spec")
    found = []
    for dirpath, dirnames, filenames in os.walk(spec):
        dirnames.sort()
        found += [os.path.relpath(os.path.join(dirpath, f), root)
                  for f in sorted(filenames) if f.endswith(".md")]
    readme = os.path.join("spec", "README.md")
    listed = []
    try:
        with open(os.path.join(root, readme), encoding="utf-8", errors="replace") as f:
            listed = [os.path.normpath(os.path.join("spec", p))
                      for p in re.findall(r"^\|\s*`([^`|]+\.md)`", f.read(), re.M)]
    except OSError:
        pass
    order = [readme] + listed
    rank = {p: k for k, p in enumerate(order)}
    return sorted(found, key=lambda p: (rank.get(p, len(order)), p))


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^(\s*)([-*]|\d+\.)\s+(.*)$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.S)
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_XREF = re.compile(r"\[(" + cl.LABEL_RE + r")\]")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.S)
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])", re.S)
_STASHED = re.compile(r"\x00(\d+)\x00")
_SAFE_SCHEMES = ("http", "https", "mailto")

# Status -> badge class; an unknown status shows as a failure.
_STATUS_CLASS = {"PASS": "pass", "XFAIL": "xfail", "UNSUPPORTED": "skip", "UNRESOLVED": "unres",
                 "FAIL": "fail", "XPASS": "fail", "TIMEOUT": "fail", "CRASH": "fail", None: "none"}


def _e(text):
    return html.escape(str(text), quote=True)


def _split_row(line):
    """Cells of a pipe-table row; a `|` inside a code span or escaped as \\| is text."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells, cur, code, i = [], [], False, 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and line[i + 1 : i + 2] == "|":
            cur.append("|")
            i += 2
            continue
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    cells.append("".join(cur).strip())
    return cells


def _badge(v):
    """A coloured badge `backend STATUS` for an explain.Verdict; the tooltip has its tests,
    with why those that did not pass did not."""
    detail = "; ".join("%s %s%s%s" % (
        r["test"], r["status"], "" if r.get("expected", True) is not False else " (unexpected)",
        "" if r["status"] == "PASS" else ": " + explain.why_line(r)[:300]) for r in v.records)
    title = "%s: %s (report of %s): %s" % (v.backend, v.summary(), v.report.when, detail)
    return ('<span class="v s-%s%s" title="%s">%s <b>%s</b></span>'
            % (_STATUS_CLASS.get(v.status, "fail"), " unexpected" if v.unexpected else "",
               _e(title), _e(v.backend), _e(v.summary())))


class _Renderer:
    """Renders the spec's Markdown files into one page (see the module's text)."""

    def __init__(self, root, trace, reports):
        self.root, self.trace, self.reports = root, trace, reports
        self.clause_at = {(c.file, c.line): c for c in trace.clauses.values()}
        self.tests = {}
        for x in trace.tests:
            self.tests.setdefault(x.name, x)
        self.chapters = chapter_order(root)
        self.chapter_ids = {p: "ch-" + _slug(os.path.splitext(os.path.relpath(p, "spec"))[0])
                            for p in self.chapters}
        self.ids = set(self.chapter_ids.values())
        self.toc = []  # (chapter id, title, file, clause count, [(id, title)])

    # ------------------------------------------------------------------------- inline

    def inline(self, text, relpath):
        """One paragraph's Markdown inline syntax to HTML; everything else is escaped."""
        stash = []

        def keep(fragment):
            stash.append(fragment)
            return "\x00%d\x00" % (len(stash) - 1)

        def code(m):
            body = m.group(2)
            if body.startswith(" ") and body.endswith(" ") and body.strip():
                body = body[1:-1]
            return keep("<code>%s</code>" % _e(body))

        def link(m):
            href = self.href(m.group(2), relpath)
            if href is None:
                return m.group(0)
            return keep('<a href="%s">%s</a>' % (_e(href), self.emphasis(_e(m.group(1)))))

        def xref(m):
            if m.group(1) not in self.trace.clauses:
                return m.group(0)
            return keep('<a class="xref" href="#%s">[%s]</a>' % (_e(m.group(1)), _e(m.group(1))))

        text = " ".join(text.replace("\x00", "").split())
        text = _CODE.sub(code, text)
        text = _LINK.sub(link, text)
        text = _XREF.sub(xref, text)
        text = self.emphasis(_e(text))
        for _ in range(3):  # links hold stashed code spans
            text = _STASHED.sub(lambda m: stash[int(m.group(1))], text)
        return text

    @staticmethod
    def emphasis(escaped):
        escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
        return _ITALIC.sub(r"<em>\1</em>", escaped)

    def href(self, url, relpath):
        """The link's target: a spec chapter becomes its anchor on this page; a scheme other
        than http(s) / mailto is refused (None: the text stays as written)."""
        scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", url)
        if scheme:
            return url if scheme.group(1).lower() in _SAFE_SCHEMES else None
        path, _, frag = url.partition("#")
        if not path:
            return url
        target = os.path.normpath(os.path.join(os.path.dirname(relpath), path))
        if target in self.chapter_ids:
            return "#" + self.chapter_ids[target]
        return url

    # -------------------------------------------------------------------------- blocks

    def new_id(self, base):
        ident, k = base, 2
        while ident in self.ids:
            ident, k = "%s-%d" % (base, k), k + 1
        self.ids.add(ident)
        return ident

    def blocks(self, lines, relpath, sections=None, tight=False):
        """HTML of a list of (line number, text) lines; `tight`: paragraphs without <p> (the
        items of a list with no blank line)."""
        out, i = [], 0
        while i < len(lines):
            n, line = lines[i]
            if not line.strip():
                i += 1
                continue
            m = _FENCE.match(line)
            if m:
                i = self.fence(lines, i, m, out)
                continue
            m = _HEADING.match(line)
            if m:
                self.heading(m, relpath, sections, out)
                i += 1
                continue
            if (line.lstrip().startswith("|") and i + 1 < len(lines)
                    and _TABLE_SEP.match(lines[i + 1][1])):
                i = self.table(lines, i, relpath, out)
                continue
            c = self.clause_at.get((relpath, n))
            if c is not None and not _ITEM.match(line):  # a chapter clause: its paragraph
                out.append(self.clause(c, relpath, "div"))
                i += 1
                while i < len(lines) and lines[i][0] <= c.end_line:
                    i += 1
                continue
            if _ITEM.match(line):
                i = self.list(lines, i, relpath, out)
                continue
            i = self.paragraph(lines, i, relpath, out, tight)
        return "\n".join(out)

    def fence(self, lines, i, m, out):
        marker, lang, body = m.group(2), m.group(3), []
        i += 1
        while i < len(lines):
            if lines[i][1].strip().startswith(marker[0] * len(marker)) and \
                    not lines[i][1].strip().strip(marker[0]):
                i += 1
                break
            body.append(lines[i][1])
            i += 1
        cls = ' class="language-%s"' % _e(lang) if lang else ""
        out.append("<pre><code%s>%s</code></pre>" % (cls, _e("\n".join(body))))
        return i

    def heading(self, m, relpath, sections, out):
        level, text = len(m.group(1)), m.group(2)
        tag = "h%d" % min(6, level + 1)  # the page's own title is the only h1
        if level == 1 and sections is not None and sections["title"] is None:
            sections["title"] = text
            out.append('<%s class="chapter-title">%s</%s>' % (tag, self.inline(text, relpath), tag))
            out.append('<p class="source">%s</p>' % _e(relpath.replace(os.sep, "/")))
            return
        ident = self.new_id("%s-%s" % (self.chapter_ids.get(relpath, "ch"), _slug(text)))
        if level == 2 and sections is not None:
            sections["toc"].append((ident, text))
        out.append('<%s id="%s">%s <a class="anchor" href="#%s">#</a></%s>'
                   % (tag, ident, self.inline(text, relpath), ident, tag))

    def table(self, lines, i, relpath, out):
        head = _split_row(lines[i][1])
        aligns = []
        for cell in _split_row(lines[i + 1][1]):
            cell = cell.strip()
            aligns.append("center" if cell.startswith(":") and cell.endswith(":") else
                          "right" if cell.endswith(":") else "")
        rows, i = [], i + 2
        while i < len(lines) and lines[i][1].lstrip().startswith("|"):
            rows.append(_split_row(lines[i][1]))
            i += 1

        def cells(row, tag):
            out = []
            for k, cell in enumerate(row):
                style = ' style="text-align:%s"' % aligns[k] if k < len(aligns) and aligns[k] else ""
                out.append("<%s%s>%s</%s>" % (tag, style, self.inline(cell, relpath), tag))
            return "".join(out)

        out.append('<div class="table"><table>\n<thead><tr>%s</tr></thead>\n<tbody>\n%s\n'
                   '</tbody></table></div>' % (cells(head, "th"), "\n".join(
                       "<tr>%s</tr>" % cells(r, "td") for r in rows)))
        return i

    def paragraph(self, lines, i, relpath, out, tight=False):
        para = []
        while i < len(lines):
            n, line = lines[i]
            if not line.strip() or _FENCE.match(line) or _HEADING.match(line):
                break
            if para and ((relpath, n) in self.clause_at or line.lstrip().startswith("|")):
                break
            m = _ITEM.match(line)
            if para and m and (m.group(2) in "-*" or m.group(2) == "1."):
                break  # a list interrupts a paragraph (an ordered one only from 1)
            para.append(line)
            i += 1
        text = self.inline("\n".join(para), relpath)
        out.append(text if tight else "<p>%s</p>" % text)
        return i

    def list(self, lines, i, relpath, out):
        first = _ITEM.match(lines[i][1])
        base, ordered = len(first.group(1)), first.group(2)[-1] == "."
        items = []  # [(first line number, [(n, text)])]
        while i < len(lines):
            n, line = lines[i]
            m = _ITEM.match(line)
            if m and len(m.group(1)) == base and (m.group(2)[-1] == ".") == ordered:
                content = len(line) - len(m.group(3))
                items.append((n, content, [(n, m.group(3))]))
                i += 1
                continue
            if not items:
                break
            if not line.strip():
                j = i
                while j < len(lines) and not lines[j][1].strip():
                    j += 1
                if j == len(lines):
                    break
                nxt = lines[j][1]
                indent = len(nxt) - len(nxt.lstrip())
                m = _ITEM.match(nxt)
                if indent >= items[-1][1] or (m and len(m.group(1)) == base
                                              and (m.group(2)[-1] == ".") == ordered):
                    items[-1][2].extend(lines[i:j])
                    i = j
                    continue
                break
            indent = len(line) - len(line.lstrip())
            if indent > base:
                items[-1][2].append((n, line[min(indent, items[-1][1]):]))
            elif items[-1][2][-1][1].strip() and not (
                    _FENCE.match(line) or _HEADING.match(line) or _ITEM.match(line)
                    or line.lstrip().startswith("|") or (relpath, n) in self.clause_at):
                items[-1][2].append((n, line))  # a lazy continuation line
            else:
                break
            i += 1
        tag = "ol" if ordered else "ul"
        start = int(first.group(2)[:-1]) if ordered else 1
        parts = ["<%s%s>" % (tag, ' start="%d"' % start if ordered and start != 1 else "")]
        for n, _, body in items:
            while body and not body[-1][1].strip():
                body.pop()
            c = self.clause_at.get((relpath, n))
            if c is not None:
                parts.append(self.clause(c, relpath, "li"))
                continue
            inner = self.blocks(body, relpath, tight=all(t.strip() for _, t in body))
            parts.append("<li>%s</li>" % inner)
        parts.append("</%s>" % tag)
        out.append("\n".join(parts))
        return i

    # ------------------------------------------------------------------------- clauses

    def clause(self, c, relpath, tag):
        level = c.level.lower()
        badges = ['<span class="badge lvl-%s">%s</span>' % (_e(level), _e(c.level))]
        if c.profile:
            badges.append('<span class="badge prof-%s">%s</span>' % (_e(c.profile), _e(c.profile)))
        if c.condition:
            badges.append('<span class="cond">%s</span>' % self.inline(c.condition, relpath))
        if c.draft:
            badges.append('<span class="badge draft">draft</span>')
        label = _e(c.label)
        return ('<%s class="clause lvl-%s" id="%s">\n<div class="text"><a class="label" '
                'href="#%s">[%s]</a> %s %s</div>\n%s\n</%s>'
                % (tag, _e(level), label, label, label, " ".join(badges),
                   self.inline(c.body, relpath), self.aside(c), tag))

    def aside(self, c):
        names = self.trace.by_clause.get(c.label, [])
        if names:
            rows = []
            for name in dict.fromkeys(names):
                t = self.tests.get(name)
                where = t.where.replace(os.sep, "/") if t else ""
                rows.append('<li><code title="%s">%s</code></li>' % (_e(where), _e(name)))
            tests = '<ul class="tests">%s</ul>' % "".join(rows)
        elif c.level == "withdrawn":
            tests = '<p class="notest">withdrawn</p>'
        elif c.level == "MUST" and not c.protocol and not c.draft:
            tests = '<p class="notest missing">NO TEST</p>'
        else:
            tests = '<p class="notest">no test</p>'
        backends, mutants = [], []
        for v in explain.clause_verdicts(c.label, names, self.reports):
            if v.status is not None:
                (mutants if v.backend.startswith("mutant-") else backends).append(v)
        verdicts = ""
        if backends:
            verdicts += '<div class="verdicts">%s</div>' % "".join(_badge(v) for v in backends)
        if mutants:
            # Mutants are many and mostly beside the point: one line, opened on demand.
            # A mutant is caught when a test ends FAIL, TIMEOUT or CRASH (`mpspec mutants`).
            caught = sum(1 for v in mutants if v.status in ("FAIL", "TIMEOUT", "CRASH"))
            skipped = sum(1 for v in mutants if v.status == "UNSUPPORTED")
            verdicts += ('<details class="mutants"><summary>mutants: %d caught, %d not, '
                         '%d unsupported</summary>%s</details>'
                         % (caught, len(mutants) - caught - skipped, skipped,
                            "".join(_badge(v) for v in mutants)))
        return '<aside class="side">%s%s</aside>' % (tests, verdicts)

    # ---------------------------------------------------------------------------- page

    def chapter(self, relpath):
        try:
            with open(os.path.join(self.root, relpath), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            raise UserError("cannot read %s: %s" % (relpath, e.strerror or e))
        sections = {"title": None, "toc": []}
        body = self.blocks(list(enumerate(text.splitlines(), 1)), relpath, sections)
        ident = self.chapter_ids[relpath]
        count = sum(1 for c in self.trace.clauses.values() if c.file == relpath)
        self.toc.append((ident, sections["title"] or relpath, relpath, count, sections["toc"]))
        return '<section class="chapter" id="%s">\n%s\n</section>' % (ident, body)

    def reports_table(self):
        if not self.reports:
            return ('<p class="noreports">No verdicts: no report found (`./mpspec run` writes '
                    '<code>mpspec-artifacts/&lt;backend&gt;/report.json</code>).</p>')
        rows = []
        for backend in sorted(self.reports, key=explain.backend_order):
            rep = self.reports[backend]
            counts = Counter(r["status"] for r in rep.records)
            shown = " ".join('<span class="v s-%s">%s <b>%d</b></span>'
                             % (_STATUS_CLASS.get(s, "fail"), _e(s), n)
                             for s, n in sorted(counts.items(), key=lambda x: explain.status_rank(x[0])))
            rows.append("<tr><td>%s</td><td>%s</td><td>%s</td><td><code>%s</code></td></tr>"
                        % (_e(backend), shown, _e(rep.when), _e(explain.display_path(rep.path, self.root))))
        return ('<details class="reports"><summary>Verdicts from %d report%s (newest per '
                'backend)</summary><div class="table"><table><thead><tr><th>backend</th>'
                '<th>results</th><th>report time</th><th>file</th></tr></thead><tbody>%s'
                '</tbody></table></div></details>'
                % (len(self.reports), "" if len(self.reports) == 1 else "s", "\n".join(rows)))

    def page(self):
        chapters = [self.chapter(p) for p in self.chapters]
        toc = []
        for ident, title, relpath, count, sections in self.toc:
            subs = "".join('<li><a href="#%s">%s</a></li>' % (s, self.inline(t, relpath))
                           for s, t in sections)
            toc.append('<li><a href="#%s">%s</a> <span class="count">%s</span>%s</li>'
                       % (ident, self.inline(title, relpath),
                          "%d clause%s" % (count, "" if count == 1 else "s") if count else "",
                          "<ol>%s</ol>" % subs if subs else ""))
        levels = Counter(c.level for c in self.trace.clauses.values())
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        summary = ", ".join("%d %s" % (levels[lv], lv) for lv in cl.LEVELS + ("withdrawn",)
                            if levels[lv])
        return _PAGE % {
            "css": _CSS, "stamp": _e(stamp), "nclauses": len(self.trace.clauses),
            "levels": _e(summary), "ntests": len(self.trace.tests),
            "reports": self.reports_table(), "toc": "\n".join(toc),
            "chapters": "\n".join(chapters)}


def render_html(root, trace, reports):
    """The whole spec as one HTML page (a string); `reports` as explain.load_reports gives."""
    return _Renderer(root, trace, reports).page()


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The mpspec specification</title>
<style>%(css)s</style>
</head>
<body>
<header>
<h1>The mpspec specification</h1>
<p class="meta">%(nclauses)d clauses (%(levels)s), %(ntests)d tests; generated by
<code>mpspec spec --html</code> on %(stamp)s.</p>
<p class="legend">Beside each clause: the tests that name it and, per backend, the worst status
of those tests in the backend's latest report:
<span class="v s-pass">PASS</span> <span class="v s-xfail">XFAIL</span>
<span class="v s-fail">FAIL, XPASS, TIMEOUT, CRASH</span> <span class="v s-skip">UNSUPPORTED</span>
<span class="v s-unres">UNRESOLVED</span>; outlined in red when the result was unexpected.
Link to a clause with <code>#label</code>.</p>
%(reports)s
</header>
<nav class="toc"><h2>Contents</h2>
<ol>
%(toc)s
</ol>
</nav>
<main>
%(chapters)s
</main>
</body>
</html>
"""

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-soft: #f6f8fa;
  --pass: #1a7f37; --fail: #cf222e; --xfail: #9a6700; --skip: #6e7781; --unres: #8250df; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  margin: 0 auto; padding: 1rem 1.5rem 4rem; max-width: 78rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 0.88em; }
code { background: var(--bg-soft); padding: 0.05em 0.3em; border-radius: 4px; }
pre { background: var(--bg-soft); padding: 0.7rem 0.9rem; border-radius: 6px; overflow-x: auto; }
pre code { background: none; padding: 0; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
h1 { margin: 0.3rem 0; } .meta { color: var(--muted); margin-top: 0; }
.chapter { border-top: 2px solid var(--line); margin-top: 2.5rem; }
.chapter-title { margin-bottom: 0; } .source { color: var(--muted); margin-top: 0.1rem;
  font-family: ui-monospace, monospace; font-size: 0.85em; }
h3 .anchor, h4 .anchor, h5 .anchor { visibility: hidden; color: var(--muted); }
h3:hover .anchor, h4:hover .anchor, h5:hover .anchor { visibility: visible; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8rem 0; }
th, td { border: 1px solid var(--line); padding: 0.3rem 0.6rem; vertical-align: top; }
th { background: var(--bg-soft); text-align: left; }
.toc { background: var(--bg-soft); border-radius: 6px; padding: 0.5rem 1.2rem; margin: 1rem 0; }
.toc h2 { margin: 0.3rem 0; font-size: 1.1rem; }
.toc > ol { columns: 2 24rem; } .toc li { break-inside: avoid; }
.toc ol ol { font-size: 0.9em; list-style: none; padding-left: 1rem; } .toc .count { color: var(--muted); font-size: 0.85em; }
.clause { display: grid; grid-template-columns: minmax(0, 1fr) 17rem; gap: 0.4rem 1.2rem;
  margin: 0.9rem 0; padding: 0.5rem 0.7rem; border-left: 4px solid var(--line);
  border-radius: 4px; scroll-margin-top: 1rem; }
li.clause { margin-left: -1.2rem; }
.clause.lvl-must { border-left-color: #0969da; } .clause.lvl-should { border-left-color: #bf8700; }
.clause.lvl-may { border-left-color: #8c959f; } .clause.lvl-withdrawn { opacity: 0.65; }
.clause:target { background: #fff8c5; }
.clause .label { font-family: ui-monospace, monospace; font-weight: 600; font-size: 0.9em; }
.badge { display: inline-block; font-size: 0.75em; font-weight: 700; padding: 0 0.45em;
  border-radius: 1em; color: #fff; vertical-align: 0.1em; }
.badge.lvl-must { background: #0969da; } .badge.lvl-should { background: #bf8700; }
.badge.lvl-may { background: #8c959f; } .badge.lvl-withdrawn { background: #57606a; }
.badge.prof-core { background: #1f883d; } .badge.prof-strict { background: #8250df; }
.badge.draft { background: #d1242f; } .cond { color: var(--muted); font-style: italic; }
.side { font-size: 0.82em; border-left: 1px solid var(--line); padding-left: 0.8rem;
  min-width: 0; overflow-wrap: anywhere; }
.side .mutants summary { cursor: pointer; color: var(--muted); }
.side ul.tests { list-style: none; margin: 0 0 0.3rem; padding: 0; }
.side ul.tests code { background: none; padding: 0; word-break: break-all; }
.notest { margin: 0 0 0.3rem; color: var(--muted); } .notest.missing { color: var(--fail);
  font-weight: 700; }
.v { display: inline-block; margin: 0 0.25rem 0.25rem 0; padding: 0 0.4em; border-radius: 4px;
  border: 1px solid; font-size: 0.9em; }
.legend { color: var(--muted); font-size: 0.85em; }
.v.s-pass { color: var(--pass); border-color: var(--pass); background: #dafbe1; }
.v.s-fail { color: #fff; border-color: var(--fail); background: var(--fail); }
.v.s-xfail { color: var(--xfail); border-color: var(--xfail); background: #fff8c5; }
.v.s-skip { color: var(--skip); border-color: #d0d7de; background: var(--bg-soft); }
.v.s-unres { color: var(--unres); border-color: var(--unres); background: #fbefff; }
.v.unexpected { outline: 2px solid var(--fail); outline-offset: 1px; }
.reports summary { cursor: pointer; color: var(--muted); }
@media (max-width: 50rem) { .clause { grid-template-columns: 1fr; }
  .side { border-left: 0; padding-left: 0; } }
@media print { .toc { columns: 1; } .clause { break-inside: avoid; } }
"""

"""A self-contained HTML report of one or several runs (`run --html`, `report --html`).

One file, nothing fetched: inline CSS, a little inline JavaScript (the page reads fine without
it), inline SVG, the system's fonts. Sections:

* summary: the reports read, and per column (backend) its tests by status and whether every
  result was expected;
* matrix: a row per clause, a column per backend; a cell shows the worst status of the
  clause's tests in that column (with "n/m" when they disagree), is marked "!" when one of
  them is unexpected (fails the run), and links to those tests: `#col-N:LABEL` shows the
  column's test table filtered to the clause;
* tests: per column, every test with its status, clauses, time, message and timelines (PASS
  rows are hidden until "show PASS tests" is ticked);
* histories: for every test that did not pass and saved histories, a timeline of each
  (timeline.py), at most MAX_HISTORIES_PER_TEST per test and MAX_TIMELINES in all (the rest
  are listed by path).

Every text that comes from a report, a history or the spec goes through html.escape.
"""

import datetime
import html
import os
import re

from . import __version__, timeline
from .report import PRECEDENCE, worst
from .merge import NO_CLAUSE, cell_text

MAX_HISTORIES_PER_TEST = 3
MAX_TIMELINES = 150
MESSAGE_PREVIEW = 160  # characters of a message's first line shown in the test table

# Status -> (background, text colour, one-line meaning) for the cells, chips and legend.
STATUS_STYLE = {
    "PASS": ("#c9ecd3", "#0f5323", "the test passed"),
    "FAIL": ("#f8c4c4", "#82071e", "the test failed"),
    "XFAIL": ("#f5e7b0", "#6b4c00", "failed as the expectations file says (expected)"),
    "XPASS": ("#e9d2f7", "#5a1a8a", "passed although the expectations list a failure (unexpected)"),
    "UNSUPPORTED": ("#e4e6e9", "#3d444d", "the backend lacks a type, method or feature"),
    "UNRESOLVED": ("#d6e6f5", "#0b3f6e", "the run proved nothing (checker out of budget, ...)"),
    "TIMEOUT": ("#ffd2a6", "#7a3300", "a watchdog fired"),
    "CRASH": ("#8b1a1a", "#ffffff", "the driver or the suite died"),
}


def _e(text):
    return html.escape(str(text), quote=True)


def _css():
    status_rules = "".join(
        ".st-%s{background:%s;color:%s}" % (s, bg, fg) for s, (bg, fg, _) in STATUS_STYLE.items())
    return BASE_CSS + status_rules + timeline.CSS


def _chip(status, text=None):
    return '<span class="chip st-%s">%s</span>' % (_e(status), _e(text or status))


def _clause_title(label, clause):
    if label == NO_CLAUSE:
        return "tests that name no clause"
    if clause is None:
        return "[%s]: not a clause of this spec checkout" % label
    head = "[%s] %s%s" % (label, clause.level, ", " + clause.profile if clause.profile else "")
    if clause.condition:
        head += ", " + clause.condition
    return "%s\n%s\n%s" % (head, clause.text or "", clause.where)


def _level(clause):
    if clause is None:
        return ""
    return "%s%s" % (clause.level, " " + clause.profile if clause.profile else "")


# --------------------------------------------------------------------------- sections


def _legend():
    return ('<div class="legend">%s<span class="unexp-key"><b>!</b> an unexpected result '
            '(fails the run)</span></div>'
            % "".join('<span title="%s">%s</span>' % (_e(meaning), _chip(s))
                      for s, (_, _, meaning) in STATUS_STYLE.items()))


def _summary(matrix):
    out = ['<section id="summary"><h2>Summary</h2>']
    out.append('<table class="summary"><thead><tr><th>column</th><th>report</th><th>tests</th>'
               '<th>by status</th><th>passed</th><th>failed</th><th>skipped</th><th>verdict</th>'
               '</tr></thead><tbody>')
    for n, c in enumerate(matrix.columns):
        passed, failed, skipped = c.counts()
        verdict = ('<span class="ok">every result expected</span>' if failed == 0 else
                   '<span class="bad">%d unexpected</span>' % failed)
        out.append('<tr><td><a href="#col-%d">%s</a></td><td>%s</td><td class="num">%d</td>'
                   '<td>%s</td><td class="num">%d</td><td class="num">%d</td><td class="num">%d</td>'
                   '<td>%s</td></tr>'
                   % (n, _e(c.key), _e(c.source), len(c.records),
                      " ".join(_chip(s, "%s %d" % (s, k)) for s, k in c.tally().items()),
                      passed, failed, skipped, verdict))
    out.append('</tbody></table>')
    out.append('<p class="sources">%d report(s): %s</p>' % (
        len(matrix.sources), "; ".join('<span title="%s">%s</span> (%d tests)'
                                       % (_e(s.path), _e(s.label), len(s.records))
                                       for s in matrix.sources)))
    out.append('</section>')
    return "".join(out)


def _matrix(matrix):
    cols = matrix.columns
    vertical = " vertical" if len(cols) > 6 else ""
    out = ['<section id="matrix"><h2>Clauses &times; backends</h2>']
    out.append('<div class="controls"><label>clause <input id="clause-filter" type="search" '
               'placeholder="filter, e.g. lock.acquire"></label> <label><input id="only-bad" '
               'type="checkbox"> only clauses with a result other than PASS</label> '
               '<span class="hint">a cell links to its tests; hover a clause for its text</span></div>')
    out.append('<div class="matrix-wrap"><table class="matrix%s"><thead><tr><th class="clause">clause'
               '</th><th class="level">level</th>' % vertical)
    for n, c in enumerate(cols):
        out.append('<th class="col" title="%s"><a href="#col-%d"><span>%s</span></a></th>'
                   % (_e("%s (report %s, %d tests)" % (c.key, c.source, len(c.records))), n, _e(c.key)))
    out.append('</tr></thead><tbody>')
    cell_tally = [dict() for _ in cols]
    for row in matrix.rows:
        statuses = [row.status(c.key) for c in cols]
        allpass = all(s in (None, "PASS") for s in statuses)
        label_text = "[%s]" % row.label if row.label != NO_CLAUSE else "(no clause)"
        out.append('<tr data-label="%s"%s><th class="clause" title="%s">%s</th><td class="level">%s</td>'
                   % (_e(row.label), ' class="allpass"' if allpass else "",
                      _e(_clause_title(row.label, row.clause)), _e(label_text), _e(_level(row.clause))))
        for n, (c, st) in enumerate(zip(cols, statuses)):
            recs = row.cells.get(c.key)
            if not recs:
                out.append('<td class="cell empty" title="no test of this clause ran here">&ndash;</td>')
                continue
            cell_tally[n][st] = cell_tally[n].get(st, 0) + 1
            unexpected = any(not r["expected"] for r in recs)
            tests = sorted(recs, key=lambda r: PRECEDENCE.index(r["status"]))
            title = "%s × %s: %s\n%s" % (label_text, c.key, cell_text(recs), "\n".join(
                "%s %s%s" % (r["status"], r["test"], "  (unexpected)" if not r["expected"] else "")
                for r in tests[:12]))
            if len(tests) > 12:
                title += "\n... %d more" % (len(tests) - 12)
            out.append('<td class="cell st-%s%s" data-clause="%s" data-column="%s" title="%s">'
                       '<a href="#col-%d:%s">%s%s</a></td>'
                       % (_e(st), " unexp" if unexpected else "", _e(row.label), _e(c.key),
                          _e(title), n, _e(row.label), _e(cell_text(recs)),
                          '<b class="flag">!</b>' if unexpected else ""))
        out.append('</tr>')
    out.append('</tbody><tfoot><tr><th class="clause">clauses</th><td class="level">%d</td>'
               % len(matrix.rows))
    for t in cell_tally:
        out.append('<td class="total">%s</td>' % "<br>".join(
            "%s %d" % (_e(s), k) for s, k in sorted(t.items(), key=lambda i: PRECEDENCE.index(i[0]))))
    out.append('</tr><tr><th class="clause">tests</th><td class="level"></td>')
    for c in cols:
        passed, failed, skipped = c.counts()
        out.append('<td class="total">%d<br>%s</td>' % (
            len(c.records), '<span class="bad">%d unexp.</span>' % failed if failed else "ok"))
    out.append('</tr></tfoot></table></div></section>')
    return "".join(out)


# Lines of a GoogleTest failure that say little on their own: the source location, and the
# template of an assertion (its own message, if any, follows them).
_NOISE = re.compile(r"^(\S+:\d+:?|unknown file.*|Failure|Value of: .*|Expected.*|Which is: .*|"
                    r"\s.*)$")


_LOCATION = re.compile(r"^\S+:\d+:?$")


def preview_line(message):
    """The line that best says what happened: the first that is not a source location or
    part of an assertion's template (GoogleTest), else the first that is not a location."""
    lines = [l for l in message.strip().splitlines() if l.strip()]
    return next((l for l in lines if not _NOISE.match(l)),
                next((l for l in lines if not _LOCATION.match(l)), lines[0] if lines else ""))


def _message_cell(message):
    text = message.strip()
    if not text:
        return ""
    first = preview_line(text)
    preview = first if len(first) <= MESSAGE_PREVIEW else first[:MESSAGE_PREVIEW] + "…"
    if "\n" not in text and preview == first:
        return '<span class="msg">%s</span>' % _e(first)
    return ('<details class="msg"><summary>%s</summary><pre>%s</pre></details>'
            % (_e(preview), _e(text)))


def _tests(matrix, history_ids):
    out = ['<section id="tests"><h2>Tests</h2><div class="controls"><label><input id="show-pass" '
           'type="checkbox"> show PASS tests</label></div>']
    for n, c in enumerate(matrix.columns):
        passed, failed, skipped = c.counts()
        out.append('<section class="column" id="col-%d" data-column="%s"><h3>%s <small>report %s: '
                   '%d tests, %d passed, %d failed, %d skipped</small></h3>'
                   % (n, _e(c.key), _e(c.key), _e(c.source), len(c.records), passed, failed, skipped))
        out.append('<p class="filter-note" hidden>showing the tests of <span class="what"></span> '
                   '&mdash; <a href="#col-%d">show all</a></p>' % n)
        if all(r["status"] == "PASS" for r in c.records):
            out.append('<p class="allpass-note">every test passed (tick &ldquo;show PASS tests&rdquo; '
                       'to list them)</p>')
        out.append('<table class="tests"><thead><tr><th>status</th><th>test</th><th>clauses</th>'
                   '<th>time</th><th>message</th><th>histories</th></tr></thead><tbody>')
        for m, r in enumerate(c.records):
            hist = history_ids.get((n, m), [])
            links = " ".join('<a href="#%s">timeline&nbsp;%d</a>' % (h, k + 1) for k, h in enumerate(hist))
            extra = len([a for a in r["artifacts"] if a.endswith(".history.json")]) - len(hist)
            if extra > 0 and r["status"] != "PASS":
                links += ' <span class="muted">+%d not drawn</span>' % extra
            out.append('<tr id="t-%d-%d" class="r-%s%s" data-clauses="%s"><td class="status">%s%s</td><td class="test">%s</td>'
                       '<td class="clauses">%s</td><td class="num">%.2f&nbsp;s</td><td>%s</td><td>%s</td></tr>'
                       % (n, m, _e(r["status"]), " unexp" if not r["expected"] else "",
                          _e(" ".join(r["clauses"])), _chip(r["status"]),
                          '<b class="flag" title="unexpected: fails the run">!</b>' if not r["expected"] else "",
                          _e(r["test"]), " ".join("[%s]" % _e(l) for l in r["clauses"]),
                          r["duration_s"], _message_cell(r["message"]), links))
        out.append('</tbody></table></section>')
    out.append('</section>')
    return "".join(out)


def _history_files(r):
    return [a for a in r["artifacts"] if a.endswith(".history.json")]


def plan_histories(matrix):
    """[(column index, record index, [paths to draw])] for the tests that did not pass, within
    the caps; and {(column, record): [element ids]} for the links."""
    plan, ids, budget = [], {}, MAX_TIMELINES
    for n, c in enumerate(matrix.columns):
        for m, r in enumerate(c.records):
            files = _history_files(r)
            if r["status"] == "PASS" or not files or budget <= 0:
                continue
            files = files[:min(MAX_HISTORIES_PER_TEST, budget)]
            budget -= len(files)
            plan.append((n, m, files))
            ids[(n, m)] = ["h-%d-%d-%d" % (n, m, k) for k in range(len(files))]
    return plan, ids


def _histories(matrix, plan):
    total = sum(1 for c in matrix.columns for r in c.records
                if r["status"] != "PASS" and _history_files(r))
    out = ['<section id="histories"><h2>Histories of the tests that did not pass</h2>']
    if not plan:
        out.append('<p class="muted">No test that did not pass saved a history.</p></section>')
        return "".join(out)
    out.append('<p class="muted">One lane per actor; a bar per call, from invocation to return, '
               'in the order of events (not to scale: the ticks give the times). Hover a bar for '
               'its arguments and result.%s</p>'
               % (" Only the first %d histories are drawn." % MAX_TIMELINES
                  if sum(len(f) for _, _, f in plan) >= MAX_TIMELINES else ""))
    out.append(timeline.LEGEND)
    for n, m, files in plan:
        c, r = matrix.columns[n], matrix.columns[n].records[m]
        out.append('<section class="history"><h3>%s %s <small>%s &middot; <a href="#t-%d-%d">'
                   'in the tests</a></small></h3>' % (_chip(r["status"]), _e(r["test"]), _e(c.key), n, m))
        for k, path in enumerate(files):
            out.append('<div class="one-history" id="h-%d-%d-%d"><p class="path">%s</p>'
                       % (n, m, k, _e(os.path.basename(path))))
            try:
                h = timeline.load(path)
                out.append(timeline.render(h))
            except timeline.HistoryError as e:
                out.append('<p class="bad">cannot draw %s: %s</p>' % (_e(path), _e(e)))
            out.append('</div>')
        more = _history_files(r)[len(files):]
        if more:
            out.append('<p class="muted">not drawn: %s</p>' % ", ".join(_e(p) for p in more))
        out.append('</section>')
    if total > len(plan):
        out.append('<p class="muted">%d more test(s) with histories not drawn.</p>' % (total - len(plan)))
    out.append('</section>')
    return "".join(out)


# --------------------------------------------------------------------------- page


def render(matrix, generated=None):
    """The whole page (a str)."""
    generated = generated or datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    plan, history_ids = plan_histories(matrix)
    tests = sum(len(c.records) for c in matrix.columns)
    unexpected = sum(c.counts()[1] for c in matrix.columns)
    worst_all = worst([r["status"] for c in matrix.columns for r in c.records])
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>%s</title><style>%s</style></head><body>' % (_e(matrix.title), _css()),
        '<header class="top"><div class="bar"><h1>%s</h1><nav><a href="#summary">summary</a>'
        '<a href="#matrix">matrix</a><a href="#tests">tests</a><a href="#histories">histories</a>'
        '</nav><span class="overall">%d column(s), %d tests, %d clauses: %s%s</span></div>%s</header>'
        % (_e(matrix.title), len(matrix.columns), tests, len(matrix.rows),
           '<span class="ok">every result expected</span>' if not unexpected
           else '<span class="bad">%d unexpected</span>' % unexpected,
           " &middot; worst " + _chip(worst_all) if worst_all else "", _legend()),
        '<main>', _summary(matrix), _matrix(matrix), _tests(matrix, history_ids),
        _histories(matrix, plan), '</main>',
        '<footer>mpspec %s &middot; generated %s</footer>' % (_e(__version__), _e(generated)),
        '<script>%s</script></body></html>\n' % SCRIPT,
    ])


def write(matrix, path, generated=None):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(matrix, generated))


BASE_CSS = """
:root{--border:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;background:#fff}
main{padding:0 1.2em 2em}
h1{font-size:18px;margin:0}
h2{font-size:17px;margin:1.4em 0 .5em;padding-bottom:.2em;border-bottom:1px solid var(--border)}
h3{font-size:15px;margin:1.2em 0 .4em}
h3 small,.muted,.hint{color:var(--muted);font-weight:normal;font-size:12px}
a{color:#0550ae;text-decoration:none}a:hover{text-decoration:underline}
header.top{position:sticky;top:0;z-index:20;background:#f6f8fa;border-bottom:1px solid var(--border);padding:.45em 1.2em}
header .bar{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4em 1.4em}
header nav a{margin-right:.9em}
.overall{color:var(--muted)}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:.3em .5em;margin-top:.35em;font-size:12px}
.chip{display:inline-block;padding:0 .45em;border-radius:9px;font-size:11.5px;font-weight:600;white-space:nowrap;line-height:1.6}
.unexp-key{color:var(--muted)}
.flag{color:#cf222e;margin-left:.25em}
.st-CRASH .flag{color:#fff}
table.summary td:first-child,table.summary td:last-child{white-space:nowrap}
section{scroll-margin-top:5.5em}
table{border-collapse:collapse}
table.summary td,table.summary th{border:1px solid var(--border);padding:.25em .55em;text-align:left;vertical-align:top}
table.summary th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sources{color:var(--muted);font-size:12px}
.controls{margin:.3em 0 .5em;display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center}
.controls input[type=search]{font:inherit;padding:.1em .4em;width:16em}
.matrix-wrap{max-height:75vh;overflow:auto;border:1px solid var(--border);border-radius:6px}
table.matrix{font-size:12.5px}
table.matrix th,table.matrix td{border-bottom:1px solid #eaeef2;border-right:1px solid #eaeef2;padding:.15em .45em}
table.matrix thead th{position:sticky;top:0;z-index:3;background:#f6f8fa;border-bottom:1px solid var(--border);vertical-align:bottom;text-align:center}
table.matrix tfoot td,table.matrix tfoot th{position:sticky;bottom:0;background:#f6f8fa;border-top:1px solid var(--border);font-size:11px;text-align:center;vertical-align:top}
table.matrix th.clause{position:sticky;left:0;z-index:2;background:#fff;text-align:left;font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:nowrap}
table.matrix thead th.clause,table.matrix tfoot th.clause{z-index:4;background:#f6f8fa}
table.matrix td.level{color:var(--muted);font-size:11px;white-space:nowrap}
table.matrix.vertical th.col span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;display:inline-block;max-height:16em}
table.matrix td.cell{text-align:center;white-space:nowrap;font-weight:600;font-size:11.5px;min-width:5.5em}
table.matrix td.cell a{color:inherit;display:block}
table.matrix td.cell.unexp{outline:2px solid #cf222e;outline-offset:-2px}
table.matrix td.empty{color:#afb8c1}
table.matrix tbody tr:hover th,table.matrix tbody tr:hover td.level{background:#fff8c5}
table.matrix tbody tr[hidden]{display:none}
table.tests{width:100%;font-size:12.5px}
table.tests th{position:sticky;top:5.2em;background:#f6f8fa;text-align:left;z-index:1}
table.tests th,table.tests td{border-bottom:1px solid #eaeef2;padding:.2em .45em;vertical-align:top}
table.tests td.status{white-space:nowrap}
table.tests td.test{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:nowrap}
table.tests td.clauses{font-size:11px;color:var(--muted);max-width:22em}
table.tests tr.unexp td.test{color:#82071e;font-weight:600}
body.hide-pass table.tests:not(.filtered) tr.r-PASS{display:none}
table.tests.filtered tbody tr:not(.match){display:none}
.filter-note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.2em .6em;display:inline-block}
.filter-note[hidden]{display:none}
.allpass-note{display:none;color:var(--muted)}
body.hide-pass .allpass-note{display:block}
body.hide-pass section.column:not(:has(tbody tr:not(.r-PASS))) table.tests:not(.filtered){display:none}
.msg{font-size:12px}
details.msg summary{cursor:pointer}
details.msg pre,pre{white-space:pre-wrap;word-break:break-word;font-size:11.5px;background:#f6f8fa;border:1px solid var(--border);border-radius:6px;padding:.4em .6em;margin:.3em 0;max-height:30em;overflow:auto}
section.history{border-top:1px dashed var(--border);margin-top:.8em}
.one-history .path{font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--muted);margin:.3em 0 0}
footer{color:var(--muted);font-size:12px;padding:1em 1.2em;border-top:1px solid var(--border)}
"""

# Filters: the matrix by clause text / non-PASS rows; a column's tests by the clause in the URL
# fragment (#col-N:LABEL, what a cell links to); PASS rows shown on demand.
SCRIPT = r"""
(function () {
  "use strict";
  function all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function applyHash() {
    var h = decodeURIComponent(location.hash.slice(1));
    var m = /^col-(\d+):(.*)$/.exec(h);
    all("table.tests.filtered").forEach(function (t) { t.classList.remove("filtered"); });
    all("table.tests tr.match").forEach(function (r) { r.classList.remove("match"); });
    all(".filter-note").forEach(function (n) { n.hidden = true; });
    if (!m) return;
    var sec = document.getElementById("col-" + m[1]);
    if (!sec) return;
    var table = sec.querySelector("table.tests"), label = m[2], n = 0;
    table.classList.add("filtered");
    all("tbody tr", table).forEach(function (r) {
      var cl = " " + (r.getAttribute("data-clauses") || "") + " ";
      if (cl.indexOf(" " + label + " ") >= 0) { r.classList.add("match"); n++; }
    });
    var note = sec.querySelector(".filter-note");
    note.hidden = false;
    note.querySelector(".what").textContent = (label ? "[" + label + "]" : "no clause") + " (" + n + ")";
    sec.scrollIntoView();
  }
  var showPass = document.getElementById("show-pass");
  function passRows() { document.body.classList.toggle("hide-pass", !showPass.checked); }
  showPass.addEventListener("change", passRows);
  passRows();
  var q = document.getElementById("clause-filter"), bad = document.getElementById("only-bad");
  function filterMatrix() {
    var s = q.value.trim().toLowerCase().replace(/^\[|\]$/g, "");
    all("table.matrix tbody tr").forEach(function (r) {
      r.hidden = !((!s || r.getAttribute("data-label").indexOf(s) >= 0) &&
                   (!bad.checked || !r.classList.contains("allpass")));
    });
  }
  q.addEventListener("input", filterMatrix);
  bad.addEventListener("change", filterMatrix);
  window.addEventListener("hashchange", applyHash);
  applyHash();
})();
"""

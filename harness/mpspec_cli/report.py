"""Reports of a run: the terminal summary, JUnit XML, JSON records."""

import json
import os
import xml.etree.ElementTree as ET

from .gtest import CRASH, FAIL, PASS, TIMEOUT, UNRESOLVED, UNSUPPORTED, XFAIL, XPASS

# Worst first: the status a clause shows when its tests disagree.
PRECEDENCE = (CRASH, TIMEOUT, FAIL, XPASS, XFAIL, UNRESOLVED, UNSUPPORTED, PASS)
SKIPPED = (UNSUPPORTED, UNRESOLVED)
MESSAGE_LINES = 25


def worst(statuses):
    return min(statuses, key=PRECEDENCE.index) if statuses else None


def counts(results):
    """(passed, failed, skipped): expected results that are not skips, unexpected results,
    and skips. They add up to the number of tests; `failed` is 0 exactly when every result
    was expected."""
    failed = sum(1 for r in results if not r.expected)
    skipped = sum(1 for r in results if r.expected and r.status in SKIPPED)
    return len(results) - failed - skipped, failed, skipped


def closing_line(results):
    passed, failed, skipped = counts(results)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    return line


def clause_rows(run):
    """Per clause named by a test that ran: (label, level, profile, [results])."""
    by_label = {}
    for r in run.results:
        for label in r.clauses:
            by_label.setdefault(label, []).append(r)

    def order(label):
        c = run.levels.get(label)
        return (0, c.file, c.line) if c else (1, label, 0)

    rows = []
    for label in sorted(by_label, key=order):
        c = run.levels.get(label)
        rows.append((label, c.level if c else "?", (c.profile or "-") if c else "?", by_label[label]))
    return rows


def clause_status(results):
    statuses = [r.status for r in results]
    w = worst(statuses)
    n = statuses.count(w)
    return w if n == len(statuses) else "%s (%d/%d)" % (w, n, len(statuses))


def _indent(text, prefix, limit=MESSAGE_LINES):
    lines = [l.rstrip() for l in text.strip().splitlines()]
    more = len(lines) - limit
    if more > 0:
        lines = lines[:limit] + ["... %d more line(s): see run.log or --json" % more]
    return "\n".join(prefix + l for l in lines)


def short_path(path):
    """`path` relative to the current directory when it is below it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def conformance_line(run):
    """Whether the clauses run support the backend's claimed profile (spec/README.md §4)."""
    if not run.profile:
        return None
    profiles = ("core",) if run.profile == "core" else ("core", "strict")
    failing, unresolved = [], []
    for label, level, _, results in clause_rows(run):
        c = run.levels.get(label)
        if c is None or c.level != "MUST" or not (c.protocol or c.profile in profiles):
            continue
        statuses = {r.status for r in results}
        if statuses & {FAIL, XFAIL, TIMEOUT, CRASH}:  # XPASS: the test passed
            failing.append(label)
        elif UNRESOLVED in statuses:
            unresolved.append(label)
    head = "profile %s (claimed by %s): " % (run.profile, run.backend)
    if failing:
        return head + "does not conform: " + " ".join("[%s]" % l for l in failing)
    if unresolved:
        return head + "not shown: unresolved " + " ".join("[%s]" % l for l in unresolved)
    return head + "every MUST clause run passes or is unsupported"


def terminal(run, out):
    w = out.write
    w("\n")
    for msg in run.warnings:
        w("warning: %s\n" % msg)
    not_pass = [r for r in run.results if r.status != PASS]
    if not_pass:
        w("Tests not PASS (%d of %d):\n" % (len(not_pass), len(run.results)))
        width = max(len(s) for s in PRECEDENCE) + 1
        for r in sorted(not_pass, key=lambda r: (r.expected, PRECEDENCE.index(r.status))):
            flag = "" if r.expected else "  <- unexpected"
            w("  %-*s %s (%.2f s)%s\n" % (width, r.status, r.test, r.duration_s, flag))
            body = r.message
            unseen = [a for a in r.artifacts if a not in body]
            if unseen:
                body += "\nartifacts: " + " ".join(unseen)
            if body.strip():
                w(_indent(body, "  " + " " * (width + 1)) + "\n")
        w("\n")
    rows = clause_rows(run)
    if rows:
        lw = max(len("[%s]" % r[0]) for r in rows)
        w("%-*s  %-8s %-8s %5s  %s\n" % (lw, "clause", "level", "profile", "tests", "status"))
        for label, level, profile, results in rows:
            w("%-*s  %-8s %-8s %5d  %s\n" % (lw, "[%s]" % label, level, profile, len(results),
                                           clause_status(results)))
        w("\n")
    tally = {}
    for r in run.results:
        tally[r.status] = tally.get(r.status, 0) + 1
    shard = getattr(run, "shard_label", None)  # "shard 2/4" (mpspec run --shard)
    w("%s: %s in %.1f s; log %s\n" % (
        "%s (%s)" % (run.backend, shard) if shard else run.backend,
        ", ".join("%s %d" % (s, tally[s]) for s in reversed(PRECEDENCE) if s in tally),
        run.duration_s, short_path(run.log) if run.log else "-"))
    line = conformance_line(run)
    if line:
        w(line + "\n")
    for msg in run.errors:
        w("error: %s\n" % msg)
    w(closing_line(run.results) + "\n")


# ---------------------------------------------------------------------------------- JUnit


def junit(run):
    """A JUnit XML document (ElementTree) with one <testcase> per test.

    The common JUnit format of CI readers (GitLab, Jenkins' JUnit plugin, ...):
    <testsuites> holds one <testsuite> per gtest suite, named and classnamed
    `<backend>.<Suite>` so that reports of several backends (or shards) merge. Unexpected FAIL
    / XPASS are <failure>, unexpected TIMEOUT / CRASH are <error>, UNSUPPORTED / UNRESOLVED and
    XFAIL are <skipped>; the console output of a test that did not PASS is its <system-out>.

    Each <testsuite> has <properties>: `backend`, `driver`, and `shard` (`I/N`) when the run
    was sharded. Each <testcase> has <properties> first (as GoogleTest's and pytest's XML
    reports have; readers that do not know them skip them): one `clause` per label the test
    names, `clauses` (all, as [label] [label]), `status` (the final status: PASS FAIL XFAIL
    XPASS UNSUPPORTED UNRESOLVED TIMEOUT CRASH), `raw_status` (before the expectations),
    `expected` (true / false: false fails the run), `backend`, one `artifact` per saved
    history, and when the backend's expectations list the test, the entry:
    `expectation_status` (its statuses joined by /), `expectation_clause`,
    `expectation_reason`."""
    suites = {}
    for r in run.results:
        suites.setdefault(r.test.split(".", 1)[0], []).append(r)
    root = ET.Element("testsuites", dict(name="mpspec %s" % run.backend,
                                         **_junit_counts(run.results)))
    shard = getattr(run, "shard", None)
    for suite, results in suites.items():
        s = ET.SubElement(root, "testsuite", dict(name="%s.%s" % (run.backend, suite),
                                                  **_junit_counts(results)))
        sp = ET.SubElement(s, "properties")
        _property(sp, "backend", run.backend)
        _property(sp, "driver", run.driver)
        if shard:
            _property(sp, "shard", "%d/%d" % tuple(shard))
        for r in results:
            case = ET.SubElement(s, "testcase", classname="%s.%s" % (run.backend, suite),
                                 name=r.test.split(".", 1)[1], time="%.3f" % r.duration_s)
            p = ET.SubElement(case, "properties")
            for label in r.clauses:
                _property(p, "clause", label)
            _property(p, "clauses", " ".join("[%s]" % l for l in r.clauses))
            _property(p, "status", r.status)
            _property(p, "raw_status", r.raw_status)
            _property(p, "expected", "true" if r.expected else "false")
            _property(p, "backend", run.backend)
            e = r.expectation
            if e is not None:
                _property(p, "expectation_status", "/".join(e.status))
                _property(p, "expectation_clause", e.clause)
                _property(p, "expectation_reason", e.reason)
            for a in r.artifacts:
                _property(p, "artifact", a)
            first = (r.message.strip().splitlines() or [r.status])[0]
            if not r.expected:
                tag = "error" if r.status in (TIMEOUT, CRASH) else "failure"
                el = ET.SubElement(case, tag, message=_xml_safe("%s: %s" % (r.status, first)),
                                   type=r.status)
                el.text = _xml_safe(r.message)
            elif r.status in SKIPPED + (XFAIL,):
                ET.SubElement(case, "skipped", message=_xml_safe("%s: %s" % (r.status, first)))
            if r.output.strip() and r.status != PASS:
                ET.SubElement(case, "system-out").text = _xml_safe(r.output)
    return ET.ElementTree(root)


def _junit_counts(results):
    """The tests / failures / errors / skipped / time attributes of a suite or of the root."""
    return {
        "tests": str(len(results)),
        "failures": str(sum(1 for r in results if not r.expected and r.status in (FAIL, XPASS))),
        "errors": str(sum(1 for r in results if not r.expected and r.status in (TIMEOUT, CRASH))),
        "skipped": str(sum(1 for r in results if r.expected and r.status in SKIPPED + (XFAIL,))),
        "time": "%.3f" % sum(r.duration_s for r in results),
    }


def _property(parent, name, value):
    ET.SubElement(parent, "property", name=name, value=_xml_safe(str(value)))


def _xml_safe(text):
    """Drops characters XML 1.0 cannot carry (control characters from a crashed process)."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20 and c not in "\ufffe\uffff")


def write_junit(run, path):
    tree = junit(run)
    if hasattr(ET, "indent"):  # 3.9+
        ET.indent(tree)
    _ensure_dir(path)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def write_json(run, path):
    _ensure_dir(path)
    with open(path, "w", encoding="utf-8") as f:
        json.dump([r.record() for r in run.results], f, indent=2)
        f.write("\n")


def _ensure_dir(path):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)


# ---------------------------------------------------------------------------------- HTML

# Every run writes its records here too, in its artifacts folder (`mpspec explain` reads
# mpspec-artifacts/*/report.json for the latest verdicts).
LATEST_REPORT = "report.json"


def write_latest(run):
    """Writes the run's JSON records to <artifacts>/report.json; returns the path (None when
    the run has no artifacts folder)."""
    if not run.artifacts_dir:
        return None
    path = os.path.join(run.artifacts_dir, LATEST_REPORT)
    write_json(run, path)
    return path


def run_matrix(run):
    """The clause x backend matrix (merge.py) of one run: a single column, its backend."""
    from . import merge  # merge imports this module
    records = [merge.normalize(r.record(), run.backend) for r in run.results]
    where = os.path.join(run.artifacts_dir, LATEST_REPORT) if run.artifacts_dir else run.backend
    source = merge.Source(where, run.backend, records)
    return merge.build([source], run.levels, title="mpspec run: %s" % run.backend)


def write_html(run, path):
    """The self-contained HTML report of one run (html.py)."""
    from . import html
    html.write(run_matrix(run), path)

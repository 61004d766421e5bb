"""`mpspec run --repeat N`: the same run N times, to find the tests whose verdict is not stable.

Set-up and build happen once (before the first repeat; the others run with --no-build);
every repeat uses the same backend, filter and options, and writes its artifacts (run.log,
histories) in its own subdirectory `repeat-01`, `repeat-02`, ... of the run's artifacts folder.
Reports the tests whose status changed between repeats (with the statuses seen and their
counts), the unexpected results, the totals of each repeat and the whole wall time.
"""

import dataclasses
import json
import os
import re
import sys
import time

from . import report, runner
from .errors import EXIT_FAILED, EXIT_OK

_MESSAGE_CHARS = 160


def backend_name(opts):
    """The name runner.run gives the run's backend (for the default artifacts folder)."""
    return "custom" if opts.driver else (opts.backend or "reference")


def repeat_dir(base, k):
    return os.path.join(base, "repeat-%02d" % k)


def numbered(path, k):
    """FILE.xml -> FILE.repeat-01.xml (one JUnit report per repeat)."""
    stem, ext = os.path.splitext(path)
    return "%s.repeat-%02d%s" % (stem, k, ext)


def changed_tests(runs):
    """[(test, [status of each repeat])] of the tests whose status differs between repeats, in
    the order of the first repeat (tests missing from a repeat count as status None)."""
    order, seen = [], set()
    for run in runs:
        for r in run.results:
            if r.test not in seen:
                seen.add(r.test)
                order.append(r.test)
    per_run = [{r.test: r.status for r in run.results} for run in runs]
    out = []
    for t in order:
        statuses = [m.get(t) for m in per_run]
        if len(set(statuses)) > 1:
            out.append((t, statuses))
    return out


def status_counts(statuses):
    """'PASS 2, FAIL 1': each status seen, with its count, in order of first appearance."""
    counts = {}
    for s in statuses:
        counts[s or "(not run)"] = counts.get(s or "(not run)", 0) + 1
    return ", ".join("%s %d" % (s, n) for s, n in counts.items())


_LOCATION = re.compile(r"^\S+:\d+:?( Failure)?$")


def _first_line(text):
    """The first line of a message that says something (not gtest's `file.cpp:12` line)."""
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    line = next((l for l in lines if not _LOCATION.match(l)), lines[0] if lines else "")
    return line if len(line) <= _MESSAGE_CHARS else line[:_MESSAGE_CHARS - 3] + "..."


def _tally(run):
    t = {}
    for r in run.results:
        t[r.status] = t.get(r.status, 0) + 1
    return t


def summarize(runs, wall_s, out):
    """The repeat summary: changed verdicts, unexpected results, per-repeat totals, wall
    time, closing line. Returns (changed, repeats with unexpected results)."""
    w = out.write
    n = len(runs)
    changed = changed_tests(runs)
    w("\n")
    if changed:
        tw = max(len("test"), max(len(t) for t, _ in changed))
        sw = max(len("statuses seen"), max(len(status_counts(s)) for _, s in changed))
        w("Verdicts that changed between repeats (%d test(s)):\n" % len(changed))
        w("  %-*s  %-*s  %s\n" % (tw, "test", sw, "statuses seen", "by repeat"))
        for t, statuses in changed:
            w("  %-*s  %-*s  %s\n" % (tw, t, sw, status_counts(statuses),
                                      " ".join(s or "-" for s in statuses)))
        w("\n")
    else:
        w("No verdict changed between the %d repeats.\n\n" % n)

    unexpected = [(k, r) for k, run in enumerate(runs, 1) for r in run.results if not r.expected]
    if unexpected:
        w("Unexpected results (%d):\n" % len(unexpected))
        for k, r in unexpected:
            w("  repeat %d  %-8s %s: %s\n" % (k, r.status, r.test, _first_line(r.message)))
        w("\n")
    for k, run in enumerate(runs, 1):
        for e in run.errors:
            w("error (repeat %d): %s\n" % (k, e))

    statuses = [s for s in reversed(report.PRECEDENCE) if any(s in _tally(run) for run in runs)]
    w("Per repeat:\n")
    head = ["repeat"] + statuses + ["passed", "failed", "skipped", "time", "artifacts"]
    rows = []
    for k, run in enumerate(runs, 1):
        tally = _tally(run)
        passed, failed, skipped = report.counts(run.results)
        rows.append([str(k)] + [str(tally.get(s, 0)) for s in statuses]
                    + [str(passed), str(failed), str(skipped), "%.1f s" % run.duration_s,
                       report.short_path(run.artifacts_dir) if run.artifacts_dir else "-"])
    widths = [max(len(head[i]), max(len(r[i]) for r in rows)) for i in range(len(head))]
    w("  " + "  ".join("%-*s" % (widths[i], head[i]) for i in range(len(head))).rstrip() + "\n")
    for row in rows:
        w("  " + "  ".join("%-*s" % (widths[i], row[i]) for i in range(len(row))).rstrip() + "\n")
    bad = [k for k, run in enumerate(runs, 1) if not run.ok]
    w("\n%d repeat(s) of %d test(s) in %.1f s (wall time)\n"
      % (n, len(runs[0].results) if runs else 0, wall_s))
    w("%s; %s\n" % (
        "%d test(s) changed verdict" % len(changed) if changed else "no verdict changed",
        "unexpected results in repeat(s) %s" % ", ".join(str(k) for k in bad) if bad
        else "every result expected in every repeat"))
    return changed, bad


def write_json(runs, path):
    """The records of every repeat (report.write_json's records, one list), each with a
    `repeat` field (1, 2, ...)."""
    records = []
    for k, run in enumerate(runs, 1):
        for r in run.results:
            rec = r.record()
            rec["repeat"] = k
            records.append(rec)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f, indent=2)
        f.write("\n")


def main(opts, repeats, junit=None, json_path=None, html=None, out=None):
    """Runs `opts` (a runner.RunOptions) `repeats` times; returns the exit status: 1 when a
    verdict changed or a repeat had an unexpected result, else 0.

    Like a single run, each repeat leaves its records in <its artifacts>/report.json; the
    records of every repeat (with their `repeat` field) also go to <artifacts>/report.json,
    where `mpspec explain` and `spec --html` look for a backend's latest verdicts."""
    out = out or sys.stdout
    t0 = time.monotonic()
    base = os.path.abspath(opts.artifacts or os.path.join(os.path.abspath(opts.root),
                                                          "mpspec-artifacts", backend_name(opts)))
    runs = []
    for k in range(1, repeats + 1):
        out.write("== repeat %d of %d\n" % (k, repeats))
        out.flush()
        ropts = dataclasses.replace(opts, artifacts=repeat_dir(base, k),
                                    no_build=opts.no_build or k > 1)
        run = runner.run(ropts)
        runs.append(run)
        write_latest = getattr(report, "write_latest", None)
        if write_latest:
            write_latest(run)  # <artifacts>/repeat-NN/report.json
        if junit:
            report.write_junit(run, numbered(junit, k))
        if html:
            report.write_html(run, numbered(html, k))
        tally = _tally(run)
        totals = ", ".join("%s %d" % (s, tally[s]) for s in reversed(report.PRECEDENCE)
                           if s in tally)
        out.write("repeat %d: %s in %.1f s; %s\n" % (k, totals, run.duration_s,
                                                      report.closing_line(run.results)))
        out.flush()
    if json_path:
        write_json(runs, json_path)
    if getattr(report, "LATEST_REPORT", None):
        write_json(runs, os.path.join(base, report.LATEST_REPORT))
    changed, bad = summarize(runs, time.monotonic() - t0, out)
    out.flush()
    return EXIT_FAILED if changed or bad else EXIT_OK


"""Several JSON reports of `mpspec run` merged into one clause x backend matrix.

A report is what `mpspec run --json` writes (and `<artifacts>/report.json`): a list of records
`{test, backend, status, expected, expectation, clauses, duration_s, message, artifacts}`.
`mpspec report A.json B.json ...` reads several (one per backend, or one per OS of a CI matrix)
and `Matrix` is what the HTML page and the terminal show:

* a *column* per backend; when the same backend comes from two or more reports (the same
  suite on two machines), one column per report, named `backend @ label`. A report's label is
  given as `LABEL=FILE`, or else is the shortest tail of its path (without `.json`) that tells
  the reports apart (`linux/reference`, `macos/reference`);
* a *row* per clause named by any record, in the spec's order (clauses the spec does not
  know, then the tests naming none, last);
* a *cell*: the records of that column naming that clause; its status is the worst of theirs
  (report.PRECEDENCE).

Artifact paths (histories) are resolved when a report is read: a relative path is taken from
the report's folder, and a path that does not exist is looked for, by its file name, in the
report's folder and its `histories/` subfolder (a report copied from CI with its histories
next to it).
"""

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List

from .errors import UserError
from .gtest import PASS, UNRESOLVED, UNSUPPORTED, XFAIL
from .report import PRECEDENCE, SKIPPED, worst

STATUSES = frozenset(PRECEDENCE)
NO_CLAUSE = ""  # the row of the tests that name no clause
# Expected when a record does not say (reports of older versions).
_EXPECTED_BY_DEFAULT = (PASS, XFAIL, UNSUPPORTED, UNRESOLVED)


@dataclass
class Source:
    """One input report."""
    path: str
    label: str
    records: List[dict]


@dataclass
class Column:
    key: str  # what the page shows: the backend, or "backend @ label"
    backend: str
    source: str  # the label of the report it comes from
    records: List[dict] = field(default_factory=list)

    def tally(self):
        """{status: count}, in PRECEDENCE order (worst first)."""
        t = {}
        for r in self.records:
            t[r["status"]] = t.get(r["status"], 0) + 1
        return {s: t[s] for s in PRECEDENCE if s in t}

    def counts(self):
        """(passed, failed, skipped) as `mpspec run`'s closing line counts them."""
        failed = sum(1 for r in self.records if not r["expected"])
        skipped = sum(1 for r in self.records if r["expected"] and r["status"] in SKIPPED)
        return len(self.records) - failed - skipped, failed, skipped


@dataclass
class Row:
    label: str  # clause label, or NO_CLAUSE
    clause: object  # clauses.Clause or None
    cells: Dict[str, List[dict]]  # column key -> records

    def status(self, key):
        recs = self.cells.get(key)
        return worst([r["status"] for r in recs]) if recs else None


@dataclass
class Matrix:
    columns: List[Column]
    rows: List[Row]
    sources: List[Source]
    title: str = "mpspec report"

    def records(self):
        """Every record, its `backend` the column key (a report `mpspec report` can read back)."""
        out = []
        for c in self.columns:
            for r in c.records:
                out.append(dict(r, backend=c.key))
        return out


# --------------------------------------------------------------------------- reading


def normalize(record, where):
    """A record with every field present and typed; raises UserError naming `where`."""
    if not isinstance(record, dict):
        raise UserError("%s: a record is not an object" % where)
    test, status = record.get("test"), record.get("status")
    if not isinstance(test, str) or not test:
        raise UserError("%s: a record has no test name" % where)
    if status not in STATUSES:
        raise UserError("%s: %s: unknown status %r (one of %s)"
                        % (where, test, status, ", ".join(PRECEDENCE)))
    clauses = record.get("clauses") or []
    artifacts = record.get("artifacts") or []
    if not isinstance(clauses, list) or not isinstance(artifacts, list):
        raise UserError("%s: %s: clauses and artifacts must be lists" % (where, test))
    expected = record.get("expected")
    try:
        duration = float(record.get("duration_s") or 0.0)
    except (TypeError, ValueError):
        duration = 0.0
    return dict(record, test=test, status=status,
                backend=str(record.get("backend") or "?"),
                expected=bool(expected) if expected is not None else status in _EXPECTED_BY_DEFAULT,
                clauses=[str(c) for c in clauses], duration_s=duration,
                message=str(record.get("message") or ""),
                artifacts=[str(a) for a in artifacts])


def resolve_artifact(path, base):
    """`path` as found from the report's folder `base` (see the module comment)."""
    p = path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))
    if os.path.exists(p):
        return p
    name = os.path.basename(path)
    for candidate in (os.path.join(base, name), os.path.join(base, "histories", name)):
        if os.path.exists(candidate):
            return candidate
    return p


def load_report(path, label=None):
    """A Source from a JSON report file. UserError on a missing or malformed file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise UserError("cannot read report %s: %s" % (path, e.strerror or e))
    except ValueError as e:
        raise UserError("%s is not JSON: %s" % (path, e))
    if not isinstance(data, list):
        raise UserError("%s is not an mpspec report (a JSON list of test records, as "
                        "`mpspec run --json` writes)" % path)
    base = os.path.dirname(os.path.abspath(path))
    records = []
    for r in data:
        r = normalize(r, path)
        r["artifacts"] = [resolve_artifact(a, base) for a in r["artifacts"]]
        records.append(r)
    return Source(os.path.abspath(path), label or "", records)


def parse_inputs(args):
    """`FILE` or `LABEL=FILE` arguments -> [(label or None, path)]. An argument that names an
    existing file is a path even when it holds '='."""
    out = []
    for a in args:
        if "=" in a and not os.path.exists(a):
            label, path = a.split("=", 1)
            if not label:
                raise UserError("empty label in %r (LABEL=FILE)" % a)
            out.append((label, path))
        else:
            out.append((None, a))
    return out


def default_labels(paths):
    """The shortest path tails (without .json) that tell `paths` apart."""
    parts = [os.path.normpath(os.path.abspath(p))[:-5 if p.endswith(".json") else None]
             .split(os.sep) for p in paths]
    for n in range(1, max((len(p) for p in parts), default=1) + 1):
        labels = ["/".join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return ["%s#%d" % ("/".join(p), i + 1) for i, p in enumerate(parts)]


def load_all(args):
    """Sources of `mpspec report`'s arguments, labelled."""
    if not args:
        raise UserError("no report given")
    inputs = parse_inputs(args)
    defaults = default_labels([p for _, p in inputs])
    sources = [load_report(path, label or d) for (label, path), d in zip(inputs, defaults)]
    labels = [s.label for s in sources]
    dup = sorted({l for l in labels if labels.count(l) > 1})
    if dup:
        raise UserError("two reports have the same label: %s" % ", ".join(dup))
    return sources


# --------------------------------------------------------------------------- merging


def build(sources, spec_clauses=None, title="mpspec report"):
    """The Matrix of `sources`. `spec_clauses`: label -> clauses.Clause (order, levels)."""
    spec_clauses = spec_clauses or {}
    per_backend = {}  # backend -> labels of the sources that have it
    for s in sources:
        for r in s.records:
            labels = per_backend.setdefault(r["backend"], [])
            if s.label not in labels:
                labels.append(s.label)
    columns, by_key = [], {}
    for s in sources:
        for r in s.records:
            b = r["backend"]
            key = b if len(per_backend[b]) == 1 else "%s @ %s" % (b, s.label)
            col = by_key.get(key)
            if col is None:
                col = by_key[key] = Column(key, b, s.label)
                columns.append(col)
            col.records.append(r)

    cells = {}  # label -> key -> records
    for col in columns:
        for r in col.records:
            for label in r["clauses"] or [NO_CLAUSE]:
                cells.setdefault(label, {}).setdefault(col.key, []).append(r)

    def order(label):
        if label == NO_CLAUSE:
            return (2, "", 0)
        c = spec_clauses.get(label)
        return (0, c.file, c.line) if c else (1, label, 0)

    rows = [Row(label, spec_clauses.get(label), cells[label]) for label in sorted(cells, key=order)]
    return Matrix(columns, rows, list(sources), title)


def write_json(matrix, path):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(matrix.records(), f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------- terminal


def cell_text(recs):
    if not recs:
        return "-"
    statuses = [r["status"] for r in recs]
    w = worst(statuses)
    n = statuses.count(w)
    return w if n == len(statuses) else "%s %d/%d" % (w, n, len(statuses))


def terminal(matrix, out, table=True):
    """The matrix as text (when `table`), then one line per column."""
    w = out.write
    if table and matrix.rows:
        keys = [c.key for c in matrix.columns]
        labels = ["[%s]" % r.label if r.label else "(no clause)" for r in matrix.rows]
        lw = max(len(l) for l in labels + ["clause"])
        widths = [max([len(k)] + [len(cell_text(r.cells.get(k))) for r in matrix.rows])
                  for k in keys]
        w("%-*s  %s\n" % (lw, "clause", "  ".join("%-*s" % (cw, k) for cw, k in zip(widths, keys))))
        for label, r in zip(labels, matrix.rows):
            w("%-*s  %s\n" % (lw, label, "  ".join("%-*s" % (cw, cell_text(r.cells.get(k)))
                                                     for cw, k in zip(widths, keys))))
        w("\n")
    for c in matrix.columns:
        passed, failed, skipped = c.counts()
        w("%s: %s; %d passed, %d failed, %d skipped\n" % (
            c.key, ", ".join("%s %d" % (s, n) for s, n in reversed(list(c.tally().items()))),
            passed, failed, skipped))


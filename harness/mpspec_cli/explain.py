"""`mpspec explain LABEL`: one clause of the spec with everything that bears on it.

For a clause it prints the clause's text (reflowed), its level, profile and condition, where
it is written, its model (the chapter's `Model:` paragraph and the lines of `spec/models/` and
`conformance/checker/` that cite the label), the other places that cite the label (libmp and
its tests, the adapters and drivers, expectation files, history fixtures, other clauses), the
tests that name it, and the latest verdict of every backend whose JSON report is at hand.
A chapter prefix (`lock`, `lock.release`, or `lock.release.` to force it) lists the matching
clauses, one line each. An unknown label is bad input (exit 2), reported with close matches.

Reports are the JSON lists of records `{test, backend, status, expected, expectation,
clauses, duration_s, message, artifacts}` that `mpspec run` writes (`--json FILE`, and
`<artifacts>/report.json`). They are looked for in `mpspec-artifacts/*/report.json` under the
repository root, with `--build-dir DIR` also in `DIR/mpspec-reports/*.json` (CTest's suite
runs) and `DIR/mpspec-artifacts/*/report.json`, and in the files (or folders) given with
`--reports`. Per backend the newest report (by modification time) is the latest verdict; a
clause's verdict is the worst status of the report's tests that name it (`report.PRECEDENCE`).
The same verdicts decorate `mpspec spec --html` (`speccmd`).
"""

import datetime
import difflib
import glob
import json
import os
import re
import shutil
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from typing import List, Optional

from . import clauses as cl
from . import report
from .errors import EXIT_OK, UserError
from .gtest import FAIL, PASS, UNSUPPORTED

# Where the label is cited, by path prefix (first match wins), in the order they are shown.
# "model" and "checker" make the Model section; the others the "Cited in" section.
CATEGORIES = (
    ("spec/models/", "model"),
    ("conformance/checker/", "checker"),
    ("conformance/tests/checker/", "checker tests"),
    ("conformance/tests/", "suite tests (besides MPSPEC_CLAUSES)"),
    ("conformance/runner/", "test runner"),
    ("conformance/driverkit/", "driver kit"),
    ("conformance/backends/", "adapters"),
    ("conformance/", "conformance"),
    ("reference/tests/", "libmp tests"),
    ("reference/", "libmp"),
    ("harness/drivers/", "drivers"),
    ("harness/expectations/", "expectations"),
    ("harness/backends.toml", "backend registry"),
    ("fixtures/histories/", "history fixtures"),
    ("spec/", "spec"),
)
MODEL_CATEGORIES = ("model", "checker")
# What is searched for citations (relative to the root): folders and single files.
SCANNED = ("spec", "conformance", "reference", os.path.join("harness", "drivers"),
           os.path.join("harness", "expectations"), os.path.join("harness", "backends.toml"),
           os.path.join("fixtures", "histories"))
_TEXT_EXT = (".md", ".hpp", ".h", ".cpp", ".cc", ".c", ".py", ".toml", ".json", ".txt",
             ".cmake", ".sh")
_MAX_FILE = 2 * 1024 * 1024
_MAX_CITE = 110  # characters of a citing line shown

REPORT_GLOBS = (os.path.join("mpspec-artifacts", "*", "report.json"),)
BUILD_REPORT_GLOBS = (os.path.join("mpspec-reports", "*.json"),
                      os.path.join("mpspec-artifacts", "*", "report.json"))


# ----------------------------------------------------------------------------------- reports


@dataclass
class Report:
    """One JSON report of `mpspec run`: a backend's verdicts at one time."""
    backend: str
    path: str
    mtime: float
    records: list  # the report's dicts, as read
    by_test: dict = field(default_factory=dict)  # test name -> [records]
    by_label: dict = field(default_factory=dict)  # clause label -> [records naming it]

    def __post_init__(self):
        for r in self.records:
            self.by_test.setdefault(r["test"], []).append(r)
            for label in r.get("clauses") or ():
                self.by_label.setdefault(label, []).append(r)

    @property
    def when(self):
        return format_time(self.mtime)


@dataclass
class Verdict:
    """A backend's latest verdict on one clause: the records of the tests that name it."""
    backend: str
    report: Report
    records: list

    @property
    def status(self):
        """The worst status of the records (None: no test naming the clause ran)."""
        return worst([r["status"] for r in self.records])

    @property
    def unexpected(self):
        """True when a record of the worst status was not expected (it failed the run)."""
        return any(r["status"] == self.status and r.get("expected") is False
                   for r in self.records)

    def summary(self):
        """`PASS`, `XFAIL 1/3`, `FAIL (unexpected)`, `not run`."""
        s = self.status
        if s is None:
            return "not run"
        n = sum(1 for r in self.records if r["status"] == s)
        text = s if n == len(self.records) else "%s %d/%d" % (s, n, len(self.records))
        return text + (" (unexpected)" if self.unexpected else "")


def format_time(mtime):
    return datetime.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")


def status_rank(status):
    """Position in report.PRECEDENCE (worst first); an unknown status ranks as FAIL."""
    order = report.PRECEDENCE
    return order.index(status) if status in order else order.index(FAIL)


def worst(statuses):
    return min(statuses, key=status_rank) if statuses else None


def _backend_from_path(path):
    base = os.path.basename(path)
    if base == "report.json":
        return os.path.basename(os.path.dirname(os.path.abspath(path))) or "unknown"
    return base[: -len(".json")] if base.endswith(".json") else base


def read_report(path):
    """The Report in `path`; ValueError (with the reason) when it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        mtime = os.path.getmtime(path)
    except OSError as e:
        raise ValueError("cannot read it: %s" % (e.strerror or e))
    except ValueError as e:
        raise ValueError("not JSON: %s" % e)
    if not isinstance(data, list):
        raise ValueError("not a list of test records (a report of `mpspec run --json`)")
    for k, r in enumerate(data):
        if not (isinstance(r, dict) and isinstance(r.get("test"), str)
                and isinstance(r.get("status"), str)):
            raise ValueError("record %d has no `test` and `status` strings" % k)
    names = Counter(r["backend"] for r in data if isinstance(r.get("backend"), str) and r["backend"])
    backend = names.most_common(1)[0][0] if names else _backend_from_path(path)
    return Report(backend, path, mtime, data)


def _expand(path):
    """A report file, or a folder's *.json and */report.json."""
    if os.path.isdir(path):
        found = sorted(glob.glob(os.path.join(path, "*.json")) +
                       glob.glob(os.path.join(path, "*", "report.json")))
        if not found:
            raise UserError("--reports %s: the folder holds no *.json or */report.json" % path)
        return found
    if not os.path.exists(path):
        raise UserError("--reports %s: no such file" % path)
    return [path]


def load_reports(root, extra=(), build_dir=None, warn=None):
    """The newest Report of each backend, as {backend: Report}, from the default places
    (see the module's text), `build_dir`'s, and the paths in `extra`.

    A file given in `extra` that is not a report is bad input (UserError); one found by
    looking is skipped with a call to `warn(message)` (if given)."""
    candidates = []  # (path, explicit)
    for pattern in REPORT_GLOBS:
        candidates += [(p, False) for p in sorted(glob.glob(os.path.join(root, pattern)))]
    if build_dir:
        if not os.path.isdir(build_dir):
            raise UserError("--build-dir %s: no such folder" % build_dir)
        for pattern in BUILD_REPORT_GLOBS:
            candidates += [(p, False) for p in sorted(glob.glob(os.path.join(build_dir, pattern)))]
    for path in extra or ():
        candidates += [(p, True) for p in _expand(path)]

    latest, seen = {}, set()
    for path, explicit in candidates:
        key = os.path.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        try:
            rep = read_report(path)
        except ValueError as e:
            if explicit:
                raise UserError("%s is not a report of `mpspec run`: %s" % (path, e))
            if warn:
                warn("skipping %s: %s" % (display_path(path, root), e))
            continue
        old = latest.get(rep.backend)
        if old is None or rep.mtime > old.mtime:
            latest[rep.backend] = rep
    return latest


def backend_order(name):
    """The reference first, then the other backends, then the mutants, each by name."""
    return (name != "reference", name.startswith("mutant-"), name)


def clause_verdicts(label, test_names, reports):
    """[Verdict] of each report, in backend_order, for the clause `label`: the records of the
    tests that name it now (`test_names`, from the sources) or named it when the report was
    written (the records' `clauses`)."""
    out = []
    for backend in sorted(reports, key=backend_order):
        rep = reports[backend]
        names = list(test_names)
        names += [r["test"] for r in rep.by_label.get(label, ()) if r["test"] not in names]
        records = [r for name in names for r in rep.by_test.get(name, ())]
        out.append(Verdict(backend, rep, records))
    return out


# -------------------------------------------------------------------------------- citations


@dataclass
class Citation:
    category: str
    file: str  # relative to the root
    line: int
    text: str  # the line, stripped and shortened

    @property
    def where(self):
        return "%s:%d" % (self.file, self.line)


def category_of(relpath):
    p = relpath.replace(os.sep, "/")
    for prefix, name in CATEGORIES:
        if p.startswith(prefix):
            return name
    return "other"


def _scanned_files(root):
    for entry in SCANNED:
        path = os.path.join(root, entry)
        if os.path.isfile(path):
            yield path
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(_TEXT_EXT) or f == "CMakeLists.txt":
                    yield os.path.join(dirpath, f)


_C_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def _macro_lines(src):
    """Line numbers (1-based) covered by the MPSPEC_CLAUSES(...) calls of a C++ source."""
    lines = set()
    for m in re.finditer(r"\bMPSPEC_CLAUSES\s*\(", src):
        depth, i = 1, m.end()
        while i < len(src) and depth:
            c = src[i]
            if c == '"':
                s = _C_STRING.match(src, i)
                i = s.end() if s else i + 1
                continue
            depth += {"(": 1, ")": -1}.get(c, 0)
            i += 1
        first = src.count("\n", 0, m.start()) + 1
        lines.update(range(first, first + src.count("\n", m.start(), i) + 1))
    return lines


def _short(line):
    line = " ".join(line.split())
    return line if len(line) <= _MAX_CITE else line[: _MAX_CITE - 1] + "…"


def find_citations(root, clause, suite_files=()):
    """[Citation] of every line of the scanned files that cites `clause.label`, except the
    clause's own text and the MPSPEC_CLAUSES calls of the suite's tests (`suite_files`,
    absolute paths), which the Tests section shows."""
    pattern = cl.label_pattern(clause.label)
    suite = {os.path.realpath(p) for p in suite_files}
    out = []
    for path in _scanned_files(root):
        try:
            if os.path.getsize(path) > _MAX_FILE:
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                src = f.read()
        except OSError:
            continue
        if clause.label not in src or "\0" in src:
            continue
        rel = display_path(path, root)
        skip = _macro_lines(src) if os.path.realpath(path) in suite else set()
        if rel == clause.file:
            skip.update(range(clause.line, max(clause.line, clause.end_line) + 1))
        for n, line in enumerate(src.splitlines(), 1):
            if n not in skip and pattern.search(line):
                out.append(Citation(category_of(rel), rel, n, _short(line)))
    order = {name: k for k, (_, name) in enumerate(CATEGORIES)}
    out.sort(key=lambda c: (order.get(c.category, len(order)), c.file, c.line))
    return out


_MODEL_PARA = re.compile(r"^Model\b[:.]")


def chapter_model(root, clause):
    """The chapter's `Model: ...` paragraph as (line, text, [model files it names that exist]),
    or None when the chapter has none (the driver protocol)."""
    try:
        with open(os.path.join(root, clause.file), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    in_fence = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or not _MODEL_PARA.match(line):
            continue
        para = []
        for x in lines[i:]:
            if not x.strip():
                break
            para.append(x.strip())
        text = " ".join(para)
        files = []
        for p in re.findall(r"`([\w./-]+\.(?:hpp|cpp|h))`", text):
            if os.path.isfile(os.path.join(root, p)) and p not in files:
                files.append(p)
        return i + 1, text, files
    return None


# ------------------------------------------------------------------------------ resolving


def suggestions(text, labels, limit=6):
    """Labels close to `text`: those it begins (whole or partial part), those ending with
    it, then difflib's close matches."""
    out = []
    for label in sorted(labels):
        if label.startswith(text) or label.endswith("." + text):
            out.append(label)
    out += difflib.get_close_matches(text, list(labels), n=limit, cutoff=0.6)
    seen, unique = set(), []
    for label in out:
        if label not in seen:
            seen.add(label)
            unique.append(label)
    return unique[:limit]


def resolve(arg, clauses, tests=()):
    """(clause, [clauses under it as a prefix]) for LABEL: the clause is None for a prefix
    that is no clause, the list empty for a label no other clause extends. A trailing dot
    (`lock.release.`) asks for the clauses under the prefix (the clause itself when there are
    none). UserError (exit 2) when nothing matches."""
    text = cl.normalize_label(arg)
    prefix_only = text.endswith(".")
    text = text.rstrip(".")
    if not text:
        raise UserError("explain: give a clause label (`lock.release.unheld`) or a chapter "
                        "prefix (`lock.release`)")
    under = [c for c in clauses.values() if c.label.startswith(text + ".")]
    under.sort(key=lambda c: (c.file, c.line))
    exact = clauses.get(text)
    if prefix_only and under:
        exact = None  # `lock.release.`: the clauses under it, even if `lock.release` is one
    if exact or under:
        return exact, under
    msg = "no clause [%s] in spec/" % text
    test = next((t for t in tests if t.name == text), None)
    if test:
        msg = ("%s is a test, not a clause (%s); it names %s"
               % (text, test.where, " ".join("[%s]" % x for x in test.clauses) or "no clause"))
    else:
        close = suggestions(text, clauses)
        if close:
            msg += "; did you mean %s?" % ", ".join("[%s]" % x for x in close)
        else:
            msg += " (`./mpspec spec` lists every clause)"
    raise UserError(msg)


# --------------------------------------------------------------------------------- output


def display_path(path, root):
    """`path` relative to the root when it is under it, else as given."""
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith(os.pardir) else rel


def _width():
    return max(60, min(100, shutil.get_terminal_size((100, 24)).columns))


def reflow(text, indent="  ", width=None):
    """One paragraph of Markdown source, re-wrapped for the terminal."""
    return textwrap.fill(" ".join(text.split()), width=width or _width(), initial_indent=indent,
                         subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)


@dataclass
class Explanation:
    clause: cl.Clause
    tests: list  # TestCase
    model: Optional[tuple]  # chapter_model()
    citations: List[Citation]
    verdicts: List[Verdict]
    under: list  # clauses the label is a prefix of

    def as_json(self, root):
        c = self.clause
        model = None
        if self.model:
            model = {"file": c.file, "line": self.model[0], "text": self.model[1],
                     "files": self.model[2]}
        return {
            "label": c.label, "level": c.level, "profile": c.profile, "condition": c.condition,
            "file": c.file, "line": c.line, "end_line": c.end_line, "chapter": c.chapter,
            "section": c.section, "protocol": c.protocol, "draft": c.draft,
            "text": " ".join(c.body.split()),
            "model": model,
            "citations": [{"category": x.category, "file": x.file, "line": x.line, "text": x.text}
                          for x in self.citations],
            "tests": [{"test": t.name, "file": t.file, "line": t.line} for t in self.tests],
            "verdicts": [verdict_json(v, root) for v in self.verdicts],
            "clauses_under": [x.label for x in self.under],
        }


def verdict_json(v, root):
    return {"backend": v.backend, "report": display_path(v.report.path, root),
            "mtime": datetime.datetime.fromtimestamp(v.report.mtime).astimezone().isoformat(
                timespec="seconds"),
            "status": v.status, "unexpected": v.unexpected,
            "tests": [{"test": r["test"], "status": r["status"], "expected": r.get("expected"),
                       "message": r.get("message") or ""} for r in v.records]}


def explain(root, clause, trace, reports, under=()):
    """Everything `explain` shows about one clause."""
    tests_by_name = {}
    for t in trace.tests:
        tests_by_name.setdefault(t.name, t)
    names = trace.by_clause.get(clause.label, [])
    suite = [os.path.join(root, f) for f in sorted({t.file for t in trace.tests})]
    return Explanation(
        clause=clause,
        tests=[tests_by_name[n] for n in dict.fromkeys(names)],
        model=chapter_model(root, clause),
        citations=find_citations(root, clause, suite),
        verdicts=clause_verdicts(clause.label, names, reports),
        under=list(under))


_LOCATION = re.compile(r"^\S+\.\w+:\d+:?$")


def why_line(record):
    """One line saying why a test did not pass: its expectation's reason, else the first
    line of its message that is not a source location, without a leading `STATUS:`."""
    exp = record.get("expectation")
    if isinstance(exp, dict) and exp.get("reason"):
        return "expected: " + " ".join(str(exp["reason"]).split())
    for line in (record.get("message") or "").splitlines():
        line = line.strip()
        if line and not _LOCATION.match(line):
            return re.sub(r"^(%s):\s*" % re.escape(record["status"]), "", line)
    return ""


def _first_line(text, limit=100):
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _write_citations(items, indent, width, out):
    ww = max([len(x.where) for x in items] + [0])
    for x in items:
        room = max(30, width - len(indent) - ww - 2)
        text = x.text if len(x.text) <= room else x.text[: room - 1] + "…"
        out.write("%s%-*s  %s\n" % (indent, ww, x.where, text))


def write_text(e, root, reports, out):
    c = e.clause
    w = _width()
    out.write("[%s]  %s%s\n" % (c.label, c.header, "  (draft chapter)" if c.draft else ""))
    where = " › ".join(x for x in (c.chapter, c.section) if x)
    out.write("%s%s\n\n" % (c.where, "  (%s)" % where if where else ""))
    out.write(reflow(c.body or "(no text)", width=w) + "\n\n")

    out.write("Model\n")
    if e.model:
        line, text, files = e.model
        short = text if len(text) <= 400 else text[:399] + "…"
        out.write("  %s:%d\n%s\n" % (c.file, line, reflow(short, "    ", w)))
    model_cites = [x for x in e.citations if x.category in MODEL_CATEGORIES]
    _write_citations(model_cites, "  ", w, out)
    if not e.model and not model_cites:
        out.write("  none: no model or checker cites the label; its tests judge it by their "
                  "assertions\n")
    elif not model_cites:
        out.write("  (no line of spec/models/ or conformance/checker/ cites [%s])\n" % c.label)

    others = [x for x in e.citations if x.category not in MODEL_CATEGORIES]
    if others:
        out.write("\nCited in\n")
        for category in dict.fromkeys(x.category for x in others):
            out.write("  %s\n" % category)
            _write_citations([x for x in others if x.category == category], "    ", w, out)

    out.write("\nTests (%d)\n" % len(e.tests))
    if not e.tests:
        if c.level == "withdrawn":
            out.write("  none (withdrawn: tests must not name it)\n")
        elif c.level == "MUST" and not c.protocol:
            out.write("  NONE: a MUST clause needs a test (`./mpspec spec` fails)\n")
        else:
            out.write("  none\n")
    tw = max([len(t.where) for t in e.tests] + [0])
    for t in e.tests:
        out.write("  %-*s  %s\n" % (tw, t.where, t.name))

    out.write("\nVerdicts (newest report per backend)\n")
    if not reports:
        out.write("  no reports found: `./mpspec run` writes mpspec-artifacts/<backend>/"
                  "report.json (or give --reports FILE, --build-dir DIR)\n")
    bw = max([len(v.backend) for v in e.verdicts] + [0])
    sw = max([len(v.summary()) for v in e.verdicts] + [0])
    for v in e.verdicts:
        out.write("  %-*s  %-*s  %s  %s\n" % (bw, v.backend, sw, v.summary(), v.report.when,
                                              display_path(v.report.path, root)))
        shown = [r for r in v.records if r["status"] not in (PASS, UNSUPPORTED)]
        nw = max([len(r["test"]) for r in shown] + [0])
        for r in shown:
            status = r["status"] + ("" if r.get("expected", True) is not False else " (unexpected)")
            left = "    %-*s  %s" % (nw, r["test"], status)
            why = why_line(r)
            out.write(left + ("  " + _first_line(why, max(30, w - len(left) - 2)) if why else "")
                      + "\n")

    if e.under:
        out.write("\n%d more clause%s under [%s.]: `mpspec explain %s.` lists them\n"
                  % (len(e.under), "" if len(e.under) == 1 else "s", c.label, c.label))


def write_listing(prefix, items, trace, out):
    """The clauses under a prefix, one line each."""
    w = _width()
    out.write("%d clause%s under [%s.] (`mpspec explain LABEL` for one)\n"
              % (len(items), "" if len(items) == 1 else "s", prefix))
    lw = max(len(c.label) + 2 for c in items)
    hw = max(len(c.level + (", " + c.profile if c.profile else "")) for c in items)
    for c in items:
        head = c.level + (", " + c.profile if c.profile else "")
        n = len(trace.by_clause.get(c.label, []))
        left = "  %-*s  %-*s  %2d test%s  " % (lw, "[%s]" % c.label, hw, head, n,
                                               " " if n == 1 else "s")
        room = max(20, w - len(left))
        out.write(left + _first_line(" ".join(c.body.split()), room) + "\n")


def listing_json(prefix, items, trace):
    return {"prefix": prefix,
            "clauses": [{"label": c.label, "level": c.level, "profile": c.profile,
                         "condition": c.condition, "file": c.file, "line": c.line,
                         "tests": trace.by_clause.get(c.label, []),
                         "text": " ".join(c.body.split())} for c in items]}


def main(root, label, out, err, want_json=False, reports=(), build_dir=None):
    """`mpspec explain`: exit 0, or UserError (exit 2) for an unknown label or a bad report."""
    trace = cl.trace(root)
    clause, under = resolve(label, trace.clauses, trace.tests)
    if clause is None:
        prefix = cl.normalize_label(label).rstrip(".")
        if want_json:
            json.dump(listing_json(prefix, under, trace), out, indent=2)
            out.write("\n")
        else:
            write_listing(prefix, under, trace, out)
        return EXIT_OK
    found = load_reports(root, reports, build_dir,
                         warn=lambda m: err.write("mpspec: warning: %s\n" % m))
    e = explain(root, clause, trace, found, under)
    if want_json:
        json.dump(e.as_json(root), out, indent=2)
        out.write("\n")
    else:
        write_text(e, root, found, out)
    return EXIT_OK

"""Traceability: the clauses of the spec and the tests that name them.

Clauses (spec/README.md section 2) are found in spec/**/*.md, outside fenced code blocks:

    **[lock.release.unheld]** MUST, core. text...            chapter clause
    **[lock.acquire.fairness]** MAY. text...                  MAY: no profile
    **[lock.kill.holder]** MUST, core, when the backend declares kill.
    **[x.y]** withdrawn. why...                               withdrawn: tests must not name it
    - [protocol.kill] MUST when the feature `kill` is declared.   driver protocol clause

A chapter clause is its whole paragraph (up to a blank line, a heading, a fence or the next
clause); a list clause is its list item (the first line and the indented lines after it).
`Clause.text` keeps the first line after the header, `Clause.body` the whole clause after the
header (Markdown, lines joined with newlines).

Tests are found in the *_test.cpp and *_prop.cpp files of conformance/tests that make up the
conformance binary (`suite_sources`): `TEST(Suite, Name)`
(also TEST_F / TEST_P) and `RC_GTEST_PROP(Suite, Name, ...)` (also RC_GTEST_FIXTURE_PROP),
each followed by `MPSPEC_CLAUSES("[a] [b]")` (string literals may be split over lines).
"""

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

from .errors import UserError

LABEL_RE = r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+"
LEVELS = ("MUST", "SHOULD", "MAY")

_CHAPTER_CLAUSE = re.compile(r"^\*\*\[(" + LABEL_RE + r")\]\*\*\s+(.*)$")
_LIST_CLAUSE = re.compile(r"^\s*[-*]\s+\[(" + LABEL_RE + r")\]\s+(MUST|SHOULD|MAY|withdrawn)\b(.*)$")
_HEADER = re.compile(r"^(MUST|SHOULD|MAY|withdrawn)\b(?:,\s*(core|strict)\b)?([^.]*)\.?")
_FENCE = re.compile(r"^\s*(```|~~~)")
# A chapter whose text has this line is a draft: its MUST clauses may lack tests for now.
_DRAFT = re.compile(r"^\*\*Status: draft\.\*\*", re.M)


@dataclass
class Clause:
    label: str
    level: str  # MUST / SHOULD / MAY / withdrawn
    profile: Optional[str]  # core / strict / None
    condition: str  # "when the backend declares kill", "" if none
    file: str  # relative to the repository root
    line: int
    protocol: bool  # a driver-protocol clause (checked by the protocol tests, never gating)
    text: str = ""  # the first line of the clause, for reports
    draft: bool = False  # its chapter is a draft (spec/README.md §11): a missing test only warns
    body: str = ""  # the whole clause after its header (Markdown, newline-separated lines)
    end_line: int = 0  # the clause's last line (0: unknown, same as `line`)
    chapter: str = ""  # the title of the file's first `#` heading
    section: str = ""  # the title of the last `##` / `###` heading before the clause

    @property
    def where(self):
        return "%s:%d" % (self.file, self.line)

    @property
    def header(self):
        """`MUST, core` / `MAY` / `MUST, core, when ...`: the level, profile and condition."""
        return ", ".join(p for p in (self.level, self.profile, self.condition) if p)


@dataclass
class TestCase:
    name: str  # Suite.Name
    file: str
    line: int
    clauses: List[str] = field(default_factory=list)
    clauses_text: Optional[str] = None  # the raw MPSPEC_CLAUSES argument, None if absent

    @property
    def where(self):
        return "%s:%d" % (self.file, self.line)


def _rel(path, root):
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path


def _walk(top, predicate):
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for f in sorted(filenames):
            if predicate(f):
                out.append(os.path.join(dirpath, f))
    return out


# ------------------------------------------------------------------------------- the spec


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s+")


def label_pattern(label):
    """A regular expression that finds `label` as a whole label in any text: `lock.release`
    in `[lock.release]` or `"lock.release"`, not in `shared_lock.release`, `lock.release.held`
    or `lock.released`. A sentence's full stop after the label is allowed."""
    return re.compile(r"(?<![A-Za-z0-9_.-])" + re.escape(label) + r"(?![A-Za-z0-9_-]|\.[A-Za-z0-9_])")


def normalize_label(text):
    """`[lock.release.unheld]`, ` lock.release.unheld ` -> `lock.release.unheld`."""
    return text.strip().strip("[]").strip()


def _clause_end(lines, i, is_list):
    """Index of the last line of the clause starting at lines[i] (outside fences)."""
    j = i
    while j + 1 < len(lines):
        nxt = lines[j + 1]
        if not nxt.strip() or _FENCE.match(nxt) or _HEADING.match(nxt):
            break
        if _CHAPTER_CLAUSE.match(nxt) or _LIST_CLAUSE.match(nxt):
            break
        if is_list and (not nxt[:1].isspace() or _LIST_ITEM.match(nxt)):
            break  # a list clause is its item: the first line and the indented lines after it
        j += 1
    return j


def parse_spec_text(text, relpath):
    """Returns (clauses, problems) found in one Markdown file."""
    clauses, problems = [], []
    in_fence = None
    chapter = section = ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        n = i + 1
        m = _FENCE.match(line)
        if m:
            if in_fence is None:
                in_fence = m.group(1)
            elif m.group(1) == in_fence:
                in_fence = None
            continue
        if in_fence:
            continue
        m = _HEADING.match(line)
        if m:
            if len(m.group(1)) == 1 and not chapter:
                chapter = m.group(2)
            elif len(m.group(1)) > 1:
                section = m.group(2)
            continue
        m = _CHAPTER_CLAUSE.match(line)
        if m:
            label, rest = m.group(1), m.group(2)
            h = _HEADER.match(rest)
            if not h:
                problems.append("%s:%d: clause [%s] has no level (MUST, SHOULD, MAY or withdrawn)"
                                % (relpath, n, label))
                continue
            level, profile, cond = h.group(1), h.group(2), h.group(3).strip(" ,")
            if level == "MUST" and not profile and not label.startswith("protocol."):
                problems.append("%s:%d: MUST clause [%s] has no profile (core or strict)"
                                % (relpath, n, label))
            first = rest[h.end():].strip()
            end = _clause_end(lines, i, False)
            body = "\n".join([first] + [x.strip() for x in lines[i + 1 : end + 1]]).strip()
            clauses.append(Clause(label, level, profile, cond, relpath, n,
                                  label.startswith("protocol."), first, body=body,
                                  end_line=end + 1, chapter=chapter, section=section))
            continue
        m = _LIST_CLAUSE.match(line)
        if m:
            label, level, rest = m.group(1), m.group(2), m.group(3)
            cond = rest.split(".", 1)[0].strip(" ,") if not rest.startswith(".") else ""
            first = rest.split(".", 1)[1].strip() if "." in rest else ""
            profile = None
            pm = re.match(r",\s*(core|strict)\b", rest)
            if pm:
                profile = pm.group(1)
                cond = cond[len(pm.group(1)):].strip(" ,")  # "core, when ..." -> "when ..."
            end = _clause_end(lines, i, True)
            body = "\n".join([first] + [x.strip() for x in lines[i + 1 : end + 1]]).strip()
            clauses.append(Clause(label, level, profile, cond, relpath, n,
                                  label.startswith("protocol."), first, body=body,
                                  end_line=end + 1, chapter=chapter, section=section))
    return clauses, problems


def scan_spec(root):
    """All clauses of spec/**/*.md. Returns (dict label -> Clause, problems)."""
    spec_dir = os.path.join(root, "spec")
    if not os.path.isdir(spec_dir):
        raise UserError("no spec/ folder under %s" % root)
    clauses, problems = {}, []
    for path in _walk(spec_dir, lambda f: f.endswith(".md")):
        rel = _rel(path, root)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        found, probs = parse_spec_text(text, rel)
        if _DRAFT.search(text):
            for c in found:
                c.draft = True
        problems.extend(probs)
        for c in found:
            if c.label in clauses:
                problems.append("%s: clause [%s] is already defined at %s"
                                % (c.where, c.label, clauses[c.label].where))
                continue
            clauses[c.label] = c
    return clauses, problems


# -------------------------------------------------------------------------------- the tests

_TEST_MACRO = re.compile(
    r"\b(TEST|TEST_F|TEST_P|RC_GTEST_PROP|RC_GTEST_FIXTURE_PROP)\s*\(\s*([A-Za-z_]\w*)\s*,\s*([A-Za-z_]\w*)")
_CLAUSES_MACRO = re.compile(r"\bMPSPEC_CLAUSES\s*\(")
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_IN_LABELS = re.compile(r"\[(" + LABEL_RE + r")\]")


def strip_comments(src):
    """Blanks out // and /* */ comments (keeping newlines and string literals)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _string_args(text, start):
    """Concatenated string literals of the call whose '(' is just before `start`."""
    depth, i, parts = 1, start, []
    while i < len(text) and depth:
        c = text[i]
        if c == '"':
            m = _STRING.match(text, i)
            if not m:
                break
            parts.append(m.group(1))
            i = m.end()
            continue
        depth += {"(": 1, ")": -1}.get(c, 0)
        i += 1
    return "".join(parts)


def parse_test_source(src, relpath):
    """The tests in one C++ file, with the labels of the MPSPEC_CLAUSES that follows each."""
    code = strip_comments(src)
    macros = list(_TEST_MACRO.finditer(code))
    tests = []
    for k, m in enumerate(macros):
        end = macros[k + 1].start() if k + 1 < len(macros) else len(code)
        line = code.count("\n", 0, m.start()) + 1
        t = TestCase("%s.%s" % (m.group(2), m.group(3)), relpath, line)
        cm = _CLAUSES_MACRO.search(code, m.end(), end)
        if cm:
            t.clauses_text = _string_args(code, cm.end())
            t.clauses = _IN_LABELS.findall(t.clauses_text)
        tests.append(t)
    return tests


def is_test_source(filename):
    return filename.endswith("_test.cpp") or filename.endswith("_prop.cpp")


SUITE_TARGET = "mpspec_conformance"
# Folders of conformance/tests that hold other binaries' tests (the checker's self-tests).
NOT_SUITE_DIRS = ("checker",)


def suite_sources(root):
    """The test sources of the conformance binary: the *_test.cpp / *_prop.cpp files that
    conformance/tests/CMakeLists.txt compiles into `mpspec_conformance` (add_executable and
    target_sources). Without a readable list (no file, or sources given through variables),
    every such file under conformance/tests except the checker's self-tests."""
    tests_dir = os.path.join(root, "conformance", "tests")
    if not os.path.isdir(tests_dir):
        return []
    listed, usable = [], False
    try:
        with open(os.path.join(tests_dir, "CMakeLists.txt"), encoding="utf-8") as f:
            cmake = re.sub(r"#[^\n]*", "", f.read())
        for m in re.finditer(r"\b(?:add_executable|target_sources)\s*\(\s*%s\b([^)]*)\)"
                             % SUITE_TARGET, cmake):
            usable = True
            if "${" in m.group(1):
                usable = False
                break
            listed += [w for w in m.group(1).split() if is_test_source(os.path.basename(w))]
    except OSError:
        pass
    if usable:
        return [os.path.normpath(os.path.join(tests_dir, w)) for w in listed]
    return [p for p in _walk(tests_dir, is_test_source)
            if os.path.relpath(p, tests_dir).split(os.sep)[0] not in NOT_SUITE_DIRS]


def scan_tests(root):
    """The tests of the conformance suite (see suite_sources), in source order."""
    out = []
    for path in suite_sources(root):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                out.extend(parse_test_source(f.read(), _rel(path, root)))
        except OSError:
            raise UserError("conformance/tests/CMakeLists.txt lists %s, which cannot be read"
                            % _rel(path, root))
    return out


def split_labels(text):
    """'[a.b] [c.d]' -> ['a.b', 'c.d'] (also accepts labels without brackets)."""
    if text is None:
        return []
    found = _IN_LABELS.findall(text)
    if found:
        return found
    return [w for w in re.split(r"[\s,]+", text) if re.fullmatch(LABEL_RE, w)]


# ------------------------------------------------------------------------------ traceability


@dataclass
class Traceability:
    clauses: dict  # label -> Clause
    tests: list  # TestCase
    by_clause: dict  # label -> [test names]
    errors: list
    warnings: list


def trace(root):
    clauses, problems = scan_spec(root)
    tests = scan_tests(root)
    by_clause = {label: [] for label in clauses}
    errors, warnings = list(problems), []
    seen = {}
    for t in tests:
        if t.name in seen:
            errors.append("%s: test %s is already defined at %s" % (t.where, t.name, seen[t.name]))
        seen[t.name] = t.where
        if t.clauses_text is None:
            errors.append("%s: test %s names no clause (its body must begin with MPSPEC_CLAUSES)"
                          % (t.where, t.name))
            continue
        if not t.clauses:
            errors.append("%s: test %s: MPSPEC_CLAUSES(%r) holds no [label]"
                          % (t.where, t.name, t.clauses_text))
        kinds = set()
        for label in t.clauses:
            c = clauses.get(label)
            if c is None:
                errors.append("%s: test %s names [%s], which is not a clause of the spec"
                              % (t.where, t.name, label))
                continue
            if c.level == "withdrawn":
                errors.append("%s: test %s names [%s], which is withdrawn (%s)"
                              % (t.where, t.name, label, c.where))
            by_clause[label].append(t.name)
            kinds.add((c.level, c.profile))
        if len(kinds) > 1:
            warnings.append("%s: test %s names clauses of different levels or profiles: %s"
                            % (t.where, t.name,
                               ", ".join(sorted("%s %s" % (lv, pr or "-") for lv, pr in kinds))))
    for label, c in clauses.items():
        if c.level == "MUST" and not c.protocol and not by_clause[label]:
            if c.draft:
                warnings.append("%s: MUST clause [%s] has no test yet (draft chapter)"
                                % (c.where, label))
            else:
                errors.append("%s: MUST clause [%s] has no test" % (c.where, label))
    return Traceability(clauses, tests, by_clause, errors, warnings)


# ---------------------------------------------------------------------------------- filters

_CLAUSE_FILTER = re.compile(r"^\[?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?\]?$")


def is_clause_filter(pattern):
    """True when `pattern` reads as clause labels / prefixes rather than a gtest filter.

    gtest filters name suites (CamelCase: `Lock.*`, `LockProp.*:Lock.Timeout*`); clause
    labels and chapter prefixes are lowercase (`lock`, `lock.release`, `[lock.release.unheld]`).
    Several prefixes may be given separated by commas or spaces.
    """
    parts = [p for p in re.split(r"[\s,]+", pattern.strip()) if p]
    return bool(parts) and all(_CLAUSE_FILTER.match(p) for p in parts)


def clause_prefixes(pattern):
    return [p.strip("[]").rstrip(".") for p in re.split(r"[\s,]+", pattern.strip()) if p]


def label_matches(label, prefix):
    return label == prefix or label.startswith(prefix + ".")


def tests_for_clauses(tests, pattern):
    """Names of the tests naming at least one clause that matches one of the prefixes."""
    prefixes = clause_prefixes(pattern)
    return [t.name for t in tests if any(label_matches(l, p) for l in t.clauses for p in prefixes)]


def gtest_filter_matches(name, gfilter):
    """gtest's filter semantics: POSITIVE[-NEGATIVE], each a ':'-list of * ? patterns."""
    if not gfilter:
        return True
    pos, _, neg = gfilter.partition("-")
    pos_pats = [p for p in pos.split(":") if p] or ["*"]
    neg_pats = [p for p in neg.split(":") if p]
    return (any(fnmatch.fnmatchcase(name, p) for p in pos_pats)
            and not any(fnmatch.fnmatchcase(name, p) for p in neg_pats))

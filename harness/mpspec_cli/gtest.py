"""Reading what the conformance binary (GoogleTest + RapidCheck) produces.

Three sources, combined by `runner`:

* the JSON report (`--gtest_output=json:FILE`): per test the result (COMPLETED / SKIPPED),
  failure messages, time and the `clauses` property. GoogleTest 1.12 leaves skip messages
  out of it, hence:
* the console output (stdout and stderr merged): per test the lines between `[ RUN      ]`
  and its `[       OK ]` / `[  FAILED  ]` / `[  SKIPPED ]` line, which carry the skip
  message (`UNSUPPORTED: ...`, `UNRESOLVED: ...`), RapidCheck's counterexample and the paths
  of saved histories; after the last test RapidCheck prints its `reproduce` string. When the
  binary dies, the console output is all there is.
* `--gtest_list_tests`: the tests a filter selects (GoogleTest lists them whatever the
  sharding variables say; `shard_of` computes a shard's part the way GoogleTest does).
"""

import json
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .clauses import split_labels

# Raw statuses, before expectations are applied.
PASS, FAIL, TIMEOUT, CRASH = "PASS", "FAIL", "TIMEOUT", "CRASH"
UNSUPPORTED, UNRESOLVED = "UNSUPPORTED", "UNRESOLVED"
XFAIL, XPASS = "XFAIL", "XPASS"


@dataclass
class RawResult:
    name: str  # Suite.Name
    status: str  # PASS FAIL TIMEOUT CRASH UNSUPPORTED UNRESOLVED
    duration_s: float = 0.0
    message: str = ""
    clauses: Optional[List[str]] = None  # None: unknown (not in the JSON report)
    output: str = ""  # the console lines of this test
    artifacts: List[str] = field(default_factory=list)
    skipped: bool = False  # gtest reported a skip (the status word comes from the message)


def classify_failure(messages):
    """FAIL, or TIMEOUT / CRASH when a message says a watchdog fired or the driver died."""
    text = "\n".join(messages)
    if "CRASH:" in text:
        return CRASH
    if "TIMEOUT:" in text:
        return TIMEOUT
    return FAIL


def clean_failure(text):
    """Drops GoogleTest's wrapping of an exception that escaped the test body, so that the
    message starts with the runner's own words ("CRASH: ...", "TIMEOUT: ...")."""
    text = re.sub(r"^unknown file(?::\s*Failure)?\n", "", text.strip())
    m = re.match(r'^C\+\+ exception with description "(.*)" thrown in (?:the test body|[^.]*)\.?$',
                 text, re.S)
    return m.group(1) if m else text


def classify_skip(message):
    """UNSUPPORTED or UNRESOLVED from a skip message. A skip that says neither is UNRESOLVED:
    the test proved nothing, and the harness cannot tell why."""
    m = re.search(r"\b(UNSUPPORTED|UNRESOLVED):", message or "")
    return m.group(1) if m else UNRESOLVED


def skip_reason(text):
    """The skip message from a test's console lines: from the status word to the end."""
    m = re.search(r"\b(UNSUPPORTED|UNRESOLVED):.*", text or "", re.S)
    if m:
        return m.group(0).strip()
    lines = [l for l in (text or "").splitlines() if l.strip() and not l.endswith(": Skipped")]
    return "\n".join(lines).strip()


def _seconds(value):
    if isinstance(value, (int, float)):
        return float(value)
    m = re.match(r"^\s*([0-9.]+)\s*s?\s*$", str(value or ""))
    return float(m.group(1)) if m else 0.0


def parse_json_report(data):
    """Parses a gtest JSON report (text or already-decoded object) into {name: RawResult}.

    Tests that gtest did not run (filtered out: "NOTRUN"/"SUPPRESSED") are left out.
    Raises ValueError when the document is not a gtest report.
    """
    if isinstance(data, (str, bytes)):
        data = json.loads(data)
    if not isinstance(data, dict) or not isinstance(data.get("testsuites"), list):
        raise ValueError("not a GoogleTest JSON report (no 'testsuites' list)")
    results = {}
    for suite in data["testsuites"]:
        for case in suite.get("testsuite", []) or []:
            if case.get("status", "RUN") != "RUN" or case.get("result") == "SUPPRESSED":
                continue
            name = "%s.%s" % (suite.get("name", case.get("classname", "?")), case.get("name", "?"))
            failures = [clean_failure(f.get("failure", "")) for f in case.get("failures", []) or []]
            if failures:
                status = classify_failure(failures)
            elif case.get("result") == "SKIPPED":
                status = UNRESOLVED  # refined from the console output (skip message)
            else:
                status = PASS
            clauses = split_labels(case["clauses"]) if "clauses" in case else None
            results[name] = RawResult(name, status, _seconds(case.get("time")),
                                      "\n\n".join(f.strip() for f in failures), clauses,
                                      skipped=not failures and case.get("result") == "SKIPPED")
    return results


# -------------------------------------------------------------------------- console output

_RUN = re.compile(r"^\[ RUN      \] (\S+)\s*$")
_END = re.compile(r"^\[ {2}(FAILED|SKIPPED) {1,2}\] (\S+?)(?:, where .*)? \((\d+) ms\)\s*$|"
                  r"^\[ {7}OK \] (\S+) \((\d+) ms\)\s*$")
REPRODUCE = re.compile(r"""RC_PARAMS=["']?([^"'\n]*reproduce=[^"'\s]+[^"'\n]*)["']?""")
_RC_SEED = re.compile(r"Using configuration:\s*(.*seed=\d+.*)$", re.M)
_RC_MARKERS = ("Falsifiable after", "Gave up after", "Using configuration:", "RapidCheck")
# "history saved to PATH", "picture: PATH", or any *.history.json path.
_ARTIFACT = re.compile(r"(?:saved to|written to|picture:)\s+(\S*/\S+|\S+\.(?:json|html|svg))"
                       r"|(\S+\.history\.json)\b")


@dataclass
class ConsoleTest:
    name: str
    ended: Optional[str] = None  # OK / FAILED / SKIPPED, None if it never ended
    duration_s: float = 0.0
    lines: List[str] = field(default_factory=list)

    @property
    def text(self):
        return "\n".join(self.lines)


@dataclass
class Console:
    tests: Dict[str, ConsoleTest] = field(default_factory=dict)
    order: List[str] = field(default_factory=list)
    running: Optional[str] = None  # the test that had started and not ended
    reproduce: List[str] = field(default_factory=list)  # RC_PARAMS=... lines
    seed: Optional[str] = None  # RapidCheck's "Using configuration:" line
    tail: List[str] = field(default_factory=list)  # lines outside any test


class ConsoleParser:
    """Feeds console lines one at a time (the runner reads them live).

    `on_start` / `on_end`, when given, are called with the ConsoleTest when a test's
    `[ RUN      ]` line and its closing line (`[       OK ]`, `[  FAILED  ]`, `[  SKIPPED ]`)
    are read: the runner's progress display."""

    def __init__(self, on_start=None, on_end=None):
        self.console = Console()
        self.on_start, self.on_end = on_start, on_end

    def feed(self, line):
        line = line.rstrip("\n")
        c = self.console
        m = _RUN.match(line)
        if m:
            t = ConsoleTest(m.group(1))
            c.tests[t.name] = t
            c.order.append(t.name)
            c.running = t.name
            if self.on_start is not None:
                self.on_start(t)
            return
        m = _END.match(line)
        if m and c.running:
            name = m.group(2) or m.group(4)
            if name == c.running:
                t = c.tests[name]
                t.ended = m.group(1) or "OK"
                t.duration_s = int(m.group(3) or m.group(5)) / 1000.0
                c.running = None
                if self.on_end is not None:
                    self.on_end(t)
                return
        rm = REPRODUCE.search(line)
        if rm:
            c.reproduce.append('RC_PARAMS="%s"' % rm.group(1).strip())
        sm = _RC_SEED.search(line)
        if sm and not c.seed:
            c.seed = sm.group(1).strip()
        if c.running:
            c.tests[c.running].lines.append(line)
        else:
            c.tail.append(line)

    def feed_text(self, text):
        for line in text.splitlines():
            self.feed(line)
        return self.console


def parse_console(text):
    return ConsoleParser().feed_text(text)


def artifacts_in(text):
    out = []
    for m in _ARTIFACT.finditer(text or ""):
        p = (m.group(1) or m.group(2)).rstrip(".,;:)")
        if p not in out:
            out.append(p)
    return out


def uses_rapidcheck(text):
    return any(marker in (text or "") for marker in _RC_MARKERS)


# ------------------------------------------------------------------------------ test lists


def parse_test_list(text):
    """Parses `--gtest_list_tests` output into ['Suite.Name', ...]."""
    names, suite = [], None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw.startswith(" "):
            # "Suite." (or "Prefix/Suite." for parameterized suites); anything else is a note
            suite = line.strip() if re.fullmatch(r"[\w/]+\.", line.strip()) else None
            continue
        if suite:
            names.append(suite + line.strip())
    return names


def is_disabled(name):
    """Whether GoogleTest treats Suite.Name as disabled (never run without
    --gtest_also_run_disabled_tests): the suite or the test name starts with DISABLED_,
    also after a parameterized suite's prefix (`Prefix/DISABLED_Suite`)."""
    suite, _, test = name.partition(".")
    return (suite.startswith("DISABLED_") or "/DISABLED_" in suite
            or test.startswith("DISABLED_") or "/DISABLED_" in test)


def shard_of(tests, index, total):
    """The tests of shard `index` (0-based, GTEST_SHARD_INDEX) of `total` (GTEST_TOTAL_SHARDS),
    chosen as GoogleTest chooses them: `tests` is the binary's list for the same filter, in
    its order (`--gtest_list_tests` order is the order the binary runs them in); the j-th
    test that would run (disabled tests do not count) belongs to shard j % total."""
    if not 0 <= index < total:
        raise ValueError("shard index %d is not in 0..%d" % (index, total - 1))
    runnable = [t for t in tests if not is_disabled(t)]
    return [t for j, t in enumerate(runnable) if j % total == index]

"""`mpspec mutants`: the suite must catch every mutant backend (CTest: suite.mutants).

For each backend of harness/backends.toml with `mutant = true`, runs the suite against it (as
`mpspec run --backend <mutant> --no-build` would, in this process), limited to the test suites
its `must_fail` list names (e.g. `Barrier.*:BarrierProp.*`, the chapter of the mutated type;
`--whole-suite` runs everything), with the entry's `timeout_multiplier` if it has one.

A test *catches* a mutant when its result is unexpected and FAIL, TIMEOUT or CRASH
(CAUGHT_STATUSES; a mutant backend has no expectations file, so every FAIL is unexpected). A
mutant is *caught* when at least one test caught it, and *caught as required* when, besides,
every test of its `must_fail` list is among those that caught it. The kill rate is the
mutants caught over the mutants run. A mutant whose run could not be judged (its driver is
missing, the binary does not start, ...) counts as not caught.

Exit status: 0 every mutant caught as required (kill rate 100%); 1 a mutant not caught, or a
must_fail test that did not catch its mutant; 2 bad input (unknown --only name, invalid
registry); 3 the environment, when no mutant could be run at all (no build, say).
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional

from . import ROOT, backends, report, runner
from .build import default_build_dir
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError
from .gtest import CRASH, FAIL, TIMEOUT

CAUGHT_STATUSES = (FAIL, TIMEOUT, CRASH)


@dataclass
class MutantsOptions:
    build_dir: Optional[str] = None
    only: List[str] = field(default_factory=list)
    json: Optional[str] = None
    reports: Optional[str] = None  # a folder: <mutant>.json, the run's records (mpspec run --json)
    artifacts: Optional[str] = None  # a folder: <mutant>/ (default <build>/mpspec-artifacts)
    watchdog: Optional[float] = None
    timeout_multiplier: Optional[float] = None  # replaces the entries' own
    whole_suite: bool = False
    verbose: bool = False
    registry: Optional[str] = None
    root: str = ROOT


@dataclass
class MutantResult:
    name: str
    description: str
    must_fail: List[str]
    filter: Optional[str]
    timeout_multiplier: Optional[float]
    tests: int = 0  # tests run
    caught_by: List[tuple] = field(default_factory=list)  # (test, status)
    missed: List[tuple] = field(default_factory=list)  # must_fail tests that did not: (test, why)
    error: Optional[str] = None  # the run could not be judged
    error_status: int = 0
    closing: str = ""
    duration_s: float = 0.0

    @property
    def caught(self):
        return self.error is None and bool(self.caught_by)

    @property
    def as_required(self):
        return self.caught and not self.missed

    def verdict(self):
        if self.error is not None:
            return "ERROR"
        if not self.caught:
            return "NOT CAUGHT"
        return "OK" if not self.missed else "MUST_FAIL MISSED"

    def record(self):
        """The --json record of one mutant."""
        return {
            "mutant": self.name,
            "description": self.description,
            "filter": self.filter,
            "timeout_multiplier": self.timeout_multiplier,
            "tests": self.tests,
            "caught": self.caught,
            "caught_by": [{"test": t, "status": s} for t, s in self.caught_by],
            "must_fail": self.must_fail,
            "must_fail_missed": [{"test": t, "why": w} for t, w in self.missed],
            "caught_as_required": self.as_required,
            "verdict": self.verdict(),
            "error": self.error,
            "closing": self.closing,
            "duration_s": round(self.duration_s, 3),
        }


def suite_filter(tests):
    """The gtest filter of every test suite named in `tests` ("Suite.Name" items), in order."""
    suites = []
    for t in tests:
        suite = t.split(".", 1)[0]
        if suite and suite not in suites:
            suites.append(suite)
    return ":".join(s + ".*" for s in suites)


def judge(result, run):
    """Fills `result` (a MutantResult) from a finished runner.Run."""
    result.tests = len(run.results)
    result.caught_by = [(r.test, r.status) for r in run.results
                        if not r.expected and r.status in CAUGHT_STATUSES]
    caught = {t for t, _ in result.caught_by}
    status = {r.test: r.status for r in run.results}
    for t in result.must_fail:
        if t not in status:
            result.missed.append((t, "listed in must_fail, but not run (not in the suite?)"))
        elif t not in caught:
            result.missed.append((t, "it ended %s" % status[t]))
    result.closing = report.closing_line(run.results)
    return result


def check(name, entry, opts, build_dir, out):
    """Runs the suite against one mutant; returns its MutantResult."""
    scope = None if opts.whole_suite else (suite_filter(entry.must_fail) or None)
    multiplier = opts.timeout_multiplier or entry.timeout_multiplier
    result = MutantResult(name, entry.description, list(entry.must_fail), scope, multiplier)
    out.write("== %s: %s\n" % (name, entry.description or "(no description)"))
    out.write("   filter %s%s\n" % (scope or "(the whole suite)",
                                   ", timeout multiplier %g" % multiplier if multiplier else ""))
    out.flush()
    ropts = runner.RunOptions(
        backend=name, filter=scope, timeout_multiplier=multiplier, no_build=True,
        build_dir=build_dir, watchdog=opts.watchdog, verbose=opts.verbose,
        artifacts=os.path.join(opts.artifacts or os.path.join(build_dir, "mpspec-artifacts"),
                               name),
        registry=opts.registry, root=opts.root)
    t0 = time.monotonic()
    try:
        run = runner.run(ropts)
    except UserError as e:
        result.error, result.error_status = str(e), e.status
        result.duration_s = time.monotonic() - t0
        out.write("%s: ERROR: the run could not be judged: %s\n" % (name, e))
        return result
    result.duration_s = time.monotonic() - t0
    judge(result, run)
    write_latest = getattr(report, "write_latest", None)
    if write_latest:
        write_latest(run)  # <artifacts>/<mutant>/report.json, as `mpspec run` leaves it
    if opts.reports:
        report.write_json(run, os.path.join(opts.reports, "%s.json" % name))
    out.write("%s: %s (%d test(s), %.1f s)\n" % (name, result.closing, result.tests,
                                                   result.duration_s))
    by_status = {}
    for _, s in result.caught_by:
        by_status[s] = by_status.get(s, 0) + 1
    out.write("%s: caught by %d test(s)%s: %s\n" % (
        name, len(result.caught_by),
        " (%s)" % ", ".join("%s %d" % (s, by_status[s]) for s in CAUGHT_STATUSES if s in by_status)
        if by_status else "",
        ", ".join("%s %s" % (t, s) for t, s in result.caught_by) or "none"))
    if result.as_required:
        out.write("%s: OK: caught, and by every test of must_fail (%d)\n"
                  % (name, len(result.must_fail)))
    else:
        report.terminal(run, out)
        if not result.caught:
            out.write("%s: NOT CAUGHT: no test ended %s\n" % (name, "/".join(CAUGHT_STATUSES)))
        for t, why in result.missed:
            out.write("%s: NOT CAUGHT AS REQUIRED: %s did not catch it (%s)\n" % (name, t, why))
    out.flush()
    return result


def kill_rate(results):
    """(caught, total, percentage) of a list of MutantResult."""
    total = len(results)
    caught = sum(1 for r in results if r.caught)
    return caught, total, (100.0 * caught / total if total else 0.0)


def summary(results, out, wall_s):
    w = out.write
    nw = max([len("mutant")] + [len(r.name) for r in results])
    w("\n%-*s  %-10s %6s  %-9s  %s\n" % (nw, "mutant", "caught", "tests", "must_fail", "verdict"))
    for r in results:
        mf = ("%d/%d" % (len(r.must_fail) - len(r.missed), len(r.must_fail))
              if r.error is None else "-")
        caught = ("yes (%d)" % len(r.caught_by)) if r.caught else "no"
        w("%-*s  %-10s %6s  %-9s  %s\n" % (nw, r.name, caught, r.tests if r.error is None else "-",
                                          mf, r.verdict()))
    caught, total, rate = kill_rate(results)
    required = sum(1 for r in results if r.as_required)
    w("\na test catches a mutant when it ends %s (an unexpected result)\n"
      % ", ".join(CAUGHT_STATUSES))
    w("must_fail: %d of %d mutants caught by every test of their must_fail list\n"
      % (required, total))
    w("%d mutant(s) in %.1f s\n" % (total, wall_s))
    w("kill rate: %d of %d mutants caught (%s%%)\n" % (caught, total, _percent(rate)))


def _percent(rate):
    return "%.1f" % rate if rate != int(rate) else "%d" % rate


def write_json(results, path, wall_s):
    caught, total, rate = kill_rate(results)
    doc = {
        "caught_statuses": list(CAUGHT_STATUSES),
        "mutants": total,
        "caught": caught,
        "kill_rate": round(rate, 2),
        "caught_as_required": sum(1 for r in results if r.as_required),
        "ok": all(r.as_required for r in results),
        "duration_s": round(wall_s, 3),
        "results": [r.record() for r in results],
    }
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def select(registry, only):
    mutants = [(n, b) for n, b in registry.items() if b.mutant]
    if not mutants:
        raise UserError("no mutant backend (mutant = true) in the registry")
    if only:
        names = [n for n, _ in mutants]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise UserError("unknown mutant(s): %s; the mutants are: %s"
                            % (", ".join(unknown), ", ".join(names)), EXIT_USAGE)
        mutants = [(n, b) for n, b in mutants if n in only]
    return mutants


def main(opts, out=None):
    """Runs every selected mutant; returns the exit status."""
    out = out or sys.stdout
    t0 = time.monotonic()
    root = os.path.abspath(opts.root)
    registry_path = opts.registry or os.path.join(root, "harness", "backends.toml")
    registry = backends.load(registry_path)
    mutants = select(registry, opts.only)
    build_dir = os.path.abspath(opts.build_dir) if opts.build_dir else default_build_dir(root)
    if opts.artifacts:
        opts.artifacts = os.path.abspath(opts.artifacts)
    if opts.reports:
        opts.reports = os.path.abspath(opts.reports)
        os.makedirs(opts.reports, exist_ok=True)
    results = [check(n, b, opts, build_dir, out) for n, b in mutants]
    wall = time.monotonic() - t0
    summary(results, out, wall)
    if opts.json:
        write_json(results, opts.json, wall)
    out.flush()
    errors = [r for r in results if r.error is not None]
    if errors and len(errors) == len(results):
        # Nothing could run: an environment or input problem, not a verdict on the suite.
        raise UserError("no mutant could be run (first error: %s)" % errors[0].error,
                        errors[0].error_status or EXIT_FAILED)
    return EXIT_OK if all(r.as_required for r in results) else EXIT_FAILED

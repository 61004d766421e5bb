"""`mpspec run`: runs the conformance binary against one backend and collects the results.

The binary runs in its own session (so that the binary, its driver and the driver's actors
can be stopped together) under an overall watchdog. Its console output is read live: it goes
to `<artifacts>/run.log`, and tells which test was running if the binary dies. When the binary
dies in the middle of the run (a crash of the suite itself), that test is reported CRASH and
the run resumes with the tests that had not run yet; when the watchdog fires, that test and
every test not yet run are reported TIMEOUT.

While the binary runs, a progress display (`progress.py`) counts the tests as their closing
lines arrive. With `--shard I/N` the binary gets GoogleTest's sharding variables and runs
its part of the selected tests; the harness computes the same part from the binary's test
list (`gtest.shard_of`) to know which results to expect.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from . import ROOT, backends, clauses, expectations, gtest
from .build import conformance_binary, ensure_build, run_setup, say
from .errors import EnvError, UserError
from .report import short_path as report_short
from .gtest import CRASH, FAIL, TIMEOUT, UNRESOLVED
from .progress import Progress

DEFAULT_WATCHDOG = 1200.0  # seconds for the whole binary run, times the timeout multiplier
LIST_TIMEOUT = 120.0
# GoogleTest's sharding protocol: the binary runs the tests j (counting the tests the filter
# selects, in order) with j % GTEST_TOTAL_SHARDS == GTEST_SHARD_INDEX (0-based).
SHARD_VARS = ("GTEST_TOTAL_SHARDS", "GTEST_SHARD_INDEX")
SHARD_HELP = ("run only part I of N of the selected tests (I is 1-based: 1/4 .. 4/4), through "
              "GoogleTest's sharding (GTEST_SHARD_INDEX=I-1, GTEST_TOTAL_SHARDS=N); the N "
              "parts together run every selected test exactly once")


@dataclass
class TestResult:
    test: str
    backend: str
    status: str  # PASS FAIL XFAIL XPASS UNSUPPORTED UNRESOLVED TIMEOUT CRASH
    raw_status: str  # before expectations
    expected: bool  # False: this result fails the run
    expectation: Optional[expectations.Expectation]
    clauses: List[str]
    duration_s: float
    message: str
    artifacts: List[str]
    output: str = ""

    def record(self):
        """The --json record."""
        e = self.expectation
        return {
            "test": self.test,
            "backend": self.backend,
            "status": self.status,
            "expected": self.expected,
            "expectation": None if e is None else {"status": e.status, "clause": e.clause,
                                                   "reason": e.reason},
            "clauses": self.clauses,
            "duration_s": round(self.duration_s, 3),
            "message": self.message,
            "artifacts": self.artifacts,
        }


@dataclass
class Run:
    backend: str
    driver: str
    profile: Optional[str]
    results: List[TestResult]
    levels: dict  # label -> Clause (the spec)
    errors: List[str] = field(default_factory=list)  # fail the run (stale expectations, ...)
    warnings: List[str] = field(default_factory=list)
    log: Optional[str] = None
    artifacts_dir: Optional[str] = None
    duration_s: float = 0.0
    shard: Optional[Tuple[int, int]] = None  # (I, N), I 1-based, when the run was --shard I/N

    @property
    def ok(self):
        return not self.errors and all(r.expected for r in self.results)

    @property
    def shard_label(self):
        """'shard 2/4', or None when the run was not sharded."""
        return None if self.shard is None else "shard %d/%d" % self.shard


# --------------------------------------------------------------------------- the binary


class _Reader(threading.Thread):
    """Reads the binary's merged stdout/stderr line by line."""

    def __init__(self, stream, parser, log, echo):
        super().__init__(daemon=True)
        self.stream, self.parser, self.log, self.echo = stream, parser, log, echo
        self.lines = []

    def run(self):
        for raw in iter(self.stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            self.parser.feed(line)
            if self.log:
                self.log.write(line)
                self.log.flush()
            if self.echo:
                sys.stdout.write(line)
                sys.stdout.flush()


def _kill_group(proc):
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _describe_exit(rc):
    if rc is None:
        return "did not exit"
    if rc < 0:
        try:
            return "was killed by signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "was killed by signal %d" % -rc
    return "exited with status %d" % rc


def list_tests(binary, gfilter, env, cwd):
    cmd = [binary, "--gtest_list_tests"] + (["--gtest_filter=" + gfilter] if gfilter else [])
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                           timeout=LIST_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise EnvError("`%s` did not finish within %d s" % (" ".join(cmd), LIST_TIMEOUT))
    except OSError as e:
        raise EnvError("cannot run the conformance binary %s: %s" % (binary, e))
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise EnvError("`%s` %s:\n%s" % (" ".join(cmd), _describe_exit(p.returncode), out.strip()))
    return gtest.parse_test_list(out)


@dataclass
class _Attempt:
    rc: Optional[int]
    timed_out: bool
    report: dict  # name -> RawResult (JSON report, may be empty)
    console: gtest.Console
    output: str


def _attempt(binary, gfilter, env, cwd, timeout, log, echo, workdir, n, progress=None):
    report_path = os.path.join(workdir, "report-%d.json" % n)
    cmd = [binary, "--gtest_color=no", "--gtest_output=json:" + report_path]
    if gfilter:
        cmd.append("--gtest_filter=" + gfilter)
    if log:
        shard = " ".join("%s=%s" % (k, env[k]) for k in SHARD_VARS if k in env)
        log.write("$ %s%s\n" % (shard + " " if shard else "", " ".join(cmd)))
    if progress is not None:
        parser = gtest.ConsoleParser(on_start=progress.started, on_end=progress.ended)
    else:
        parser = gtest.ConsoleParser()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    except OSError as e:
        raise EnvError("cannot run the conformance binary %s: %s" % (binary, e))
    reader = _Reader(proc.stdout, parser, log, echo)
    reader.start()
    timed_out = False
    deadline = time.monotonic() + max(timeout, 0.1)
    try:
        while True:  # in slices of a second, for the progress display's clock
            try:
                proc.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    timed_out = True
                    _kill_group(proc)
                    break
                if progress is not None:
                    progress.tick()
    except KeyboardInterrupt:
        _kill_group(proc)
        raise
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    reader.join(timeout=10)
    report = {}
    if not timed_out and os.path.exists(report_path):
        try:
            with open(report_path, encoding="utf-8", errors="replace") as f:
                report = gtest.parse_json_report(f.read())
        except ValueError:
            report = {}
    return _Attempt(proc.returncode, timed_out, report, parser.console, "".join(reader.lines))


def _abs_artifacts(paths, cwd):
    return [p if os.path.isabs(p) else os.path.normpath(os.path.join(cwd, p)) for p in paths]


def _from_attempt(a, watchdog, cwd):
    """RawResults of one attempt: the JSON report refined by the console, or the console alone."""
    out = {}
    names = list(a.report) + [n for n in a.console.order if n not in a.report]
    for name in names:
        ct = a.console.tests.get(name)
        text = ct.text if ct else ""
        r = a.report.get(name)
        if r is None:  # no JSON report: the binary died or was stopped
            if ct is None:
                continue
            if ct.ended == "OK":
                r = gtest.RawResult(name, gtest.PASS, ct.duration_s)
            elif ct.ended == "SKIPPED":
                r = gtest.RawResult(name, UNRESOLVED, ct.duration_s, skipped=True)
            elif ct.ended == "FAILED":
                r = gtest.RawResult(name, gtest.classify_failure([text]), ct.duration_s,
                                    gtest.clean_failure(text))
            elif a.timed_out:
                r = gtest.RawResult(name, TIMEOUT, watchdog,
                                    "TIMEOUT: the overall watchdog (%g s) stopped the conformance "
                                    "binary during this test" % watchdog)
            else:
                r = gtest.RawResult(name, CRASH, ct.duration_s,
                                    "CRASH: the conformance binary %s during this test"
                                    % _describe_exit(a.rc))
            if text.strip() and r.status in (TIMEOUT, CRASH):
                r.message += "\nlast output:\n" + "\n".join(text.strip().splitlines()[-30:])
        if r.skipped:
            reason = gtest.skip_reason(text)
            r.status = gtest.classify_skip(reason)
            r.message = reason or "skipped without a message"
        r.output = text
        r.artifacts = _abs_artifacts(gtest.artifacts_in(r.message + "\n" + text), cwd)
        if r.status in (FAIL, TIMEOUT, CRASH) and gtest.uses_rapidcheck(text + r.message):
            extra = []
            if a.console.seed:
                extra.append("RapidCheck configuration: " + a.console.seed)
            extra.extend("reproduce with: %s ./mpspec run --filter %s" % (rp, name)
                         for rp in a.console.reproduce)
            if extra:
                r.message = (r.message + "\n" + "\n".join(extra)).strip()
        out[name] = r
    return out


class ProgressFeed:
    """Connects the console parser and run_binary to a Progress: counts each test of
    `selected` once, as unexpected when its result will fail the run (the expectations
    applied as `finalize` applies them)."""

    def __init__(self, progress, selected, expected):
        self.progress, self.expected = progress, expected
        self.wanted = set(selected)
        self.counted = set()
        self._lock = threading.Lock()

    def _count(self, name, raw_status):
        with self._lock:
            if name not in self.wanted or name in self.counted:
                return
            self.counted.add(name)
        _, ok = expectations.apply(raw_status, self.expected.get(name))
        self.progress.test_ended(unexpected=not ok)

    def started(self, ct):
        self.progress.test_started(ct.name)

    def ended(self, ct):
        if ct.ended == "OK":
            raw = gtest.PASS
        elif ct.ended == "FAILED":
            raw = gtest.classify_failure([ct.text])
        else:
            raw = UNRESOLVED  # a skip: never unexpected
        self._count(ct.name, raw)

    def result(self, r):
        """A result the console did not close (crash, watchdog): counted if not yet."""
        self._count(r.name, r.status)

    def tick(self):
        self.progress.tick()


def _shard_mismatch(a, selected):
    """After the sharded attempt: how GoogleTest's choice of tests differs from `selected`
    (the harness's computation), or None. A test outside `selected` is a disagreement
    whatever happened; a test of `selected` left out only when the binary ended normally
    (after a crash or the watchdog, the tests not reached are run next anyway)."""
    ran = set(a.report) | set(a.console.order)
    want = set(selected)
    extra = sorted(ran - want)
    ended_normally = not a.timed_out and a.rc in (0, 1)
    missing = sorted(want - ran) if ended_normally else []
    if not extra and not missing:
        return None
    parts = []
    if extra:
        parts.append("ran %d test(s) of another shard (ignored): %s"
                     % (len(extra), " ".join(extra[:5])))
    if missing:
        parts.append("left out %d test(s) of this shard (run next): %s"
                     % (len(missing), " ".join(missing[:5])))
    return "GoogleTest's sharding disagrees with the harness's: it " + "; it ".join(parts)


def run_binary(binary, selected, gfilter, env, cwd, watchdog, log=None, echo=False,
               shard_env=None, progress=None, warnings=None):
    """Runs `selected` tests (resuming after crashes); returns {name: RawResult} for all.

    `shard_env` ({GTEST_TOTAL_SHARDS, GTEST_SHARD_INDEX}) is added to the first attempt's
    environment, whose gtest filter is `gfilter`: `selected` must then be that shard's part
    of the filter's tests. Resumed attempts name the remaining tests and are not sharded.
    `progress`: a ProgressFeed. `warnings`: a list that gets what the caller should say."""
    results = {}
    remaining = list(selected)
    deadline = time.monotonic() + watchdog
    with tempfile.TemporaryDirectory(prefix="mpspec-run-") as workdir:
        n = 0
        while remaining:
            n += 1
            f = gfilter if n == 1 else ":".join(remaining)
            e = dict(env, **shard_env) if shard_env and n == 1 else env
            a = _attempt(binary, f, e, cwd, deadline - time.monotonic(), log, echo, workdir, n,
                         progress)
            if shard_env and n == 1:
                mismatch = _shard_mismatch(a, selected)
                if mismatch:
                    if warnings is not None:
                        warnings.append(mismatch)
                    if log:
                        log.write("[mpspec] %s\n" % mismatch)
            got = _from_attempt(a, watchdog, cwd)
            # A resumed run's report can only hold tests of `remaining`; anything else is ignored.
            for name, r in got.items():
                if name in remaining and name not in results:
                    results[name] = r
            before = len(remaining)
            remaining = [t for t in remaining if t not in results]
            if progress is not None:  # results the console did not close (a crash)
                for r in results.values():
                    progress.result(r)
            if not remaining:
                break
            if a.timed_out:
                for t in remaining:
                    results[t] = gtest.RawResult(t, TIMEOUT, 0.0,
                                                 "TIMEOUT: not run: the overall watchdog (%g s) "
                                                 "expired first" % watchdog)
                break
            # A sharded attempt may have run only tests of another shard (see _shard_mismatch):
            # the remaining ones are run next. Otherwise no result at all: the binary cannot
            # run tests.
            ran_others = bool(n == 1 and shard_env and (a.report or a.console.order))
            if len(remaining) == before and not ran_others:
                if n == 1:
                    raise EnvError("the conformance binary %s before running any test:\n%s"
                                   % (_describe_exit(a.rc), a.output.strip()[-4000:]))
                for t in remaining:
                    results[t] = gtest.RawResult(t, CRASH, 0.0,
                                                 "CRASH: not run: the conformance binary %s "
                                                 "before reaching it" % _describe_exit(a.rc))
                break
            if log:
                log.write("[mpspec] the binary %s; resuming with %d test(s)\n"
                          % (_describe_exit(a.rc), len(remaining)))
    return results


# ------------------------------------------------------------------------------------ run


@dataclass
class RunOptions:
    backend: Optional[str] = None
    driver: Optional[str] = None
    filter: Optional[str] = None
    start_method: Optional[str] = None
    timeout_multiplier: Optional[float] = None
    seed: Optional[int] = None
    no_build: bool = False
    build_dir: Optional[str] = None
    expectations: Optional[str] = None
    artifacts: Optional[str] = None
    watchdog: Optional[float] = None
    verbose: bool = False
    registry: Optional[str] = None
    root: str = ROOT
    shard: Optional[Tuple[int, int]] = None  # (I, N): part I (1-based) of N, see parse_shard
    progress: Optional[bool] = None  # None: a live line on a terminal, else plain lines
    progress_stream: Optional[object] = None  # default: sys.stderr at the time of the run


def parse_shard(text):
    """'I/N' -> (I, N), 1 <= I <= N (I is 1-based). Raises ValueError saying what is wrong."""
    m = re.fullmatch(r"\s*(-?\d+)\s*/\s*(-?\d+)\s*", text or "")
    if not m:
        raise ValueError("expected I/N, e.g. 1/4 (part I of N, I from 1 to N), not %r" % text)
    return check_shard(int(m.group(1)), int(m.group(2)))


def check_shard(i, n):
    """(I, N) if 1 <= I <= N, else ValueError."""
    if n < 1:
        raise ValueError("the number of shards N must be at least 1, not %d" % n)
    if not 1 <= i <= n:
        raise ValueError("the shard I must be from 1 to %d (I is 1-based), not %d" % (n, i))
    return i, n


def resolve_filter(pattern, tests):
    """A --filter value -> a gtest filter. Clause labels / prefixes select the tests naming a
    matching clause (source scan); anything else is passed to gtest as is."""
    if not pattern:
        return None
    if clauses.is_clause_filter(pattern):
        names = clauses.tests_for_clauses(tests, pattern)
        if not names:
            raise UserError("no test names a clause matching '%s' (see ./mpspec spec)" % pattern)
        return ":".join(names)
    return pattern


def _rc_params(seed):
    rc = os.environ.get("RC_PARAMS", "")
    if seed is None:
        return rc
    words = [w for w in rc.split() if not w.startswith("seed=")]
    return " ".join(words + ["seed=%d" % seed])


def run(opts):
    t0 = time.monotonic()
    root = os.path.abspath(opts.root)
    registry_path = opts.registry or os.path.join(root, "harness", "backends.toml")
    build_dir = os.path.abspath(opts.build_dir) if opts.build_dir else None
    if build_dir is None:
        from .build import default_build_dir
        build_dir = default_build_dir(root)
    python = sys.executable or "python3"
    shard = None
    if opts.shard is not None:
        try:
            shard = check_shard(*opts.shard)
        except ValueError as e:
            raise UserError("--shard: %s" % e)

    # The backend: registry entry, or an ad-hoc --driver command.
    if opts.driver:
        entry = backends.Backend("custom", opts.driver, "ad-hoc driver (--driver)")
        name, command = "custom", opts.driver
    else:
        registry = backends.load(registry_path)
        entry = backends.lookup(registry, opts.backend or "reference")
        name = entry.name
        command = entry.driver_command(build_dir, root, python)
    if not opts.driver:
        backends.require_available(entry, build_dir, root, python)
    # Expectations: --expectations, else the backend's file(s); a later file's entry replaces
    # an earlier one for the same test (a discovered backend's per-version overrides).
    exp_paths = ([opts.expectations] if opts.expectations
                 else entry.expectations_paths(build_dir, root, python))
    per_file = [(p, expectations.load(p)) for p in exp_paths]
    expected = {}
    for _, entries in per_file:
        expected.update(entries)

    if not opts.no_build:
        run_setup()
        ensure_build(build_dir, verbose=opts.verbose, root=root)
    binary = conformance_binary(build_dir)
    if not os.path.exists(binary):
        raise EnvError("no conformance binary at %s; build it first (./mpspec run without "
                       "--no-build, or ./mpspec test)" % binary)
    missing = backends.missing_files(command, build_dir, root)
    if missing:
        raise EnvError("the driver of backend '%s' refers to missing file(s): %s%s"
                       % (name, ", ".join(missing),
                          " (not built?)" if any(m.startswith(build_dir) for m in missing) else ""))

    # What the spec and the sources say (levels for the summary, clauses of crashed tests).
    spec_clauses, _ = clauses.scan_spec(root)
    source_tests = clauses.scan_tests(root)
    source_clauses = {t.name: t.clauses for t in source_tests}
    gfilter = resolve_filter(opts.filter or entry.filter, source_tests)

    multiplier = opts.timeout_multiplier
    if multiplier is None and os.environ.get("MPSPEC_TIMEOUT_MULTIPLIER"):
        try:
            multiplier = float(os.environ["MPSPEC_TIMEOUT_MULTIPLIER"])
        except ValueError:
            raise UserError("MPSPEC_TIMEOUT_MULTIPLIER must be a number")
    watchdog = opts.watchdog or DEFAULT_WATCHDOG * max(1.0, multiplier or 1.0)
    artifacts = os.path.abspath(opts.artifacts or os.path.join(root, "mpspec-artifacts", name))
    os.makedirs(artifacts, exist_ok=True)

    env = dict(os.environ)
    for k in SHARD_VARS:  # inherited ones would shard behind the harness's back: --shard only
        env.pop(k, None)
    env["MPSPEC_DRIVER"] = command
    env["MPSPEC_ARTIFACTS"] = artifacts
    if multiplier is not None:
        env["MPSPEC_TIMEOUT_MULTIPLIER"] = repr(multiplier)
    start_method = opts.start_method or entry.start_method
    if start_method:
        env["MPSPEC_START_METHOD"] = start_method
    if entry.context:
        env["MPSPEC_CONTEXT"] = entry.context
    rc_params = _rc_params(opts.seed)
    if rc_params:
        env["RC_PARAMS"] = rc_params

    all_tests = list_tests(binary, None, env, root)
    filtered = list_tests(binary, gfilter, env, root) if gfilter else all_tests
    if not filtered:
        raise UserError("the filter '%s' selects no test (./mpspec spec lists them)"
                        % (opts.filter or entry.filter))
    shard_env = None
    selected = filtered
    if shard:
        # The binary picks its part from the filter's tests (GoogleTest's rule); the harness
        # computes the same part from the same list, to know which results to expect.
        selected = gtest.shard_of(filtered, shard[0] - 1, shard[1])
        shard_env = {"GTEST_TOTAL_SHARDS": str(shard[1]), "GTEST_SHARD_INDEX": str(shard[0] - 1)}

    errors, warnings = [], []
    for path, entries in per_file:
        # Known tests: every test of the binary (and of the sources), whatever the filter and
        # the shard: an entry for a test that this filter or shard leaves out is not stale.
        errs, warns = expectations.check_entries(
            entries, set(all_tests) | set(source_clauses), source_clauses,
            os.path.relpath(path, os.getcwd()))
        errors += errs
        warnings += warns
    not_built = [t.name for t in source_tests if t.name not in all_tests]
    if not_built:
        warnings.append("in the sources but not in the binary (rebuild?): " + ", ".join(not_built))

    say("backend %s: %s" % (name, command))
    shard_note = ""
    if shard:
        shard_note = " of %d, shard %d/%d (GTEST_SHARD_INDEX=%d GTEST_TOTAL_SHARDS=%d)" % (
            len(filtered), shard[0], shard[1], shard[0] - 1, shard[1])
    say("running %d test(s)%s%s; artifacts in %s" % (
        len(selected), shard_note, " (filter %s)" % opts.filter if opts.filter else "",
        report_short(artifacts)))
    stream = opts.progress_stream or sys.stderr
    show = opts.progress if opts.progress is not None else not opts.verbose
    prog = (Progress(len(selected), stream, label="shard %d/%d" % shard if shard else "")
            if show and selected else None)
    log_path = os.path.join(artifacts, "run.log")
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            raw = run_binary(binary, selected, gfilter, env, root, watchdog, log, opts.verbose,
                             shard_env=shard_env,
                             progress=ProgressFeed(prog, selected, expected) if prog else None,
                             warnings=warnings)
    finally:
        if prog:
            prog.close()

    results = finalize(raw, selected, expected, source_clauses, name)
    return Run(name, command, entry.profile, results, spec_clauses, errors, warnings, log_path,
               artifacts, time.monotonic() - t0, shard)


def finalize(raw, selected, expected, source_clauses, backend):
    """Applies the expectations to raw results; returns TestResults in `selected` order."""
    results = []
    for t in selected:
        r = raw[t]
        e = expected.get(t)
        status, ok = expectations.apply(r.status, e)
        message = r.message
        if e is not None and status != r.status and ok:
            message = ("expected (%s): %s\n%s" % ("/".join(e.status), e.reason, message)).strip()
        elif e is not None and not ok:
            got = "it passed" if status == gtest.XPASS else "it ended %s" % status
            message = ("the expectations list %s (%s), but %s; update the entry\n%s"
                       % ("/".join(e.status), e.reason, got, message)).strip()
        labels = r.clauses if r.clauses is not None else source_clauses.get(t, [])
        results.append(TestResult(t, backend, status, r.status, ok, e, labels, r.duration_s,
                                  message, r.artifacts, r.output))
    return results

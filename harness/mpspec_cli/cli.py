"""The `mpspec` command line."""

import argparse
import os
import sys

from . import ROOT, __version__, backends, build, fuzzcmd, report, runner, speccmd
from . import mutantscmd, repeat
from . import explain
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserError

EXIT_STATUSES = """exit status:
  0  every result was expected (run); every MUST clause has a test (spec)
  1  an unexpected result: FAIL, TIMEOUT or CRASH not in the expectations file, or XPASS;
     an expectations entry naming a test that does not exist (run); a traceability error (spec)
  2  bad input: unknown backend or preset, bad option value, invalid registry or expectations
  3  the environment: package set-up or build failed, conformance binary or driver missing
  `mpspec test` exits with the status of the cmake / ctest step that failed (0 when all pass).
"""

RUN_EPILOG = """--filter takes a gtest filter ('Lock.*', 'Lock.Timeout*:LockProp.*', '-LockProp.*') or
clause labels / chapter prefixes ('lock', 'lock.release', '[lock.release.unheld]', several
separated by commas): these select every test that names a matching clause.

Statuses: PASS, FAIL, UNSUPPORTED (backend lacks a type, method or feature), UNRESOLVED (the run
proved nothing), TIMEOUT (a watchdog fired), CRASH (the driver died), and through the backend's
expectations file XFAIL (a listed failure happened) and XPASS (a listed failure did not happen;
fails the run).

environment: MPSPEC_NO_SETUP=1 skips harness/setup.sh; RC_PARAMS is passed to RapidCheck
(replay a counterexample with RC_PARAMS="reproduce=..." ./mpspec run --filter LockProp).

""" + EXIT_STATUSES


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number, not %r" % text)
    return v


def _repeat_count(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1, not %d" % v)
    return v


def _shard(text):
    try:
        return runner.parse_shard(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def _seed(text):
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def _report_sources(p):
    """--reports and --build-dir: where `spec --html` and `explain` find verdicts."""
    p.add_argument("--reports", nargs="+", action="extend", default=[], metavar="FILE",
                   help="JSON reports of `mpspec run` (or folders of them) to read besides "
                        "mpspec-artifacts/*/report.json")
    p.add_argument("--build-dir", metavar="DIR",
                   help="also read the CTest runs' reports, DIR/mpspec-reports/*.json")


def parser():
    p = argparse.ArgumentParser(
        prog="mpspec",
        description="Build the mpspec conformance suite, run it against a backend, report per "
                    "clause of the spec.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with `./mpspec run` (the reference backend) or `./mpspec test` (everything, "
               "through CTest).\n\n" + EXIT_STATUSES)
    p.add_argument("--version", action="version", version="mpspec " + __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run the conformance suite against one backend",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=RUN_EPILOG,
                       description="Install missing packages, build (incrementally), run the "
                                   "conformance suite against a backend, and report per test and "
                                   "per clause.")
    which = r.add_mutually_exclusive_group()
    which.add_argument("--backend", metavar="NAME",
                       help="a backend of harness/backends.toml (default: reference)")
    which.add_argument("--driver", metavar="CMD",
                       help="an ad-hoc driver command line instead of a registered backend")
    r.add_argument("--filter", metavar="PATTERN", help="a gtest filter, or clause labels / prefixes")
    r.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    r.add_argument("--json", metavar="FILE", help="write one JSON record per test")
    r.add_argument("--html", metavar="FILE",
                   help="write a self-contained HTML report (clause matrix, tests, timelines of "
                        "the failing tests' histories)")
    r.add_argument("--start-method", choices=backends.START_METHODS,
                   help="start method the suite asks for (MPSPEC_START_METHOD)")
    r.add_argument("--timeout-multiplier", type=_positive_float, metavar="X",
                   help="scale every timing class (and the watchdog) by X")
    r.add_argument("--seed", type=_seed, metavar="N", help="RapidCheck seed (RC_PARAMS seed=N)")
    r.add_argument("--no-build", action="store_true",
                   help="skip the set-up script and the build; use the existing build")
    r.add_argument("--build-dir", metavar="DIR",
                   help="build tree to use (default: the 'default' preset's, build/default)")
    r.add_argument("--expectations", metavar="FILE",
                   help="expectations file to apply instead of the backend's")
    r.add_argument("--artifacts", metavar="DIR",
                   help="where failing histories and run.log go (default: mpspec-artifacts/<backend>)")
    r.add_argument("--watchdog", type=_positive_float, metavar="SECONDS",
                   help="overall limit for the suite (default: %d s times the multiplier)"
                        % runner.DEFAULT_WATCHDOG)
    r.add_argument("-v", "--verbose", action="store_true",
                   help="show the build output and the suite's console output")
    r.add_argument("--shard", type=_shard, metavar="I/N", help=runner.SHARD_HELP)
    r.add_argument("--repeat", type=_repeat_count, metavar="N",
                   help="run the suite N times (build once; artifacts in <artifacts>/repeat-NN; "
                        "--json records get a 'repeat' field, --junit / --html FILE.EXT "
                        "become FILE.repeat-NN.EXT); report the tests whose verdict changed; "
                        "exit 1 when one did or a repeat had an unexpected result")

    t = sub.add_parser("test", help="configure, build and run every test through CTest",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Install missing packages, then `cmake --workflow --preset "
                                   "PRESET` (configure + build + CTest). Arguments after `--` go "
                                   "to ctest (the three steps then run one by one).",
                       epilog=EXIT_STATUSES)
    t.add_argument("--preset", default="default",
                   help="CMake preset: default, debug, asan, tsan (default: default)")
    t.add_argument("ctest_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    s = sub.add_parser("spec", help="list every clause with its tests; fail on untested MUST clauses",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Scan spec/**/*.md for clauses and conformance/tests for the "
                                   "tests that name them. Fails when a MUST clause has no test, "
                                   "or a test names a label that is not a clause (or is withdrawn).",
                       epilog=EXIT_STATUSES)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--html", metavar="FILE",
                   help="also write the whole spec as one self-contained HTML page: table of "
                        "contents, an anchor per clause (FILE#lock.release.unheld), its tests "
                        "and each backend's latest verdict (prints only the summary)")
    _report_sources(s)

    x = sub.add_parser("explain", help="one clause: text, model, citations, tests, latest verdicts",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Print a clause of the spec (`lock.release.unheld` or "
                                   "`[lock.release.unheld]`): its text, level, profile and "
                                   "source, the model and checker lines that encode it, where "
                                   "else it is cited (libmp, adapters, expectations, ...), the "
                                   "tests that name it, and each backend's latest verdict (the "
                                   "worst status of those tests in its newest JSON report). A "
                                   "chapter prefix (`lock.release`, or `lock.release.`) lists "
                                   "its clauses.",
                       epilog="reports: mpspec-artifacts/*/report.json, with --build-dir also "
                              "DIR/mpspec-reports/*.json and DIR/mpspec-artifacts/*/report.json, "
                              "and the --reports files; the newest per backend counts.\n\n"
                              "exit status: 0 shown; 2 unknown label (with close matches) or a "
                              "--reports file that is not a report")
    x.add_argument("label", metavar="LABEL", help="a clause label or a chapter prefix")
    x.add_argument("--json", action="store_true", help="machine-readable output")
    _report_sources(x)

    z = sub.add_parser("fuzz", help="build libmp's libFuzzer targets (clang) and run each for a while",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Configure (once) and build build/fuzz with clang and libFuzzer "
                                   "(ASan + UBSan), then run each fuzz target for --seconds on its "
                                   "seed corpus in fixtures/fuzz/. A crash is copied to "
                                   "fixtures/fuzz/crashes/<target>/. See reference/fuzz/README.md.",
                       epilog="exit status: 0 no target crashed; 1 a target crashed (or ran out of "
                              "memory or time on an input); 2 bad input; 3 the environment "
                              "(no clang, build failed)")
    z.add_argument("--seconds", type=int, default=fuzzcmd.DEFAULT_SECONDS, metavar="N",
                   help="how long each target runs (default: %d)" % fuzzcmd.DEFAULT_SECONDS)
    z.add_argument("--target", metavar="T",
                   help="one target: %s (default: all)" % ", ".join(fuzzcmd.TARGETS))
    z.add_argument("--build-dir", metavar="DIR", help="the clang build tree (default: build/fuzz)")
    z.add_argument("--no-build", action="store_true", help="use the existing build as it is")
    z.add_argument("-v", "--verbose", action="store_true",
                   help="show the build output and libFuzzer's output")

    m = sub.add_parser("mutants", help="run the suite against every mutant backend; kill rate",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run, against each mutant backend of harness/backends.toml "
                                   "(mutant = true), the test suites its must_fail list names, "
                                   "with an existing build (nothing is built). A test catches a "
                                   "mutant when it ends FAIL, TIMEOUT or CRASH; prints which tests "
                                   "caught each mutant, whether every must_fail test did, and the "
                                   "kill rate (mutants caught / mutants).",
                       epilog="exit status: 0 every mutant caught, by every test of its must_fail "
                              "list (kill rate 100%); 1 a mutant not caught, or a must_fail test "
                              "that did not catch it; 2 bad input (unknown mutant); 3 the "
                              "environment (no mutant could run: no build?)")
    m.add_argument("--build-dir", metavar="DIR",
                   help="build tree with the suite and the mutant driver (default: build/default)")
    m.add_argument("--only", nargs="+", action="extend", default=[], metavar="NAME",
                   help="run only these mutants (repeatable)")
    m.add_argument("--json", metavar="FILE", help="write the per-mutant verdicts and the kill rate")
    m.add_argument("--reports", metavar="DIR",
                   help="write each mutant run's records (as run --json) to DIR/<mutant>.json")
    m.add_argument("--artifacts", metavar="DIR",
                   help="each mutant's histories and run.log go to DIR/<mutant> (default: "
                        "<build-dir>/mpspec-artifacts)")
    m.add_argument("--watchdog", type=_positive_float, metavar="SECONDS",
                   help="overall limit of each mutant's run (as run --watchdog)")
    m.add_argument("--timeout-multiplier", type=_positive_float, metavar="X",
                   help="for every mutant, instead of its entry's timeout_multiplier")
    m.add_argument("--whole-suite", action="store_true",
                   help="run every test against each mutant, not only the suites of its must_fail")
    m.add_argument("-v", "--verbose", action="store_true", help="show the suite's console output")

    rp = sub.add_parser("report", help="merge JSON reports of runs into one clause x backend matrix",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Read JSON reports (run --json, or <artifacts>/report.json of "
                                    "each run), one per backend or one per machine of a CI "
                                    "matrix, and merge them: a column per backend (per backend and "
                                    "report when two reports have the same backend), a row per "
                                    "clause, each cell the worst status of the clause's tests. "
                                    "Prints the matrix (or, with --html / --json, a line per "
                                    "column).",
                        epilog="A report given as LABEL=FILE names its columns `backend @ LABEL` "
                               "when needed; else the label is the shortest tail of the path that "
                               "tells the reports apart. Histories named by the records are looked "
                               "for as recorded, then next to the report (and in its histories/).\n\n"
                               "exit status: 0 the reports were merged (whatever their results); "
                               "2 bad input (a missing or malformed report)")
    rp.add_argument("reports", nargs="+", metavar="REPORT", help="JSON report, or LABEL=REPORT")
    rp.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    rp.add_argument("--json", metavar="FILE",
                    help="write the merged records (backend = the column's name), a report "
                         "`mpspec report` reads back")
    rp.add_argument("--title", metavar="TEXT", help="title of the HTML page (default: mpspec report)")

    b = sub.add_parser("backends", help="list the backends of harness/backends.toml")
    b.add_argument("--build-dir", metavar="DIR", help="build tree the driver commands refer to")
    return p


def cmd_run(a):
    opts = runner.RunOptions(
        backend=a.backend, driver=a.driver, filter=a.filter, start_method=a.start_method,
        timeout_multiplier=a.timeout_multiplier, seed=a.seed, no_build=a.no_build,
        build_dir=a.build_dir, expectations=a.expectations, artifacts=a.artifacts,
        watchdog=a.watchdog, verbose=a.verbose, shard=a.shard)
    if a.repeat is not None:
        return repeat.main(opts, a.repeat, junit=a.junit, json_path=a.json, html=a.html,
                           out=sys.stdout)
    run = runner.run(opts)
    report.write_latest(run)  # <artifacts>/report.json, always
    if a.junit:
        report.write_junit(run, a.junit)
    if a.json:
        report.write_json(run, a.json)
    if a.html:
        report.write_html(run, a.html)
    report.terminal(run, sys.stdout)
    return EXIT_OK if run.ok else EXIT_FAILED


def cmd_test(a):
    extra = list(a.ctest_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    build.check_preset(a.preset)
    build.run_setup()
    return build.run_tests(a.preset, extra)


def cmd_report(a):
    from . import clauses, html, merge
    sources = merge.load_all(a.reports)
    try:
        spec, _ = clauses.scan_spec(ROOT)  # clause order, levels and text
    except UserError:
        spec = {}
    matrix = merge.build(sources, spec, title=a.title or "mpspec report")
    if a.json:
        merge.write_json(matrix, a.json)
    if a.html:
        html.write(matrix, a.html)
    merge.terminal(matrix, sys.stdout, table=not (a.html or a.json))
    for path in (a.json, a.html):
        if path:
            print("wrote %s" % path)
    return EXIT_OK


def cmd_backends(a):
    path = os.path.join(ROOT, "harness", "backends.toml")
    registry = backends.load(path)
    build_dir = os.path.abspath(a.build_dir) if a.build_dir else build.default_build_dir()
    py = sys.executable or "python3"
    for name, b in registry.items():
        kind = " (mutant)" if b.mutant else ""
        print("%s%s: %s" % (name, kind, b.description or "(no description)"))
        cmd = b.driver_command(build_dir, ROOT, py)
        missing = backends.missing_files(cmd, build_dir, ROOT)
        print("  driver:       %s%s" % (cmd, "   (missing: not built?)" if missing else ""))
        exps = b.expectations_paths(build_dir, ROOT, py)
        print("  expectations: %s" % (" + ".join(os.path.relpath(e, ROOT) for e in exps)
                                      if exps else "none"))
        if b.profile:
            print("  profile:      %s" % b.profile)
        if b.start_method:
            print("  start method: %s" % b.start_method)
        if b.must_fail:
            print("  must fail:    %s" % ", ".join(b.must_fail))
        why = b.why_unavailable(build_dir, ROOT, py)
        if why:
            print("  unavailable:  %s" % why)
    return EXIT_OK


def main(argv=None):
    p = parser()
    a = p.parse_args(argv)
    if not a.command:
        p.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if a.command == "run":
            return cmd_run(a)
        if a.command == "test":
            return cmd_test(a)
        if a.command == "spec":
            return speccmd.main(ROOT, a.json, sys.stdout, html_file=a.html, reports=a.reports,
                                build_dir=a.build_dir, err=sys.stderr)
        if a.command == "explain":
            return explain.main(ROOT, a.label, sys.stdout, sys.stderr, want_json=a.json,
                                reports=a.reports, build_dir=a.build_dir)
        if a.command == "backends":
            return cmd_backends(a)
        if a.command == "report":
            return cmd_report(a)
        if a.command == "fuzz":
            return fuzzcmd.main(a)
        if a.command == "mutants":
            return mutantscmd.main(mutantscmd.MutantsOptions(
                build_dir=a.build_dir, only=a.only, json=a.json, reports=a.reports,
                artifacts=a.artifacts,
                watchdog=a.watchdog, timeout_multiplier=a.timeout_multiplier,
                whole_suite=a.whole_suite, verbose=a.verbose))
    except UserError as e:
        sys.stdout.flush()
        print("mpspec: error: %s" % e, file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print("\nmpspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_FAILED
    return EXIT_USAGE

"""The `mpspec` command line."""

import argparse
import os
import sys

from . import ROOT, __version__, backends, build, fuzzcmd, report, runner, speccmd
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


def _seed(text):
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


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

    b = sub.add_parser("backends", help="list the backends of harness/backends.toml")
    b.add_argument("--build-dir", metavar="DIR", help="build tree the driver commands refer to")
    return p


def cmd_run(a):
    opts = runner.RunOptions(
        backend=a.backend, driver=a.driver, filter=a.filter, start_method=a.start_method,
        timeout_multiplier=a.timeout_multiplier, seed=a.seed, no_build=a.no_build,
        build_dir=a.build_dir, expectations=a.expectations, artifacts=a.artifacts,
        watchdog=a.watchdog, verbose=a.verbose)
    run = runner.run(opts)
    if a.junit:
        report.write_junit(run, a.junit)
    if a.json:
        report.write_json(run, a.json)
    report.terminal(run, sys.stdout)
    return EXIT_OK if run.ok else EXIT_FAILED


def cmd_test(a):
    extra = list(a.ctest_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    build.check_preset(a.preset)
    build.run_setup()
    return build.run_tests(a.preset, extra)


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
            return speccmd.main(ROOT, a.json, sys.stdout)
        if a.command == "backends":
            return cmd_backends(a)
        if a.command == "fuzz":
            return fuzzcmd.main(a)
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

"""`mpspec fuzz`: configure and build libmp's libFuzzer targets with clang (build/fuzz), then
run each target for a bounded time on its seed corpus (fixtures/fuzz/<target>/).

New inputs libFuzzer finds go to a scratch corpus in the build tree (never into fixtures/). A
crash, a violated property, an out-of-memory (a single allocation over --malloc-limit-mb) or a
timeout is saved by libFuzzer under <build>/fuzz/artifacts/ and copied to
fixtures/fuzz/crashes/<target>/, which the corpus-replay tests of the default build then
replay. See reference/fuzz/README.md.
"""

import os
import re
import shutil
import subprocess
import sys
import time

from . import ROOT
from .errors import EXIT_FAILED, EXIT_OK, EnvError, UserError

TARGETS = ("frame", "frame_records", "frame_unbounded", "codec", "handshake")
DEFAULT_SECONDS = 60
MALLOC_LIMIT_MB = 96  # libmp allocates at most 64 MiB before a payload arrives


def say(msg):
    print("mpspec: " + msg, file=sys.stderr, flush=True)


def default_build_dir(root=ROOT):
    return os.path.join(root, "build", "fuzz")


def configure_command(build_dir, compiler, root=ROOT):
    """Configures libmp alone (reference/) with clang, the fuzz targets, no tests or benches."""
    return ["cmake", "-S", os.path.join(root, "reference"), "-B", build_dir,
            "-DCMAKE_CXX_COMPILER=" + compiler, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
            "-DMPSPEC_FUZZ=ON", "-DMPSPEC_BUILD_TESTS=OFF", "-DMPSPEC_BUILD_BENCH=OFF"]


def build_command(build_dir, jobs=2):
    return ["cmake", "--build", build_dir, "--parallel", str(jobs)]


def fuzzer_path(build_dir, target):
    return os.path.join(build_dir, "fuzz", "mp_fuzz_" + target)


def corpus_dirs(build_dir, target, root=ROOT):
    """The scratch corpus (written by libFuzzer, first), then the seeds and saved crashes."""
    dirs = [os.path.join(build_dir, "fuzz", "corpus", target)]
    for d in (os.path.join(root, "fixtures", "fuzz", target),
              os.path.join(root, "fixtures", "fuzz", "crashes", target)):
        if os.path.isdir(d):
            dirs.append(d)
    return dirs


def artifact_dir(build_dir):
    return os.path.join(build_dir, "fuzz", "artifacts")


def fuzzer_command(build_dir, target, seconds, root=ROOT, malloc_limit_mb=MALLOC_LIMIT_MB):
    return ([fuzzer_path(build_dir, target),
             "-max_total_time=%d" % seconds, "-timeout=10",
             "-malloc_limit_mb=%d" % malloc_limit_mb, "-rss_limit_mb=2048", "-max_len=4096",
             "-print_final_stats=1",
             "-artifact_prefix=" + os.path.join(artifact_dir(build_dir), target + "-")]
            + corpus_dirs(build_dir, target, root))


STAT_RE = re.compile(r"^stat::(\w+):\s+(\d+)\s*$", re.M)
CRASH_RE = re.compile(r"^(?:==\d+==\s*)?ERROR: (?:libFuzzer|AddressSanitizer|"
                      r"UndefinedBehaviorSanitizer|LeakSanitizer)[^\n]*", re.M)
ARTIFACT_RE = re.compile(r"Test unit written to (\S+)")


def parse_output(text):
    """libFuzzer's output -> {'runs', 'exec_per_sec', 'peak_rss_mb', 'new_units', 'error',
    'artifacts'} (numbers None when absent)."""
    stats = {k: int(v) for k, v in STAT_RE.findall(text)}
    error = CRASH_RE.search(text)
    return {
        "runs": stats.get("number_of_executed_units"),
        "exec_per_sec": stats.get("average_exec_per_sec"),
        "peak_rss_mb": stats.get("peak_rss_mb"),
        "new_units": stats.get("new_units_added"),
        "error": error.group(0).strip() if error else None,
        "artifacts": ARTIFACT_RE.findall(text),
    }


def save_crashes(artifacts, target, root=ROOT):
    """Copies libFuzzer's artifacts to fixtures/fuzz/crashes/<target>/; returns the copies."""
    saved = []
    for path in artifacts:
        if not os.path.isfile(path):
            continue
        dest_dir = os.path.join(root, "fixtures", "fuzz", "crashes", target)
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, os.path.basename(path)[len(target) + 1:]
                            if os.path.basename(path).startswith(target + "-")
                            else os.path.basename(path))
        shutil.copyfile(path, dest)
        saved.append(dest)
    return saved


def find_compiler():
    for name in ("clang++", "clang++-14", "clang++-15", "clang++-16"):
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_build(build_dir, verbose, root=ROOT):
    if not shutil.which("cmake"):
        raise EnvError("'cmake' is not installed (harness/setup.sh installs it on Debian)")
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        compiler = find_compiler()
        if compiler is None:
            raise EnvError("fuzzing needs clang with libFuzzer: on Debian, apt-get install clang "
                           "libclang-rt-14-dev")
        say("configuring %s with %s (libFuzzer, ASan, UBSan)" % (os.path.relpath(build_dir), compiler))
        _run(configure_command(build_dir, compiler, root), verbose, "configuring")
    say("building %s" % os.path.relpath(build_dir))
    _run(build_command(build_dir), verbose, "the fuzz build")


def _run(cmd, verbose, what):
    if verbose:
        say("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, stdout=None if verbose else subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, errors="replace")
    if proc.returncode != 0:
        if proc.stdout:
            sys.stderr.write(proc.stdout[-8000:])
        raise EnvError("%s failed (exit status %d): `%s`" % (what, proc.returncode, " ".join(cmd)))


def run_target(build_dir, target, seconds, verbose, root=ROOT):
    exe = fuzzer_path(build_dir, target)
    if not os.access(exe, os.X_OK):
        raise EnvError("%s is missing: the fuzz build did not produce it" % exe)
    os.makedirs(corpus_dirs(build_dir, target, root)[0], exist_ok=True)
    os.makedirs(artifact_dir(build_dir), exist_ok=True)
    cmd = fuzzer_command(build_dir, target, seconds, root)
    if verbose:
        say("$ " + " ".join(cmd))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, errors="replace")
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if verbose:
            sys.stderr.write(line)
    rc = proc.wait()
    text = "".join(lines)
    result = parse_output(text)
    result.update(target=target, rc=rc, seconds=time.monotonic() - start)
    result["saved"] = save_crashes(result["artifacts"], target, root) if rc != 0 else []
    if rc != 0 and not verbose:
        sys.stderr.write("".join(lines[-60:]))
    return result


def main(args, out=sys.stdout, root=ROOT):
    targets = [args.target] if args.target else list(TARGETS)
    for t in targets:
        if t not in TARGETS:
            raise UserError("unknown fuzz target '%s'; known: %s" % (t, ", ".join(TARGETS)))
    if args.seconds < 1:
        raise UserError("--seconds must be at least 1")
    build_dir = os.path.abspath(args.build_dir) if args.build_dir else default_build_dir(root)
    if not args.no_build:
        ensure_build(build_dir, args.verbose, root)
    results = []
    for t in targets:
        say("fuzzing %s for %d s" % (t, args.seconds))
        results.append(run_target(build_dir, t, args.seconds, args.verbose, root))
    out.write("%-16s %10s %10s %8s %9s  %s\n" % ("target", "runs", "exec/s", "new", "rss MB",
                                                 "result"))
    failed = False
    for r in results:
        status = "ok" if r["rc"] == 0 else (r["error"] or "exit status %d" % r["rc"])
        failed = failed or r["rc"] != 0
        out.write("%-16s %10s %10s %8s %9s  %s\n" % (
            r["target"], _num(r["runs"]), _num(r["exec_per_sec"]), _num(r["new_units"]),
            _num(r["peak_rss_mb"]), status))
        for s in r["saved"]:
            out.write("%-16s saved the input: %s\n" % ("", os.path.relpath(s, root)))
    return EXIT_FAILED if failed else EXIT_OK


def _num(v):
    return "-" if v is None else str(v)


"""`mpspec fuzz`: commands, libFuzzer output parsing, crash saving (with a fake fuzzer)."""

import argparse
import io
import os
import stat
import sys
import unittest

import support
from mpspec_cli import cli, fuzzcmd
from mpspec_cli.errors import EXIT_FAILED, EXIT_OK, UserError

OK_OUTPUT = """\
INFO: Seed: 123
#27\tINITED cov: 191 ft: 354 corp: 12/756b exec/s: 0 rss: 36Mb
#169914\tDONE   cov: 307 ft: 729 corp: 111/5950b lim: 983 exec/s: 15446 rss: 319Mb
Done 169914 runs in 11 second(s)
stat::number_of_executed_units: 169914
stat::average_exec_per_sec:     15446
stat::new_units_added:          525
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              319
"""

CRASH_OUTPUT = """\
#1\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 30Mb
==4242== ERROR: libFuzzer: out-of-memory (malloc(67108865))
MS: 1 ChangeByte-; base unit: 0000
artifact_prefix='/b/fuzz/artifacts/frame-'; Test unit written to {artifact}
stat::number_of_executed_units: 7
stat::average_exec_per_sec:     0
"""

FAKE_FUZZER = """#!/bin/sh
# A stand-in for a libFuzzer binary: records its arguments, prints stats, maybe "crashes".
echo "$@" > "$0.args"
for a in "$@"; do
  case "$a" in -artifact_prefix=*) prefix="${a#-artifact_prefix=}";; esac
done
if [ -n "$FAKE_CRASH" ]; then
  printf 'boom' > "${prefix}crash-abc"
  echo "==1== ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1"
  echo "Test unit written to ${prefix}crash-abc"
  exit 1
fi
echo "stat::number_of_executed_units: 1000"
echo "stat::average_exec_per_sec:     500"
echo "stat::new_units_added:          3"
echo "stat::peak_rss_mb:              40"
"""


class CommandsTest(unittest.TestCase):
    def test_configure_uses_clang_and_the_fuzz_option(self):
        cmd = fuzzcmd.configure_command("/b", "/usr/bin/clang++", root="/r")
        self.assertEqual(cmd[:5], ["cmake", "-S", "/r/reference", "-B", "/b"])
        self.assertIn("-DCMAKE_CXX_COMPILER=/usr/bin/clang++", cmd)
        self.assertIn("-DMPSPEC_FUZZ=ON", cmd)
        self.assertIn("-DMPSPEC_BUILD_TESTS=OFF", cmd)

    def test_fuzzer_command_writes_only_to_the_scratch_corpus(self):
        tmp = support.TempDir()
        self.addCleanup(tmp.cleanup)
        os.makedirs(os.path.join(tmp.path, "fixtures", "fuzz", "codec"))
        cmd = fuzzcmd.fuzzer_command("/b", "codec", 7, root=tmp.path)
        self.assertEqual(cmd[0], "/b/fuzz/mp_fuzz_codec")
        self.assertIn("-max_total_time=7", cmd)
        self.assertIn("-malloc_limit_mb=96", cmd)
        self.assertIn("-artifact_prefix=/b/fuzz/artifacts/codec-", cmd)
        dirs = [a for a in cmd if not a.startswith("-")][1:]
        # libFuzzer writes new inputs into the first directory only: the build's scratch one.
        self.assertEqual(dirs, ["/b/fuzz/corpus/codec",
                                os.path.join(tmp.path, "fixtures", "fuzz", "codec")])

    def test_every_target_has_seeds_in_the_repository(self):
        for t in fuzzcmd.TARGETS:
            d = os.path.join(support.ROOT, "fixtures", "fuzz", t)
            self.assertTrue(os.path.isdir(d) and os.listdir(d), "no seeds for %s" % t)


class ParseTest(unittest.TestCase):
    def test_stats(self):
        r = fuzzcmd.parse_output(OK_OUTPUT)
        self.assertEqual((r["runs"], r["exec_per_sec"], r["new_units"], r["peak_rss_mb"]),
                         (169914, 15446, 525, 319))
        self.assertIsNone(r["error"])
        self.assertEqual(r["artifacts"], [])

    def test_crash(self):
        r = fuzzcmd.parse_output(CRASH_OUTPUT.format(artifact="/b/fuzz/artifacts/frame-oom-1"))
        self.assertEqual(r["error"], "==4242== ERROR: libFuzzer: out-of-memory (malloc(67108865))")
        self.assertEqual(r["artifacts"], ["/b/fuzz/artifacts/frame-oom-1"])
        self.assertEqual(r["runs"], 7)
        self.assertIsNone(r["peak_rss_mb"])


class MainTest(unittest.TestCase):
    """fuzzcmd.main with --no-build over a temporary root and fake fuzzer executables."""

    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = self.tmp.path
        self.build = os.path.join(self.root, "build", "fuzz")
        for t in fuzzcmd.TARGETS:
            exe = support.write(fuzzcmd.fuzzer_path(self.build, t), FAKE_FUZZER)
            os.chmod(exe, os.stat(exe).st_mode | stat.S_IXUSR)
            support.write(os.path.join(self.root, "fixtures", "fuzz", t, "seed"), "x")
        self.addCleanup(os.environ.pop, "FAKE_CRASH", None)

    def args(self, **kw):
        a = argparse.Namespace(target=None, seconds=5, build_dir=self.build, no_build=True,
                               verbose=False)
        for k, v in kw.items():
            setattr(a, k, v)
        return a

    def test_runs_every_target_and_reports(self):
        out = io.StringIO()
        self.assertEqual(fuzzcmd.main(self.args(), out, root=self.root), EXIT_OK)
        text = out.getvalue()
        for t in fuzzcmd.TARGETS:
            self.assertRegex(text, r"(?m)^%s\s+1000\s+500\s+3\s+40\s+ok$" % t)
        with open(fuzzcmd.fuzzer_path(self.build, "codec") + ".args") as f:
            self.assertIn("-max_total_time=5", f.read())
        self.assertFalse(os.path.exists(os.path.join(self.root, "fixtures", "fuzz", "crashes")))

    def test_one_target(self):
        out = io.StringIO()
        fuzzcmd.main(self.args(target="codec", seconds=2), out, root=self.root)
        self.assertIn("codec", out.getvalue())
        self.assertNotIn("handshake", out.getvalue())
        self.assertFalse(os.path.exists(fuzzcmd.fuzzer_path(self.build, "frame") + ".args"))

    def test_crash_is_saved_under_fixtures(self):
        os.environ["FAKE_CRASH"] = "1"
        out = io.StringIO()
        with _quiet():
            rc = fuzzcmd.main(self.args(target="frame"), out, root=self.root)
        self.assertEqual(rc, EXIT_FAILED)
        saved = os.path.join(self.root, "fixtures", "fuzz", "crashes", "frame", "crash-abc")
        with open(saved) as f:
            self.assertEqual(f.read(), "boom")
        self.assertIn("heap-buffer-overflow", out.getvalue())
        self.assertIn(os.path.join("fixtures", "fuzz", "crashes", "frame", "crash-abc"),
                      out.getvalue())

    def test_bad_arguments(self):
        with self.assertRaises(UserError):
            fuzzcmd.main(self.args(target="nosuch"), io.StringIO(), root=self.root)
        with self.assertRaises(UserError):
            fuzzcmd.main(self.args(seconds=0), io.StringIO(), root=self.root)

    def test_cli_parses_the_subcommand(self):
        a = cli.parser().parse_args(["fuzz", "--seconds", "9", "--target", "codec", "--no-build"])
        self.assertEqual((a.command, a.seconds, a.target, a.no_build), ("fuzz", 9, "codec", True))


class _quiet:
    """Silences stderr (the fake crash's output) for the duration."""

    def __enter__(self):
        self.saved, sys.stderr = sys.stderr, io.StringIO()

    def __exit__(self, *exc):
        sys.stderr = self.saved


if __name__ == "__main__":
    unittest.main()

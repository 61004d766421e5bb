"""The progress display of `mpspec run` (progress.py): the line, the terminal / log choice, and
the runner feeding it from the fake conformance binary's console output."""

import contextlib
import io
import os
import unittest
from unittest import mock

import support
from mpspec_cli import gtest, progress, runner


class FakeStream(io.StringIO):
    """A stream that says whether it is a terminal."""

    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FormatTest(unittest.TestCase):
    def test_elapsed(self):
        for seconds, text in ((0, "0s"), (12.9, "12s"), (59, "59s"), (60, "1m00s"),
                              (185, "3m05s"), (3599, "59m59s"), (3600, "1h00m"),
                              (3725, "1h02m"), (-3, "0s")):
            self.assertEqual(progress.format_elapsed(seconds), text)

    def test_line(self):
        self.assertEqual(progress.format_line(5, 498, 2, 63.2), "[  5/498] 2 failed, 1m03s")
        self.assertEqual(progress.format_line(498, 498, 0, 5), "[498/498] 0 failed, 5s")
        self.assertEqual(progress.format_line(1, 4, 0, 0, label="shard 2/4"),
                         "shard 2/4 [1/4] 0 failed, 0s")


class ChoiceTest(unittest.TestCase):
    def test_terminal_or_not(self):
        self.assertTrue(progress.wants_live_line(FakeStream(True)))
        self.assertFalse(progress.wants_live_line(FakeStream(False)))
        self.assertFalse(progress.wants_live_line(io.StringIO()))
        self.assertFalse(progress.wants_live_line(object()), "no isatty: not a terminal")
        closed = io.StringIO()
        closed.close()
        self.assertFalse(progress.wants_live_line(closed))

    def test_progress_follows_the_stream(self):
        self.assertTrue(progress.Progress(3, FakeStream(True)).live)
        self.assertFalse(progress.Progress(3, FakeStream(False)).live)
        self.assertFalse(progress.Progress(3, FakeStream(True), live=False).live)


class LiveLineTest(unittest.TestCase):
    def setUp(self):
        self.out, self.clock = FakeStream(True), Clock()
        self.p = progress.Progress(3, self.out, clock=self.clock)

    def test_rewritten_in_place_and_cleared(self):
        self.p.test_started("Lock.A")
        self.clock.now += 2
        self.p.test_ended(unexpected=False)
        self.p.test_started("Lock.B")
        self.clock.now += 70
        self.p.test_ended(unexpected=True)
        text = self.out.getvalue()
        self.assertNotIn("\n", text, "a live line never starts a new line")
        frames = text.split("\r")[1:]
        self.assertIn("mpspec: [0/3] 0 failed, 0s  Lock.A", frames[0])
        self.assertEqual(frames[-1].rstrip(), "mpspec: [2/3] 1 failed, 1m12s")
        self.p.close()
        cleared = self.out.getvalue()[len(text):]
        self.assertTrue(cleared.startswith("\r") and cleared.endswith("\r"))
        self.assertEqual(cleared.strip(), "", "the close overwrites the line with blanks")
        self.assertGreaterEqual(len(cleared) - 2, len(frames[-1].rstrip()))
        self.p.test_ended()
        self.assertEqual(self.out.getvalue(), text + cleared, "nothing after close")

    def test_a_shorter_line_blanks_the_rest_of_the_longer_one(self):
        self.p.test_started("Suite.AVeryLongTestNameIndeed")
        self.p.test_ended()
        frames = self.out.getvalue().split("\r")[1:]
        self.assertEqual(len(frames[-1]), len(frames[-2]))

    def test_ticks_redraw_at_most_twice_a_second(self):
        self.p.tick()
        n = self.out.getvalue().count("\r")
        self.clock.now += 0.1
        self.p.tick()
        self.assertEqual(self.out.getvalue().count("\r"), n)
        self.clock.now += 1
        self.p.tick()
        self.assertEqual(self.out.getvalue().count("\r"), n + 1)
        self.assertIn("1s", self.out.getvalue().split("\r")[-1])

    def test_fits_the_terminal(self):
        with mock.patch.dict(os.environ, {"COLUMNS": "40"}):
            self.p.test_started("Suite." + "X" * 100)
        self.assertLessEqual(max(len(f) for f in self.out.getvalue().split("\r")), 39)

    def test_close_without_output_writes_nothing(self):
        progress.Progress(3, self.out, clock=self.clock).close()
        self.assertEqual(self.out.getvalue(), "")


class PlainLinesTest(unittest.TestCase):
    def setUp(self):
        self.out, self.clock = FakeStream(False), Clock()

    def lines(self):
        return self.out.getvalue().splitlines()

    def test_one_line_per_step_not_per_test(self):
        p = progress.Progress(100, self.out, clock=self.clock)
        self.assertEqual(p.step, 25)
        for i in range(100):
            self.clock.now += 0.1
            p.test_ended(unexpected=(i == 3))
        p.close()
        self.assertNotIn("\r", self.out.getvalue())
        self.assertEqual(self.lines(), ["mpspec: [ 25/100] 1 failed, 2s",
                                        "mpspec: [ 50/100] 1 failed, 5s",
                                        "mpspec: [ 75/100] 1 failed, 7s"],
                         "none at the end: the summary follows")

    def test_a_tenth_of_a_large_run(self):
        self.assertEqual(progress.Progress(498, self.out).step, 50)

    def test_a_line_every_interval_while_a_test_runs(self):
        p = progress.Progress(100, self.out, clock=self.clock)
        p.test_ended()
        p.test_started("Pool.Slow")
        self.clock.now += 10
        p.tick()
        self.assertEqual(self.lines(), [])
        self.clock.now += progress.INTERVAL
        p.tick()
        p.tick()
        self.assertEqual(self.lines(), ["mpspec: [  1/100] 0 failed, 40s (running Pool.Slow)"])
        self.clock.now += progress.INTERVAL
        p.tick()
        self.assertEqual(len(self.lines()), 2)

    def test_small_quick_runs_print_nothing(self):
        p = progress.Progress(4, self.out, clock=self.clock)
        for _ in range(4):
            p.test_ended()
        p.close()
        self.assertEqual(self.out.getvalue(), "")

    def test_a_broken_stream_stops_the_display(self):
        class Broken(FakeStream):
            def write(self, text):
                raise BrokenPipeError()
        p = progress.Progress(2, Broken(True), clock=self.clock)
        p.test_ended()  # no exception
        self.assertTrue(p.closed)


class ConsoleEventsTest(unittest.TestCase):
    def test_parser_reports_starts_and_ends(self):
        events = []
        parser = gtest.ConsoleParser(on_start=lambda t: events.append(("start", t.name)),
                                     on_end=lambda t: events.append((t.ended, t.name)))
        parser.feed_text(support.fixture("console.txt"))
        starts = [n for e, n in events if e == "start"]
        ends = [(e, n) for e, n in events if e != "start"]
        self.assertEqual(starts, parser.console.order)
        self.assertEqual(ends, [(t.ended, t.name) for t in parser.console.tests.values()
                                if t.ended])
        self.assertIn("FAILED", {e for e, _ in ends})


class RunnerProgressTest(unittest.TestCase):
    """The runner counts the tests as the fake binary's closing lines arrive."""

    def setUp(self):
        self.tmp = support.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.root = support.make_tree(self.tmp.path)
        support.write(os.path.join(self.root, "driver.sh"), "#!/bin/sh\n")
        self.registry = support.write(os.path.join(self.root, "harness", "backends.toml"), """
[backends.fake]
driver = "{root}/driver.sh"
expectations = "exp.toml"
description = "a fake"
""")
        support.write(os.path.join(self.root, "exp.toml"), """
[[expect]]
test = "Widget.T1"
clause = "widget.make.empty"
status = "FAIL"
reason = "known"
""")
        self.build = os.path.join(self.root, "build")
        support.install_fake_binary(self.build)
        old = os.environ.get("FAKE_GTEST_SCENARIO")
        self.addCleanup(lambda: os.environ.__setitem__("FAKE_GTEST_SCENARIO", old) if old
                        else os.environ.pop("FAKE_GTEST_SCENARIO", None))

    def run_with(self, tests, stream, **kw):
        os.environ["FAKE_GTEST_SCENARIO"] = support.write_scenario(self.tmp.path, tests)
        opts = runner.RunOptions(backend="fake", root=self.root, registry=self.registry,
                                 build_dir=self.build, no_build=True,
                                 artifacts=os.path.join(self.tmp.path, "art"),
                                 progress_stream=stream, **kw)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return runner.run(opts)

    def test_live_line_counts_unexpected_results_only(self):
        tests = [{"name": "Widget.T%d" % i, "outcome": "pass"} for i in range(6)]
        tests[1]["outcome"] = "fail"  # listed in the expectations: XFAIL, not counted
        tests[4]["outcome"] = "fail"  # unexpected
        tests[5]["outcome"] = "crash"  # no closing line: counted from the runner's CRASH
        out = FakeStream(True)
        run = self.run_with(tests, out)
        self.assertEqual([r.status for r in run.results],
                         ["PASS", "XFAIL", "PASS", "PASS", "FAIL", "CRASH"])
        frames = [f.rstrip() for f in out.getvalue().split("\r") if f.strip()]
        self.assertTrue(any(f.startswith("mpspec: [2/6] 0 failed") for f in frames), frames)
        self.assertTrue(any(f.startswith("mpspec: [5/6] 1 failed") for f in frames), frames)
        self.assertTrue(any(f.startswith("mpspec: [6/6] 2 failed") for f in frames), frames)
        self.assertTrue(out.getvalue().endswith("\r"), "cleared at the end")
        self.assertNotIn("\n", out.getvalue())

    def test_plain_lines_in_a_log(self):
        tests = [{"name": "Widget.T%d" % i, "outcome": "pass"} for i in range(60)]
        out = FakeStream(False)
        self.run_with(tests, out)
        lines = out.getvalue().splitlines()
        self.assertEqual([l.split("]")[0] for l in lines], ["mpspec: [25/60", "mpspec: [50/60"])

    def test_off(self):
        out = FakeStream(True)
        self.run_with([{"name": "Widget.T0"}], out, progress=False)
        self.assertEqual(out.getvalue(), "")
        self.run_with([{"name": "Widget.T0"}], out, verbose=True)
        self.assertEqual(out.getvalue(), "", "-v shows the suite's own output instead")


if __name__ == "__main__":
    unittest.main()

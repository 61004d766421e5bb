"""The progress display of `mpspec run`: tests done out of the total, unexpected results so far,
time elapsed.

On a terminal it is one line rewritten in place (carriage return), with the test that is
running, and cleared when the run ends, so that the summary starts on a clean screen. When
the stream is not a terminal (a CI log, a file) it prints plain lines instead, not one per
test: one each time another tenth of the tests (at least EVERY_TESTS of them) has finished,
or when INTERVAL seconds have passed since the last line, so a log of a long run shows that
it moves and how far it has got.

The runner calls `test_ended` from the thread that reads the suite's console output (a
test's closing `[ OK ]` / `[ FAILED ]` / `[ SKIPPED ]` line), `add` for results the console
did not show (the test running when the binary crashed, tests the watchdog left unrun), and
`tick` about once a second from the thread that waits for the binary.
"""

import io
import os
import threading
import time

INTERVAL = 30.0  # seconds between two plain lines, at most (while tests keep finishing)
EVERY_TESTS = 25  # a plain line per max(EVERY_TESTS, total / 10) finished tests
TTY_REFRESH = 0.5  # seconds between two redraws of the terminal line, at least


def format_elapsed(seconds):
    """12s, 3m05s, 1h02m."""
    s = int(max(0.0, seconds))
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%dh%02dm" % (s // 3600, s % 3600 // 60)


def format_line(done, total, failed, elapsed, label=""):
    """`[ 120/498] 2 failed, 1m03s` (`label`, e.g. the shard, before the counts)."""
    width = len(str(total))
    return "%s[%*d/%d] %d failed, %s" % (label + " " if label else "", width, done, total, failed,
                                         format_elapsed(elapsed))


def wants_live_line(stream):
    """A terminal gets the line rewritten in place; anything else gets plain lines."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Counts finished tests and shows it on `stream` (see the module's docstring).

    `live`: None decides from the stream (`wants_live_line`); `clock` is for the tests.
    Thread-safe: the reader thread and the waiting thread both call it."""

    def __init__(self, total, stream, live=None, label="", clock=time.monotonic, prefix="mpspec: "):
        self.total, self.stream, self.label, self.clock = total, stream, label, clock
        self.live = wants_live_line(stream) if live is None else live
        self.prefix = prefix
        self.done = self.failed = 0
        self.running = None
        self.start = clock()
        self._lock = threading.Lock()
        self._shown = 0  # width of the live line on screen (0: nothing to clear)
        self._last_draw = None
        self._last_line_at = self.start  # plain mode: when the last line was printed
        self._last_line_done = 0
        self.step = max(EVERY_TESTS, -(-total // 10))
        self.closed = False

    # ------------------------------------------------------------------ events

    def test_started(self, name):
        with self._lock:
            self.running = name
            self._update(force_draw=False)

    def test_ended(self, unexpected=False):
        self.add(1, 1 if unexpected else 0)

    def add(self, n, unexpected=0):
        with self._lock:
            self.done += n
            self.failed += unexpected
            self.running = None
            self._update(force_draw=True)

    def tick(self):
        with self._lock:
            self._update(force_draw=False)

    def close(self):
        """Clears the live line (plain mode prints nothing more: the summary follows)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self.live and self._shown:
                self._write("\r" + " " * self._shown + "\r")
                self._shown = 0

    # --------------------------------------------------------------- display

    def line(self):
        return format_line(self.done, self.total, self.failed, self.clock() - self.start,
                           self.label)

    def _update(self, force_draw):
        if self.closed:
            return
        now = self.clock()
        if self.live:
            if (not force_draw and self._last_draw is not None
                    and now - self._last_draw < TTY_REFRESH):
                return
            self._last_draw = now
            text = self.prefix + self.line()
            if self.running:
                text += "  " + self.running
            text = text[:max(self._columns() - 1, 20)]
            pad = max(0, self._shown - len(text))
            self._write("\r" + text + " " * pad)
            self._shown = len(text)
            return
        if self.done >= self.total:  # the summary follows
            return
        if (self.done - self._last_line_done >= self.step
                or now - self._last_line_at >= INTERVAL):  # also while a long test runs
            self._plain(now)

    def _columns(self):
        """COLUMNS, else the width of the stream's terminal, else 80 (also for a terminal
        that says 0, as a pseudo-terminal with no size does)."""
        try:
            columns = int(os.environ.get("COLUMNS", "0"))
        except ValueError:
            columns = 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(self.stream.fileno()).columns
            except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
                columns = 0
        return columns if columns > 0 else 80

    def _plain(self, now):
        text = self.prefix + self.line()
        if self.running:
            text += " (running %s)" % self.running
        self._write(text + "\n")
        self._last_line_at, self._last_line_done = now, self.done

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: no more progress
            self.closed = True

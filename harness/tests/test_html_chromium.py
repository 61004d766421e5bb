"""The HTML report in a real browser: headless Chromium renders the report of a known failing
run (fixtures/reports/: the mutant `never-blocks` and the reference, Lock tests), and the
screenshot must not be blank and the DOM (after the page's script ran) must hold the
expected matrix cells and timeline lanes.

CTest runs this file as a script (harness.html_chromium): it exits 77 (skipped) when no
Chromium is installed (harness/setup.sh installs the Debian package `chromium`). Under
`python3 -m unittest discover` it is skipped unless MPSPEC_CHROMIUM=1, so that harness.unit
does not run the browser a second time.

Every Chromium call runs in its own session with a fresh profile, bounded by a timeout; a
call that hangs is killed (its process group, by the pid this test started).
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib
from html.parser import HTMLParser

import support

SKIP = 77
TIMEOUT = 90  # seconds per Chromium call
FIXTURES = os.path.join(support.ROOT, "fixtures", "reports")
REPORTS = [os.path.join(FIXTURES, "never-blocks", "report.json"),
           os.path.join(FIXTURES, "reference", "report.json")]
MUTANT = "mutant-never-blocks"
WINDOW = (1400, 1000)

# Run as a script (CTest), or asked for: see the module comment.
_ENABLED = __name__ == "__main__" or os.environ.get("MPSPEC_CHROMIUM") == "1"


def find_chromium():
    """The browser's path: $MPSPEC_CHROMIUM_BIN, or chromium / chromium-browser / google-chrome
    on PATH; None when there is none."""
    explicit = os.environ.get("MPSPEC_CHROMIUM_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(binary, args, url, timeout=TIMEOUT):
    """Runs headless Chromium on `url` with `args`; returns its stdout (bytes). Raises
    AssertionError when it fails or does not finish within `timeout` (it is then killed)."""
    profile = tempfile.mkdtemp(prefix="mpspec-chromium-")
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-extensions", "--user-data-dir=" + profile,
           "--window-size=%d,%d" % WINDOW] + args + [url]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the session this call started
            except ProcessLookupError:
                pass
            proc.communicate()
            raise AssertionError("chromium did not finish within %d s: %s" % (timeout, " ".join(cmd)))
        if proc.returncode != 0:
            raise AssertionError("chromium exited with %d:\n%s" % (
                proc.returncode, err.decode("utf-8", "replace")[-3000:]))
        return out
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------- PNG


def read_png(path):
    """(width, height, rows) of an 8-bit RGB or RGBA, non-interlaced PNG; rows are bytes of
    width * channels, unfiltered."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("unsupported PNG: depth %d, colour type %d, interlace %d"
                         % (depth, colour, interlace))
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prior = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prior))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prior[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prior[i]
                c = prior[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        elif ftype != 0:
            raise ValueError("bad PNG filter %d" % ftype)
        rows.append(bytes(line))
        prior = line
    return width, height, bpp, rows


def pixel_stats(path, colours=()):
    """{'width', 'height', 'distinct', 'non_white', 'total', 'near': {colour: count}}: distinct
    RGB values, pixels that are not (nearly) white, and pixels within 6 per channel of each
    of `colours` ('#rrggbb')."""
    width, height, bpp, rows = read_png(path)
    targets = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in colours]
    counts = {}
    for row in rows:
        for i in range(0, len(row), bpp):
            px = row[i:i + 3]
            counts[px] = counts.get(px, 0) + 1
    non_white = sum(n for px, n in counts.items() if min(px) < 245)
    near = {}
    for c, t in zip(colours, targets):
        near[c] = sum(n for px, n in counts.items()
                      if all(abs(px[k] - t[k]) <= 6 for k in range(3)))
    return {"width": width, "height": height, "distinct": len(counts), "non_white": non_white,
            "total": width * height, "near": near}


# --------------------------------------------------------------------------- DOM


class Elements(HTMLParser):
    """Every start tag of a document, as (tag, {attr: value})."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def find(self, tag, cls=None):
        """Attributes of the `tag` elements (that have class `cls`)."""
        return [a for t, a in self.elements
                if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def build_report(out_dir):
    """Writes the HTML of the fixtures through `mpspec report`; returns its path."""
    html_path = os.path.join(out_dir, "report.html")
    p = subprocess.run([sys.executable, os.path.join(support.ROOT, "mpspec"), "report"] + REPORTS
                       + ["--html", html_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    if p.returncode != 0:
        raise AssertionError("mpspec report failed:\n" + p.stdout.decode("utf-8", "replace"))
    return html_path


@unittest.skipUnless(_ENABLED, "run by CTest harness.html_chromium (python3 "
                     "harness/tests/test_html_chromium.py), or set MPSPEC_CHROMIUM=1")
class ChromiumTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.chromium = find_chromium()
        if not cls.chromium:
            raise unittest.SkipTest("no chromium (harness/setup.sh installs the package chromium)")
        cls.tmp = tempfile.mkdtemp(prefix="mpspec-html-")
        cls.html = build_report(cls.tmp)
        cls.url = "file://" + cls.html

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_screenshot_is_not_blank(self):
        png = os.path.join(self.tmp, "shot.png")
        run_chromium(self.chromium, ["--screenshot=" + png], self.url)
        self.assertTrue(os.path.exists(png), "chromium wrote no screenshot")
        from mpspec_cli.html import STATUS_STYLE
        fail_bg, pass_bg = STATUS_STYLE["FAIL"][0], STATUS_STYLE["PASS"][0]
        s = pixel_stats(png, (fail_bg, pass_bg))
        print("screenshot %dx%d: %d distinct colours, %d of %d pixels not white (%.1f%%), "
              "%d FAIL-coloured, %d PASS-coloured"
              % (s["width"], s["height"], s["distinct"], s["non_white"], s["total"],
                 100.0 * s["non_white"] / s["total"], s["near"][fail_bg], s["near"][pass_bg]))
        self.assertEqual((s["width"], s["height"]), WINDOW)
        self.assertGreater(s["distinct"], 50, "the screenshot has almost no colours")
        self.assertGreater(s["non_white"], s["total"] // 20, "the screenshot is nearly all white")
        # The matrix is at the top of the page: its FAIL and PASS cells must show.
        self.assertGreater(s["near"][fail_bg], 2000)
        self.assertGreater(s["near"][pass_bg], 2000)

    def test_dom_holds_cells_and_lanes(self):
        dom = run_chromium(self.chromium, ["--dump-dom"], self.url).decode("utf-8", "replace")
        e = Elements()
        e.feed(dom)
        body = e.find("body")
        self.assertIn("hide-pass", body[0].get("class", ""), "the page's script did not run")
        cells = e.find("td", cls="cell")
        by = {(c.get("data-clause"), c.get("data-column")): c for c in cells}
        self.assertIn("st-FAIL", by[("lock.acquire.exclusive", MUTANT)]["class"].split())
        self.assertIn("st-PASS", by[("lock.construct.unlocked", MUTANT)]["class"].split())
        self.assertIn("st-PASS", by[("lock.acquire.free", "reference")]["class"].split())
        columns = {c.get("data-column") for c in cells}
        self.assertEqual(columns, {"reference", MUTANT})
        lanes = e.find("g", cls="lane")
        self.assertTrue({"a", "b"} <= {l.get("data-actor") for l in lanes}, lanes)
        self.assertTrue(e.find("svg", cls="timeline"))
        self.assertTrue(e.find("g", cls="lin-break"), "no op marked where linearizability breaks")
        self.assertTrue(e.find("g", cls="lin-prefix"), "no op marked in the linearizable prefix")
        self.assertTrue(e.find("g", cls="kill"), "no kill drawn")
        print("DOM: %d matrix cells, %d timelines, %d lanes, %d ops"
              % (len(cells), len(e.find("svg", cls="timeline")), len(lanes),
                 len([a for t, a in e.elements if t == "g" and "op" in (a.get("class") or "").split()])))


    def test_cell_link_filters_the_test_table(self):
        e = Elements()
        e.feed(run_chromium(self.chromium, ["--dump-dom"], self.url).decode("utf-8", "replace"))
        cell = [c for c in e.find("td", "cell") if c.get("data-clause") == "lock.kill.holder"
                and c.get("data-column") == MUTANT][0]
        href = [a.get("href") for t, a in e.elements if t == "a" and a.get("href", "").endswith(
            ":lock.kill.holder")]
        self.assertTrue(href, cell)
        e = Elements()
        e.feed(run_chromium(self.chromium, ["--dump-dom"], self.url + href[0]).decode("utf-8", "replace"))
        self.assertEqual(len(e.find("table", "filtered")), 1)
        matches = e.find("tr", "match")
        self.assertEqual([m.get("data-clauses") for m in matches], ["lock.kill.holder"])


if __name__ == "__main__":
    if not find_chromium():
        print("SKIP: no chromium on PATH (harness/setup.sh installs the Debian package "
              "chromium; MPSPEC_CHROMIUM_BIN names another browser)")
        sys.exit(SKIP)
    unittest.main(verbosity=2)

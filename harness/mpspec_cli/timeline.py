"""An SVG timeline of a saved history (`*.history.json`, format "mpspec-history/1").

One lane per actor (`process`, or `process/thread` when the process has several threads);
each operation is a bar from its invocation to its return, labelled `object.method`, with an
SVG <title> (the browser's hover text) giving the arguments, the outcome and the times.

The x axis is the *order* of events, not their time: every distinct instant at which an
operation was invoked or returned (or an actor was killed) gets its own step, so a 2 ns call
next to a 50 ms wait stays visible, and "X returned before Y was invoked", all that
linearizability looks at, reads directly. The axis ticks and the hover text give the real
times, from the first invocation.

Outcomes (the history's `status`, and for `info` its `reason`, conformance/checker/history.hpp):

* ok: returned a value; error: raised (its kind is shown after the label);
* killed: `info` with reason `killed`, or, in histories that give no reason, an `info` op of a
  process that a `kill` annotation kills after the op's invocation: the bar ends at the kill;
* timeout: status `timeout` or reason `timeout`;
* never returned: any other `info` (`teardown`, `crashed`, `pending`, none): the bar runs to
  the right edge.

Linearizability: a history the suite saved because the checker judged it not linearizable
holds, per object, an annotation {"kind": "linearizability", "object", "verdict",
"prefix_ops": [ids, in linearization order], "breaks_at": id or null}. The ops of the longest
linearizable prefix are marked with their position in it (a green tab), the op where it
breaks with a red outline and a red line at its return (it had to take effect by then), and
every other op of that object is faded. Histories without the annotation (older suites, or
tests that judge a history by other means than linearizability) are drawn without it.
"""

import html
import json

FORMAT = "mpspec-history/1"
MAX_OPS = 600  # larger histories are drawn around the breaking op (or from the start)

LANE_LABEL_W = 96
ROW_H = 26
BAR_H = 18
TOP = 34  # axis
RIGHT = 70
CHAR_W = 6.6  # of the 11 px label font, for deciding whether a label fits its bar


class HistoryError(ValueError):
    """Not a readable mpspec-history/1 document."""


def load(path):
    """The history at `path` (a dict). Raises HistoryError with a message for people."""
    try:
        with open(path, encoding="utf-8") as f:
            h = json.load(f)
    except OSError as e:
        raise HistoryError("cannot read %s: %s" % (path, e.strerror or e))
    except ValueError as e:
        raise HistoryError("%s is not JSON: %s" % (path, e))
    check(h)
    return h


def check(h):
    if not isinstance(h, dict) or h.get("format") != FORMAT:
        raise HistoryError("not an %s document" % FORMAT)
    if not isinstance(h.get("ops"), list):
        raise HistoryError("the history has no ops list")
    for op in h["ops"]:
        if not isinstance(op, dict) or not isinstance(op.get("invoke_ns"), int):
            raise HistoryError("an op without invoke_ns: %s" % json.dumps(op)[:200])
        r = op.get("return_ns")
        if r is not None and not isinstance(r, int):
            raise HistoryError("op %s: return_ns is not an integer" % op.get("id"))


# --------------------------------------------------------------------------- words


def py(value):
    """A JSON value as Python writes it (True, None, 'text'): the spec's vocabulary."""
    if value is True:
        return "True"
    if value is False:
        return "False"
    if value is None:
        return "None"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[%s]" % ", ".join(py(v) for v in value)
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (py(k), py(v)) for k, v in value.items())
    return json.dumps(value)


def call_text(op):
    args = op.get("args")
    if isinstance(args, dict):
        a = ", ".join("%s=%s" % (k, py(v)) for k, v in args.items())
    elif args in (None, [], {}):
        a = ""
    else:
        a = py(args)
    return "%s.%s(%s)" % (op.get("object", "?"), op.get("method", "?"), a)


def duration(ns):
    """'+1.234 ms' style."""
    sign = "-" if ns < 0 else "+"
    ns = abs(ns)
    for unit, scale in (("s", 10 ** 9), ("ms", 10 ** 6), ("µs", 10 ** 3)):
        if ns >= scale:
            return "%s%.3f %s" % (sign, ns / scale, unit)
    return "%s%d ns" % (sign, ns)


def actor_of(op):
    return (str(op.get("process", "?")), op.get("thread", 0))


# --------------------------------------------------------------------------- model


class Op:
    """One operation, classified and placed."""

    def __init__(self, raw, kill_ns):
        self.raw = raw
        self.id = raw.get("id")
        self.actor = actor_of(raw)
        self.invoke = raw["invoke_ns"]
        status = str(raw.get("status", "info"))
        reason = str(raw.get("reason") or "")
        self.end = None  # ns the bar ends at; None: the right edge
        if status == "ok":
            self.kind, self.end = "ok", raw.get("return_ns")
        elif status == "error":
            self.kind, self.end = "error", raw.get("return_ns")
        elif status == "timeout" or reason == "timeout":
            self.kind, self.end = "timeout", raw.get("return_ns")
        elif reason == "killed" or (not reason and kill_ns is not None and kill_ns >= self.invoke):
            self.kind, self.end = "killed", kill_ns if kill_ns is not None else raw.get("return_ns")
        else:
            self.kind = "open"
        if self.end is not None and self.end < self.invoke:
            self.end = self.invoke
        self.status, self.reason = status, reason
        self.lin = None  # position (1-based) in the longest linearizable prefix
        self.breaks = False  # linearizability breaks at this op
        self.faded = False  # of an annotated object, neither in the prefix nor breaking
        self.row = 0  # sub-row in its lane

    def labels(self):
        """Bar labels, longest first: `object.method` and its outcome, then without it."""
        text = "%s.%s" % (self.raw.get("object", "?"), self.raw.get("method", "?"))
        if self.kind == "error":
            e = self.raw.get("error") if isinstance(self.raw.get("error"), dict) else {}
            return [text + " !" + str(e.get("kind") or "error"), text]
        if self.kind == "ok":
            value = py(self.raw.get("value"))
            if len(value) <= 12:
                return [text + " → " + value, text]
        return [text]

    def outcome(self):
        if self.kind == "ok":
            return "-> %s" % py(self.raw.get("value"))
        if self.kind == "error":
            e = self.raw.get("error") if isinstance(self.raw.get("error"), dict) else {}
            msg = e.get("message") or ""
            return "raised %s%s" % (e.get("kind", "an error"), ": " + msg if msg else "")
        if self.kind == "killed":
            return "outcome unknown: its actor was killed while it ran"
        if self.kind == "timeout":
            return "timed out"
        why = {"teardown": "the scenario was torn down while it ran",
               "crashed": "its actor died while it ran",
               "pending": "it was still running when the history was taken"}.get(self.reason)
        return "never returned" + (": " + why if why else " (outcome unknown)")


def kills(history):
    """{process: first kill time_ns} from the `kill` annotations."""
    out = {}
    for a in history.get("annotations") or []:
        if isinstance(a, dict) and a.get("kind") == "kill" and isinstance(a.get("time_ns"), int):
            p = str(a.get("actor"))
            out[p] = min(out.get(p, a["time_ns"]), a["time_ns"])
    return out


def linearizability(history):
    """The history's linearizability annotations (list of dicts; empty when it has none)."""
    return [a for a in history.get("annotations") or []
            if isinstance(a, dict) and a.get("kind") == "linearizability"]


def _window(ops, breaks_ids, limit):
    """At most `limit` ops, in invocation order, around the first breaking op."""
    if len(ops) <= limit:
        return ops, None
    ordered = sorted(ops, key=lambda o: (o.invoke, str(o.id)))
    centre = next((i for i, o in enumerate(ordered) if o.id in breaks_ids), 0)
    start = max(0, min(centre - limit // 2, len(ordered) - limit)) if centre else 0
    shown = ordered[start:start + limit]
    return shown, "ops %d to %d of %d (by invocation), around %s" % (
        start + 1, start + len(shown), len(ordered),
        "the op where linearizability breaks" if centre else "the start")


# --------------------------------------------------------------------------- SVG


def _e(text):
    return html.escape(str(text), quote=True)


def render(history, max_ops=MAX_OPS):
    """The timeline as an HTML fragment: a note (if any) and an inline <svg> (no element ids:
    many timelines share one page)."""
    kill_at = kills(history)
    ops = [Op(raw, kill_at.get(str(raw.get("process")))) for raw in history["ops"]]
    lin = linearizability(history)
    by_id = {o.id: o for o in ops}
    breaks_ids, annotated = set(), set()
    for a in lin:
        annotated.add(a.get("object"))
        for n, i in enumerate(a.get("prefix_ops") or [], 1):
            if i in by_id:
                by_id[i].lin = n
        if a.get("breaks_at") in by_id:
            by_id[a["breaks_at"]].breaks = True
            breaks_ids.add(a["breaks_at"])
    for o in ops:
        o.faded = o.raw.get("object") in annotated and o.lin is None and not o.breaks

    ops, note = _window(ops, breaks_ids, max_ops)
    notes = [note] if note else []
    if not ops:
        return '<p class="tl-note">The history holds no operation.</p>'

    # Lanes: actors by first invocation; a process with one thread 0 is named by itself.
    ops.sort(key=lambda o: (o.invoke, str(o.id)))
    threads = {}
    for o in ops:
        threads.setdefault(o.actor[0], set()).add(o.actor[1])
    lanes = []
    for o in ops:
        if o.actor not in lanes:
            lanes.append(o.actor)

    def lane_name(actor):
        p, t = actor
        return p if threads[p] == {0} else "%s/%s" % (p, t)

    # The event axis.
    times = {o.invoke for o in ops} | {o.end for o in ops if o.end is not None}
    times |= {t for p, t in kill_at.items() if any(l[0] == p for l in lanes)}
    times = sorted(times)
    slot = {t: i for i, t in enumerate(times)}
    has_open = any(o.end is None for o in ops)
    never = len(times) if has_open else len(times) - 1  # the slot of "never returned"
    step = max(14.0, min(120.0, 1100.0 / (never + 1)))
    origin = times[0]

    def x(t):
        return LANE_LABEL_W + 12 + step * (slot[t] if t is not None else never)

    # Sub-rows: ops of one actor that overlap (two calls in flight) are stacked.
    lane_rows = {}
    ends = {}
    for o in ops:
        rows = ends.setdefault(o.actor, [])
        x0, x1 = x(o.invoke), max(x(o.end), x(o.invoke) + 6)
        for r, last in enumerate(rows):
            if last < x0:
                o.row, rows[r] = r, x1
                break
        else:
            o.row = len(rows)
            rows.append(x1)
        lane_rows[o.actor] = len(rows)
    lane_y, y = {}, TOP
    for actor in lanes:
        lane_y[actor] = y
        y += lane_rows[actor] * ROW_H + 8
    height = y + 6
    width = int(x(None) + RIGHT)

    out = ['<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" role="img" aria-label="timeline of %d operations in %d lanes">'
           % (width, height, width, height, len(ops), len(lanes))]
    # Axis: a tick every few events, labelled with the real time.
    every = max(1, int(70 // step) + 1)
    out.append('<g class="axis">')
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d"/>' % (LANE_LABEL_W, TOP - 6, width - RIGHT + 30, TOP - 6))
    for i, t in enumerate(times):
        if i % every:
            continue
        xx = x(t)
        out.append('<line class="tick" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (xx, TOP - 10, xx, height))
        out.append('<text x="%.1f" y="%d">%s</text>' % (xx + 2, TOP - 12, _e(duration(t - origin))))
    if has_open:
        out.append('<text class="never" x="%.1f" y="%d">never</text>' % (x(None) - 10, TOP - 12))
    out.append('</g>')
    # Lanes.
    for actor in lanes:
        ly, lh = lane_y[actor], lane_rows[actor] * ROW_H
        out.append('<g class="lane" data-actor="%s">' % _e(lane_name(actor)))
        out.append('<rect class="lane-bg" x="0" y="%d" width="%d" height="%d"/>' % (ly - 3, width, lh + 2))
        out.append('<text class="lane-label" x="8" y="%d">%s</text>' % (ly + BAR_H - 4, _e(lane_name(actor))))
        killed = kill_at.get(actor[0])
        if killed is not None and killed in slot:
            kx = x(killed)
            out.append('<g class="kill"><title>%s killed at %s</title>'
                       '<line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                       '<text x="%.1f" y="%d">✕ kill</text></g>'
                       % (_e(actor[0]), _e(duration(killed - origin)), kx, ly - 3, kx, ly + lh - 1,
                          kx + 3, ly + lh - 5))
        out.append('</g>')
    # Ops.
    for o in ops:
        out.append(_bar(o, x, lane_y[o.actor] + o.row * ROW_H, origin, lane_name(o.actor)))
    # Where linearizability breaks: the breaking op had to take effect by its return.
    for o in ops:
        if o.breaks and o.end is not None:
            bx = x(o.end)
            out.append('<g class="lin-line"><title>linearizability breaks: #%s %s had to take '
                       'effect by here (its return, %s)</title>'
                       '<line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                       '<text x="%.1f" y="%d">breaks</text></g>'
                       % (_e(o.id), _e(call_text(o.raw)), _e(duration(o.end - origin)),
                          bx, TOP - 4, bx, height - 2, bx + 3, height - 4))
    out.append('</svg>')

    if lin:
        parts = []
        for a in lin:
            prefix = a.get("prefix_ops") or []
            b = a.get("breaks_at")
            parts.append("%s (%s): %s; longest linearizable prefix %d op(s)%s" % (
                a.get("object", "?"), a.get("type", "?"), a.get("verdict", "not linearizable"),
                len(prefix), ", breaks at #%s" % b if b is not None else ""))
        notes.insert(0, "; ".join(parts))
    elif history.get("ops"):
        notes.append("this history holds no linearizability annotation (the checker's verdict "
                     "was not recorded in it): no prefix or breaking op to show")
    head = "".join('<p class="tl-note">%s</p>' % _e(n) for n in notes)
    return head + '<div class="tl-scroll">%s</div>' % "".join(out)


def _bar(o, x, y, origin, lane):
    x0 = x(o.invoke) + 1  # a pixel apart from a bar ending at the same event
    x1 = max(x(o.end) - 1, x0 + 5)
    classes = ["op", "op-" + o.kind]
    if o.lin is not None:
        classes.append("lin-prefix")
    if o.breaks:
        classes.append("lin-break")
    if o.faded:
        classes.append("lin-other")
    ret = ("returned %s (took %s)" % (duration(o.end - origin), duration(o.end - o.invoke)[1:])
           if o.end is not None and o.kind != "killed" else
           "killed at %s" % duration(o.end - origin) if o.kind == "killed" else "never returned")
    title = ["#%s  %s  %s" % (o.id, lane, call_text(o.raw)), o.outcome(),
             "invoked %s, %s" % (duration(o.invoke - origin), ret)]
    if o.lin is not None:
        title.append("linearizability: #%d of the longest linearizable prefix" % o.lin)
    if o.breaks:
        title.append("linearizability breaks here: no order lets this op take effect")
    if o.faded:
        title.append("not in the longest linearizable prefix")
    parts = ['<g class="%s" data-op="%s"><title>%s</title>' % (" ".join(classes), _e(o.id), _e("\n".join(title)))]
    parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="3"/>' % (x0, y, x1 - x0, BAR_H))
    if o.kind == "open":
        parts.append('<path class="arrow" d="M%.1f %d l6 %d l-6 %d z"/>' % (x1, y + 2, BAR_H // 2 - 2, BAR_H // 2 - 2))
    if o.kind == "killed":
        parts.append('<text class="mark" x="%.1f" y="%d">✕</text>' % (x1 - 9, y + BAR_H - 5))
    if o.lin is not None:
        parts.append('<rect class="lin-tab" x="%.1f" y="%d" width="%d" height="5"/>' % (x0, y - 4, 18))
        parts.append('<text class="lin-num" x="%.1f" y="%d">%d</text>' % (x0 + 20, y - 0.5, o.lin))
    room = x1 - x0 - (14 if o.kind in ("open", "killed") else 6)
    label = next((l for l in o.labels() if len(l) * CHAR_W <= room), None)
    if label:
        parts.append('<text x="%.1f" y="%d">%s</text>' % (x0 + 4, y + BAR_H - 5, _e(label)))
    parts.append('</g>')
    return "".join(parts)


LEGEND = (
    '<div class="tl-legend">'
    '<span><svg width="26" height="12"><rect class="lg-ok" x="1" y="1" width="24" height="10" rx="2"/></svg>returned</span>'
    '<span><svg width="26" height="12"><rect class="lg-error" x="1" y="1" width="24" height="10" rx="2"/></svg>raised</span>'
    '<span><svg width="26" height="12"><rect class="lg-killed" x="1" y="1" width="24" height="10" rx="2"/></svg>killed while running (✕)</span>'
    '<span><svg width="26" height="12"><rect class="lg-timeout" x="1" y="1" width="24" height="10" rx="2"/></svg>timed out</span>'
    '<span><svg width="26" height="12"><rect class="lg-open" x="1" y="1" width="24" height="10" rx="2"/></svg>never returned (▶)</span>'
    '<span><svg width="26" height="12"><rect class="lg-tab" x="1" y="3" width="18" height="5"/></svg>in the longest linearizable prefix (its position)</span>'
    '<span><svg width="26" height="12"><rect class="lg-break" x="1" y="1" width="24" height="10" rx="2"/></svg>where linearizability breaks</span>'
    '<span><svg width="26" height="12"><rect class="lg-ok lg-faded" x="1" y="1" width="24" height="10" rx="2"/></svg>not in the prefix</span>'
    '</div>')

CSS = """
.tl-scroll{overflow-x:auto;border:1px solid #d0d7de;border-radius:6px;background:#fff;margin:.3em 0}
svg.timeline{display:block;font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
svg.timeline .axis line{stroke:#8c959f;stroke-width:1}
svg.timeline .axis line.tick{stroke:#d8dee4;stroke-dasharray:2 3}
svg.timeline .axis text{fill:#57606a;font-size:10px}
svg.timeline .lane-bg{fill:#f6f8fa}
svg.timeline .lane:nth-child(even) .lane-bg{fill:#eef1f4}
svg.timeline .lane-label{fill:#24292f;font-weight:600}
svg.timeline .op rect{stroke-width:1.2}
svg.timeline .op text{fill:#1f2328;pointer-events:none}
svg.timeline .op-ok rect,.tl-legend .lg-ok{fill:#cfe2ff;stroke:#3b6fc4}
svg.timeline .op-error rect,.tl-legend .lg-error{fill:#ffdcaa;stroke:#c96a00}
svg.timeline .op-killed rect,.tl-legend .lg-killed{fill:#f8c9c9;stroke:#a11d1d;stroke-dasharray:4 2}
svg.timeline .op-timeout rect,.tl-legend .lg-timeout{fill:#e4d7f7;stroke:#6a3fb5;stroke-dasharray:4 2}
svg.timeline .op-open rect,.tl-legend .lg-open{fill:#f2f2f2;stroke:#6e7781;stroke-dasharray:3 3}
svg.timeline .op .arrow{fill:#6e7781;stroke:none}
svg.timeline .op .mark{fill:#a11d1d;font-weight:700}
svg.timeline .op rect.lin-tab,.tl-legend .lg-tab{fill:#1a7f37;stroke:none}
svg.timeline .op .lin-num{fill:#1a7f37;font-size:9px;font-weight:700}
svg.timeline .lin-break rect:first-of-type,.tl-legend .lg-break{stroke:#d1242f;stroke-width:3;stroke-dasharray:none;fill:#ffd7d5}
svg.timeline .lin-other,.tl-legend .lg-faded{opacity:.45}
svg.timeline .op:hover rect{stroke-width:2.4}
svg.timeline .kill line{stroke:#a11d1d;stroke-width:2}
svg.timeline .kill text{fill:#a11d1d;font-weight:700}
svg.timeline .lin-line line{stroke:#d1242f;stroke-width:1.5;stroke-dasharray:6 3}
svg.timeline .lin-line text{fill:#d1242f;font-weight:700}
.tl-legend{display:flex;flex-wrap:wrap;gap:.3em 1.2em;font-size:12px;color:#57606a;margin:.2em 0}
.tl-legend span{display:inline-flex;align-items:center;gap:.35em}
.tl-legend svg rect{stroke-width:1.2}
.tl-note{margin:.2em 0;font-size:13px;color:#57606a}
"""

"""`mpspec spec`: every clause with the tests that name it; fails on traceability errors."""

import json
import os

from . import clauses as cl
from .errors import EXIT_FAILED, EXIT_OK


def as_json(t):
    return {
        "clauses": [
            {"label": c.label, "level": c.level, "profile": c.profile, "condition": c.condition,
             "file": c.file, "line": c.line, "protocol": c.protocol, "tests": t.by_clause[c.label]}
            for c in t.clauses.values()
        ],
        "tests": [{"test": x.name, "file": x.file, "line": x.line, "clauses": x.clauses}
                  for x in t.tests],
        "errors": t.errors,
        "warnings": t.warnings,
    }


def _table(out, items, t):
    lw = max([len("[%s]" % c.label) for c in items] + [6])
    vw = max(len(c.level + (", " + c.profile if c.profile else "")) for c in items)
    for c in items:
        tests = t.by_clause[c.label]
        if tests:
            shown = ", ".join(tests)
        elif c.level == "withdrawn":
            shown = "(withdrawn)"
        elif c.level == "MUST" and not c.protocol and c.draft:
            shown = "(draft: no test yet)"
        elif c.level == "MUST" and not c.protocol:
            shown = "(NO TEST)"
        else:
            shown = "(no test)"
        level = c.level + (", " + c.profile if c.profile else "")
        out.write("  %-*s  %-*s  %s\n" % (lw, "[%s]" % c.label, vw, level, shown))


def main(root, want_json, out):
    t = cl.trace(root)
    if want_json:
        json.dump(as_json(t), out, indent=2)
        out.write("\n")
        return EXIT_FAILED if t.errors else EXIT_OK

    chapters, protocol = {}, []
    for c in t.clauses.values():
        (protocol if c.protocol else chapters.setdefault(c.file, [])).append(c)
    for f, items in chapters.items():
        out.write("%s (%d clauses)\n" % (f, len(items)))
        _table(out, items, t)
        out.write("\n")
    if protocol:
        files = sorted({c.file for c in protocol})
        out.write("Driver protocol (%s, %d clauses): binding on drivers, checked by the "
                  "Protocol.* tests; never gating here\n" % (", ".join(files), len(protocol)))
        _table(out, protocol, t)
        out.write("\n")

    normative = [c for c in t.clauses.values() if not c.protocol]
    by_level = {lv: sum(1 for c in normative if c.level == lv) for lv in cl.LEVELS + ("withdrawn",)}
    tested = sum(1 for c in normative if t.by_clause[c.label])
    for w in t.warnings:
        out.write("warning: %s\n" % w)
    for e in t.errors:
        out.write("error: %s\n" % e)
    out.write("%d clauses (%s), %d with tests; %d protocol clauses; %d tests in %s\n" % (
        len(normative), ", ".join("%d %s" % (n, lv) for lv, n in by_level.items() if n), tested,
        len(protocol), len(t.tests), os.path.join("conformance", "tests")))
    if t.errors:
        out.write("%d traceability error(s)\n" % len(t.errors))
        return EXIT_FAILED
    out.write("every MUST clause has a test\n")
    return EXIT_OK

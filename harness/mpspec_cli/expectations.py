"""A backend's expectations file: the results it is known to end with, and why.

    [[expect]]
    test = "Lock.ConcurrentReleaseExactlyOne"   # gtest full name, Suite.Name
    clause = "lock.release.concurrent"          # the clause the deviation is about
    status = ["FAIL", "PASS"]                   # one status, or the allowed ones (intermittent)
    reason = "why"

Applied to a raw result (PASS FAIL TIMEOUT CRASH UNSUPPORTED UNRESOLVED):

* FAIL / TIMEOUT / CRASH listed in `status`         -> XFAIL (expected)
* FAIL / TIMEOUT / CRASH not listed (or no entry)   -> unchanged, unexpected
* PASS with an entry whose `status` lacks PASS      -> XPASS (unexpected: the entry is stale)
* PASS otherwise                                    -> PASS
* UNSUPPORTED / UNRESOLVED                          -> unchanged, never unexpected
"""

import re
from dataclasses import dataclass
from typing import List

from . import tomlload
from .errors import UserError
from .gtest import CRASH, FAIL, PASS, TIMEOUT, UNRESOLVED, UNSUPPORTED, XFAIL, XPASS

ALLOWED = (PASS, FAIL, TIMEOUT, CRASH, UNSUPPORTED, UNRESOLVED)
FAILING = (FAIL, TIMEOUT, CRASH)
UNEXPECTED = (FAIL, TIMEOUT, CRASH, XPASS)  # after apply(): these fail the run
KEYS = {"test", "clause", "status", "reason"}


@dataclass
class Expectation:
    test: str
    clause: str
    status: List[str]
    reason: str
    index: int  # position in the file (1-based), for messages


def parse(data, path="<expectations>"):
    """Validates a decoded expectations document; returns {test: Expectation}."""
    extra = set(data) - {"expect"}
    if extra:
        raise UserError("%s: unknown top-level key(s): %s (entries are [[expect]] tables)"
                        % (path, ", ".join(sorted(extra))))
    entries = data.get("expect", [])
    if not isinstance(entries, list):
        raise UserError("%s: 'expect' must be an array of tables ([[expect]])" % path)
    out = {}
    for n, e in enumerate(entries, 1):
        where = "%s: [[expect]] #%d" % (path, n)
        if not isinstance(e, dict):
            raise UserError("%s is not a table" % where)
        unknown = set(e) - KEYS
        if unknown:
            raise UserError("%s: unknown key(s) %s" % (where, ", ".join(sorted(unknown))))
        missing = [k for k in ("test", "clause", "status", "reason") if not e.get(k)]
        if missing:
            raise UserError("%s: missing %s" % (where, ", ".join(missing)))
        test, clause, reason = e["test"], e["clause"], e["reason"]
        for key, v in (("test", test), ("clause", clause), ("reason", reason)):
            if not isinstance(v, str):
                raise UserError("%s: '%s' must be a string" % (where, key))
        if not re.fullmatch(r"[A-Za-z_]\w*(/\w+)?\.[A-Za-z_]\w*(/\w+)?", test):
            raise UserError("%s: test %r is not a gtest full name (Suite.Name)" % (where, test))
        clause = clause.strip("[]")
        status = e["status"]
        statuses = [status] if isinstance(status, str) else status
        if not isinstance(statuses, list) or not statuses or not all(isinstance(s, str) for s in statuses):
            raise UserError("%s: 'status' must be a status or a list of statuses" % where)
        bad = [s for s in statuses if s not in ALLOWED]
        if bad:
            raise UserError("%s: status %s is not one of %s" % (where, ", ".join(bad), ", ".join(ALLOWED)))
        if test in out:
            raise UserError("%s: test %s is already listed (entry #%d)" % (where, test, out[test].index))
        out[test] = Expectation(test, clause, statuses, reason.strip(), n)
    return out


def load(path):
    try:
        data = tomlload.load_file(path)
    except FileNotFoundError:
        raise UserError("expectations file %s does not exist" % path)
    except (OSError, tomlload.TomlError) as e:
        raise UserError("cannot read the expectations file: %s" % e)
    return parse(data, path)


def apply(raw_status, expectation):
    """Returns (final status, expected?) for a raw result and its entry (or None)."""
    if raw_status in FAILING:
        if expectation and raw_status in expectation.status:
            return XFAIL, True
        return raw_status, False
    if raw_status == PASS:
        if expectation and PASS not in expectation.status:
            return XPASS, False
        return PASS, True
    return raw_status, True  # UNSUPPORTED / UNRESOLVED


def check_entries(expectations, known_tests, test_clauses, path="<expectations>"):
    """Entries naming unknown tests (errors) or clauses their test does not name (warnings).

    `known_tests`: every test name the suite has (source scan and/or the binary's list);
    `test_clauses`: {test: [labels]} where known.
    """
    errors, warnings = [], []
    for e in expectations.values():
        if e.test not in known_tests:
            errors.append("%s: entry #%d names test %s, which does not exist" % (path, e.index, e.test))
            continue
        labels = test_clauses.get(e.test)
        if labels is not None and e.clause not in labels:
            warnings.append("%s: entry #%d for %s names clause [%s], which the test does not check (it checks %s)"
                            % (path, e.index, e.test, e.clause,
                               " ".join("[%s]" % l for l in labels) or "nothing"))
    return errors, warnings

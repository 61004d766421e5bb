#!/usr/bin/env python3
"""The suite must catch every mutant: a thin wrapper of `./mpspec mutants` (kept for old scripts;
CTest's suite.mutants runs `mpspec mutants` itself). The logic is in
harness/mpspec_cli/mutantscmd.py; the options are those of `./mpspec mutants --help`
(--build-dir, --only NAME..., --json, --reports, --artifacts, --watchdog,
--timeout-multiplier, --whole-suite).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE)))

from mpspec_cli import cli  # noqa: E402


def main(argv=None):
    return cli.main(["mutants"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())

"""The `mpspec` command line: build the suite, run it against a backend, report.

Standard library only. Python 3.11+ reads TOML with `tomllib`; on 3.9 and 3.10 a small
built-in reader of the TOML subset the harness files use takes over (`tomlload`).
"""

import os

__version__ = "0.1.0"

# harness/mpspec_cli/__init__.py -> the repository root is two levels up.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESS = os.path.join(ROOT, "harness")

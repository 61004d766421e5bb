"""`python3 -m mpspec_cli` (with harness/ on sys.path) is the same as ./mpspec."""
import sys

from .cli import main

sys.exit(main())

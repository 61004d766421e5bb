"""Shared helpers of the harness tests: paths, temporary trees, the fake conformance binary."""

import json
import os
import stat
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HARNESS = os.path.join(ROOT, "harness")
FIXTURES = os.path.join(ROOT, "fixtures", "gtest")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


SPEC_CHAPTER = """\
# Widget

**[widget.make.empty]** MUST, core. A new widget is empty. *Source: reasoning.*

**[widget.poke.kill]** MUST, core, when the backend declares kill. Poking works.

**[widget.fast]** SHOULD, strict. It is fast.

**[widget.order]** MAY. Any order.

**[widget.old]** withdrawn. Replaced by [widget.make.empty].

**[widget.strict.only]** MUST, strict. Strictly so.

```markdown
**[widget.example]** MUST, core. An example inside a code block is not a clause.
```
"""

PROTOCOL = """\
# Protocol

- [protocol.hello.first] MUST. Hello first.
- [protocol.kill] MUST when the feature `kill` is declared. Kill works.
"""

TESTS_CPP = """\
// TEST(Widget, CommentedOut) { MPSPEC_CLAUSES("[widget.nope]"); }
TEST(Widget, MakeEmpty) {
  MPSPEC_CLAUSES("[widget.make.empty]");
}
TEST(Widget, Poke) {
  MPSPEC_CLAUSES("[widget.poke.kill] "
                 "[widget.make.empty]");
}
RC_GTEST_PROP(WidgetProp, Anything, (int x)) {
  MPSPEC_CLAUSES("[widget.strict.only]");
}
TEST(Protocol, Hello) {
  MPSPEC_CLAUSES("[protocol.hello.first]");
}
"""


def make_tree(root, spec=SPEC_CHAPTER, tests=TESTS_CPP, protocol=PROTOCOL):
    """A minimal repository: spec/, conformance/tests/, harness/backends.toml."""
    write(os.path.join(root, "spec", "widget", "widget.md"), spec)
    write(os.path.join(root, "spec", "protocol.md"), protocol)
    write(os.path.join(root, "conformance", "tests", "widget", "widget_test.cpp"), tests)
    write(os.path.join(root, "conformance", "tests", "main.cpp"), "TEST(Not, AScannedFile) {}\n")
    return root


def install_fake_binary(build_dir):
    """Puts the fake conformance binary where `mpspec run` looks for the real one."""
    path = os.path.join(build_dir, "conformance", "tests", "mpspec_conformance")
    write(path, "#!/bin/sh\nexec '%s' '%s' \"$@\"\n"
          % (sys.executable, os.path.join(HERE, "fake_conformance.py")))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def write_scenario(directory, tests, record=None):
    path = os.path.join(directory, "scenario.json")
    write(path, json.dumps({"tests": tests, "record": record}))
    return path


class TempDir:
    def __init__(self):
        self._t = tempfile.TemporaryDirectory(prefix="mpspec-test-")
        self.path = self._t.name

    def cleanup(self):
        self._t.cleanup()

"""The backend registry, harness/backends.toml.

    [backends.NAME]
    driver = "{build}/conformance/backends/reference/mpspec_driver_reference"   # shell command
    expectations = "harness/expectations/NAME.toml"   # optional; relative to the repo root
    description = "one line"
    profile = "core"          # optional: the profile the backend claims (core / strict)
    start_method = "spawn"    # optional: sets MPSPEC_START_METHOD (the suite's setup requests)
    mutant = true             # optional: a deliberately broken backend (suite.mutants)
    must_fail = ["Suite.Name", ...]   # mutants: tests that must catch it

Placeholders in `driver` and `expectations`: {build} the build directory, {root} the repository
root, {python} the interpreter running mpspec. Substituted values are shell-quoted.
"""

import os
import shlex
from dataclasses import dataclass, field
from typing import List, Optional

from . import tomlload
from .errors import UserError

KEYS = {"driver", "expectations", "description", "profile", "start_method", "mutant", "must_fail"}
PROFILES = ("core", "strict")
START_METHODS = ("fork", "spawn", "forkserver")


@dataclass
class Backend:
    name: str
    driver: str  # with placeholders
    description: str = ""
    expectations: Optional[str] = None  # with placeholders, relative to the root
    profile: Optional[str] = None
    start_method: Optional[str] = None
    mutant: bool = False
    must_fail: List[str] = field(default_factory=list)

    def driver_command(self, build, root, python):
        return expand(self.driver, build, root, python, quote=True)

    def expectations_path(self, build, root, python):
        if not self.expectations:
            return None
        p = expand(self.expectations, build, root, python, quote=False)
        return p if os.path.isabs(p) else os.path.join(root, p)


def expand(template, build, root, python, quote=True):
    q = shlex.quote if quote else (lambda s: s)
    values = {"build": q(build), "root": q(root), "python": q(python)}
    out, i = [], 0
    while i < len(template):
        c = template[i]
        if c == "{":
            j = template.find("}", i)
            key = template[i + 1 : j] if j > 0 else None
            if key not in values:
                raise UserError("unknown placeholder in %r (known: {build}, {root}, {python})"
                                % template)
            out.append(values[key])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load(path):
    """Reads the registry; returns an ordered dict name -> Backend. UserError when invalid."""
    try:
        data = tomlload.load_file(path)
    except FileNotFoundError:
        raise UserError("no backend registry at %s" % path)
    except (OSError, tomlload.TomlError) as e:
        raise UserError("cannot read the backend registry: %s" % e)
    table = data.get("backends")
    if not isinstance(table, dict) or not table:
        raise UserError("%s: no [backends.NAME] tables" % path)
    extra = set(data) - {"backends"}
    if extra:
        raise UserError("%s: unknown top-level key(s): %s" % (path, ", ".join(sorted(extra))))
    out = {}
    for name, entry in table.items():
        where = "%s: [backends.%s]" % (path, name)
        if not isinstance(entry, dict):
            raise UserError("%s is not a table" % where)
        unknown = set(entry) - KEYS
        if unknown:
            raise UserError("%s: unknown key(s) %s (known: %s)"
                            % (where, ", ".join(sorted(unknown)), ", ".join(sorted(KEYS))))
        driver = entry.get("driver")
        if not isinstance(driver, str) or not driver.strip():
            raise UserError("%s: 'driver' must be a non-empty string" % where)
        for key in ("expectations", "description", "profile", "start_method"):
            if key in entry and not isinstance(entry[key], str):
                raise UserError("%s: '%s' must be a string" % (where, key))
        if entry.get("profile") not in (None,) + PROFILES:
            raise UserError("%s: profile must be one of %s" % (where, ", ".join(PROFILES)))
        if entry.get("start_method") not in (None,) + START_METHODS:
            raise UserError("%s: start_method must be one of %s" % (where, ", ".join(START_METHODS)))
        if not isinstance(entry.get("mutant", False), bool):
            raise UserError("%s: 'mutant' must be true or false" % where)
        must_fail = entry.get("must_fail", [])
        if not isinstance(must_fail, list) or not all(isinstance(t, str) for t in must_fail):
            raise UserError("%s: 'must_fail' must be a list of test names" % where)
        if must_fail and not entry.get("mutant", False):
            raise UserError("%s: 'must_fail' is only for mutants (mutant = true)" % where)
        for template in (driver, entry.get("expectations") or ""):
            expand(template, "b", "r", "p")  # reports unknown placeholders now
        out[name] = Backend(name, driver, entry.get("description", ""), entry.get("expectations"),
                            entry.get("profile"), entry.get("start_method"),
                            entry.get("mutant", False), list(must_fail))
    return out


def lookup(registry, name):
    if name not in registry:
        raise UserError("unknown backend '%s'; known backends: %s (see ./mpspec backends)"
                        % (name, ", ".join(registry)))
    return registry[name]


def missing_files(command, build, root):
    """Files named by a driver command, inside the build tree or the repository, that do not
    exist (an unbuilt driver, a missing script)."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise UserError("cannot parse the driver command %r: %s" % (command, e))
    out = []
    for w in words:
        if os.path.isabs(w) and (w.startswith(os.path.join(build, "")) or
                                 w.startswith(os.path.join(root, ""))) and not os.path.exists(w):
            out.append(w)
    return out

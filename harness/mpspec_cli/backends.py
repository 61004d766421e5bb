"""The backend registry, harness/backends.toml.

    [backends.NAME]
    driver = "{build}/conformance/backends/reference/mpspec_driver_reference"   # shell command
    expectations = "harness/expectations/NAME.toml"   # optional; relative to the repo root
    description = "one line"
    profile = "core"          # optional: the profile the backend claims (core / strict)
    start_method = "spawn"    # optional: sets MPSPEC_START_METHOD (the suite's setup requests)
    mutant = true             # optional: a deliberately broken backend (suite.mutants)
    must_fail = ["Suite.Name", ...]   # mutants: tests that must catch it

    check = "/usr/bin/python3 {root}/harness/drivers/cpython.py --module multiprocess --check"
                              # optional: a command that exits 0 when the backend can run here;
                              # otherwise the backend is unavailable and its output says why

Placeholders in `driver`, `check` and `expectations`: {build} the build directory, {root} the
repository root, {python} the interpreter running mpspec. Substituted values are shell-quoted.

Discovered backends (one per CPython interpreter found on the machine):

    [discover.cpython]
    interpreters = ["/root/.pyenv/versions/*/bin/python3", "/usr/bin/python3.*"]   # globs
    name = "cpython-{version}"                 # {version}: MAJOR.MINOR
    driver = "{interpreter} {root}/harness/drivers/cpython.py"   # {interpreter}: its path
    expectations = "harness/expectations/cpython.toml"            # for every version
    overrides = "harness/expectations/cpython-{version}.toml"     # added when the file exists
    min_version = "3.9"                        # older ones are listed, unavailable, with why
    description = "..."                        # {full_version}, {interpreter} too
    profile = "core"

Each glob match whose file name is `python3` or `python3.N` is asked its implementation and
version (a few milliseconds each); CPython 3 ones become backends NAME, listed by version. A name already taken (by
a [backends.*] entry or an earlier match: patterns are tried in order) or an interpreter
already found under another path is skipped; an interpreter that is absent is not listed.
"""

import glob
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import tomlload
from .errors import EnvError, UserError

KEYS = {"driver", "expectations", "description", "profile", "start_method", "mutant", "must_fail",
        "check", "timeout_multiplier", "context", "filter"}
DISCOVER_KEYS = {"interpreters", "name", "driver", "expectations", "overrides", "min_version",
                 "description", "profile", "start_method"}
PROBE_TIMEOUT = 10.0  # seconds, for an interpreter's version or a backend's check command
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
    check: Optional[str] = None  # with placeholders: exits 0 when the backend can run here
    # Mutants only: the --timeout-multiplier the mutant check runs it with (a mutant that hangs
    # is caught by a TIMEOUT; a smaller multiplier gets there sooner). None: the default.
    timeout_multiplier: Optional[float] = None
    # A setup context the suite asks for (MPSPEC_CONTEXT, spec/protocol.md
    # [protocol.setup.context]), and the tests the backend runs when --filter is not given.
    context: Optional[str] = None
    filter: Optional[str] = None
    # Discovered backends: more expectations files (absolute, applied after `expectations`,
    # entry by entry), and why the backend cannot run here (None: it can, as far as known).
    overrides: List[str] = field(default_factory=list)
    unavailable: Optional[str] = None
    discovered: bool = False

    def driver_command(self, build, root, python):
        return expand(self.driver, build, root, python, quote=True)

    def expectations_path(self, build, root, python):
        if not self.expectations:
            return None
        p = expand(self.expectations, build, root, python, quote=False)
        return p if os.path.isabs(p) else os.path.join(root, p)

    def expectations_paths(self, build, root, python):
        """Every expectations file of the backend, in the order they apply (later entries
        replace earlier ones for the same test)."""
        first = self.expectations_path(build, root, python)
        return ([first] if first else []) + list(self.overrides)

    def why_unavailable(self, build, root, python):
        """None when the backend can run here, else the reason (runs its `check` command)."""
        if self.unavailable:
            return self.unavailable
        if not self.check:
            return None
        command = expand(self.check, build, root, python, quote=True)
        try:
            proc = subprocess.run(command, shell=True, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            return "its check (%s) did not finish within %.0f s" % (command, PROBE_TIMEOUT)
        except OSError as e:
            return "cannot run its check (%s): %s" % (command, e)
        if proc.returncode == 0:
            return None
        lines = [l.strip() for l in proc.stdout.decode("utf-8", "replace").splitlines()
                 if l.strip()]
        return "%s (check: %s, exit status %d)" % (
            lines[-1] if lines else "its check failed", command, proc.returncode)


def expand(template, build, root, python, quote=True, extra=None):
    q = shlex.quote if quote else (lambda s: s)
    values = {"build": q(build), "root": q(root), "python": q(python)}
    for key, value in (extra or {}).items():
        values[key] = q(value)
    out, i = [], 0
    while i < len(template):
        c = template[i]
        if c == "{":
            j = template.find("}", i)
            key = template[i + 1 : j] if j > 0 else None
            if key not in values:
                raise UserError("unknown placeholder in %r (known: %s)"
                                % (template, ", ".join("{%s}" % k for k in values)))
            out.append(values[key])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load(path, discover=True):
    """Reads the registry; returns an ordered dict name -> Backend. UserError when invalid.

    With `discover`, the backends of the [discover.*] sections follow the [backends.*] ones."""
    try:
        data = tomlload.load_file(path)
    except FileNotFoundError:
        raise UserError("no backend registry at %s" % path)
    except (OSError, tomlload.TomlError) as e:
        raise UserError("cannot read the backend registry: %s" % e)
    table = data.get("backends")
    if not isinstance(table, dict) or not table:
        raise UserError("%s: no [backends.NAME] tables" % path)
    extra = set(data) - {"backends", "discover"}
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
        for key in ("expectations", "description", "profile", "start_method", "context", "filter"):
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
        if "check" in entry and (not isinstance(entry["check"], str) or not entry["check"].strip()):
            raise UserError("%s: 'check' must be a non-empty string" % where)
        tm = entry.get("timeout_multiplier")
        if tm is not None:
            if isinstance(tm, bool) or not isinstance(tm, (int, float)) or not 0 < tm <= 100:
                raise UserError("%s: 'timeout_multiplier' must be a number in (0, 100]" % where)
            if not entry.get("mutant", False):
                raise UserError("%s: 'timeout_multiplier' is only for mutants (mutant = true)"
                                % where)
        for template in (driver, entry.get("expectations") or "", entry.get("check") or ""):
            expand(template, "b", "r", "p")  # reports unknown placeholders now
        out[name] = Backend(name, driver, entry.get("description", ""), entry.get("expectations"),
                            entry.get("profile"), entry.get("start_method"),
                            entry.get("mutant", False), list(must_fail), entry.get("check"),
                            float(tm) if tm is not None else None)
        out[name].context = entry.get("context")
        out[name].filter = entry.get("filter")
    sections = data.get("discover", {})
    if not isinstance(sections, dict):
        raise UserError("%s: 'discover' must hold [discover.NAME] tables" % path)
    for kind, section in sections.items():
        if kind != "cpython":
            raise UserError("%s: [discover.%s]: unknown kind of discovery (known: cpython)"
                            % (path, kind))
        config = parse_discover_cpython(section, "%s: [discover.%s]" % (path, kind))
        if discover:
            root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
            for backend in discover_cpython(config, root, taken=out):
                out[backend.name] = backend
    return out


# ---------------------------------------------------------------------------------------------
# Discovery of CPython interpreters
# ---------------------------------------------------------------------------------------------

_INTERPRETER_NAME = re.compile(r"python3(\.\d+)?")
_PROBE = ("import platform, sys; "
          "print(platform.python_implementation(), '%d.%d.%d' % sys.version_info[:3])")
_TEMPLATE_KEYS = {"interpreter", "version", "full_version"}


@dataclass
class DiscoverConfig:
    interpreters: List[str]
    name: str = "cpython-{version}"
    driver: str = "{interpreter} {root}/harness/drivers/cpython.py"
    expectations: Optional[str] = None
    overrides: Optional[str] = None
    min_version: Optional[tuple] = None
    description: str = "CPython {full_version} multiprocessing ({interpreter})"
    profile: Optional[str] = None
    start_method: Optional[str] = None


def _version_tuple(text, where):
    if not isinstance(text, str) or not re.fullmatch(r"\d+(\.\d+)*", text):
        raise UserError("%s: min_version must be a version like \"3.9\"" % where)
    return tuple(int(x) for x in text.split("."))


def parse_discover_cpython(section, where):
    if not isinstance(section, dict):
        raise UserError("%s is not a table" % where)
    unknown = set(section) - DISCOVER_KEYS
    if unknown:
        raise UserError("%s: unknown key(s) %s (known: %s)"
                        % (where, ", ".join(sorted(unknown)), ", ".join(sorted(DISCOVER_KEYS))))
    patterns = section.get("interpreters")
    if (not isinstance(patterns, list) or not patterns
            or not all(isinstance(p, str) and p for p in patterns)):
        raise UserError("%s: 'interpreters' must be a non-empty list of glob patterns" % where)
    config = DiscoverConfig(list(patterns))
    for key in ("name", "driver", "expectations", "overrides", "description", "profile",
                "start_method"):
        if key in section:
            if not isinstance(section[key], str) or not section[key].strip():
                raise UserError("%s: '%s' must be a non-empty string" % (where, key))
            setattr(config, key, section[key])
    if config.profile not in (None,) + PROFILES:
        raise UserError("%s: profile must be one of %s" % (where, ", ".join(PROFILES)))
    if config.start_method not in (None,) + START_METHODS:
        raise UserError("%s: start_method must be one of %s" % (where, ", ".join(START_METHODS)))
    if "min_version" in section:
        config.min_version = _version_tuple(section["min_version"], where)
    if "{version}" not in config.name:
        raise UserError("%s: 'name' must contain {version}" % where)
    sample = {k: "x" for k in _TEMPLATE_KEYS}
    for key in ("name", "driver", "expectations", "overrides", "description"):
        template = getattr(config, key)
        if template:
            expand(template, "b", "r", "p", extra=sample)  # unknown placeholders now
    return config


def probe_interpreter(path):
    """(implementation, (major, minor, micro)) of the interpreter at `path`, or None."""
    try:
        proc = subprocess.run([path, "-I", "-c", _PROBE], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return None
    words = proc.stdout.decode("utf-8", "replace").split()
    if proc.returncode != 0 or len(words) != 2 or not re.fullmatch(r"\d+\.\d+\.\d+", words[1]):
        return None
    return words[0], tuple(int(x) for x in words[1].split("."))


def find_interpreters(patterns):
    """Executable files matching the patterns, named python3 or python3.N, in pattern order
    (sorted by version-aware name within a pattern), each real file once."""
    seen, out = set(), []
    for pattern in patterns:
        matches = glob.glob(os.path.expanduser(pattern))
        matches.sort(key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p)])
        for path in matches:
            if not _INTERPRETER_NAME.fullmatch(os.path.basename(path)):
                continue
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                continue
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            out.append(path)
    return out


def discover_cpython(config, root, taken=(), probe=probe_interpreter):
    """The backends of a [discover.cpython] section (see the module docstring)."""
    found_list, names = [], set(taken)
    for path in find_interpreters(config.interpreters):
        found = probe(path)
        if found is None or found[0] != "CPython" or found[1][0] != 3:
            continue
        version = "%d.%d" % found[1][:2]
        values = {"interpreter": path, "version": version,
                  "full_version": "%d.%d.%d" % found[1]}
        name = config.name.replace("{version}", version)
        if name in names:
            continue
        names.add(name)
        # {interpreter} is shell-quoted now; {build} {root} {python} stay for later.
        driver = _fill(config.driver, values, quote=True)
        expectations = _fill(config.expectations, values) if config.expectations else None
        overrides = []
        if config.overrides:
            p = _fill(config.overrides, values)
            p = p if os.path.isabs(p) else os.path.join(root, p)
            if os.path.exists(p):
                overrides.append(p)
        unavailable = None
        if config.min_version and found[1][:len(config.min_version)] < config.min_version:
            unavailable = ("Python %s is older than %s, the oldest the driver supports "
                           "(harness/drivers/README.md)"
                           % (values["full_version"], ".".join(map(str, config.min_version))))
        found_list.append((found[1], Backend(
            name, driver, _fill(config.description, values), expectations, config.profile,
            config.start_method, overrides=overrides, unavailable=unavailable,
            discovered=True)))
    found_list.sort(key=lambda item: item[0])  # by version
    return [backend for _, backend in found_list]


def _fill(template, values, quote=False):
    """Substitutes the discovery placeholders only; the registry's stay."""
    q = shlex.quote if quote else (lambda s: s)
    for key, value in values.items():
        template = template.replace("{%s}" % key, q(value))
    return template


def lookup(registry, name):
    if name not in registry:
        raise UserError("unknown backend '%s'; known backends: %s (see ./mpspec backends)"
                        % (name, ", ".join(registry)))
    return registry[name]


def require_available(backend, build, root, python):
    """EnvError when the backend cannot run here (its check fails, or discovery excluded it)."""
    why = backend.why_unavailable(build, root, python)
    if why:
        raise EnvError("backend '%s' is unavailable here: %s" % (backend.name, why))


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

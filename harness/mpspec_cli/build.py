"""Getting a build: harness/setup.sh (Debian packages), CMake configure and build, the CTest
workflow of `mpspec test`."""

import json
import os
import shutil
import subprocess
import sys
from collections import deque

from . import HARNESS, ROOT
from .errors import EXIT_ENV, EnvError, UserError

BINARY = os.path.join("conformance", "tests", "mpspec_conformance")


def say(msg):
    print("mpspec: " + msg, file=sys.stderr, flush=True)


def run_setup():
    """Runs harness/setup.sh unless MPSPEC_NO_SETUP=1. Its own output says what it installs."""
    if os.environ.get("MPSPEC_NO_SETUP") == "1":
        return
    script = os.path.join(HARNESS, "setup.sh")
    if not shutil.which("bash"):
        raise EnvError("bash is needed to run %s" % script)
    rc = subprocess.call(["bash", script])
    if rc != 0:
        raise EnvError("%s failed (exit status %d); fix it or set MPSPEC_NO_SETUP=1 to skip it"
                       % (os.path.relpath(script, os.getcwd()), rc))


def presets(root=ROOT):
    """The CMakePresets.json document ({} when absent or unreadable)."""
    try:
        with open(os.path.join(root, "CMakePresets.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def preset_names(doc, kind):
    return [p.get("name") for p in doc.get(kind, []) if not p.get("hidden")]


def preset_binary_dir(doc, name, root=ROOT):
    """The binaryDir of a configure preset (following `inherits`), expanded."""
    by_name = {p.get("name"): p for p in doc.get("configurePresets", [])}
    seen, p = set(), by_name.get(name)
    while p is not None and name not in seen:
        if "binaryDir" in p:
            d = p["binaryDir"].replace("${sourceDir}", root).replace("${presetName}", name)
            return os.path.normpath(d if os.path.isabs(d) else os.path.join(root, d))
        seen.add(p.get("name"))
        parent = p.get("inherits")
        parent = parent[0] if isinstance(parent, list) and parent else parent
        p = by_name.get(parent)
    return os.path.join(root, "build", name)


def default_build_dir(root=ROOT):
    return preset_binary_dir(presets(root), "default", root)


def _require(tool):
    if not shutil.which(tool):
        raise EnvError("'%s' is not installed (harness/setup.sh installs it on Debian)" % tool)


def _run_captured(cmd, verbose, what, cwd=ROOT):
    """Runs a build step in `cwd` (the presets live there); its output is shown live with
    --verbose, else only on failure."""
    if verbose:
        say("$ " + " ".join(cmd))
        rc = subprocess.call(cmd, cwd=cwd)
        if rc != 0:
            raise EnvError("%s failed (exit status %d)" % (what, rc))
        return
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                            universal_newlines=True, errors="replace")
    tail = deque(maxlen=80)
    for line in proc.stdout:
        tail.append(line)
    rc = proc.wait()
    if rc != 0:
        sys.stderr.write("".join(tail))
        raise EnvError("%s failed (exit status %d): `%s` (last lines above)"
                       % (what, rc, " ".join(cmd)))


def ensure_build(build_dir, verbose=False, root=ROOT):
    """Configures (when there is no CMakeCache.txt yet) and builds `build_dir` incrementally."""
    _require("cmake")
    doc = presets(root)
    is_default = os.path.normpath(build_dir) == default_build_dir(root)
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        say("configuring %s (cmake --preset default)" % os.path.relpath(build_dir))
        cmd = ["cmake", "--preset", "default"]
        if not is_default:
            cmd += ["-B", build_dir]
        _run_captured(cmd, verbose, "configuring", root)
    say("building %s (incremental; the first build takes a few minutes; -v shows it)"
        % os.path.relpath(build_dir))
    if is_default and "default" in preset_names(doc, "buildPresets"):
        cmd = ["cmake", "--build", "--preset", "default"]
    else:
        cmd = ["cmake", "--build", build_dir, "--parallel", str(_jobs(doc))]
    _run_captured(cmd, verbose, "the build", root)


def _jobs(doc):
    for p in doc.get("buildPresets", []):
        if p.get("name") == "default" and isinstance(p.get("jobs"), int):
            return p["jobs"]
    return 2


def conformance_binary(build_dir):
    return os.path.join(build_dir, BINARY)


def check_preset(preset, root=ROOT):
    doc = presets(root)
    if not doc:
        raise EnvError("no readable CMakePresets.json in %s" % root)
    configure = preset_names(doc, "configurePresets")
    if preset not in configure:
        raise UserError("unknown preset '%s'; known: %s" % (preset, ", ".join(configure)))


def run_tests(preset, ctest_args, root=ROOT):
    """`mpspec test`: configure + build + CTest for one preset; returns the exit status.

    Uses `cmake --workflow --preset P` where the presets file defines that workflow, else the
    three steps (configure preset, build preset, test preset) one after another. Extra CTest
    arguments also force the three steps, so that they reach ctest."""
    doc = presets(root)
    check_preset(preset, root)
    _require("cmake")
    _require("ctest")
    os.chdir(root)
    if preset in preset_names(doc, "workflowPresets") and not ctest_args:
        return _step(["cmake", "--workflow", "--preset", preset])
    steps = [["cmake", "--preset", preset]]
    build = ["cmake", "--build"]
    steps.append(build + (["--preset", preset] if preset in preset_names(doc, "buildPresets")
                          else [preset_binary_dir(doc, preset, root)]))
    test = ["ctest"] + (["--preset", preset] if preset in preset_names(doc, "testPresets")
                        else ["--test-dir", preset_binary_dir(doc, preset, root),
                              "--output-on-failure"])
    steps.append(test + list(ctest_args))
    for cmd in steps:
        rc = _step(cmd)
        if rc != 0:
            return rc
    return 0


def _step(cmd):
    say("$ " + " ".join(cmd))
    sys.stdout.flush()
    rc = subprocess.call(cmd)
    if rc < 0:  # killed by a signal
        return EXIT_ENV
    return rc

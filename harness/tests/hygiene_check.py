#!/usr/bin/env python3
"""Hygiene of a CTest run of the suite (issue 10, part 4): nothing of the project outlives it.

CTest entries (harness/CMakeLists.txt):

  hygiene.setup    (FIXTURES_SETUP mpspec_hygiene)    `setup`: snapshots the state
  hygiene.cleanup  (FIXTURES_CLEANUP mpspec_hygiene)  `check`: reports what is new and remains
  hygiene.driver_fds                                  `drivers`: descriptors and SIGTERM

The suite.* entries require the fixture, so CTest runs `setup` before the first of them and
`check` after the last (also for `ctest -R suite.reference` alone). Both are RUN_SERIAL: no
other test runs beside them, so nothing half-done by a running test is mistaken for a leak.

`setup` writes <build>/hygiene/baseline.json: the entries of /dev/shm, of the temporary
directories ($TMPDIR and /tmp), and the project processes that exist now. `check` reports, and
exits 1 for, what the project made since and is still there after a grace period (--grace,
default 5 s; nothing is waited for when nothing is found):

- /dev/shm entries with a name the project makes: libmp's generated segment names `mp_%08x`
  (reference/src/shared_memory.cpp), the suite's own names `m%06xs%03x[pad]` and `q%04x`
  (conformance/tests/sharedctypes/shared_memory_test.cpp), CPython's generated `psm_<hex>`
  (multiprocessing.shared_memory) and its semaphores `sem.mp-*` (multiprocessing.synchronize);
- temporary files and directories of the project: `mpspec-*` (the scenario directories
  `mpspec-scenario-*` of conformance/runner/scenario.cpp, the reference backend's segment
  registry `mpspec-reference-shm-<pid>.names`, the CPython driver's `mpspec-driver-*`, the
  harness's `mpspec-run-*`), libmp's listener sockets `mp-listener-<pid>-*`
  (reference/src/listener.cpp) and CPython's `pymp-*`;
- live processes of the project that are not this checker or its ancestors: a process whose
  executable, an argument or an environment value lies in the build tree (mpspec_conformance,
  mpspec_driver_*, mp_*_test, their actors and children; the CPython driver and its children
  through MPSPEC_ARTIFACTS / MPSPEC_HYGIENE_BUILD, which the suite entries set to a path in the
  build tree; other variables and arguments do not count: a compiler run in the build tree is
  not the project's). Zombies are not counted (their parent is, when it is the project's).

Other programs' entries are not flagged: names of other forms never are; a matching name is
skipped when a live process that is not the project's holds it open or mapped (another
program's segment in use), or when it carries the pid of a live process that is not the
project's (`mp-listener-<pid>-`, `mpspec-reference-shm-<pid>`). What another program on the
same machine makes with a project name and leaves behind during the run may still be flagged.

`drivers` starts a driver (`--driver reference` or `cpython`) and runs the same setup (Lock,
Semaphore, Event, Condition, Barrier, Queue, a Pipe's Connections, SharedMemory created and
through Module.shared_memory, with two actors calling them) ROUNDS times, each ending in
`teardown`: the driver's open descriptors (/proc/<pid>/fd, by target) after the warm-up rounds
must be those after the last round: a descriptor a setup leaves open fails. Then it sets up
once more, with SharedMemory segments created by the driver and by an actor, sends the driver
SIGTERM, and checks that the segments and the driver's actors are gone
([protocol.robust.no_stray]). Exit 77 (skipped) when the driver is not built.
"""

import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

SHM_DIR = "/dev/shm"
SHM_PATTERNS = [
    re.compile(r"^mp_[0-9a-f]{8}$"),                 # libmp's generated names
    re.compile(r"^m[0-9a-f]{6}s[0-9a-f]{3}[xzY_-]*$"),  # the suite's fresh names
    re.compile(r"^q[0-9a-f]{4}$"),                   # the suite's 5-character names
    re.compile(r"^psm_[0-9a-f]+$"),                  # CPython's generated names
    re.compile(r"^sem\.mp-"),                        # CPython's named semaphores
]
TMP_PATTERNS = [
    re.compile(r"^mpspec-"),
    re.compile(r"^mp-listener-"),
    re.compile(r"^pymp-"),
]
PID_IN_NAME = [re.compile(r"^mp-listener-(\d+)-"), re.compile(r"^mpspec-reference-shm-(\d+)\.")]
ENV_TAG = "MPSPEC_HYGIENE_BUILD"
# The tests `conformance` runs: quick ones of several chapters (a driver start each).
DEFAULT_FILTER = "Lock.*:Event.*:Queue.*:Pipe.*:SharedMemory.*"
# Variables whose value in the build tree makes a process the project's: the tag the suite
# entries set, and the artifacts folder `mpspec run` gives the conformance binary and drivers.
TAG_VARS = (ENV_TAG, "MPSPEC_ARTIFACTS")


def temp_dirs():
    dirs = []
    for d in (os.environ.get("TMPDIR"), "/tmp"):
        if d and os.path.isdir(d):
            d = os.path.realpath(d)
            if d not in dirs:
                dirs.append(d)
    return dirs


def list_dir(d):
    try:
        return sorted(os.listdir(d))
    except OSError:
        return []


def shm_entries():
    return [n for n in list_dir(SHM_DIR) if any(p.search(n) for p in SHM_PATTERNS)]


def tmp_entries():
    out = []
    for d in temp_dirs():
        out += [os.path.join(d, n) for n in list_dir(d) if any(p.search(n) for p in TMP_PATTERNS)]
    return out


# ---------------------------------------------------------------- processes

def read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def proc_stat(pid):
    """(state, ppid, starttime) or None."""
    s = read("/proc/%d/stat" % pid)
    if not s:
        return None
    rest = s[s.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def all_pids():
    return [int(n) for n in list_dir("/proc") if n.isdigit()]


def ancestors():
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        st = proc_stat(pid)
        if st is None:
            break
        pid = st[1]
    return out


def in_tree(value, roots):
    return any(value == r or value.startswith(r + "/") for r in roots)


def project_processes(build):
    """{"pid:starttime": description} of the live, non-zombie processes of the project."""
    roots = [build, os.path.realpath(build)]
    mine = ancestors()
    found = {}
    for pid in all_pids():
        if pid in mine:
            continue
        st = proc_stat(pid)
        if st is None or st[0] in ("Z", "X"):
            continue
        try:
            exe = os.readlink("/proc/%d/exe" % pid)
        except OSError:
            exe = ""
        raw = read("/proc/%d/cmdline" % pid, "rb") or b""
        args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
        env = read("/proc/%d/environ" % pid, "rb") or b""
        values = []
        for kv in env.split(b"\0"):
            k, _, v = kv.partition(b"=")
            if k.decode("utf-8", "replace") in TAG_VARS:
                values.append(v.decode("utf-8", "replace"))
        why = None
        if exe and in_tree(exe.replace(" (deleted)", ""), roots):
            why = "executable"
        elif args and in_tree(args[0], roots):
            why = "program"
        elif any(in_tree(v, roots) for v in values):
            why = "environment"
        if why:
            found["%d:%d" % (pid, st[2])] = "pid %d (%s in the build tree): %s" % (
                pid, why, " ".join(args)[:200] or exe)
    return found


def holders(paths, exclude_pids):
    """{path: [pid]} of the processes outside `exclude_pids` that hold `paths` open or mapped."""
    want = set(paths)
    held = {}
    for pid in all_pids():
        if pid in exclude_pids:
            continue
        targets = set()
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    targets.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
                except OSError:
                    pass
        except OSError:
            pass
        for line in (read("/proc/%d/maps" % pid) or "").splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6:
                targets.add(parts[5].replace(" (deleted)", ""))
        cwd = None
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            pass
        for p in want:
            if p in targets or any(t.startswith(p + "/") for t in targets) or (
                    cwd and (cwd == p or cwd.startswith(p + "/"))):
                held.setdefault(p, []).append(pid)
    return held


# ---------------------------------------------------------------- setup / check

STATE = [None]  # --state, when given


def baseline_path(build):
    return STATE[0] or os.path.join(build, "hygiene", "baseline.json")


def cmd_setup(a):
    state = {"shm": shm_entries(), "tmp": tmp_entries(), "procs": project_processes(a.build_dir),
             "time": time.time()}
    os.makedirs(os.path.dirname(baseline_path(a.build_dir)), exist_ok=True)
    with open(baseline_path(a.build_dir), "w") as f:
        json.dump(state, f, indent=1)
    print("hygiene baseline: %d project /dev/shm entries, %d project temporary entries, "
          "%d project processes (%s)" % (len(state["shm"]), len(state["tmp"]), len(state["procs"]),
                                        baseline_path(a.build_dir)))
    for d in state["procs"].values():
        print("  already running before the suite: " + d)
    return 0


def leftovers(build, base):
    procs = project_processes(build)
    new_procs = {k: v for k, v in procs.items() if k not in base["procs"]}
    new_shm = [os.path.join(SHM_DIR, n) for n in shm_entries() if n not in base["shm"]]
    new_tmp = [p for p in tmp_entries() if p not in base["tmp"]]
    if new_shm or new_tmp:
        ours = {int(k.split(":")[0]) for k in procs}
        foreign_live = set(all_pids()) - ours - ancestors()
        held = holders(new_shm + new_tmp, ours | ancestors())
        keep = []
        for p in new_shm + new_tmp:
            if p in held:
                continue  # in use by a live program that is not the project's
            m = next((r.match(os.path.basename(p)) for r in PID_IN_NAME
                      if r.match(os.path.basename(p))), None)
            if m and int(m.group(1)) in foreign_live:
                continue  # made by a live program that is not the project's
            keep.append(p)
        new_shm = [p for p in keep if p.startswith(SHM_DIR + "/")]
        new_tmp = [p for p in keep if not p.startswith(SHM_DIR + "/")]
    return new_shm, new_tmp, new_procs


def cmd_check(a):
    t0 = time.monotonic()
    try:
        with open(baseline_path(a.build_dir)) as f:
            base = json.load(f)
    except (OSError, ValueError) as e:
        print("hygiene: no baseline (%s): run the hygiene.setup test first" % e)
        return 2
    deadline = t0 + a.grace
    while True:
        shm, tmp, procs = leftovers(a.build_dir, base)
        if not (shm or tmp or procs) or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    took = time.monotonic() - t0
    if not (shm or tmp or procs):
        print("hygiene: nothing left behind since the baseline (%.1f s ago): no project "
              "/dev/shm entry, temporary file or process (checked in %.2f s)"
              % (time.time() - base["time"], took))
        return 0
    print("hygiene: FAIL: left behind since the baseline (still there after %.1f s):" % took)
    for p in shm:
        print("  shared memory: " + p)
    for p in tmp:
        print("  temporary: " + p + ("/" if os.path.isdir(p) else ""))
    for d in procs.values():
        print("  process: " + d)
    return 1


# ---------------------------------------------------------------- drivers

class Driver:
    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  env=env, bufsize=0)
        self.buf = b""
        self.next_id = 0
        self.events = {}

    def _line(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                raise RuntimeError("driver: no answer in %g s" % timeout)
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError("driver: end of output (exit %s)" % self.p.poll())
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def request(self, op, timeout=30, **kw):
        self.next_id += 1
        kw.update(id=self.next_id, op=op)
        self.p.stdin.write((json.dumps(kw) + "\n").encode())
        while True:
            m = self._line(timeout)
            if "event" in m:
                self.events[m.get("tag")] = m
            elif m.get("id") == self.next_id:
                if not m.get("ok"):
                    raise RuntimeError("%s: %s" % (op, m.get("error")))
                return m.get("result")

    def await_tag(self, tag, timeout=30):
        while tag not in self.events:
            m = self._line(timeout)
            if "event" in m:
                self.events[m.get("tag")] = m
        return self.events[tag]


def driver_argv(build, which):
    if which == "reference":
        exe = os.path.join(build, "conformance", "backends", "reference", "mpspec_driver_reference")
        return [exe] if os.access(exe, os.X_OK) else None
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, os.path.join(root, "harness", "drivers", "cpython.py")]


def the_setup(types, round_no, with_segments):
    """Objects, prelude-free actors and calls of one round, limited to what the driver offers."""
    objs, calls = [], []

    def has(t, *methods):
        return t in types and all(m in types[t] for m in methods)

    if has("Lock", "acquire", "release"):
        objs.append({"name": "L", "type": "Lock", "args": {}})
        calls += [("a", "L", "acquire", {}), ("a", "L", "release", {})]
    if has("Semaphore", "acquire", "release"):
        objs.append({"name": "S", "type": "Semaphore", "args": {"value": 2}})
        calls += [("b", "S", "acquire", {}), ("b", "S", "release", {})]
    if has("Event", "set", "wait"):
        objs.append({"name": "E", "type": "Event", "args": {}})
        calls += [("a", "E", "set", {}), ("b", "E", "wait", {"timeout": 5})]
    if has("Condition", "acquire", "notify_all", "release"):
        objs.append({"name": "Cd", "type": "Condition", "args": {"lock": None}})
        calls += [("a", "Cd", "acquire", {}), ("a", "Cd", "notify_all", {}),
                  ("a", "Cd", "release", {})]
    if has("Queue", "put", "get"):
        objs.append({"name": "Q", "type": "Queue", "args": {}})
        calls += [("a", "Q", "put", {"obj": [round_no, "x"]}), ("b", "Q", "get", {"timeout": 5})]
    if "Pipe" in types and has("Connection", "send", "recv"):
        objs += [{"name": "P", "type": "Pipe", "args": {}},
                 {"name": "C0", "type": "Connection", "args": {"pipe": {"$ref": "P"}, "end": 0},
                  "owner": "a"},
                 {"name": "C1", "type": "Connection", "args": {"pipe": {"$ref": "P"}, "end": 1},
                  "owner": "b"}]
        calls += [("a", "C0", "send", {"obj": round_no}), ("b", "C1", "recv", {})]
    if with_segments and has("SharedMemory", "write", "read"):
        objs.append({"name": "M", "type": "SharedMemory",
                     "args": {"name": None, "create": True, "size": 64}})
        calls += [("a", "M", "write", {"data": {"$bytes": "aGk="}}), ("b", "M", "read", {"size": 2})]
        if has("Module", "shared_memory"):
            objs += [{"name": "Mod", "type": "Module", "args": {}},
                     {"name": "X", "type": "SharedMemory", "args": {}}]
            calls += [("a", "Mod", "shared_memory", {"as": "X", "name": None, "create": True,
                                                     "size": 16})]
    return objs, calls


def fd_targets(pid):
    out = {}
    for fd in list_dir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        t = re.sub(r"\[\d+\]$", "[...]", t)  # pipe:[123] -> pipe:[...]
        out[t] = out.get(t, 0) + 1
    return out


def run_round(d, types, round_no, with_segments=True, teardown=True):
    objs, calls = the_setup(types, round_no, with_segments)
    d.request("setup", objects=objs, prelude=[],
              actors=[{"name": "a", "threads": 1}, {"name": "b", "threads": 1}])
    for i, (actor, obj, method, args) in enumerate(calls):
        tag = "r%dc%d" % (round_no, i)
        d.request("call", tag=tag, actor=actor, thread=0, object=obj, method=method, args=args)
        ev = d.await_tag(tag)
        if ev.get("status") != "ok":
            raise RuntimeError("%s.%s: %s" % (obj, method, ev))
    if teardown:
        d.request("teardown")
    return len(objs), len(calls)


def cmd_drivers(a):
    argv = driver_argv(a.build_dir, a.driver)
    if argv is None:
        print("hygiene drivers: the %s driver is not built: skipped" % a.driver)
        return 77
    t0 = time.monotonic()
    env = dict(os.environ, **{ENV_TAG: a.build_dir})
    failures = []
    d = Driver(argv, env)
    try:
        hello = d.request("hello", protocol=1)
        types = hello.get("types", {})
        for r in range(a.warmup):
            run_round(d, types, r)
        before = fd_targets(d.p.pid)
        for r in range(a.warmup, a.warmup + a.rounds):
            nobj, ncalls = run_round(d, types, r)
        after = fd_targets(d.p.pid)
        grown = {t: after[t] - before.get(t, 0) for t in after if after[t] > before.get(t, 0)}
        print("%s driver: %d descriptors after %d warm-up setups, %d after %d more "
              "(%d objects, %d calls each)" % (a.driver, sum(before.values()), a.warmup,
                                               sum(after.values()), a.rounds, nobj, ncalls))
        if grown:
            failures.append("descriptors left open by %d setups: %s" % (
                a.rounds, ", ".join("%s x%d" % kv for kv in sorted(grown.items()))))
        d.request("bye")
        d.p.wait(10)
    finally:
        if d.p.poll() is None:
            d.p.kill()
            d.p.wait()

    # SIGTERM while a setup with segments is active: they must be gone after the driver.
    d = Driver(argv, env)
    try:
        types = d.request("hello", protocol=1).get("types", {})
        if "SharedMemory" in types:
            run_round(d, types, 99, teardown=False)
            made = set()
            for i, obj in enumerate(("M", "X")):
                tag = "name%d" % i
                d.request("call", tag=tag, actor="a", thread=0, object=obj, method="name", args={})
                ev = d.await_tag(tag)
                if ev.get("status") == "ok" and isinstance(ev.get("value"), str):
                    made.add(ev["value"].lstrip("/"))
            made &= set(list_dir(SHM_DIR))  # the segments there now
            actors = [pid for pid in all_pids()
                      if (proc_stat(pid) or ("", 0, 0))[1] == d.p.pid]
            d.p.send_signal(signal.SIGTERM)
            d.p.wait(10)
            time.sleep(0.2)
            left = sorted(set(list_dir(SHM_DIR)) & made)
            left += [p for p in tmp_entries()
                     if re.search(r"-%d[.-]" % d.p.pid, os.path.basename(p))]  # its registry
            alive = [pid for pid in actors if (proc_stat(pid) or ("Z",))[0] not in ("Z", "X")]
            print("%s driver, SIGTERM during a setup: %d segments made (%s), %d left; "
                  "exit status %s; %d child processes, %d alive after" % (
                      a.driver, len(made), " ".join(sorted(made)), len(left), d.p.returncode,
                      len(actors), len(alive)))
            if not made:
                failures.append("SIGTERM: the setup made no segment to check")
            if left:
                failures.append("SIGTERM left: " + " ".join(left))
            if alive:
                failures.append("SIGTERM left processes: %s" % alive)
        else:
            d.request("bye")
    finally:
        if d.p.poll() is None:
            d.p.kill()
            d.p.wait()
    for f in failures:
        print("hygiene drivers: FAIL: " + f)
    print("hygiene drivers (%s): %s in %.1f s" % (a.driver, "FAIL" if failures else "ok",
                                                  time.monotonic() - t0))
    return 1 if failures else 0


def cmd_fdprobe(a):
    """A driver command's wrapper: writes the descriptors of its parent (the conformance binary,
    which runs `sh -c "exec CMD"`) as one JSON line to --log, then becomes the driver."""
    ppid = os.getppid()
    line = json.dumps({"pid": ppid, "fds": fd_targets(ppid)}) + "\n"
    fd = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.write(fd, line.encode())
    os.close(fd)
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    os.execvp(cmd[0], cmd)


def cmd_conformance(a):
    """The conformance binary's descriptors when it starts each test's driver: run a few suites
    with the driver wrapped by `fdprobe`; the binary holds no more descriptors at the last
    driver start than at the second (the first test may open things once)."""
    binary = os.path.join(a.build_dir, "conformance", "tests", "mpspec_conformance")
    driver = driver_argv(a.build_dir, "reference")
    if not os.access(binary, os.X_OK) or driver is None:
        print("hygiene conformance: mpspec_conformance or the reference driver is not built: "
              "skipped")
        return 77
    t0 = time.monotonic()
    log = os.path.join(a.build_dir, "hygiene", "conformance-fds.jsonl")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    if os.path.exists(log):
        os.unlink(log)
    probe = [sys.executable, os.path.abspath(__file__), "fdprobe", "--log", log, "--"] + driver
    env = dict(os.environ, **{ENV_TAG: a.build_dir})
    env["MPSPEC_DRIVER"] = " ".join("'%s'" % x.replace("'", "'\\''") for x in probe)
    r = subprocess.run([binary, "--gtest_filter=" + a.filter, "--gtest_brief=1"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=a.timeout)
    try:
        with open(log) as f:
            starts = [json.loads(x) for x in f if x.strip()]
    except OSError:
        starts = []
    print("conformance binary (%s): exit %d, %d driver starts, descriptors at each: %s" % (
        a.filter, r.returncode, len(starts),
        " ".join(str(sum(s["fds"].values())) for s in starts)))
    failures = []
    if r.returncode != 0:
        failures.append("the tests failed:\n" + r.stdout.decode("utf-8", "replace")[-3000:])
    if len(starts) < 3:
        failures.append("too few driver starts to compare (%d)" % len(starts))
    else:
        first, last = starts[1]["fds"], starts[-1]["fds"]
        grown = {t: last[t] - first.get(t, 0) for t in last if last[t] > first.get(t, 0)}
        if grown:
            failures.append("descriptors left open by %d tests: %s" % (
                len(starts) - 2, ", ".join("%s x%d" % kv for kv in sorted(grown.items()))))
    for f in failures:
        print("hygiene conformance: FAIL: " + f)
    print("hygiene conformance: %s in %.1f s" % ("FAIL" if failures else "ok",
                                                  time.monotonic() - t0))
    return 1 if failures else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fdprobe")
    p.add_argument("--log", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER)
    for name in ("setup", "check", "drivers", "conformance"):
        p = sub.add_parser(name)
        p.add_argument("--build-dir", required=True)
        if name in ("setup", "check"):
            p.add_argument("--state", help="the baseline file (default <build>/hygiene/baseline.json)")
        if name == "check":
            p.add_argument("--grace", type=float, default=5.0)
        if name == "drivers":
            p.add_argument("--driver", default="reference", choices=["reference", "cpython"])
            p.add_argument("--warmup", type=int, default=2)
            p.add_argument("--rounds", type=int, default=5)
        if name == "conformance":
            p.add_argument("--filter", default=DEFAULT_FILTER)
            p.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args(argv)
    if a.cmd == "fdprobe":
        return cmd_fdprobe(a)
    a.build_dir = os.path.abspath(a.build_dir)
    STATE[0] = getattr(a, "state", None)
    return {"setup": cmd_setup, "check": cmd_check, "drivers": cmd_drivers,
            "conformance": cmd_conformance}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

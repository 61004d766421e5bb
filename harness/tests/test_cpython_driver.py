"""Tests of harness/drivers/cpython.py, the protocol-v1 driver for CPython multiprocessing.

Run from the repository root:

    python3 -m unittest discover -s harness/tests -p 'test_cpython_driver.py'

Most tests run the driver as a subprocess and talk to it as the suite does.  Every wait is
bounded, and a per-test watchdog kills the driver if a test overruns, so nothing can hang.
Timing assertions follow spec/README.md section 7: handshakes for ordering, lower bounds only.
"""

import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
# MPSPEC_CPYTHON_DRIVER points the tests at another copy of the driver (e.g. a mutant).
DRIVER = os.environ.get("MPSPEC_CPYTHON_DRIVER") or os.path.normpath(
    os.path.join(HERE, "..", "drivers", "cpython.py"))

# MPSPEC_DRIVER_MODULE runs every test against another package (--module), e.g. multiprocess
# (with an interpreter that has it: /usr/bin/python3 -m unittest ... on Debian).
MODULE = os.environ.get("MPSPEC_DRIVER_MODULE") or "multiprocessing"
MODULE_ARGS = [] if MODULE == "multiprocessing" else ["--module", MODULE]



def _memory_offered():
    """Whether the driver offers SharedMemory with MODULE here: its resource tracker starts
    (Debian 12's multiprocess 0.70.12 cannot start one under Python 3.11)."""
    if MODULE == "multiprocessing":
        return True
    code = "import %s.shared_memory, %s.resource_tracker as t; t.ensure_running()" % (
        MODULE, MODULE)
    probe = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
    return probe.returncode == 0


_MEMORY_OFFERED = _memory_offered()

WAIT = 10.0  # bound on any single expected message (generous: "is woken" checks)
GRACE = 0.1  # the `small` grace period of "is blocked" checks
WATCHDOG = 25.0  # per test
CLOCK_RESOLUTION_NS = 1000000


def _load_driver_module():
    spec = importlib.util.spec_from_file_location("mpspec_cpython_driver", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _children_of(pid):
    """Pids whose parent is `pid` (zombies included), from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(entry))
    return children


def _pid_exists(pid):
    return os.path.exists("/proc/%d" % pid)


def _kill_if_running(pids):
    for pid in pids:
        if _pid_running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _pid_running(pid):
    """True if `pid` exists and is not a zombie (an orphan's zombie waits for init)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class Driver:
    """A driver subprocess and a bounded, message-ordered view of its output."""

    def __init__(self, *args, env=None, prefix=None):
        # `prefix`: the command before `args` (default: this interpreter, the driver, --module).
        if prefix is None:
            prefix = [sys.executable, DRIVER] + MODULE_ARGS
        self.proc = subprocess.Popen(
            list(prefix) + list(args),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.messages = queue.Queue()
        self.log = []  # every message, in arrival order
        self.bad_lines = []  # stdout lines that are not one JSON object
        self.stderr_chunks = []
        self.replies = {}
        self.events = {}
        self.next_id = 1
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    # -- plumbing -------------------------------------------------------------------------

    def _read_stdout(self):
        for line in self.proc.stdout:
            try:
                message = json.loads(line.decode("utf-8"))
                if not isinstance(message, dict):
                    raise ValueError("not an object")
            except ValueError:
                self.bad_lines.append(line)
                continue
            self.messages.put(message)
        self.messages.put(None)

    def _read_stderr(self):
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            self.stderr_chunks.append(chunk)

    @property
    def stderr(self):
        return b"".join(self.stderr_chunks).decode("utf-8", "replace")

    def _pump(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            message = self.messages.get(timeout=remaining)
        except queue.Empty:
            return False
        if message is None:
            self.messages.put(None)  # stays at end of file
            raise AssertionError("driver closed stdout; stderr:\n" + self.stderr)
        self.log.append(message)
        if "event" in message:
            self.events.setdefault(message.get("tag"), []).append(message)
        else:
            self.replies.setdefault(message.get("id"), []).append(message)
        return True

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, request):
        self.send_raw(json.dumps(request).encode("utf-8") + b"\n")

    # -- requests -------------------------------------------------------------------------

    def request(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        request = {"id": rid, "op": op}
        request.update(fields)
        self.send(request)
        return self.wait_reply(rid)

    def wait_reply(self, rid, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while not self.replies.get(rid):
            if not self._pump(deadline):
                raise AssertionError("no reply to request %r within %s s" % (rid, timeout))
        return self.replies[rid].pop(0)

    def ok(self, op, **fields):
        reply = self.request(op, **fields)
        if not reply.get("ok"):
            raise AssertionError("%s failed: %r\nstderr:\n%s" % (op, reply, self.stderr))
        return reply["result"]

    def error(self, op, **fields):
        reply = self.request(op, **fields)
        if reply.get("ok") is not False:
            raise AssertionError("%s was expected to fail: %r" % (op, reply))
        return reply["error"]["kind"]

    def hello(self):
        return self.ok("hello", protocol=1)

    def setup(self, actors, objects=None, prelude=None, **fields):
        if objects is None:
            objects = [{"name": "L", "type": "Lock", "args": {}}]
        result = self.ok("setup", objects=objects, prelude=prelude or [], actors=actors,
                         **fields)
        return {name: info["pid"] for name, info in result["actors"].items()}

    _tag_counter = 0

    def call(self, actor, method, args=None, thread=0, obj="L"):
        Driver._tag_counter += 1
        tag = "t%d" % Driver._tag_counter
        self.ok("call", tag=tag, actor=actor, thread=thread, object=obj, method=method,
                args=args or {})
        return tag

    def wait_event(self, tag, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while not self.events.get(tag):
            if not self._pump(deadline):
                raise AssertionError("no return event for %r within %s s" % (tag, timeout))
        return self.events[tag][0]

    def returns_within(self, tag, seconds):
        deadline = time.monotonic() + seconds
        while not self.events.get(tag):
            if not self._pump(deadline):
                return False
        return True

    def value(self, tag):
        event = self.wait_event(tag)
        if event["status"] != "ok":
            raise AssertionError("call %s did not return ok: %r" % (tag, event))
        return event["value"]

    # -- end ------------------------------------------------------------------------------

    def wait_exit(self, timeout=WAIT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("driver did not exit within %s s" % timeout)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(WAIT)
        # Close only the streams no reader is blocked on (closing a stream that another
        # thread is reading would wait for that read, possibly for ever).
        streams = [self.proc.stdin]
        if not self._readers[0].is_alive():
            streams.append(self.proc.stdout)
        if not self._readers[1].is_alive():
            streams.append(self.proc.stderr)
        for stream in streams:
            try:
                stream.close()
            except OSError:
                pass


class DriverTestCase(unittest.TestCase):
    start_args = ()
    prefix = None  # Driver's prefix: None for this interpreter, the driver and --module

    def setUp(self):
        self.drivers = []
        self.expired = False
        self.watchdog = threading.Timer(WATCHDOG, self._expire)
        self.watchdog.daemon = True
        self.watchdog.start()

    def tearDown(self):
        self.watchdog.cancel()
        for driver in self.drivers:
            driver.close()
            self.assertEqual(driver.bad_lines, [], "non-protocol lines on stdout")
        self.assertFalse(self.expired, "watchdog expired: the test overran %s s" % WATCHDOG)

    def _expire(self):
        self.expired = True
        for driver in self.drivers:
            if driver.proc.poll() is None:
                driver.proc.kill()

    def start(self, *args, env=None):
        driver = Driver(*(args or self.start_args), env=env, prefix=self.prefix)
        self.drivers.append(driver)
        return driver

    def greeted(self, *args):
        driver = self.start(*args)
        driver.hello()
        return driver

    _start_method_works = {}

    def require_start_method(self, method):
        """Skip unless `method` can start an actor with the package under test.  Always true
        for the standard library's (never skipped); a fork like multiprocess may be broken for
        the interpreter it is installed with (Debian 12: multiprocess 0.70.12 calls
        _posixsubprocess.fork_exec with Python 3.10's arguments, so spawn and forkserver fail)."""
        if MODULE == "multiprocessing":
            return
        if method not in self._start_method_works:
            d = self.greeted()
            reply = d.request("setup", start_method=method, actors=[{"name": "a"}],
                              objects=[{"name": "L", "type": "Lock"}])
            d.ok("bye")
            self._start_method_works[method] = (None if reply["ok"]
                                                else reply["error"]["message"])
        why = self._start_method_works[method]
        if why is not None:
            self.skipTest("%s cannot start actors with %s here: %s" % (MODULE, method, why))


class HelloAndSetupTest(DriverTestCase):
    def test_hello(self):
        d = self.start()
        result = d.hello()
        self.assertEqual(result["protocol"], 1)
        import importlib
        import platform

        module = importlib.import_module(MODULE)
        if MODULE == "multiprocessing":
            self.assertEqual(result["name"], "cpython")
            self.assertEqual(result["version"], platform.python_version())
        else:
            self.assertEqual(result["name"], MODULE)
            self.assertEqual(result["version"], module.__version__)
        lock = ["acquire", "release", "__enter__", "__exit__"]
        queue = ["put", "put_nowait", "get", "get_nowait", "qsize", "empty", "full", "close",
                 "join_thread", "cancel_join_thread"]
        value = ["value", "set_value", "add"] + lock
        array = ["len", "getitem", "setitem", "getslice", "setslice", "value", "raw",
                 "set_value", "add"]
        self.assertEqual(result["types"], {
            "Lock": lock,
            "RLock": lock,
            "Semaphore": lock + ["get_value"],
            "BoundedSemaphore": lock + ["get_value"],
            "Event": ["is_set", "set", "clear", "wait"],
            "Condition": lock + ["wait", "wait_for", "notify", "notify_all"],
            "Barrier": ["wait", "abort", "reset", "parties", "n_waiting", "broken"],
            "Pipe": [],
            "Connection": ["send", "recv", "send_bytes", "recv_bytes", "recv_bytes_into",
                           "poll", "close", "closed", "readable", "writable", "fileno",
                           "__enter__", "__exit__"],
            "Listener": ["accept", "address", "last_accepted", "close", "__enter__", "__exit__"],
            "Process": ["start", "terminate", "kill", "close", "is_alive", "join", "exitcode",
                        "pid", "sentinel", "name", "daemon", "set_name", "set_daemon"],
            "Module": ["current_process", "parent_process", "active_children", "cpu_count",
                       "wait", "client", "set_start_method", "get_context"]
                      + (["shared_memory"] if _MEMORY_OFFERED else []) + ["manager_create"],
            "Queue": queue,
            "JoinableQueue": queue + ["task_done", "join"],
            "SimpleQueue": ["put", "get", "empty", "close"],
            "Pool": ["apply", "apply_async", "map", "map_async", "starmap", "starmap_async",
                     "imap", "imap_unordered", "close", "terminate", "join", "__enter__",
                     "__exit__", "worker_pids"],
            "AsyncResult": ["get", "wait", "ready", "successful", "callbacks"],
            "Iterator": ["next"],
            "Manager": ["start", "connect", "shutdown", "address", "create", "serve_forever",
                        "__enter__", "__exit__"],
            "Proxy": ["call", "getvalue"],
            "Value": value,
            "RawValue": ["value", "set_value", "add"],
            "Array": array + lock,
            "RawArray": array,
            "Synchronized": value + [m for m in array if m not in value],
            **({"SharedMemory": ["name", "size", "read", "write", "close", "unlink"]}
               if _MEMORY_OFFERED else {}),
        })
        self.assertEqual(set(result["features"]), {"timeout", "nonblocking", "threads", "kill",
                                                   "prelude", "independent", "uncarriable",
                                                   "refs"})
        self.assertEqual(result["start_methods"], module.get_all_start_methods())
        self.assertEqual(d.error("hello", protocol=2), "ProtocolError")

    def test_setup_two_actors_nonblocking_acquire(self):
        d = self.greeted()
        pids = d.setup([{"name": "a", "threads": 1}, {"name": "b", "threads": 2}])
        self.assertEqual(set(pids), {"a", "b"})
        for pid in pids.values():
            self.assertIn(pid, _children_of(d.proc.pid))
        self.assertIs(d.value(d.call("a", "acquire")), True)
        tag = d.call("b", "acquire", {"block": False})
        self.assertIs(d.value(tag), False)
        # [lock.acquire.nonblocking.timeout_ignored]: block=False ignores the timeout.
        tag = d.call("b", "acquire", {"block": False, "timeout": 5.0}, thread=1)
        self.assertIs(d.value(tag), False)
        event = d.wait_event(tag)
        self.assertLess(event["return_ns"] - event["invoke_ns"], 2 * 10**9)
        self.assertIsNone(d.value(d.call("b", "release")))
        d.ok("teardown")


class QueueTest(DriverTestCase):
    """Queue, JoinableQueue, SimpleQueue (spec/queue): values cross processes; queue.Full and
    queue.Empty are kinds Full and Empty; close is per process."""

    def _kind(self, d, tag):
        event = d.wait_event(tag)
        self.assertEqual(event["status"], "error", event)
        return event["error"]["kind"]

    def test_queue_put_get_full_empty(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}], objects=[_obj("Q", "Queue", maxsize=1)])
        value = {"k": [1, 2.5, None, _b64(b"\x00\xff")]}
        self.assertIsNone(d.value(d.call("a", "put", {"obj": value}, obj="Q")))
        self.assertEqual(self._kind(d, d.call("a", "put_nowait", {"obj": 2}, obj="Q")), "Full")
        self.assertEqual(d.value(d.call("b", "get", obj="Q")), value)
        self.assertEqual(self._kind(d, d.call("b", "get", {"block": False}, obj="Q")), "Empty")
        self.assertEqual(d.value(d.call("b", "qsize", obj="Q")), 0)
        self.assertIsNone(d.value(d.call("a", "close", obj="Q")))
        self.assertEqual(self._kind(d, d.call("a", "get_nowait", obj="Q")), "ValueError")
        self.assertIsNone(d.value(d.call("b", "put", {"obj": 3}, obj="Q")))
        self.assertEqual(d.value(d.call("b", "get", {"timeout": 5}, obj="Q")), 3)
        d.ok("teardown")

    def test_joinable_and_simple_queue(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}],
                objects=[_obj("J", "JoinableQueue"), _obj("S", "SimpleQueue")])
        self.assertEqual(self._kind(d, d.call("a", "task_done", obj="J")), "ValueError")
        self.assertIsNone(d.value(d.call("a", "put", {"obj": "t"}, obj="J")))
        joiner = d.call("b", "join", obj="J")
        self.assertFalse(d.returns_within(joiner, GRACE), "join returned with a task left")
        self.assertIsNone(d.value(d.call("a", "task_done", obj="J")))
        self.assertIsNone(d.value(joiner))
        self.assertIsNone(d.value(d.call("a", "put", {"obj": [1, "x"]}, obj="S")))
        self.assertIs(d.value(d.call("b", "empty", obj="S")), False)
        self.assertEqual(d.value(d.call("b", "get", obj="S")), [1, "x"])
        self.assertIsNone(d.value(d.call("a", "close", obj="S")))
        self.assertEqual(self._kind(d, d.call("a", "empty", obj="S")), "OSError")
        d.ok("teardown")


class LockBehaviourTest(DriverTestCase):
    def test_blocked_acquire_wakes_after_release(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}])
        self.assertIs(d.value(d.call("a", "acquire")), True)
        waiter = d.call("b", "acquire", {"block": True, "timeout": None})
        self.assertFalse(d.returns_within(waiter, GRACE), "acquire on a held lock returned")
        release = d.call("a", "release")
        self.assertIsNone(d.value(release))
        self.assertIs(d.value(waiter), True)
        self.assertGreaterEqual(d.wait_event(waiter)["return_ns"],
                                d.wait_event(release)["invoke_ns"])
        for event in (d.wait_event(waiter), d.wait_event(release)):
            self.assertLessEqual(event["invoke_ns"], event["return_ns"])

    def test_release_unheld_is_value_error(self):
        d = self.greeted()
        d.setup([{"name": "a"}])
        event = d.wait_event(d.call("a", "release"))
        self.assertEqual(event["status"], "error")
        self.assertEqual(event["error"]["kind"], "ValueError")
        self.assertIn("invoke_ns", event)
        self.assertIn("return_ns", event)
        # The lock is still free.
        self.assertIs(d.value(d.call("a", "acquire", {"block": False})), True)

    def test_timed_acquire_expires(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}])
        self.assertIs(d.value(d.call("a", "acquire")), True)
        tag = d.call("b", "acquire", {"timeout": 0.2})
        self.assertIs(d.value(tag), False)
        event = d.wait_event(tag)
        self.assertGreaterEqual(event["return_ns"] - event["invoke_ns"],
                                int(0.2 * 10**9) - CLOCK_RESOLUTION_NS)

    def test_scoped_form(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}])
        self.assertIs(d.value(d.call("a", "__enter__")), True)
        self.assertIs(d.value(d.call("b", "acquire", {"block": False})), False)
        self.assertIsNone(d.value(d.call("a", "__exit__")))
        self.assertIs(d.value(d.call("b", "acquire", {"block": False})), True)

    def test_prelude_acquire_then_actor_release(self):
        d = self.greeted()
        d.setup([{"name": "a"}],
                prelude=[{"object": "L", "method": "acquire", "args": {}}])
        self.assertIs(d.value(d.call("a", "acquire", {"block": False})), False)
        self.assertIsNone(d.value(d.call("a", "release")))
        self.assertIs(d.value(d.call("a", "acquire", {"block": False})), True)

    def test_prelude_in_the_parent(self):
        # protocol 3.2, setup.prelude.results: one value per prelude call; a Module call of the
        # prelude runs in the parent, the main process.
        d = self.greeted()
        result = d.ok("setup", objects=[_obj("L", "Lock"), _obj("M", "Module")],
                      prelude=[{"object": "L", "method": "acquire"},
                               {"object": "M", "method": "current_process"},
                               {"object": "M", "method": "parent_process"},
                               {"object": "L", "method": "release"}],
                      actors=[{"name": "a"}])
        self.assertEqual(len(result["prelude"]), 4, result)
        self.assertIs(result["prelude"][0], True)
        main = result["prelude"][1]
        self.assertEqual((main["name"], main["pid"], main["daemon"], main["alive"]),
                         ("MainProcess", d.proc.pid, False, True))
        self.assertEqual(result["prelude"][2:], [None, None])
        d.ok("teardown")
        result = d.ok("setup", objects=[_obj("L", "Lock")], actors=[{"name": "a"}])
        self.assertEqual(result["prelude"], [])

    def test_prelude_error_is_setup_error_and_leaves_no_setup(self):
        d = self.greeted()
        reply = d.request("setup", objects=[{"name": "L", "type": "Lock"}],
                          prelude=[{"object": "L", "method": "release"}],
                          actors=[{"name": "a"}])
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["kind"], "SetupError")
        self.assertIn("ValueError", reply["error"]["message"])
        self.assertEqual(_children_of(d.proc.pid), [])
        d.setup([{"name": "a"}])  # no setup was left active
        self.assertIs(d.value(d.call("a", "acquire")), True)


class KillTest(DriverTestCase):
    def test_kill_holder(self):
        d = self.greeted()
        pids = d.setup([{"name": "a", "threads": 2}, {"name": "b"}])
        self.assertIs(d.value(d.call("a", "acquire", thread=0)), True)
        pending = d.call("a", "acquire", thread=1)
        self.assertFalse(d.returns_within(pending, GRACE))
        reply = d.request("kill", actor="a", signal=9)
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["result"], {"exitcode": -9})
        info = d.wait_event(pending, timeout=0)
        self.assertEqual(info, {"event": "return", "tag": pending, "status": "info",
                                "reason": "killed"})
        self.assertLess(d.log.index(info), d.log.index(reply), "info must precede the reply")
        self.assertFalse(_pid_exists(pids["a"]), "killed actor not reaped")
        # [lock.kill.holder] then [lock.kill.release_by_survivor].
        self.assertIs(d.value(d.call("b", "acquire", {"block": False})), False)
        self.assertIsNone(d.value(d.call("b", "release")))
        self.assertIs(d.value(d.call("b", "acquire", {"block": False})), True)
        # A killed actor takes no more calls and cannot be killed again.
        self.assertEqual(d.error("call", tag="late", actor="a", thread=0, object="L",
                                 method="release", args={}), "ProtocolError")
        self.assertEqual(d.error("kill", actor="a"), "ProtocolError")

    def test_kill_result_and_info_exactly_once(self):
        d = self.greeted()
        d.setup([{"name": "a"}])
        tag = d.call("a", "release")
        reply = d.request("kill", actor="a")
        self.assertEqual(reply["result"], {"exitcode": -9})
        event = d.wait_event(tag, timeout=0)  # delivered before the reply, one way or the other
        self.assertIn(event["status"], ("error", "info"))
        self.assertFalse(d.returns_within("no-such-tag", GRACE))
        self.assertEqual(len(d.events[tag]), 1)

    def test_kill_with_sigterm(self):
        d = self.greeted()
        d.setup([{"name": "a"}])
        self.assertEqual(d.ok("kill", actor="a", signal=int(signal.SIGTERM)),
                         {"exitcode": -int(signal.SIGTERM)})
        self.assertEqual(d.error("kill", actor="a"), "ProtocolError")
        self.assertEqual(d.error("kill", actor="zz"), "ProtocolError")

    def test_actor_that_dies_on_its_own(self):
        d = self.greeted()
        pids = d.setup([{"name": "a"}, {"name": "b"}])
        self.assertIs(d.value(d.call("b", "acquire")), True)
        pending = d.call("a", "acquire")
        self.assertFalse(d.returns_within(pending, GRACE))
        os.kill(pids["a"], signal.SIGKILL)  # behind the driver's back
        event = d.wait_event(pending)
        self.assertEqual(event["status"], "info")
        self.assertEqual(event["reason"], "crashed")
        self.assertEqual(d.error("call", tag="late", actor="a", thread=0, object="L",
                                 method="release", args={}), "ProtocolError")
        self.assertNotIn(pids["a"], _children_of(d.proc.pid))
        self.assertIsNone(d.value(d.call("b", "release")))


class BadInputTest(DriverTestCase):
    def raw(self, d, data):
        d.send_raw(data)
        deadline = time.monotonic() + WAIT
        while not d.replies.get(None):
            if not d._pump(deadline):
                raise AssertionError("no reply to %r" % data)
        return d.replies[None].pop(0)

    def test_malformed_lines(self):
        d = self.start()
        for data in (b"not json\n", b"[1, 2]\n", b"\n", b'{"op": "hello"}\n',
                     b'{"id": "x", "op": "hello"}\n', b"\xff\xfe\n", b'{"id": NaN}\n'):
            reply = self.raw(d, data)
            self.assertEqual(reply["ok"], False, data)
            self.assertEqual(reply["error"]["kind"], "ProtocolError", data)
        d.send_raw(b'{"id": 41}\n')  # an id but no op: the id is echoed
        self.assertEqual(d.wait_reply(41)["error"]["kind"], "ProtocolError")
        # Anything but hello first is refused.
        self.assertEqual(d.error("setup", actors=[]), "ProtocolError")
        self.assertEqual(d.error("frob"), "ProtocolError")
        d.hello()
        self.assertEqual(d.error("frob"), "ProtocolError")
        self.assertEqual(d.error("call", tag="x", actor="a", object="L", method="acquire"),
                         "ProtocolError")  # no setup

        lock = [{"name": "L", "type": "Lock"}]
        self.assertEqual(d.error("setup", objects=[{"name": "Q", "type": "Frob"}], actors=[]),
                         "Unsupported")
        self.assertEqual(d.error("setup", objects=lock, actors=[], start_method="threads"),
                         "Unsupported")
        self.assertEqual(d.error("setup", objects=lock + lock, actors=[]), "ProtocolError")
        self.assertEqual(d.error("setup", objects=lock, actors=[{"name": "a"}, {"name": "a"}]),
                         "ProtocolError")
        self.assertEqual(d.error("setup", objects=lock, actors=[{"name": "a", "threads": 0}]),
                         "ProtocolError")
        self.assertEqual(d.error("setup", objects=[{"name": "L", "type": "Lock",
                                                    "args": {"value": 3}}], actors=[]),
                         "SetupError")
        self.assertEqual(d.error("setup", objects=lock, actors=[],
                                 prelude=[{"object": "L", "method": "frob"}]), "Unsupported")
        self.assertEqual(d.error("setup", objects=lock, actors=[],
                                 prelude=[{"object": "M", "method": "acquire"}]),
                         "ProtocolError")
        self.assertEqual(d.error("setup", objects="L", actors=[]), "ProtocolError")

        d.setup([{"name": "a", "threads": 2}])
        self.assertEqual(d.error("setup", objects=lock, actors=[]), "ProtocolError")  # twice
        base = {"tag": "c1", "actor": "a", "thread": 0, "object": "L", "method": "acquire",
                "args": {}}

        def bad_call(**change):
            request = dict(base)
            request.update(change)
            return d.error("call", **request)

        self.assertEqual(bad_call(actor="zz"), "ProtocolError")
        self.assertEqual(bad_call(thread=2), "ProtocolError")
        self.assertEqual(bad_call(thread="0"), "ProtocolError")
        self.assertEqual(bad_call(object="M"), "ProtocolError")
        self.assertEqual(bad_call(method="frob"), "Unsupported")
        self.assertEqual(bad_call(args={"frob": 1}), "Unsupported")
        self.assertEqual(bad_call(args=[]), "ProtocolError")
        self.assertEqual(bad_call(args={"timeout": {"$bytes": "!!"}}), "ProtocolError")
        self.assertEqual(bad_call(tag=7), "ProtocolError")
        self.assertEqual(d.error("kill", actor="a", signal=int(signal.SIGCHLD)), "Unsupported")
        self.assertEqual(d.error("kill", actor="a", signal=100000), "ProtocolError")

        # After all that, the driver still works; a used tag is refused.
        self.assertIs(d.value(d.call("a", "acquire")), True)
        tag = d.call("a", "release", thread=1)
        self.assertIsNone(d.value(tag))
        self.assertEqual(d.error("call", tag=tag, actor="a", thread=0, object="L",
                                 method="release", args={}), "ProtocolError")
        # A Python-level error of a call is an outcome, not a reply error.
        event = d.wait_event(d.call("a", "acquire", {"block": False, "timeout": "x"}))
        self.assertEqual(event["status"], "error")
        self.assertEqual(event["error"]["kind"], "TypeError")

    def test_call_to_busy_thread(self):
        d = self.greeted()
        d.setup([{"name": "a", "threads": 2}])
        self.assertIs(d.value(d.call("a", "acquire")), True)
        blocked = d.call("a", "acquire")  # thread 0 blocks: Lock is not re-entrant
        self.assertFalse(d.returns_within(blocked, GRACE))
        self.assertEqual(d.error("call", tag="busy", actor="a", thread=0, object="L",
                                 method="release", args={}), "ProtocolError")
        # Thread 1 of the same actor is free and can release for thread 0.
        release = d.call("a", "release", thread=1)
        self.assertIsNone(d.value(release))
        self.assertIs(d.value(blocked), True)
        # Thread 0 is free again.
        self.assertIsNone(d.value(d.call("a", "release")))


class LifecycleTest(DriverTestCase):
    def test_teardown_and_bye_reap_everything(self):
        d = self.greeted()
        pids = d.setup([{"name": "a"}, {"name": "b"}])
        self.assertIs(d.value(d.call("a", "acquire")), True)
        pending = d.call("b", "acquire")
        self.assertFalse(d.returns_within(pending, GRACE))
        d.ok("teardown")
        self.assertEqual(d.wait_event(pending, timeout=0)["reason"], "teardown")
        self.assertEqual(_children_of(d.proc.pid), [], "children left after teardown")
        self.assertEqual(d.ok("teardown"), {})  # without a setup: a no-op
        # A new setup after teardown, then bye.
        more = d.setup([{"name": "c", "threads": 3}])
        self.assertIs(d.value(d.call("c", "acquire", thread=2)), True)
        self.assertEqual(d.ok("bye"), {})
        self.assertEqual(d.wait_exit(), 0)
        for pid in list(pids.values()) + list(more.values()):
            self.assertFalse(_pid_exists(pid), "actor %d left behind" % pid)

    def test_end_of_input_tears_down(self):
        d = self.greeted()
        pids = d.setup([{"name": "a"}, {"name": "b"}])
        self.assertIs(d.value(d.call("a", "acquire")), True)
        pending = d.call("b", "acquire")
        d.proc.stdin.close()
        self.assertEqual(d.wait_exit(), 0)
        self.assertEqual(d.wait_event(pending)["status"], "info")
        for pid in pids.values():
            self.assertFalse(_pid_exists(pid))

    def test_sigterm_tears_down(self):
        d = self.greeted()
        pids = d.setup([{"name": "a"}])
        self.assertIs(d.value(d.call("a", "acquire")), True)
        pending = d.call("a", "acquire")
        self.assertFalse(d.returns_within(pending, GRACE))
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait_exit(), 128 + signal.SIGTERM)
        self.assertEqual(d.wait_event(pending)["reason"], "teardown")
        self.assertFalse(_pid_exists(pids["a"]))


    def test_killed_driver_leaves_no_running_actor(self):
        # If the driver itself is SIGKILLed, its actors hold neither its stdout (the suite
        # sees end of file) nor the driver's end of their command pipes (they exit).
        d = self.greeted()
        pids = d.setup([{"name": "a"}, {"name": "b", "threads": 2}])
        self.addCleanup(_kill_if_running, list(pids.values()))  # if the driver fails this
        self.assertIs(d.value(d.call("a", "acquire")), True)
        d.call("b", "acquire")
        d.proc.kill()
        self.assertEqual(d.wait_exit(), -signal.SIGKILL)
        self.assertIsNone(d.messages.get(timeout=WAIT), "stdout did not reach end of file")
        d.messages.put(None)
        deadline = time.monotonic() + WAIT
        for pid in pids.values():
            while _pid_running(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertFalse(_pid_running(pid), "actor %d outlived its driver" % pid)


class StartMethodTest(DriverTestCase):
    def check_basic(self, d, method, via_setup):
        fields = {"start_method": method} if via_setup else {}
        pids = d.setup([{"name": "a"}, {"name": "b"}],
                       prelude=[{"object": "L", "method": "acquire"}], **fields)
        # [lock.process.inherit_held]: held by the parent, released by a child.
        self.assertIs(d.value(d.call("a", "acquire", {"block": False})), False)
        self.assertIsNone(d.value(d.call("a", "release")))
        self.assertIs(d.value(d.call("a", "acquire")), True)
        self.assertIs(d.value(d.call("b", "acquire", {"block": False})), False)
        waiter = d.call("b", "acquire", {"timeout": 5.0})
        self.assertIsNone(d.value(d.call("a", "release")))
        self.assertIs(d.value(waiter), True)
        kind = d.wait_event(d.call("a", "release", {}))  # b holds it: a may release it
        self.assertEqual(kind["status"], "ok")
        self.assertEqual(d.wait_event(d.call("b", "release"))["error"]["kind"], "ValueError")
        helpers = _children_of(d.proc.pid)
        self.assertEqual(d.ok("bye"), {})
        self.assertEqual(d.wait_exit(), 0)
        for pid in list(pids.values()) + helpers:
            self.assertFalse(_pid_exists(pid), "process %d left behind" % pid)
        self.assertNotIn("leaked", d.stderr)
        self.assertNotIn("Traceback", d.stderr)

    def test_spawn_from_command_line(self):
        self.require_start_method("spawn")
        d = self.greeted("--start-method", "spawn")
        self.check_basic(d, "spawn", via_setup=False)

    def test_spawn_from_setup(self):
        self.require_start_method("spawn")
        d = self.greeted()
        self.check_basic(d, "spawn", via_setup=True)

    def test_forkserver_from_setup(self):
        import multiprocessing

        if "forkserver" not in multiprocessing.get_all_start_methods():
            self.skipTest("no forkserver on this platform")
        self.require_start_method("forkserver")
        d = self.greeted()
        self.check_basic(d, "forkserver", via_setup=True)


class IndependentActorTest(DriverTestCase):
    """[protocol.setup.independent]: an actor with "independent": true is a fresh interpreter
    that builds its own objects from the setup's entries (no prelude) and shares none."""

    def test_objects_are_its_own(self):
        d = self.greeted()
        pids = d.setup([{"name": "a"}, {"name": "u", "independent": True, "threads": 2}],
                       objects=[_obj("L", "Lock"), _obj("M", "Lock"),
                                _obj("C", "Condition", lock={"$ref": "L"})],
                       prelude=[{"object": "M", "method": "acquire"}])
        self.assertIn(pids["u"], _children_of(d.proc.pid))
        self.assertIs(d.value(d.call("a", "acquire")), True)
        self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="M")), False)
        # The forked actor holds "L", the parent "M": the independent actor's are free.
        self.assertIs(d.value(d.call("u", "acquire", {"block": False})), True)
        self.assertIs(d.value(d.call("u", "acquire", {"block": False}, thread=1)), False)
        self.assertIs(d.value(d.call("u", "acquire", {"block": False}, obj="M")), True)
        # Its "C" was built on its own "L" ($ref resolved among its objects): held by u.
        self.assertIs(d.value(d.call("u", "acquire", {"block": False}, obj="C")), False)
        self.assertIsNone(d.value(d.call("u", "release")))
        self.assertIs(d.value(d.call("u", "acquire", {"block": False}, obj="C")), True)
        self.assertIs(d.value(d.call("a", "acquire", {"block": False})), False)
        blocked = d.call("u", "acquire", {"timeout": None}, thread=1)
        self.assertFalse(d.returns_within(blocked, GRACE))
        self.assertEqual(d.ok("kill", actor="u"), {"exitcode": -signal.SIGKILL})
        self.assertEqual(d.wait_event(blocked)["status"], "info")
        self.assertFalse(_pid_exists(pids["u"]))
        helpers = _children_of(d.proc.pid)
        self.assertEqual(d.ok("bye"), {})
        self.assertEqual(d.wait_exit(), 0)
        for pid in list(pids.values()) + helpers:
            self.assertFalse(_pid_exists(pid), "process %d left behind" % pid)
        self.assertNotIn("leaked", d.stderr)
        self.assertNotIn("Traceback", d.stderr)

    def test_independent_must_be_a_bool(self):
        d = self.greeted()
        for value in (1, "yes", None, [True]):
            reply = d.request("setup", objects=[_obj("L", "Lock")],
                              actors=[{"name": "u", "independent": value}])
            self.assertEqual(reply["error"]["kind"], "ProtocolError", reply)
        pids = d.setup([{"name": "a", "independent": False},
                        {"name": "u", "independent": True}])
        self.assertEqual(set(pids), {"a", "u"})
        d.ok("teardown")
        for pid in pids.values():
            self.assertFalse(_pid_exists(pid), "actor %d left behind" % pid)


# ---------------------------------------------------------------------------------------------
# The other sync types of protocol section 6, and the {"$ref"} / {"$call"} argument forms
# ---------------------------------------------------------------------------------------------


def _obj(name, typename, **args):
    return {"name": name, "type": typename, "args": args}


def _b64(data):
    import base64

    return {"$bytes": base64.b64encode(data).decode("ascii")}


def _pipe(owners=("a", "b"), duplex=True):
    """A Pipe P and its ends C0, C1, owned by `owners` (None: no owner)."""
    objects = [_obj("P", "Pipe", duplex=duplex)]
    for end, owner in enumerate(owners):
        entry = _obj("C%d" % end, "Connection", pipe={"$ref": "P"}, end=end)
        if owner is not None:
            entry["owner"] = owner
        objects.append(entry)
    return objects


def _group_pids(pgids):
    """Running (not zombie) processes of the given process groups, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) in pgids and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


class ConnectionTest(DriverTestCase):
    """Pipe, Connection, owner (protocol 3.2 setup.owner, section 6)."""

    start_method = "fork"

    # Positional parameters named so as not to clash with protocol arguments (obj, method).
    def call_value(self, _d, _actor, _object, _method, **args):
        return _d.value(_d.call(_actor, _method, args, obj=_object))

    def call_error(self, _d, _actor, _object, _method, **args):
        event = _d.wait_event(_d.call(_actor, _method, args, obj=_object))
        self.assertEqual(event["status"], "error", event)
        return event["error"]

    def test_send_recv_eof_with_owners(self):
        self.require_start_method(self.start_method)
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}], objects=_pipe(),
                start_method=self.start_method)
        v = self.call_value
        self.assertIsNone(v(d, "a", "C0", "send", obj=[1, "x", _b64(b"\x00"), {"k": None}]))
        self.assertEqual(v(d, "b", "C1", "recv"), [1, "x", _b64(b"\x00"), {"k": None}])
        self.assertIs(v(d, "b", "C1", "poll"), False)
        self.assertIsNone(v(d, "b", "C1", "send_bytes", buf=_b64(b"hello world"), offset=6))
        # recv_bytes_into: the message does not fit; BufferTooShort carries it as `value`.
        error = self.call_error(d, "a", "C0", "recv_bytes_into", buffer=_b64(b"abc"))
        self.assertEqual(error["kind"], "BufferTooShort")
        self.assertEqual(error["value"], _b64(b"world"))
        self.assertIsNone(v(d, "b", "C1", "send_bytes", buf=_b64(b"hi")))
        self.assertEqual(v(d, "a", "C0", "recv_bytes_into", buffer=_b64(b"abcdef"), offset=1),
                         {"n": 2, "buffer": _b64(b"ahidef")})
        self.assertIsInstance(v(d, "a", "C0", "fileno"), int)
        self.assertIsNone(v(d, "a", "C0", "__enter__"))
        self.assertEqual([v(d, "a", "C0", name) for name in ("closed", "readable", "writable")],
                         [False, True, True])
        # The owners' copies are the only ones: b's close is an end of file for a.
        self.assertIsNone(v(d, "b", "C1", "close"))
        self.assertIs(v(d, "b", "C1", "closed"), True)
        self.assertIs(v(d, "a", "C0", "poll", timeout=WAIT), True)
        self.assertEqual(self.call_error(d, "a", "C0", "recv")["kind"], "EOFError")
        self.assertEqual(self.call_error(d, "a", "C0", "send", obj=1)["kind"], "OSError")
        # A non-owner has closed its copy.
        self.assertEqual(self.call_error(d, "b", "C0", "recv")["kind"], "OSError")
        self.assertIsNone(v(d, "a", "C0", "__exit__"))
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)

    def test_setup_errors(self):
        d = self.greeted()
        objects = _pipe(owners=("a", "nobody"))
        self.assertEqual(d.error("setup", objects=objects, actors=[{"name": "a"}]),
                         "ProtocolError")
        objects = _pipe(owners=(None, None))
        objects[1]["owner"] = 3
        self.assertEqual(d.error("setup", objects=objects, actors=[{"name": "a"}]),
                         "ProtocolError")
        for args in ({"pipe": {"$ref": "P"}}, {"pipe": {"$ref": "P"}, "end": 2},
                     {"pipe": 1, "end": 0}, {"end": 0}):
            with self.subTest(args=args):
                objects = [_obj("P", "Pipe"), {"name": "C", "type": "Connection",
                                               "args": args}]
                self.assertEqual(d.error("setup", objects=objects, actors=[{"name": "a"}]),
                                 "SetupError")
        objects = [_obj("X", "Process", task="no-such-task")]
        self.assertEqual(d.error("setup", objects=objects, actors=[{"name": "a"}]),
                         "Unsupported")
        # Process-local objects live in the actors only (not a Module, nor an inherited
        # Process: test_prelude_in_the_parent).
        for objects, call in (([_obj("L", "Listener")], {"object": "L", "method": "address"}),
                              ([_obj("X", "Process", task="identity")],
                               {"object": "X", "method": "start"})):
            self.assertEqual(d.error("setup", objects=objects, actors=[{"name": "a"}],
                                     prelude=[call]), "ProtocolError")
        # The uncarriable marker holds null.
        self.assertEqual(d.error("setup", objects=[_obj("L", "Listener", address={
            "$uncarriable": 1})], actors=[{"name": "a"}]), "ProtocolError")
        d.setup([{"name": "a"}], objects=[_obj("L", "Listener"), _obj("S", "Connection"),
                                          _obj("P", "Pipe")])
        # accept needs `as`, naming a slot.
        for args in ({}, {"as": "L"}, {"as": "nope"}, {"as": 1}):
            with self.subTest(args=args):
                self.assertEqual(d.error("call", tag="x%r" % (args,), actor="a", object="L",
                                         method="accept", args=args), "ProtocolError")
        self.assertEqual(d.error("call", tag="p", actor="a", object="P", method="send",
                                 args={}), "Unsupported")
        # An unbound slot: kind Other.
        error = self.call_error(d, "a", "S", "recv")
        self.assertEqual(error["kind"], "Other")
        self.assertIn("UnboundSlotError", error["message"])


class ConnectionSpawnTest(ConnectionTest):
    start_method = "spawn"


class ProcessTest(DriverTestCase):
    """Process and the task catalogue (spec/process/process.md section 1)."""

    start_method = "fork"

    def run_task(self, d, task, args, between=None):
        """Start a Process running `task` in actor a with conn W; the messages it sends, and
        its exit code after join."""
        args = dict(args, conn={"$ref": "W"})
        objects = _pipe(owners=("a", "a"), duplex=False)
        objects[1]["name"], objects[2]["name"] = "R", "W"
        objects.append(_obj("X", "Process", task=task, args=args))
        d.setup([{"name": "a"}], objects=objects, start_method=self.start_method)
        v = lambda _o, _m, **kw: d.value(d.call("a", _m, kw, obj=_o))
        self.assertIsNone(v("X", "exitcode"))
        self.assertIsNone(v("X", "start"))
        self.assertIsInstance(v("X", "pid"), int)
        self.assertIsNone(v("W", "close"))
        messages = []
        if between is not None:
            messages.append(v("R", "recv"))
            self.assertIsNone(v("X", between))
        self.assertIsNone(v("X", "join", timeout=WAIT))
        exitcode = v("X", "exitcode")
        while True:
            event = d.wait_event(d.call("a", "recv", obj="R"))
            if event["status"] != "ok":
                self.assertEqual(event["error"]["kind"], "EOFError")
                break
            messages.append(event["value"])
        d.ok("teardown")
        return messages, exitcode

    def test_catalogue(self):
        self.require_start_method(self.start_method)
        d = self.greeted()
        self.assertEqual(self.run_task(d, "identity", {"value": 42}), ([42], 0))
        self.assertEqual(self.run_task(d, "exit", {"code": 3}), ([], 3))
        self.assertEqual(self.run_task(d, "exit", {"code": 256}), ([], 0))
        self.assertEqual(self.run_task(d, "raise", {"kind": "OSError"}), ([], 1))
        self.assertEqual(self.run_task(d, "crash", {"signal": 15}), ([], -15))
        self.assertEqual(self.run_task(d, "sleep", {"seconds": 0}), (["sleeping", "done"], 0))
        self.assertEqual(self.run_task(d, "sleep", {"seconds": 60}, between="terminate"),
                         (["sleeping"], -15))
        self.assertEqual(self.run_task(d, "sleep", {"seconds": 60}, between="kill"),
                         (["sleeping"], -9))
        (pid,), exitcode = self.run_task(d, "pid", {})
        self.assertIsInstance(pid, int)
        ([described], exitcode) = self.run_task(d, "describe", {})
        self.assertEqual(sorted(described), ["authkey", "daemon", "name", "parent", "pid"])
        self.assertEqual(described["parent"]["name"], "mpspec-actor-a")
        self.assertIs(described["daemon"], False)
        messages, exitcode = self.run_task(d, "start_child", {"task": "identity"})
        self.assertEqual((sorted(messages[0]), exitcode), (["name", "pid"], 0))
        # The parent (the actor) runs on: join(timeout) times out.
        self.assertEqual(self.run_task(d, "watch_parent", {"timeout": 0.05}), ([True, True], 0))

    def test_queue_put(self):
        # process.task.queue_put: puts each value, probing empty() on conn, then ends as told.
        self.require_start_method(self.start_method)
        d = self.greeted()
        for exit in ("return", "hard", "cancel"):
            objects = _pipe(owners=("a", "a"), duplex=False)
            objects[1]["name"], objects[2]["name"] = "R", "W"
            objects.append(_obj("Q", "Queue"))
            objects.append(_obj("X", "Process", task="queue_put",
                                args={"queue": {"$ref": "Q"}, "values": [1, "two"],
                                      "exit": exit, "conn": {"$ref": "W"}}))
            d.setup([{"name": "a"}], objects=objects, start_method=self.start_method)
            v = lambda _o, _m, **kw: d.value(d.call("a", _m, kw, obj=_o))
            self.assertIsNone(v("X", "start"))
            self.assertIsInstance(v("R", "recv"), bool)
            self.assertIsInstance(v("R", "recv"), bool)
            self.assertIsNone(v("X", "join", timeout=WAIT))
            self.assertEqual(v("X", "exitcode"), 0, exit)
            d.ok("teardown")

    def test_watch_parent_sees_its_parent_end(self):
        # start_child's child C waits for its non-daemonic grandchild at exit until killed.
        self.require_start_method(self.start_method)
        d = self.greeted()
        objects = _pipe(owners=(None, None), duplex=False)
        objects[1]["name"], objects[2]["name"] = "R", "W"
        objects.append(_obj("C", "Process", task="start_child", args={
            "task": "watch_parent", "args": {"timeout": 60, "conn": {"$ref": "W"}},
            "join": False, "conn": {"$ref": "W"}}))
        d.setup([{"name": "a"}], objects=objects, start_method=self.start_method)
        v = lambda _o, _m, **kw: d.value(d.call("a", _m, kw, obj=_o))
        self.assertIsNone(v("C", "start"))
        first = [v("R", "recv"), v("R", "recv")]
        self.assertIn(True, first)
        self.assertIs(v("R", "poll", timeout=GRACE), False)
        self.assertIsNone(v("C", "kill"))
        self.assertIsNone(v("C", "join"))
        self.assertIs(v("R", "poll", timeout=WAIT), True)
        self.assertIs(v("R", "recv"), False)
        d.ok("teardown")

    def test_inherited_process(self):
        # protocol 3.2, setup.inherited: built by the parent; the actors hold copies.
        self.require_start_method(self.start_method)
        d = self.greeted()
        objects = _pipe(owners=(None, None), duplex=False)
        objects[1]["name"], objects[2]["name"] = "R", "W"
        objects += [_obj("X", "Process", task="identity", args={"value": 1},
                         inherited=True),
                    _obj("Y", "Process", task="sleep", args={"seconds": 60,
                                                              "conn": {"$ref": "W"}},
                         inherited=True)]
        prelude = [{"object": "Y", "method": "start"}, {"object": "Y", "method": "pid"}]
        if self.start_method != "fork":
            # A started Process cannot be given to a spawned actor.
            self.assertEqual(d.error("setup", objects=objects, prelude=prelude,
                                     actors=[{"name": "a"}], start_method=self.start_method),
                             "Unsupported")
            self.assertEqual(_children_of(d.proc.pid), [])
            prelude = []
        result = d.ok("setup", objects=objects, prelude=prelude, actors=[{"name": "a"}],
                      start_method=self.start_method)
        v = lambda _o, _m, **kw: d.wait_event(d.call("a", _m, kw, obj=_o))
        self.assertEqual(v("X", "start")["error"]["kind"], "AssertionError")
        if prelude:
            self.assertIsNone(result["prelude"][0])
            child = result["prelude"][1]
            self.assertIn(child, _children_of(d.proc.pid))
            self.assertEqual(v("R", "recv")["value"], "sleeping")
            self.assertEqual(v("Y", "join")["error"]["kind"], "AssertionError")
            self.assertEqual(v("Y", "is_alive")["error"]["kind"], "AssertionError")
            self.assertEqual(v("Y", "pid")["value"], child)
        d.ok("teardown")
        if self.start_method == "fork":  # (spawn: the resource tracker is the driver's child)
            self.assertEqual(_children_of(d.proc.pid), [])
        self.assertEqual(d.error("setup", objects=[_obj("X", "Process", task="identity",
                                                         inherited=1)],
                                 actors=[{"name": "a"}]), "SetupError")

    def test_uncarriable(self):
        # protocol 4, values.uncarriable: send raises and writes nothing; a spawn start raises.
        self.require_start_method(self.start_method)
        d = self.greeted()
        objects = _pipe(owners=(None, None), duplex=False)
        objects[1]["name"], objects[2]["name"] = "R", "W"
        objects.append(_obj("X", "Process", task="identity",
                            args={"value": {"$uncarriable": None}, "conn": {"$ref": "W"}}))
        d.setup([{"name": "a"}], objects=objects, start_method=self.start_method)
        v = lambda _o, _m, **kw: d.wait_event(d.call("a", _m, kw, obj=_o))
        for value in ({"$uncarriable": None}, [1, {"$uncarriable": None}]):
            self.assertEqual(v("W", "send", obj=value)["error"]["kind"], "TypeError")
            self.assertIs(v("R", "poll")["value"], False)
        if self.start_method != "fork":
            self.assertEqual(v("X", "start")["status"], "error")
            self.assertIs(v("R", "poll", timeout=GRACE)["value"], False)
        d.ok("teardown")

    def test_construction_errors_are_the_first_calls(self):
        self.require_start_method(self.start_method)
        d = self.greeted()
        d.setup([{"name": "a"}], objects=[_obj("X", "Process", task="identity",
                                               args={"bogus": 1})],
                start_method=self.start_method)
        for _ in range(2):  # and the next call tries again
            event = d.wait_event(d.call("a", "start", obj="X"))
            self.assertEqual(event["error"]["kind"], "TypeError", event)

    def test_module(self):
        self.require_start_method(self.start_method)
        d = self.greeted()
        process = _obj("X", "Process", task="sleep", args={"seconds": 60})
        process["args"]["name"] = "x"
        objects = [_obj("M", "Module"), process]
        d.setup([{"name": "a"}], objects=objects, start_method=self.start_method)
        v = lambda _o, _m, **kw: d.value(d.call("a", _m, kw, obj=_o))
        current = v("M", "current_process")
        self.assertEqual((current["name"], current["daemon"], current["alive"], sorted(current)),
                         ("mpspec-actor-a", False, True,
                          ["alive", "authkey", "daemon", "name", "pid"]))
        self.assertEqual(v("M", "parent_process"),
                         {"name": "MainProcess", "pid": d.proc.pid, "alive": True})
        self.assertGreaterEqual(v("M", "cpu_count"), 1)
        self.assertEqual(v("M", "get_context", method="spawn"), "spawn")
        self.assertEqual(v("M", "active_children"), [])
        self.assertIsNone(v("X", "start"))
        self.assertEqual(v("M", "active_children"), ["x"])
        self.assertEqual(v("M", "wait", object_list=[{"$ref": "X"}], timeout=0), [])
        self.assertIsNone(v("X", "kill"))
        self.assertEqual(v("M", "wait", object_list=[{"$ref": "X"}], timeout=WAIT), ["X"])
        self.assertIsNone(v("X", "join"))
        self.assertEqual(v("X", "exitcode"), -signal.SIGKILL)

    def test_children_of_actors_do_not_outlive_teardown(self):
        # The actors are not daemonic (they may start Processes); a Process still running
        # when its actor is killed, or at teardown, is killed with the actor's group.
        self.require_start_method(self.start_method)
        d = self.greeted()
        objects = [_obj("X", "Process", task="start_child",
                        args={"task": "sleep", "args": {"seconds": 60}, "join": True})]
        pids = d.setup([{"name": "a"}, {"name": "b"}], objects=objects,
                       start_method=self.start_method)
        for actor in ("a", "b"):
            self.assertIsNone(d.value(d.call(actor, "start", obj="X")))
        deadline = time.monotonic() + WAIT
        while len(_group_pids(set(pids.values()))) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        group = _group_pids(set(pids.values()))
        self.addCleanup(_kill_if_running, group)
        self.assertEqual(len(group), 6, "2 actors, 2 children, 2 grandchildren")
        started = time.monotonic()
        self.assertEqual(d.ok("kill", actor="a"), {"exitcode": -signal.SIGKILL})
        self.assertLess(time.monotonic() - started, WAIT / 2)
        d.ok("teardown")
        self.assertEqual(_group_pids(set(pids.values())), [])
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)


class ProcessSpawnTest(ProcessTest):
    start_method = "spawn"


class ListenerTest(DriverTestCase):
    """Listener (process-local), Connection slots, Module.client and wait."""

    def test_accept_client_wait(self):
        d = self.greeted()
        objects = [_obj("L", "Listener", address=["127.0.0.1", 0], authkey=_b64(b"key")),
                   _obj("S", "Connection"), _obj("M", "Module")]
        d.setup([{"name": "a"}, {"name": "b"}], objects=objects)
        v = lambda _a, _o, _m, **kw: d.value(d.call(_a, _m, kw, obj=_o))
        address = v("a", "L", "address")
        self.assertEqual((address[0], type(address[1])), ("127.0.0.1", int))
        self.assertIsNone(v("a", "L", "last_accepted"))
        accepted = d.call("a", "accept", {"as": "S"}, obj="L")
        self.assertIsNone(d.value(d.call("b", "client", {"as": "S", "address": address,
                                                        "authkey": _b64(b"key")}, obj="M")))
        self.assertIsNone(d.value(accepted))
        self.assertEqual(v("a", "L", "last_accepted")[0], "127.0.0.1")
        self.assertEqual(v("a", "M", "wait", object_list=[{"$ref": "S"}], timeout=0), [])
        self.assertIsNone(v("b", "S", "send", obj="ping"))
        self.assertEqual(v("a", "M", "wait", object_list=[{"$ref": "S"}], timeout=WAIT), ["S"])
        self.assertEqual(v("a", "S", "recv"), "ping")
        # b's Listener is its own, on another port.
        self.assertNotEqual(v("b", "L", "address"), address)
        # A wrong key: both sides fail the handshake.
        accepted = d.call("a", "accept", {"as": "S"}, obj="L")
        client = d.call("b", "client", {"as": "S", "address": address,
                                        "authkey": _b64(b"other")}, obj="M")
        self.assertEqual(d.wait_event(client)["error"]["kind"], "AuthenticationError")
        self.assertEqual(d.wait_event(accepted)["error"]["kind"], "AuthenticationError")
        self.assertIsNone(v("a", "L", "close"))
        event = d.wait_event(d.call("a", "accept", {"as": "S"}, obj="L"))
        self.assertEqual(event["error"]["kind"], "OSError")

    def test_constructor_error_and_unix_socket_cleanup(self):
        d = self.greeted()
        objects = [_obj("L", "Listener", address=5), _obj("U", "Listener", family="AF_UNIX")]
        d.setup([{"name": "a"}], objects=objects)
        for _ in range(2):
            event = d.wait_event(d.call("a", "address", obj="L"))
            self.assertEqual(event["error"]["kind"], "TypeError", event)
        path = d.value(d.call("a", "address", obj="U"))
        if not isinstance(path, str):  # multiprocess: the abstract namespace, no file
            self.assertTrue(path["$bytes"].startswith("AG"), path)  # b"\x00..."
            return
        self.assertTrue(os.path.exists(path), path)
        d.ok("kill", actor="a")  # no close: the driver removes the socket file
        d.ok("teardown")
        self.assertFalse(os.path.exists(path), path)


class SyncTypesTest(DriverTestCase):
    def error_kind(self, d, tag):
        event = d.wait_event(tag)
        self.assertEqual(event["status"], "error", event)
        return event["error"]["kind"]

    def test_rlock(self):
        d = self.greeted()
        d.setup([{"name": "a", "threads": 2}, {"name": "b"}], objects=[_obj("R", "RLock")])
        for _ in range(2):  # recursive: the owner acquires again, even non-blocking
            self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="R")), True)
        self.assertIs(d.value(d.call("b", "acquire", {"block": False}, obj="R")), False)
        self.assertIs(d.value(d.call("a", "acquire", {"timeout": 0.05}, thread=1, obj="R")),
                      False)
        # Only the owning thread releases it: AssertionError elsewhere.
        self.assertEqual(self.error_kind(d, d.call("b", "release", obj="R")), "AssertionError")
        self.assertEqual(self.error_kind(d, d.call("a", "release", thread=1, obj="R")),
                         "AssertionError")
        waiter = d.call("b", "acquire", obj="R")
        self.assertIsNone(d.value(d.call("a", "release", obj="R")))
        self.assertFalse(d.returns_within(waiter, GRACE), "woken by the first of two releases")
        self.assertIsNone(d.value(d.call("a", "release", obj="R")))
        self.assertIs(d.value(waiter), True)
        self.assertIs(d.value(d.call("b", "__enter__", obj="R")), True)
        self.assertIsNone(d.value(d.call("b", "__exit__", obj="R")))
        self.assertIsNone(d.value(d.call("b", "release", obj="R")))

    def test_semaphore_and_bounded_semaphore(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}],
                objects=[_obj("S", "Semaphore", value=2), _obj("B", "BoundedSemaphore", value=1),
                         _obj("D", "Semaphore")])
        self.assertEqual(d.value(d.call("a", "get_value", obj="S")), 2)
        self.assertEqual(d.value(d.call("a", "get_value", obj="D")), 1)  # default value 1
        self.assertIs(d.value(d.call("a", "acquire", obj="S")), True)
        self.assertIs(d.value(d.call("b", "acquire", obj="S")), True)
        self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="S")), False)
        waiter = d.call("a", "acquire", {"timeout": None}, obj="S")
        self.assertFalse(d.returns_within(waiter, GRACE))
        self.assertIsNone(d.value(d.call("b", "release", obj="S")))  # any process releases
        self.assertIs(d.value(waiter), True)
        for _ in range(3):  # unbounded: above the initial value
            self.assertIsNone(d.value(d.call("b", "release", obj="S")))
        self.assertEqual(d.value(d.call("a", "get_value", obj="S")), 3)
        # Bounded: a release above the initial value is a ValueError.
        self.assertEqual(self.error_kind(d, d.call("a", "release", obj="B")), "ValueError")
        self.assertIs(d.value(d.call("a", "__enter__", obj="B")), True)
        self.assertEqual(d.value(d.call("b", "get_value", obj="B")), 0)
        self.assertIsNone(d.value(d.call("b", "__exit__", obj="B")))
        self.assertEqual(d.value(d.call("b", "get_value", obj="B")), 1)

    def test_bad_constructor_arguments_are_setup_errors(self):
        d = self.greeted()
        for objects in ([_obj("S", "Semaphore", valeu=2)],
                        [_obj("S", "Semaphore", value=-1)],
                        [_obj("E", "Event", flag=True)],
                        [_obj("C", "Condition", lock={"$ref": "nope"})],
                        [_obj("C", "Condition", lock={"$ref": "L"}), _obj("L", "Lock")],
                        [_obj("E", "Event"), _obj("B", "Barrier", parties=2,
                                                  action={"$call": ["E", "frob"]})],
                        [_obj("B", "Barrier", parties=2, action={"$call": "E.set"})]):
            with self.subTest(objects=objects):
                reply = d.request("setup", objects=objects, actors=[{"name": "a"}])
                self.assertFalse(reply["ok"])
                self.assertEqual(reply["error"]["kind"], "SetupError", reply)
        self.assertEqual(_children_of(d.proc.pid), [])

    def test_event(self):
        d = self.greeted()
        d.setup([{"name": "a", "threads": 2}, {"name": "b"}], objects=[_obj("E", "Event")])
        self.assertIs(d.value(d.call("a", "is_set", obj="E")), False)
        self.assertIs(d.value(d.call("a", "wait", {"timeout": 0.05}, obj="E")), False)
        waiters = [d.call("a", "wait", {"timeout": None}, obj="E"),
                   d.call("a", "wait", thread=1, obj="E")]
        for waiter in waiters:
            self.assertFalse(d.returns_within(waiter, GRACE), "wait on a clear event returned")
        setter = d.call("b", "set", obj="E")
        self.assertIsNone(d.value(setter))
        for waiter in waiters:
            self.assertIs(d.value(waiter), True)
            self.assertGreaterEqual(d.wait_event(waiter)["return_ns"],
                                    d.wait_event(setter)["invoke_ns"])
        self.assertIs(d.value(d.call("b", "is_set", obj="E")), True)
        self.assertIs(d.value(d.call("b", "wait", {"timeout": 0}, obj="E")), True)
        self.assertIsNone(d.value(d.call("a", "clear", obj="E")))
        self.assertIs(d.value(d.call("b", "is_set", obj="E")), False)

    def test_condition_default_lock_is_an_rlock(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}], objects=[_obj("C", "Condition", lock=None)])
        self.assertIs(d.value(d.call("a", "acquire", obj="C")), True)
        self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="C")), True)
        self.assertIs(d.value(d.call("b", "acquire", {"block": False}, obj="C")), False)
        # notify and wait need the lock: AssertionError without it.
        self.assertEqual(self.error_kind(d, d.call("b", "notify", obj="C")), "AssertionError")
        self.assertEqual(self.error_kind(d, d.call("b", "wait", {"timeout": 0}, obj="C")),
                         "AssertionError")
        self.assertIsNone(d.value(d.call("a", "notify_all", obj="C")))  # nobody waits
        self.assertIs(d.value(d.call("a", "wait", {"timeout": 0.05}, obj="C")), False)
        self.assertIsNone(d.value(d.call("a", "release", obj="C")))
        self.assertIsNone(d.value(d.call("a", "release", obj="C")))
        self.assertIs(d.value(d.call("b", "__enter__", obj="C")), True)
        self.assertIsNone(d.value(d.call("b", "__exit__", obj="C")))

    def test_barrier_abort_reset_and_timeout(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b", "threads": 2}],
                objects=[_obj("B", "Barrier", parties=2, action=None, timeout=None)])
        self.assertEqual(d.value(d.call("a", "parties", obj="B")), 2)
        self.assertIs(d.value(d.call("a", "broken", obj="B")), False)
        waiter = d.call("a", "wait", obj="B")
        self.assertFalse(d.returns_within(waiter, GRACE))
        self.assertEqual(d.value(d.call("b", "n_waiting", obj="B")), 1)
        self.assertIsNone(d.value(d.call("b", "abort", obj="B")))
        self.assertEqual(self.error_kind(d, waiter), "BrokenBarrierError")
        self.assertIs(d.value(d.call("b", "broken", obj="B")), True)
        self.assertEqual(self.error_kind(d, d.call("b", "wait", obj="B")), "BrokenBarrierError")
        self.assertIsNone(d.value(d.call("a", "reset", obj="B")))
        self.assertIs(d.value(d.call("a", "broken", obj="B")), False)
        # A timed wait that expires breaks the barrier.
        self.assertEqual(self.error_kind(d, d.call("a", "wait", {"timeout": 0.05}, obj="B")),
                         "BrokenBarrierError")
        self.assertIs(d.value(d.call("b", "broken", obj="B")), True)
        self.assertIsNone(d.value(d.call("b", "reset", obj="B")))
        both = [d.call("b", "wait", thread=0, obj="B"), d.call("b", "wait", thread=1, obj="B")]
        self.assertEqual(sorted(d.value(tag) for tag in both), [0, 1])

    def test_reference_errors_in_calls_are_protocol_errors(self):
        d = self.greeted()
        d.setup([{"name": "a"}], objects=[_obj("C", "Condition"), _obj("E", "Event")])
        for predicate in ({"$call": ["X", "is_set"]}, {"$call": ["E", "frob"]},
                          {"$call": ["E"]}, {"$ref": 3}):
            with self.subTest(predicate=predicate):
                self.assertEqual(d.error("call", tag="p%r" % (predicate,), actor="a", object="C",
                                         method="wait_for", args={"predicate": predicate}),
                                 "ProtocolError")
        # A $call whose method reads an attribute-like value; a non-callable predicate is a
        # call outcome (TypeError), not a reply error.
        self.assertIs(d.value(d.call("a", "acquire", obj="C")), True)
        tag = d.call("a", "wait_for", {"predicate": 1, "timeout": 0}, obj="C")
        self.assertEqual(self.error_kind(d, tag), "TypeError")

    def test_prelude_with_references(self):
        d = self.greeted()
        d.setup([{"name": "a"}],
                objects=[_obj("R", "RLock"), _obj("C", "Condition", lock={"$ref": "R"}),
                         _obj("E", "Event")],
                prelude=[{"object": "C", "method": "acquire"},
                         {"object": "E", "method": "set"},
                         # runs at once: the predicate is already true
                         {"object": "C", "method": "wait_for",
                          "args": {"predicate": {"$call": ["E", "is_set"]}}},
                         {"object": "C", "method": "notify"},
                         {"object": "R", "method": "release"}])
        # Released by the prelude's owner (the same driver thread throughout).
        self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="C")), True)

    def test_blocking_prelude_is_a_bounded_setup_error(self):
        env = dict(os.environ, MPSPEC_TIMEOUT_MULTIPLIER="0.05")  # prelude bound: 0.5 s
        d = self.start(env=env)
        d.hello()
        reply = d.request("setup", objects=[_obj("B", "Barrier", parties=2)],
                          prelude=[{"object": "B", "method": "wait"}], actors=[{"name": "a"}])
        self.assertEqual(reply["error"]["kind"], "SetupError", reply)
        self.assertIn("prelude[0]", reply["error"]["message"])
        d.setup([{"name": "a"}], objects=[_obj("E", "Event")])  # the driver still serves
        self.assertIs(d.value(d.call("a", "is_set", obj="E")), False)
        self.assertEqual(d.ok("bye"), {})
        self.assertEqual(d.wait_exit(), 0)


class ReferencesUnderStartMethodsTest(DriverTestCase):
    """A Barrier action and a Condition predicate that reach another object, and a Condition
    on a Lock given by reference, under fork and spawn (the spawn child unpickles them)."""

    def check_barrier_action(self, method):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}, {"name": "c"}], start_method=method,
                objects=[_obj("E", "Event"), _obj("S", "Semaphore", value=0),
                         _obj("B", "Barrier", parties=2, action={"$call": ["E", "set"]},
                              timeout=None),
                         _obj("B2", "Barrier", parties=2, action={"$call": ["S", "release"]},
                              timeout=5.0)])
        first = d.call("a", "wait", obj="B")
        self.assertFalse(d.returns_within(first, GRACE))
        self.assertIs(d.value(d.call("c", "is_set", obj="E")), False)
        second = d.call("b", "wait", obj="B")
        self.assertEqual(sorted([d.value(first), d.value(second)]), [0, 1])
        # The action ran once, in the last party, on the shared Event / Semaphore.
        self.assertIs(d.value(d.call("c", "is_set", obj="E")), True)
        for cycle in range(2):
            tags = [d.call("a", "wait", obj="B2"), d.call("c", "wait", obj="B2")]
            self.assertEqual(sorted(d.value(tag) for tag in tags), [0, 1])
            self.assertEqual(d.value(d.call("b", "get_value", obj="S")), cycle + 1)
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("Traceback", d.stderr)
        self.assertNotIn("leaked", d.stderr)

    def check_condition_ref_lock(self, method):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}, {"name": "c"}], start_method=method,
                objects=[_obj("L", "Lock"), _obj("E", "Event"),
                         _obj("C", "Condition", lock={"$ref": "L"})])
        self.assertIs(d.value(d.call("a", "acquire", obj="C")), True)
        # The Condition's lock is L itself.
        self.assertIs(d.value(d.call("b", "acquire", {"block": False}, obj="L")), False)
        waiter = d.call("a", "wait_for",
                        {"predicate": {"$call": ["E", "is_set"]}, "timeout": None}, obj="C")
        self.assertFalse(d.returns_within(waiter, GRACE), "wait_for returned too early")
        self.assertIs(d.value(d.call("b", "acquire", {"timeout": 5.0}, obj="L")), True)
        self.assertIsNone(d.value(d.call("b", "notify", obj="C")))  # predicate still false
        self.assertIsNone(d.value(d.call("b", "release", obj="L")))
        self.assertFalse(d.returns_within(waiter, GRACE), "wait_for returned with a false "
                                                          "predicate")
        self.assertIsNone(d.value(d.call("c", "set", obj="E")))
        self.assertIs(d.value(d.call("b", "__enter__", obj="C")), True)
        self.assertIsNone(d.value(d.call("b", "notify_all", obj="C")))
        self.assertIsNone(d.value(d.call("b", "__exit__", obj="C")))
        self.assertIs(d.value(waiter), True)  # the predicate's last value
        self.assertIsNone(d.value(d.call("a", "release", obj="C")))
        # A timed wait_for whose predicate stays false returns that value.
        self.assertIsNone(d.value(d.call("c", "clear", obj="E")))
        self.assertIs(d.value(d.call("c", "acquire", obj="L")), True)
        tag = d.call("c", "wait_for", {"predicate": {"$call": ["E", "is_set"]},
                                       "timeout": 0.05}, obj="C")
        self.assertIs(d.value(tag), False)
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("Traceback", d.stderr)
        self.assertNotIn("leaked", d.stderr)

    def test_barrier_action_fork(self):
        self.check_barrier_action("fork")

    def test_barrier_action_spawn(self):
        self.require_start_method("spawn")
        self.check_barrier_action("spawn")

    def test_condition_ref_lock_fork(self):
        self.check_condition_ref_lock("fork")

    def test_condition_ref_lock_spawn(self):
        self.require_start_method("spawn")
        self.check_condition_ref_lock("spawn")


class WedgedCallsTest(DriverTestCase):
    """Calls CPython never returns from must not hold up the driver, kill or teardown."""

    def check_prompt_teardown(self, d, pids, pending):
        t0 = time.monotonic()
        d.ok("teardown")
        self.assertLess(time.monotonic() - t0, 5.0, "teardown waited for a wedged call")
        for tag in pending:
            event = d.wait_event(tag, timeout=0)
            self.assertIn(event["status"], ("info", "ok"), event)  # ok: CPython fixed it
        self.assertEqual(_children_of(d.proc.pid), [])
        self.assertEqual(d.ok("bye"), {})
        self.assertEqual(d.wait_exit(), 0)
        for pid in pids.values():
            self.assertFalse(_pid_exists(pid))

    def test_notify_all_after_a_waiter_died(self):
        # gh-75158: notify waits for every woken sleeper's acknowledgement; a dead one never
        # gives it.
        d = self.greeted()
        pids = d.setup([{"name": "a"}, {"name": "b"}, {"name": "c"}],
                       objects=[_obj("C", "Condition"), _obj("E", "Event")])
        self.assertIs(d.value(d.call("a", "acquire", obj="C")), True)
        waiter = d.call("a", "wait", obj="C")
        self.assertIs(d.value(d.call("b", "acquire", {"timeout": 5.0}, obj="C")), True)
        self.assertIsNone(d.value(d.call("b", "release", obj="C")))  # a is asleep in wait
        self.assertEqual(d.ok("kill", actor="a"), {"exitcode": -9})
        self.assertEqual(d.wait_event(waiter, timeout=0)["reason"], "killed")
        self.assertIs(d.value(d.call("b", "acquire", obj="C")), True)
        notifier = d.call("b", "notify_all", obj="C")
        d.returns_within(notifier, GRACE)
        # The driver and the other actors carry on meanwhile.
        self.assertIsNone(d.value(d.call("c", "set", obj="E")))
        self.check_prompt_teardown(d, pids, [notifier])

    def test_barrier_wait_after_a_party_died(self):
        # gh-123899: the last party's notify_all waits for the killed one.
        d = self.greeted()
        pids = d.setup([{"name": "a"}, {"name": "b"}, {"name": "c"}],
                       objects=[_obj("B", "Barrier", parties=2)])
        first = d.call("a", "wait", obj="B")
        self.assertFalse(d.returns_within(first, GRACE))
        self.assertEqual(d.ok("kill", actor="a"), {"exitcode": -9})
        second = d.call("b", "wait", obj="B")
        d.returns_within(second, GRACE)
        self.assertEqual(d.value(d.call("c", "parties", obj="B")), 2)
        self.check_prompt_teardown(d, pids, [second])


# ---------------------------------------------------------------------------------------------
# --library fasteners: fasteners' file locks behind the same driver
# ---------------------------------------------------------------------------------------------


def _python_with_fasteners():
    """This interpreter if it imports fasteners, else Debian's (python3-fasteners), else None."""
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run([python, "-c", "import fasteners"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, timeout=WAIT)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return python
    return None


FASTENERS_PYTHON = _python_with_fasteners()


@unittest.skipIf(FASTENERS_PYTHON is None, "no interpreter here imports fasteners")
class FastenersLibraryTest(DriverTestCase):
    prefix = [FASTENERS_PYTHON or sys.executable, DRIVER, "--library", "fasteners"]

    def setUp(self):
        DriverTestCase.setUp(self)
        self.tmp = tempfile.mkdtemp(prefix="mpspec-fasteners-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def error_kind(self, d, tag):
        event = d.wait_event(tag)
        self.assertEqual(event["status"], "error", event)
        return event["error"]["kind"]

    def handles(self, typename, names=("A", "B")):
        path = os.path.join(self.tmp, "sub", "lock")
        return path, [_obj(name, typename, path=path) for name in names]

    def test_hello_offers_only_the_file_locks(self):
        d = self.start()
        result = d.hello()
        version = subprocess.run([self.prefix[0], "-c", "import fasteners; "
                                  "print(fasteners.__version__)"],
                                 stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        self.assertEqual((result["name"], result["version"]), ("fasteners", version))
        self.assertEqual(result["types"], {
            "InterProcessLock": ["acquire", "release", "__enter__", "__exit__"],
            "InterProcessReaderWriterLock": ["acquire_read_lock", "acquire_write_lock",
                                             "release_read_lock", "release_write_lock"],
        })
        reply = d.request("setup", objects=[_obj("L", "Lock")], actors=[{"name": "a"}])
        self.assertEqual(reply["error"]["kind"], "Unsupported", reply)
        for objects in ([_obj("A", "InterProcessLock")],
                        [_obj("A", "InterProcessLock", path="/x", mode="w")]):
            reply = d.request("setup", objects=objects, actors=[{"name": "a"}])
            self.assertEqual(reply["error"]["kind"], "SetupError", reply)

    def test_check(self):
        ok = subprocess.run(self.prefix + ["--check"], stdout=subprocess.PIPE, timeout=WAIT)
        self.assertEqual(ok.returncode, 0)
        self.assertTrue(ok.stdout.decode().startswith("fasteners "), ok.stdout)
        # -S: without site-packages / dist-packages, fasteners cannot be imported.
        missing = subprocess.run([self.prefix[0], "-S"] + self.prefix[1:] + ["--check"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=WAIT)
        self.assertEqual(missing.returncode, 1)
        last = missing.stdout.decode().strip().splitlines()[-1]
        self.assertIn("cannot import 'fasteners'", last)
        both = subprocess.run(self.prefix + ["--module", "multiprocess", "--check"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=WAIT)
        self.assertNotEqual(both.returncode, 0)
        self.assertIn(b"--module does not apply", both.stderr)

    def test_interprocess_lock(self):
        d = self.greeted()
        path, objects = self.handles("InterProcessLock")
        pids = d.setup([{"name": "a"}, {"name": "b"}], objects=objects)
        # The driver creates the objects but opens nothing: fasteners opens at the first acquire.
        self.assertFalse(os.path.exists(os.path.dirname(path)))
        self.assertIs(d.value(d.call("a", "acquire", obj="A")), True)
        self.assertTrue(os.path.exists(path))
        for pid in (d.proc.pid, pids["b"]):
            fds = os.listdir("/proc/%d/fd" % pid)
            self.assertNotIn(path, [os.path.realpath("/proc/%d/fd/%s" % (pid, fd))
                                    for fd in fds])
        self.assertIs(d.value(d.call("b", "acquire", {"block": False, "timeout": 5}, obj="B")),
                      False)
        tag = d.call("b", "acquire", {"timeout": 0.1}, obj="B")
        self.assertIs(d.value(tag), False)
        event = d.wait_event(tag)
        self.assertGreaterEqual(event["return_ns"] - event["invoke_ns"],
                                int(0.1 * 10**9) - CLOCK_RESOLUTION_NS)
        # Values pass through: fasteners refuses a negative timeout with ValueError.
        self.assertEqual(self.error_kind(d, d.call("b", "acquire", {"timeout": -1}, obj="B")),
                         "ValueError")
        # threading.ThreadError (RuntimeError): release through a handle that holds nothing.
        self.assertEqual(self.error_kind(d, d.call("b", "release", obj="B")), "RuntimeError")
        waiter = d.call("b", "__enter__", obj="B")
        self.assertFalse(d.returns_within(waiter, GRACE))
        self.assertIsNone(d.value(d.call("a", "release", obj="A")))
        self.assertIs(d.value(waiter), True)
        self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="A")), False)
        self.assertIsNone(d.value(d.call("b", "__exit__", obj="B")))
        self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="A")), True)
        d.ok("kill", actor="a")
        self.assertIs(d.value(d.call("b", "acquire", {"timeout": WAIT / 2}, obj="B")), True)
        d.ok("teardown")
        self.assertEqual(_children_of(d.proc.pid), [])

    def test_interprocess_reader_writer_lock(self):
        d = self.greeted()
        _, objects = self.handles("InterProcessReaderWriterLock")
        d.setup([{"name": "a"}, {"name": "b"}], objects=objects)
        self.assertIs(d.value(d.call("a", "acquire_read_lock", obj="A")), True)
        self.assertIs(d.value(d.call("b", "acquire_read_lock", {"block": False}, obj="B")), True)
        self.assertIsNone(d.value(d.call("b", "release_read_lock", obj="B")))
        self.assertIs(d.value(d.call("b", "acquire_write_lock", {"timeout": 0.05}, obj="B")),
                      False)
        writer = d.call("b", "acquire_write_lock", {"block": True}, obj="B")
        self.assertFalse(d.returns_within(writer, GRACE))
        self.assertIsNone(d.value(d.call("a", "release_read_lock", obj="A")))
        self.assertIs(d.value(writer), True)
        self.assertIs(d.value(d.call("a", "acquire_read_lock", {"block": False}, obj="A")),
                      False)
        self.assertIsNone(d.value(d.call("b", "release_write_lock", obj="B")))
        # fasteners 0.17 releases an unopened handle with fcntl.lockf(None): TypeError.
        self.assertEqual(self.error_kind(d, d.call("b", "release_read_lock", obj="B")),
                         "TypeError")

    def test_independent_actor_shares_only_the_path(self):
        # The independent actor builds its own handle "B" on the path: a fresh interpreter
        # with the fasteners table, excluded by the forked actor's hold.
        d = self.greeted()
        _, objects = self.handles("InterProcessLock")
        d.setup([{"name": "a"}, {"name": "u", "independent": True}], objects=objects)
        self.assertIs(d.value(d.call("a", "acquire", obj="A")), True)
        self.assertIs(d.value(d.call("u", "acquire", {"block": False}, obj="B")), False)
        waiter = d.call("u", "acquire", obj="B")
        self.assertFalse(d.returns_within(waiter, GRACE))
        self.assertIsNone(d.value(d.call("a", "release", obj="A")))
        self.assertIs(d.value(waiter), True)
        self.assertIs(d.value(d.call("a", "acquire", {"block": False}, obj="A")), False)
        self.assertEqual(self.error_kind(d, d.call("u", "release", obj="A")), "RuntimeError")
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("Traceback", d.stderr)

    def test_spawned_actors_get_the_file_locks(self):
        d = self.greeted()
        _, objects = self.handles("InterProcessLock")
        d.setup([{"name": "a"}, {"name": "b"}], objects=objects, start_method="spawn")
        self.assertIs(d.value(d.call("a", "acquire", obj="A")), True)
        self.assertIs(d.value(d.call("b", "acquire", {"block": False}, obj="B")), False)
        self.assertEqual(self.error_kind(d, d.call("b", "release", obj="B")), "RuntimeError")
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)


class PureFunctionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = _load_driver_module()

    def test_error_kinds(self):
        import multiprocessing
        import multiprocessing.managers
        import queue as queue_module

        cases = [
            (ValueError("x"), "ValueError"),
            (UnicodeDecodeError("utf-8", b"", 0, 1, "x"), "ValueError"),
            (AssertionError(), "AssertionError"),
            (RuntimeError(), "RuntimeError"),
            (RecursionError(), "RuntimeError"),
            (NotImplementedError(), "NotImplementedError"),
            (TypeError(), "TypeError"),
            (OSError(22, "Invalid argument"), "OSError"),
            (BrokenPipeError(), "OSError"),
            (TimeoutError(), "OSError"),  # builtin TimeoutError is an OSError
            (OverflowError(), "OverflowError"),
            (EOFError(), "EOFError"),
            (threading.BrokenBarrierError(), "BrokenBarrierError"),
            (queue_module.Full(), "Full"),
            (queue_module.Empty(), "Empty"),
            (multiprocessing.BufferTooShort(), "BufferTooShort"),
            (multiprocessing.AuthenticationError(), "AuthenticationError"),
            (multiprocessing.TimeoutError(), "TimeoutError"),
            (multiprocessing.ProcessError(), "ProcessError"),
            (multiprocessing.managers.RemoteError(), "RemoteError"),
            (IndexError("invalid index"), "IndexError"),
            (KeyError("k"), "KeyError"),
            (LookupError("k"), "Other"),
            (ZeroDivisionError(), "Other"),
            (KeyboardInterrupt(), "Other"),
        ]
        for exc, kind in cases:
            with self.subTest(exc=type(exc).__name__):
                self.assertEqual(self.m.error_kind(exc), kind)
        payload = self.m.error_payload(LookupError("k"))
        self.assertTrue(payload["message"].startswith("LookupError"), payload)
        # An OSError carries its errno by name; other errors and errno-less OSErrors do not.
        self.assertEqual(self.m.error_payload(FileNotFoundError(2, "No such file"))["errno"],
                         "ENOENT")
        self.assertNotIn("errno", self.m.error_payload(OSError("no number")))
        self.assertNotIn("errno", self.m.error_payload(ValueError(17)))

    def test_values(self):
        m = self.m
        self.assertEqual(m.encode_value((1, b"\x00\xff", [None, 2.5])),
                         [1, {"$bytes": "AP8="}, [None, 2.5]])
        self.assertEqual(m.encode_value(bytearray(b"ab")), {"$bytes": "YWI="})
        self.assertEqual(m.decode_value({"k": [{"$bytes": "AP8="}]}), {"k": [b"\x00\xff"]})
        for bad in (float("nan"), float("inf"), 1 << 63, {1: 2}, {"$bytes": "x"}, object(),
                    {1, 2}, "\ud800"):
            with self.subTest(bad=repr(bad)):
                with self.assertRaises(m.ValueDomainError):
                    m.encode_value(bad)
        for bad in ({"$bytes": "!!"}, {"$bytes": 3}, 1 << 63, float("inf")):
            with self.subTest(bad=repr(bad)):
                with self.assertRaises(m.ValueDomainError):
                    m.decode_value(bad)

    def test_references(self):
        m = self.m
        types = {"E": "Event", "B": "Barrier"}
        value = {"predicate": {"$call": ["E", "is_set"]},
                 "nested": [{"$ref": "B"}, {"$bytes": "AA=="}, {"$ref": "B", "x": 1}]}
        named = m._name_refs(value, types)
        self.assertEqual(named["predicate"], (m._NAMED, "E", "is_set"))
        self.assertEqual(named["nested"][0], (m._NAMED, "B", None))
        self.assertEqual(named["nested"][2], {"$ref": "B", "x": 1})  # not a reference
        for bad in ({"$call": ["X", "is_set"]}, {"$call": ["E", "frob"]}, {"$call": "E"},
                    {"$call": ["E", 1]}, {"$ref": ["E"]}, {"$ref": "nope"}):
            with self.subTest(bad=bad):
                with self.assertRaises(m.RefError):
                    m._name_refs({"a": [bad]}, types)

        import threading

        barrier = threading.Barrier(3)
        bound = m._bind_refs(named, {"E": ("Event", threading.Event()), "B": ("Barrier", barrier)})
        self.assertIs(bound["nested"][0], barrier)
        self.assertIs(bound["predicate"](), False)
        # A $call of an attribute reader reads the attribute.
        self.assertEqual(m._BoundCall("Barrier", barrier, "parties")(), 3)
        self.assertIs(m._BoundCall("Barrier", barrier, "broken")(), False)
        _, args = m._BoundCall("Event", None, "is_set").__reduce__()
        self.assertEqual(args, ("Event", None, "is_set"))

    def test_outcome_event_out_of_domain_is_other(self):
        event = self.m.outcome_event("t", 1, 2, object(), None)
        self.assertEqual(event["status"], "error")
        self.assertEqual(event["error"]["kind"], "Other")
        self.assertTrue(event["error"]["message"].startswith("object"))


class SharedValuesTest(DriverTestCase):
    """Value, RawValue, Array, RawArray, Synchronized (spec/sharedctypes/sharedctypes.md)."""

    start_method = "fork"

    def call_value(self, _d, _actor, _object, _method, **args):
        return _d.value(_d.call(_actor, _method, args, obj=_object))

    def call_error(self, _d, _actor, _object, _method, **args):
        event = _d.wait_event(_d.call(_actor, _method, args, obj=_object))
        self.assertEqual(event["status"], "error", event)
        return event["error"]

    def test_values_arrays_and_locks(self):
        self.require_start_method(self.start_method)
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}], start_method=self.start_method, objects=[
            _obj("L", "Lock"),
            _obj("V", "Value", typecode="i", value=7),
            _obj("D", "Value", typecode="d", lock={"$ref": "L"}),
            _obj("F", "Value", typecode="i", lock=False),
            _obj("R", "RawValue", typecode="q"),
            _obj("A", "Array", typecode="c", size_or_initializer=_b64(b"ab\x00cd")),
            _obj("W", "RawArray", typecode="i", size_or_initializer=[1, 2, 3]),
            _obj("C", "RawArray", copy_of={"$ref": "W"}),
            _obj("S", "Synchronized", obj={"$ref": "W"}),
        ])
        v, e = self.call_value, self.call_error
        self.assertEqual(v(d, "b", "V", "value"), 7)
        self.assertIsNone(v(d, "a", "V", "add", delta=2, times=5, locked=True))
        self.assertIsNone(v(d, "a", "V", "add", delta=1))
        self.assertEqual(v(d, "b", "V", "value", obj=True), 18)
        self.assertEqual(v(d, "a", "D", "value"), 0.0)
        # The wrapper's lock is the given Lock.
        self.assertIs(v(d, "a", "D", "acquire"), True)
        self.assertIs(v(d, "b", "L", "acquire", block=False), False)
        blocked = d.call("b", "set_value", {"value": 1}, obj="D")
        self.assertFalse(d.returns_within(blocked, GRACE))
        self.assertIsNone(v(d, "a", "D", "set_value", value=2.5, obj=True))
        self.assertIsNone(v(d, "a", "D", "release"))
        self.assertIsNone(d.value(blocked))
        self.assertEqual(v(d, "a", "D", "value"), 1.0)
        # lock=False is raw: no lock to take.
        self.assertEqual(e(d, "a", "F", "acquire")["kind"], "AttributeError")
        self.assertIsNone(v(d, "a", "F", "set_value", value=3))
        self.assertEqual(v(d, "b", "F", "value"), 3)
        self.assertIsNone(v(d, "a", "R", "add", delta=-4, times=3))
        self.assertEqual(v(d, "b", "R", "value"), -12)
        # A 'c' array: value, raw, slices as bytes.
        self.assertEqual(v(d, "b", "A", "value"), _b64(b"ab"))
        self.assertEqual(v(d, "b", "A", "raw"), _b64(b"ab\x00cd"))
        self.assertEqual(v(d, "b", "A", "getslice", start=None, stop=None, step=2),
                         _b64(b"a\x00d"))
        self.assertIsNone(v(d, "a", "A", "setslice", start=0, stop=2, step=None,
                            values=_b64(b"XY")))
        self.assertEqual(e(d, "a", "A", "set_value", value=_b64(b"toolong"))["kind"],
                         "ValueError")
        self.assertEqual(v(d, "b", "A", "len"), 5)
        # Elements: negative indices, out of range (IndexError), wrong type, slices.
        self.assertIsNone(v(d, "a", "S", "setitem", index=-1, value=9))
        self.assertEqual(v(d, "b", "W", "getslice", start=None, stop=None, step=None), [1, 2, 9])
        self.assertEqual(e(d, "b", "W", "getitem", index=3)["kind"], "IndexError")
        self.assertEqual(e(d, "b", "S", "getitem", index="x")["kind"], "TypeError")
        self.assertEqual(e(d, "b", "S", "setslice", start=0, stop=2, values=[1])["kind"],
                         "ValueError")
        self.assertIsNone(v(d, "a", "S", "add", index=0, delta=10, times=2, locked=True))
        self.assertEqual(v(d, "b", "S", "getitem", index=0, obj=True), 21)
        self.assertEqual(v(d, "b", "C", "getslice"), [1, 2, 3])  # a copy: memory of its own
        # RawValue / RawArray take no `locked`, and raw types have no lock methods.
        self.assertEqual(d.error("call", tag="r1", actor="a", object="R", method="add",
                                 args={"delta": 1, "locked": True}), "Unsupported")
        self.assertEqual(d.error("call", tag="r2", actor="a", object="W", method="acquire",
                                 args={}), "Unsupported")
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("Traceback", d.stderr)

    def test_construction_errors(self):
        d = self.greeted()
        for entry in (_obj("X", "Value", typecode="z"), _obj("X", "Value", typecode="i", value="x"),
                      _obj("X", "Value", typecode="i", lock=0), _obj("X", "Value"),
                      _obj("X", "Array", typecode="i", size_or_initializer=-1),
                      _obj("X", "Array", typecode="i"),
                      _obj("X", "RawArray", typecode="c", size_or_initializer="text"),
                      _obj("X", "RawValue", typecode="i", copy_of={"$ref": "X"}),
                      _obj("X", "Value", typecode="i", copy_of=1)):
            with self.subTest(entry=entry):
                self.assertEqual(d.error("setup", objects=[entry], actors=[{"name": "a"}]),
                                 "SetupError")
        objects = [_obj("V", "Value", typecode="i"), _obj("S", "Synchronized", obj={"$ref": "V"})]
        self.assertEqual(d.error("setup", objects=objects, actors=[{"name": "a"}]), "SetupError")

    def test_refs_send_refuses_shared_objects(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}],
                objects=[_obj("V", "Value", typecode="i"), _obj("W", "RawArray", typecode="i",
                                                                size_or_initializer=2)]
                + _pipe())
        for name in ("V", "W"):
            error = self.call_error(d, "a", "C0", "send", obj={"$ref": name})
            self.assertEqual(error["kind"], "RuntimeError", error)
        self.assertIs(self.call_value(d, "b", "C1", "poll"), False)
        d.ok("bye")


class SharedValuesSpawnTest(SharedValuesTest):
    start_method = "spawn"


def _shm_names():
    try:
        return set(os.listdir("/dev/shm"))
    except OSError:
        return set()


@unittest.skipUnless(_MEMORY_OFFERED, "%s cannot make SharedMemory segments here" % MODULE)
class SharedMemoryTest(DriverTestCase):
    """SharedMemory and Module.shared_memory (spec/sharedctypes/shared_memory.md)."""

    def call_value(self, _d, _actor, _object, _method, **args):
        return _d.value(_d.call(_actor, _method, args, obj=_object))

    def call_error(self, _d, _actor, _object, _method, **args):
        event = _d.wait_event(_d.call(_actor, _method, args, obj=_object))
        self.assertEqual(event["status"], "error", event)
        return event["error"]

    def name(self, tag):
        return "mpspec%x%s" % (os.getpid(), tag)

    def test_handles_slots_and_teardown(self):
        d = self.greeted()
        n, m = self.name("a"), self.name("b")
        d.setup([{"name": "a"}, {"name": "b"}], objects=[
            {"name": "S", "type": "SharedMemory", "args": {"name": n, "create": True, "size": 16}},
            _obj("X", "SharedMemory"), _obj("Y", "SharedMemory"), _obj("Mod", "Module")])
        v, e = self.call_value, self.call_error
        self.assertEqual(v(d, "a", "S", "name"), n)
        self.assertEqual(v(d, "a", "S", "size"), 16)
        self.assertIsNone(v(d, "a", "S", "write", offset=2, data=_b64(b"hi")))
        self.assertEqual(v(d, "b", "S", "read", size=4), _b64(b"\x00\x00hi"))
        self.assertEqual(e(d, "b", "S", "read", offset=10, size=7)["kind"], "ValueError")
        self.assertEqual(e(d, "b", "S", "write", offset=-1, data=_b64(b"x"))["kind"],
                         "ValueError")
        # Slots: unbound (kind Other), created, attached; errors with their errno.
        self.assertIn("UnboundSlotError", e(d, "a", "X", "name")["message"])
        self.assertEqual(v(d, "a", "Mod", "shared_memory", **{"as": "X", "name": m,
                                                                "create": True, "size": 8}), m)
        error = e(d, "b", "Mod", "shared_memory", **{"as": "Y", "name": m, "create": True,
                                                       "size": 8})
        self.assertEqual((error["kind"], error.get("errno")), ("OSError", "EEXIST"), error)
        error = e(d, "b", "Mod", "shared_memory", **{"as": "Y", "name": self.name("none")})
        self.assertEqual((error["kind"], error.get("errno")), ("OSError", "ENOENT"), error)
        self.assertEqual(e(d, "b", "Mod", "shared_memory", **{"as": "Y", "name": None})["kind"],
                         "ValueError")
        generated = v(d, "b", "Mod", "shared_memory", **{"as": "Y", "name": None,
                                                          "create": True, "size": 4})
        self.assertIsInstance(generated, str)
        self.assertIsNone(v(d, "a", "X", "close"))
        self.assertEqual(e(d, "a", "X", "read")["kind"], "TypeError")  # buf is None
        # `as` must name a slot.
        self.assertEqual(d.error("call", tag="bad", actor="a", object="Mod",
                                 method="shared_memory", args={"as": "S", "name": m}),
                         "ProtocolError")
        # A failed creation (CPython 3.9+ raises TypeError and leaves the segment behind; 3.8
        # accepts the size) is still unlinked at teardown.
        d.wait_event(d.call("a", "shared_memory", {"as": "X", "name": self.name("c"),
                                                   "create": True, "size": 1.5}, obj="Mod"))
        self.assertIn(n, _shm_names())
        d.ok("teardown")
        made = {n, m, generated, self.name("c")}
        self.assertEqual(_shm_names() & made, set(), "segments left after teardown")
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("leaked", d.stderr)
        self.assertNotIn("Traceback", d.stderr)

    def test_killed_creator_segment_is_unlinked_at_teardown(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}],
                objects=[_obj("X", "SharedMemory"), _obj("Mod", "Module")])
        name = self.call_value(d, "a", "Mod", "shared_memory",
                               **{"as": "X", "name": None, "create": True, "size": 8})
        self.assertIn(name, _shm_names())
        self.assertEqual(d.ok("kill", actor="a"), {"exitcode": -signal.SIGKILL})
        self.assertIn(name, _shm_names(), "the actors share the driver's resource tracker")
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn(name, _shm_names())
        self.assertNotIn("leaked", d.stderr)

    def test_independent_attacher_has_its_own_tracker(self):
        d = self.greeted()
        n = self.name("i")
        d.setup([{"name": "a"}, {"name": "u", "independent": True}],
                objects=[_obj("X", "SharedMemory"), _obj("Mod", "Module")])
        v = self.call_value
        self.assertEqual(v(d, "a", "Mod", "shared_memory",
                           **{"as": "X", "name": n, "create": True, "size": 8}), n)
        self.assertEqual(v(d, "u", "Mod", "shared_memory", **{"as": "X", "name": n}), n)
        self.assertIsNone(v(d, "u", "X", "write", data=_b64(b"u")))
        self.assertEqual(v(d, "a", "X", "read", size=1), _b64(b"u"))
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn(n, _shm_names())
        self.assertNotIn("Traceback", d.stderr)


def _socket_files(directory):
    import stat

    found = []
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                pass
    return found


class ManagerTest(DriverTestCase):
    """Manager, Proxy slots and Module.manager_create (spec/manager)."""

    start_method = "fork"

    def v(self, _d, _actor, _object, _method, **args):
        return _d.value(_d.call(_actor, _method, args, obj=_object))

    def e(self, _d, _actor, _object, _method, **args):
        event = _d.wait_event(_d.call(_actor, _method, args, obj=_object))
        self.assertEqual(event["status"], "error", event)
        return event["error"]["kind"]

    def test_manager_proxies_and_errors(self):
        self.require_start_method(self.start_method)
        d = self.greeted()
        d.setup([{"name": "a", "threads": 2}], start_method=self.start_method,
                objects=[_obj("M", "Manager"), _obj("P", "Proxy"), _obj("I", "Proxy")])
        v, e = self.v, self.e
        self.assertEqual(e(d, "a", "P", "getvalue"), "Other")  # unbound slot
        self.assertEqual(e(d, "a", "M", "create", typeid="dict", **{"as": "P"}),
                         "AssertionError")
        self.assertIsNone(v(d, "a", "M", "start"))
        # A path (an abstract AF_UNIX address is bytes: multiprocess 0.70.12, CPython 3.12.0).
        self.assertIsInstance(v(d, "a", "M", "address"), (str, dict))
        self.assertEqual(e(d, "a", "M", "start"), "ProcessError")
        self.assertIsNone(v(d, "a", "M", "create", typeid="dict", args=[{"x": 1}],
                            **{"as": "P"}))
        self.assertIsNone(v(d, "a", "P", "call", method="__setitem__", args=["y", 2]))
        self.assertEqual(v(d, "a", "P", "call", method="__getitem__", args=["x"]), 1)
        self.assertEqual(e(d, "a", "P", "call", method="__getitem__", args=["z"]), "KeyError")
        self.assertEqual(e(d, "a", "P", "call", method="nosuch"), "RemoteError")
        self.assertEqual(v(d, "a", "P", "getvalue"), {"x": 1, "y": 2})
        # A method returning a proxy binds it with `as` (in the manager's own process).
        self.assertIsNone(v(d, "a", "P", "call", method="__iter__", **{"as": "I"}))
        self.assertEqual(sorted([v(d, "a", "I", "call", method="__next__"),
                                 v(d, "a", "I", "call", method="__next__")]), ["x", "y"])
        self.assertEqual(e(d, "a", "P", "call", method="__len__", **{"as": "I"}), "TypeError")
        self.assertEqual(d.error("call", tag="bad", actor="a", object="P", method="call",
                                 args={"method": "__len__", "as": "M"}), "ProtocolError")
        for typeid, args, method, margs, value in (
                ("list", [[1, 2]], "__getitem__", [1], 2),
                ("Queue", [], "empty", [], True),
                ("Value", ["i", 5], "get", [], 5),
                ("Array", ["i", [1, 2, 3]], "__len__", [], 3),
                ("Lock", [], "acquire", [False], True),
                ("Barrier", [2], "__getattribute__", ["parties"], 2),
                ("shared_dict", [], "__len__", [], 0)):
            with self.subTest(typeid=typeid):
                self.assertIsNone(v(d, "a", "M", "create", typeid=typeid, args=args,
                                    **{"as": "P"}))
                self.assertEqual(v(d, "a", "P", "call", method=method, args=margs), value)
        # Shutdown with a proxy call blocked in the server: both end, nothing hangs.
        self.assertIsNone(v(d, "a", "M", "create", typeid="Lock", **{"as": "P"}))
        self.assertIs(v(d, "a", "P", "call", method="acquire"), True)
        blocked = d.call("a", "call", {"method": "acquire"}, thread=1, obj="P")
        self.assertFalse(d.returns_within(blocked, GRACE))
        self.assertIsNone(v(d, "a", "M", "shutdown"))
        self.assertEqual(d.wait_event(blocked)["status"], "error")
        self.assertEqual(d.wait_event(d.call("a", "call", {"method": "release"},
                                             obj="P"))["status"], "error")
        self.assertIsNone(v(d, "a", "M", "shutdown"))
        self.assertEqual(e(d, "a", "M", "start"), "ProcessError")
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("Traceback", d.stderr)

    def test_inherited_manager_and_proxies(self):
        d = self.greeted()
        objects = [_obj("M", "Manager", inherited=True), _obj("P", "Proxy"), _obj("I", "Proxy")]
        prelude = [{"object": "M", "method": "start"},
                   {"object": "M", "method": "create",
                    "args": {"typeid": "dict", "args": [{"p": 0}], "as": "P"}}]
        result = d.ok("setup", objects=objects, prelude=prelude,
                      actors=[{"name": "a"}, {"name": "b"}])
        self.assertEqual(result["prelude"], [None, None])
        v, e = self.v, self.e
        self.assertIsNone(v(d, "a", "P", "call", method="__setitem__", args=["a", 1]))
        self.assertIsNone(v(d, "b", "P", "call", method="__setitem__", args=["b", 2]))
        self.assertEqual(v(d, "a", "P", "getvalue"), {"p": 0, "a": 1, "b": 2})
        # CPython gh-99595: an inherited proxy has no manager to build a returned proxy with.
        self.assertEqual(e(d, "a", "P", "call", method="__iter__", **{"as": "I"}),
                         "AttributeError")
        self.assertEqual(e(d, "b", "M", "start"), "ProcessError")
        d.ok("teardown")
        self.assertEqual(_children_of(d.proc.pid), [])
        # An inherited Manager needs fork.
        self.require_start_method("spawn")
        self.assertEqual(d.error("setup", objects=objects, actors=[{"name": "a"}],
                                 start_method="spawn"), "Unsupported")
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)

    def test_remote_clients_and_teardown(self):
        d = self.greeted()
        key, wrong = _b64(b"secret"), _b64(b"wrong")
        tmp = tempfile.mkdtemp(prefix="mpspec-manager-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "server")
        d.setup([{"name": "a", "threads": 2}, {"name": "b"}], objects=[
            _obj("T", "Manager", address=["127.0.0.1", 0], authkey=key),
            _obj("S", "Manager", address=path, authkey=key), _obj("U", "Manager", authkey=key),
            _obj("Mod", "Module"), _obj("P", "Proxy"), _obj("Q", "Proxy")])
        v, e = self.v, self.e
        self.assertIsNone(v(d, "a", "T", "start"))
        host, port = v(d, "a", "T", "address")
        self.assertEqual(host, "127.0.0.1")
        self.assertGreater(port, 0)
        remote = {"address": [host, port], "typeid": "shared_dict"}
        self.assertEqual(e(d, "b", "Mod", "manager_create", authkey=wrong, **remote,
                           **{"as": "P"}), "AuthenticationError")
        self.assertIsNone(v(d, "b", "Mod", "manager_create", authkey=key, **remote,
                            **{"as": "P"}))
        self.assertIsNone(v(d, "b", "P", "call", method="__setitem__", args=["k", 1]))
        self.assertIsNone(v(d, "a", "T", "create", typeid="shared_dict", **{"as": "P"}))
        self.assertEqual(v(d, "a", "P", "getvalue"), {"k": 1})
        # serve_forever in a (AF_UNIX path); b connects; it does not return.
        serving = d.call("a", "serve_forever", thread=1, obj="S")
        deadline = time.monotonic() + WAIT
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertIsNone(v(d, "b", "Mod", "manager_create", address=path, authkey=key,
                            typeid="shared_dict", **{"as": "Q"}))
        self.assertEqual(v(d, "b", "Q", "call", method="__len__"), 0)
        self.assertFalse(d.returns_within(serving, GRACE))
        # A manager started in b, with a default address: killed with b, its server and
        # socket file are ended at teardown.
        self.assertIsNone(v(d, "b", "U", "start"))
        self.assertEqual(d.ok("kill", actor="b"), {"exitcode": -signal.SIGKILL})
        d.ok("teardown")
        self.assertEqual(d.wait_event(serving)["status"], "info")
        self.assertEqual(_children_of(d.proc.pid), [])
        self.assertEqual(_socket_files(tmp), [])
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)


class ManagerSpawnTest(DriverTestCase):
    """The manager's server process under spawn (it unpickles the driver's manager class)."""

    start_method = "spawn"
    v, e = ManagerTest.v, ManagerTest.e
    test_manager_proxies_and_errors = ManagerTest.test_manager_proxies_and_errors



class ManagerContextTest(DriverTestCase):
    """Setup context "manager" (protocol 3.2, setup.context): the sync and queue objects are
    made through one manager the driver starts, and every call goes through their proxies."""

    v, e = ManagerTest.v, ManagerTest.e

    OBJECTS = [_obj("L", "Lock"), _obj("R", "RLock"), _obj("S", "Semaphore", value=2),
               _obj("E", "Event"), _obj("C", "Condition", lock={"$ref": "L"}),
               _obj("B", "Barrier", parties=2), _obj("Q", "Queue", maxsize=2),
               _obj("J", "JoinableQueue"), _obj("Mod", "Module")]

    def test_objects_are_served_by_the_manager(self):
        tmp = tempfile.mkdtemp(prefix="mpspec-context-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        d = self.start(env=dict(os.environ, TMPDIR=tmp))
        self.assertIn("manager", d.hello()["contexts"])
        d.setup([{"name": "a", "threads": 2}, {"name": "b"}], objects=self.OBJECTS,
                context="manager", prelude=[{"object": "S", "method": "acquire"}])
        v, e = self.v, self.e
        # One server (a child of the driver besides the actors), on a socket in the setup's
        # temporary directory.
        self.assertEqual(len(_children_of(d.proc.pid)), 3)
        self.assertEqual(len(_socket_files(tmp)), 1)
        # Lock: threading.Lock's semantics (anyone may release; an unheld one: RuntimeError).
        self.assertIs(v(d, "a", "L", "acquire"), True)
        self.assertIs(v(d, "b", "L", "acquire", block=False), False)
        self.assertIs(v(d, "b", "L", "acquire", block=True, timeout=0.05), False)
        self.assertIsNone(v(d, "b", "L", "release"))
        self.assertEqual(e(d, "b", "L", "release"), "RuntimeError")
        self.assertIs(v(d, "a", "L", "__enter__"), True)
        self.assertIsNone(v(d, "a", "L", "__exit__"))
        # RLock: owned by the calling thread; Semaphore: no get_value through a proxy.
        self.assertIs(v(d, "a", "R", "acquire"), True)
        self.assertIs(v(d, "a", "R", "acquire"), True)
        self.assertEqual(e(d, "b", "R", "release"), "RuntimeError")
        self.assertIs(v(d, "a", "S", "acquire", block=False), True)  # the prelude took one
        self.assertIs(v(d, "b", "S", "acquire", block=False), False)
        self.assertEqual(e(d, "a", "S", "get_value"), "RemoteError")
        # Event and Condition across actors.
        waiting = d.call("b", "wait", {"timeout": WAIT}, obj="E")
        self.assertFalse(d.returns_within(waiting, GRACE))
        self.assertIsNone(v(d, "a", "E", "set"))
        self.assertIs(d.value(waiting), True)
        self.assertIs(v(d, "b", "C", "acquire"), True)
        waiting = d.call("b", "wait_for", {"predicate": {"$call": ["Q", "full"]},
                                           "timeout": WAIT}, obj="C")
        self.assertFalse(d.returns_within(waiting, GRACE))
        for item in (1, [2, "x"]):
            self.assertIsNone(v(d, "a", "Q", "put", obj=item))
        self.assertIs(v(d, "a", "C", "__enter__"), True)
        self.assertIsNone(v(d, "a", "C", "notify", n=1))
        self.assertIsNone(v(d, "a", "C", "__exit__"))
        self.assertIs(d.value(waiting), True)
        self.assertIsNone(v(d, "b", "C", "release"))
        # Barrier: attributes through the proxy, a wait with two actors.
        self.assertEqual(v(d, "a", "B", "parties"), 2)
        waits = [d.call(actor, "wait", {"timeout": WAIT}, obj="B") for actor in ("a", "b")]
        self.assertEqual(sorted(d.value(tag) for tag in waits), [0, 1])
        self.assertIs(v(d, "b", "B", "broken"), False)
        # Queue: FIFO, Full and Empty with timeouts, no close.
        self.assertEqual(e(d, "a", "Q", "put", obj=3, timeout=0.05), "Full")
        self.assertEqual(e(d, "a", "Q", "put_nowait", obj=3), "Full")
        self.assertEqual(v(d, "b", "Q", "qsize"), 2)
        self.assertEqual([v(d, "b", "Q", "get"), v(d, "b", "Q", "get_nowait")], [1, [2, "x"]])
        self.assertEqual(e(d, "b", "Q", "get", timeout=0.05), "Empty")
        self.assertEqual(e(d, "b", "Q", "get", block=False), "Empty")
        self.assertEqual(e(d, "b", "Q", "close"), "RemoteError")
        # JoinableQueue: join waits for task_done.
        self.assertIsNone(v(d, "a", "J", "put", obj=_b64(b"w")))
        self.assertEqual(v(d, "b", "J", "get"), _b64(b"w"))
        joining = d.call("a", "join", obj="J")
        self.assertFalse(d.returns_within(joining, GRACE))
        self.assertIsNone(v(d, "b", "J", "task_done"))
        self.assertIsNone(d.value(joining))
        self.assertEqual(e(d, "b", "J", "task_done"), "ValueError")
        # Teardown with a call blocked in the server: it ends as info, nothing is left.
        blocked = d.call("a", "acquire", thread=1, obj="R")
        self.assertIs(v(d, "b", "L", "acquire"), True)
        self.assertFalse(d.returns_within(blocked, GRACE))
        d.ok("teardown")
        self.assertEqual(d.wait_event(blocked)["status"], "info")
        self.assertEqual(_children_of(d.proc.pid), [])
        self.assertEqual(_socket_files(tmp), [])
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)
        self.assertNotIn("Traceback", d.stderr)

    def test_blocked_call_at_teardown_and_refusals(self):
        d = self.greeted()
        d.setup([{"name": "a"}, {"name": "b"}], objects=self.OBJECTS, context="manager")
        self.assertIs(self.v(d, "a", "L", "acquire"), True)
        blocked = d.call("b", "acquire", obj="L")
        self.assertFalse(d.returns_within(blocked, GRACE))
        d.ok("teardown")
        self.assertEqual(d.wait_event(blocked)["status"], "info")
        self.assertEqual(_children_of(d.proc.pid), [])
        action = [_obj("E", "Event"), _obj("B", "Barrier", parties=2,
                                           action={"$call": ["E", "set"]})]
        for fields in ({"context": "manager", "actors": [{"name": "a", "independent": True}]},
                       {"context": "manager", "objects": action},
                       {"context": "elsewhere"}):
            with self.subTest(fields=fields):
                request = dict({"objects": self.OBJECTS, "actors": [{"name": "a"}]}, **fields)
                self.assertEqual(d.error("setup", **request), "Unsupported")
        self.assertEqual(d.error("setup", objects=self.OBJECTS, actors=[{"name": "a"}],
                                 context=1), "ProtocolError")
        self.require_start_method("spawn")
        self.assertEqual(d.error("setup", objects=self.OBJECTS, actors=[{"name": "a"}],
                                 context="manager", start_method="spawn"), "Unsupported")
        # Without a context, the same objects are the package's own.
        d.setup([{"name": "a"}], objects=self.OBJECTS)
        self.assertEqual(self.v(d, "a", "S", "get_value"), 2)
        self.assertEqual(len(_children_of(d.proc.pid)), 1)  # the actor: no manager
        d.ok("bye")
        self.assertEqual(d.wait_exit(), 0)

    def test_managed_types_mirror_the_type_table(self):
        m = _load_driver_module()
        for typename, spec in m.MANAGED_TYPES.items():
            with self.subTest(typename=typename):
                own = m.TYPES[typename]
                self.assertEqual(spec.params, own.params)
                self.assertEqual({name: entry.params for name, entry in spec.methods.items()},
                                 {name: entry.params for name, entry in own.methods.items()})

    def test_stop_bounded_kills_what_a_wedged_stop_leaves(self):
        import multiprocessing

        m = _load_driver_module()
        ctx = multiprocessing.get_context("fork")
        processes = [ctx.Process(target=time.sleep, args=(WAIT,)) for _ in range(3)]
        for process in processes:
            process.start()
        self.addCleanup(_kill_if_running, [p.pid for p in processes])
        hang = threading.Event()
        self.addCleanup(hang.set)
        stopped = []

        def stop(item):
            stopped.append(item)
            if item == "wedged":
                hang.wait()
            elif item == "raises":
                raise RuntimeError("stop failed")

        items = {"wedged": processes[:2], "raises": [processes[2]], "fine": [None]}
        logged = []
        m._log = logged.append
        began = time.monotonic()
        m._stop_bounded(list(items), stop, items.get, 0.2, "an item")
        self.assertGreaterEqual(time.monotonic() - began, 0.2)
        self.assertEqual(sorted(stopped), ["fine", "raises", "wedged"])
        self.assertEqual([p.exitcode for p in processes], [-signal.SIGKILL] * 3)
        self.assertEqual(len(logged), 3, logged)  # raised; did not stop; left a process


if __name__ == "__main__":
    unittest.main()

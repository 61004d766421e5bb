#!/usr/bin/env python3
"""mpspec driver for CPython's ``multiprocessing`` (driver protocol, version 1).

Usage::

    python3 harness/drivers/cpython.py [--start-method fork|spawn|forkserver]
                                       [--module multiprocessing|multiprocess]
                                       [--library multiprocessing|fasteners] [--check]

Requests arrive as JSON lines on stdin; replies and ``return`` events leave as JSON lines on
stdout; everything else (logs, tracebacks of actors) goes to stderr.  The protocol is
``spec/protocol.md``.  The objects are real ``multiprocessing`` objects created with
``multiprocessing.get_context(start_method)``; actors are ``ctx.Process`` children that
receive the objects as Process arguments (inheritance), so this driver exercises CPython
exactly as its users share locks.  With ``--library fasteners`` the driver offers fasteners'
file locks instead (``FASTENERS_TYPES``): the same actors and protocol, other objects.

Layout of this file:

* the type table (``TYPES``): one ``TypeSpec`` per protocol type, with its constructor and
  its ``Method`` entries; adding a type is one entry (see harness/drivers/README.md); and
  ``FASTENERS_TYPES``, the table of ``--library fasteners``;
* references to other objects (``{"$ref": name}``, ``{"$call": [name, method]}``): resolved
  in the driver for constructor arguments, by name in the actor for call arguments;
* the value codec (protocol JSON <-> Python) and the error-kind mapping;
* the actor side: ``_actor_main`` (module level so that spawn and forkserver children can
  import it) and its worker threads;
* the driver side: ``Driver``, a single-threaded event loop that waits on stdin and on every
  actor's result pipe and process sentinel, so no call ever blocks it.

Standard library only (fasteners is imported only with --library fasteners); runs on Python
3.8 and later (MIN_PYTHON).
"""

import argparse
import base64
import binascii
import errno
import gc
import importlib
import inspect
import json
import math
import multiprocessing
import multiprocessing.connection
import operator
import os
import platform
import queue
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
import traceback

PROTOCOL_VERSION = 1
# The oldest Python the driver runs on (harness/drivers/README.md; --check tests it).
MIN_PYTHON = (3, 8)

# The package under test: the standard library's ``multiprocessing`` (backend "cpython"), or a
# drop-in fork of it with the same layout, chosen with --module (``multiprocess``, the
# dill-based fork: backend "multiprocess").  Module name -> the name the hello reply gives.
MODULES = {"multiprocessing": "cpython", "multiprocess": "multiprocess"}
MP = multiprocessing
# The library whose types the driver offers, chosen with --library: "multiprocessing" (TYPES,
# the objects of the package above) or "fasteners" (FASTENERS_TYPES, fasteners' file locks;
# the actors are still processes of the standard library's multiprocessing).
LIBRARIES = ("multiprocessing", "fasteners")
LIBRARY = "multiprocessing"
FEATURES = ["timeout", "nonblocking", "threads", "kill", "prelude", "independent", "uncarriable",
            "refs"]

# Upper bound on worker threads per actor (a sanity limit, not a CPython one).
MAX_THREADS = 256


def _timeout_multiplier():
    try:
        value = float(os.environ.get("MPSPEC_TIMEOUT_MULTIPLIER", "1"))
    except ValueError:
        return 1.0
    return value if value > 0 and math.isfinite(value) else 1.0


# How long setup waits for every actor to report ready (the `huge` timing class).
READY_TIMEOUT = 60.0 * _timeout_multiplier()
# How long a prelude call may take (prelude calls must complete at once, protocol 3.2).
PRELUDE_TIMEOUT = 10.0 * _timeout_multiplier()
# How long the driver waits for a signalled actor to die before it escalates to SIGKILL.
REAP_TIMEOUT = 10.0 * _timeout_multiplier()
# How often the driver polls an actor that closed its result pipe for its death (seconds).
DEATH_POLL = 0.01


def _log(message):
    try:
        sys.stderr.write("cpython-driver[%d]: %s\n" % (os.getpid(), message))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------------------------------
# Type table
# ---------------------------------------------------------------------------------------------


class Method:
    """One protocol method of a type.

    ``params``  the keyword arguments the method accepts, by their Python name (the protocol
                uses Python names).  An argument outside this list is ``Unsupported``.
    ``call``    optional ``call(obj, kwargs) -> (callable, args, kwargs)``, run in the actor
                just before the timed region.  By default the object's attribute named like the
                protocol method is called with the keyword arguments.
    ``convert`` optional ``convert(kwargs) -> kwargs``, run in the driver when the call is
                accepted: maps protocol values to what Python expects.  Its result is sent to
                the actor, so it must be picklable; an exception is a ``ProtocolError`` reply.
    ``slot``    optional: the type of the slot that the method's ``as`` must name (Pool's
                ``apply_async`` an AsyncResult, ``imap`` an Iterator); None: any slot.
    ``as_optional`` whether ``as`` may be left out (or null): Proxy's ``call``.
    """

    __slots__ = ("params", "call", "convert", "slot", "as_optional")

    def __init__(self, *params, call=None, convert=None, slot=None, as_optional=False):
        self.params = frozenset(params)
        self.call = call
        self.convert = convert
        self.slot = slot
        self.as_optional = as_optional

    def prepare(self, name, obj, kwargs):
        if self.call is not None:
            return self.call(obj, kwargs)
        return getattr(obj, name), (), kwargs


class TypeSpec:
    """One protocol type.

    ``create(ctx, kwargs)`` builds the object in the driver process with the context of the
    setup's start method; ``params`` are the constructor's accepted arguments (anything else is
    a ``SetupError``, as for any bad constructor argument); ``methods`` maps protocol method
    names to ``Method`` entries.
    """

    __slots__ = ("create", "params", "methods", "local")

    def __init__(self, create, methods, params=(), local=False):
        self.create = create
        self.params = frozenset(params)
        self.methods = dict(methods)
        # A process-local type (protocol section 6): the driver keeps a recipe (_Local) and each
        # actor runs `create` at its first call on the object.
        self.local = local


def _scoped_enter(obj, kwargs):
    # `with obj:` as the protocol's __enter__ half.
    return obj.__enter__, (), {}


def _scoped_exit(obj, kwargs):
    # The __exit__ half of a `with` block left normally.
    return obj.__exit__, (None, None, None), {}


def _semlock_methods():
    """Methods shared by Lock-like types (Lock, RLock, Semaphore, BoundedSemaphore)."""
    return {
        "acquire": Method("block", "timeout"),
        "release": Method(),
        "__enter__": Method(call=_scoped_enter),
        "__exit__": Method(call=_scoped_exit),
    }


def _create_lock(ctx, kwargs):
    return ctx.Lock(**kwargs)


def _attribute(name):
    """A protocol method that reads the attribute `name` (Barrier.parties, n_waiting, broken)."""

    def call(obj, kwargs):
        return getattr, (obj, name), {}

    return Method(call=call)


def _condition_methods():
    return dict(_semlock_methods(), **{
        "wait": Method("timeout"),
        "wait_for": Method("predicate", "timeout"),
        "notify": Method("n"),
        "notify_all": Method(),
    })


# -- Pipe, Connection, Listener, Process, Module (spec/connection, spec/process) ----------------


class UnboundSlotError(Exception):
    """A call on a Connection slot that no ``accept`` or ``client`` has bound yet in this
    process (protocol section 6, "Connection slots": kind Other)."""

    __module__ = "mpspec"  # its name in the message, whatever the actor's __main__ is called


class _Slot:
    """A Connection slot: a ``Connection`` entry without args.  Every process has its own copy
    (inherited or pickled, empty), bound by ``Listener.accept(as=...)`` or
    ``Module.client(as=...)`` in the calling actor only.  Recognised by its marker attribute,
    not by isinstance (multiprocess's dill pickles classes of ``__main__`` by value)."""

    _mpspec_slot = True

    def __init__(self, name):
        self.name = name
        self.conn = None

    def bind(self, conn):
        # Binding a slot that holds a connection closes the old one first.
        old, self.conn = self.conn, None
        if old is not None:
            try:
                old.close()
            except OSError:
                pass
        self.conn = conn

    def __repr__(self):
        return "<Connection slot %s: %r>" % (self.name, self.conn)


class _Local:
    """The recipe of a process-local object (Listener, Process; protocol section 6): the setup
    entry's arguments, references kept by name.  The parent never builds it; each actor builds
    its own instance at its first call on it (``_local_instance``), and a failed construction
    is retried by the next call."""

    _mpspec_local = True

    def __init__(self, name, typename, kwargs):
        self.name = name
        self.typename = typename
        self.kwargs = kwargs  # call-argument form: references are _NAMED tuples
        self.instance = None

    def __getstate__(self):
        # Only a recipe travels (to a spawned actor); an instance never does.
        return {"name": self.name, "typename": self.typename, "kwargs": self.kwargs,
                "instance": None}

    def __repr__(self):
        return "<process-local %s %s: %r>" % (self.typename, self.name, self.instance)


def _is_slot(obj):
    return getattr(obj, "_mpspec_slot", False) is True


def _is_local(obj):
    return getattr(obj, "_mpspec_local", False) is True


# The actor's state for process-local objects: its objects (to bind a recipe's references) and
# the context of the setup's start method.  None outside an actor.
_ACTOR_STATE = None
_LOCAL_LOCK = threading.Lock()


def _local_instance(local):
    """The calling actor's instance of a process-local object, built at the first call."""
    with _LOCAL_LOCK:
        if local.instance is None:
            if _ACTOR_STATE is None:
                raise RuntimeError("process-local object %r used outside an actor" % local.name)
            kwargs = _bind_refs(local.kwargs, _ACTOR_STATE["objects"])
            local.instance = TYPES[local.typename].create(_ACTOR_STATE["ctx"], kwargs)
        return local.instance


def _resolve(obj):
    """What a reference stands for in the calling process: a slot's connection, a local
    object's instance (built if needed), any other object itself."""
    if _is_slot(obj):
        if obj.conn is None:
            raise UnboundSlotError("Connection slot %r is not bound (no accept or client has "
                                   "made its connection in this process)" % obj.name)
        return obj.conn
    if _is_local(obj):
        return _local_instance(obj)
    return obj


def _resolve_deep(value):
    """_resolve on every object inside a value (lists, maps)."""
    if isinstance(value, dict):
        return {key: _resolve_deep(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_deep(item) for item in value]
    return _resolve(value)


def _address(value):
    """A protocol address: an AF_INET [host, port] list is the tuple CPython wants."""
    return tuple(value) if isinstance(value, list) else value


def _create_pipe(ctx, kwargs):
    return ctx.Pipe(**kwargs)


def _create_connection(ctx, kwargs):
    """One end of a Pipe (a Connection entry with args; without args it is a _Slot)."""
    if set(kwargs) != {"pipe", "end"}:
        raise TypeError("a Connection takes both `pipe` and `end`, or no argument (a slot)")
    pipe, end = kwargs["pipe"], kwargs["end"]
    if type(pipe) is not tuple or len(pipe) != 2:
        raise TypeError("`pipe` must be a reference to a Pipe")
    if not isinstance(end, int) or isinstance(end, bool) or end not in (0, 1):
        raise ValueError("`end` must be 0 or 1, not %r" % (end,))
    return pipe[end]


def _conn_method(name):
    """A Connection method: the method of the connection (a slot's bound one)."""

    def call(obj, kwargs):
        return getattr(_resolve(obj), name), (), kwargs

    return call


def _conn_attribute(name):
    def call(obj, kwargs):
        return getattr, (_resolve(obj), name), {}

    return Method(call=call)


def _recv_bytes_into(conn, kwargs):
    """recv_bytes_into into a fresh bytearray holding `buffer`; value {n, buffer}."""
    kwargs = dict(kwargs)
    if "buffer" not in kwargs:
        return conn.recv_bytes_into(**kwargs)  # Python's own TypeError
    buf = kwargs.pop("buffer")
    if isinstance(buf, (bytes, bytearray)):
        buf = bytearray(buf)
    n = conn.recv_bytes_into(buf, **kwargs)
    return {"n": n, "buffer": bytes(buf)}


def _conn_recv_bytes_into(obj, kwargs):
    return _recv_bytes_into, (_resolve(obj), kwargs), {}


def _enter_returns_none(obj):
    obj.__enter__()  # returns the connection itself; the protocol's value is null
    return None


def _conn_enter(obj, kwargs):
    return _enter_returns_none, (_resolve(obj),), {}


def _conn_exit(obj, kwargs):
    return _resolve(obj).__exit__, (None, None, None), {}


def _connection_methods():
    methods = {name: Method(*params, call=_conn_method(name)) for name, params in (
        ("send", ("obj",)),
        ("recv", ()),
        ("send_bytes", ("buf", "offset", "size")),
        ("recv_bytes", ("maxlength",)),
    )}
    methods["recv_bytes_into"] = Method("buffer", "offset", call=_conn_recv_bytes_into)
    methods["poll"] = Method("timeout", call=_conn_method("poll"))
    methods["close"] = Method(call=_conn_method("close"))
    for name in ("closed", "readable", "writable"):
        methods[name] = _conn_attribute(name)
    methods["fileno"] = Method(call=_conn_method("fileno"))
    methods["__enter__"] = Method(call=_conn_enter)
    methods["__exit__"] = Method(call=_conn_exit)
    return methods


def _bind_slot(slot, conn):
    if not _is_slot(slot):  # the driver checks `as`; a last line of defence
        conn.close()
        raise TypeError("`as` must name a Connection slot")
    slot.bind(conn)


def _create_listener(ctx, kwargs):
    kwargs = dict(kwargs)
    if "address" in kwargs:
        kwargs["address"] = _address(kwargs["address"])
    return MP.connection.Listener(**kwargs)


def _accept_into(listener, slot):
    _bind_slot(slot, listener.accept())


def _listener_accept(obj, kwargs):
    return _accept_into, (obj, kwargs["as"]), {}


def _scoped_exit_none(obj):
    obj.__exit__(None, None, None)
    return None


def _listener_exit(obj, kwargs):
    return _scoped_exit_none, (obj,), {}


def _scoped_enter_none(obj):
    obj.__enter__()  # returns the Listener itself; the protocol's value is null
    return None


def _listener_enter(obj, kwargs):
    return _scoped_enter_none, (obj,), {}


def _create_process(ctx, kwargs):
    """A Process of the setup's context running a catalogue task (spec/process/process.md §1)
    through _run_task; the task's arguments are checked against its signature here, so that an
    argument the task does not take is the constructor's error (TypeError)."""
    kwargs = dict(kwargs)
    inherited = kwargs.pop("inherited", False)
    if not isinstance(inherited, bool):
        raise TypeError("`inherited` must be a bool, not %r" % (inherited,))
    task = kwargs.pop("task", None)
    args = kwargs.pop("args", None)
    if not isinstance(task, str):
        raise TypeError("`task` must be the name of a task of the catalogue, not %r" % (task,))
    function = _TASKS.get(task)
    if function is None:
        raise ValueError("unknown task %r" % (task,))
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise TypeError("`args` of task %r must be a map, not %r" % (task, args))
    args = _resolve_deep(args)
    try:
        inspect.signature(function).bind(**args)
    except TypeError as exc:
        raise TypeError("task %r: %s" % (task, exc))
    return ctx.Process(target=_run_task, args=(MP.__name__, ctx.get_start_method(), task, args),
                       **kwargs)


def _set_attribute(name):
    def call(obj, kwargs):
        if "value" not in kwargs:
            raise TypeError("set_%s needs `value`" % name)
        return setattr, (obj, name, kwargs["value"]), {}

    return Method("value", call=call)


def _process_methods():
    methods = {name: Method() for name in ("start", "terminate", "kill", "close", "is_alive")}
    methods["join"] = Method("timeout")
    for name in ("exitcode", "pid", "sentinel", "name", "daemon"):
        methods[name] = _attribute(name)
    methods["set_name"] = _set_attribute("name")
    methods["set_daemon"] = _set_attribute("daemon")
    return methods


def _module_function(function):
    """A Module method: `function(**kwargs)` in the calling process."""

    def call(obj, kwargs):
        return function, (), kwargs

    return call


def _current_process_map():
    process = MP.current_process()
    result = {"name": process.name, "pid": process.pid, "daemon": process.daemon,
              "alive": process.is_alive()}
    authkey = getattr(process, "authkey", None)
    if authkey is not None:
        result["authkey"] = bytes(authkey)
    return result


def _parent_process_map():
    parent = MP.parent_process()
    if parent is None:
        return None
    return {"name": parent.name, "pid": parent.pid, "alive": parent.is_alive()}


def _active_children_names():
    return [child.name for child in MP.active_children()]


def _cpu_count():
    return MP.cpu_count()


def _waitable(obj):
    """What `wait` watches for an object of object_list: a Connection (a slot's bound one), a
    Process's sentinel."""
    if _is_local(obj) and obj.typename == "Process":
        return _local_instance(obj).sentinel
    if isinstance(obj, MP.process.BaseProcess):  # an inherited Process
        return obj.sentinel
    return _resolve(obj)


def _wait_names(kwargs):
    """Module.wait's convert (in the driver): remember the names of object_list's references,
    so that the actor can answer with the names of the ready objects."""
    object_list = kwargs.get("object_list")
    if isinstance(object_list, list):
        names = []
        for item in object_list:
            ref = _parse_ref(item)
            names.append(ref[0] if ref is not None and ref[1] is None else None)
        kwargs["$names"] = names
    return kwargs


def _wait_named(object_list, names, kwargs):
    waitables = [_waitable(item) for item in object_list]
    ready = MP.connection.wait(waitables, **kwargs)
    result = []
    for waitable, name in zip(waitables, names):
        if any(item is waitable or (type(waitable) is int and item == waitable)
               for item in ready):
            if name not in result:
                result.append(name)
    return result


def _module_wait(obj, kwargs):
    kwargs = dict(kwargs)
    names = kwargs.pop("$names", None)
    if names is None or "object_list" not in kwargs:
        return MP.connection.wait, (), kwargs  # not a list: Python's own outcome
    object_list = kwargs.pop("object_list")
    return _wait_named, (object_list, names, kwargs), {}


def _connect_into(slot, kwargs):
    if "address" in kwargs:
        kwargs["address"] = _address(kwargs["address"])
    _bind_slot(slot, MP.connection.Client(**kwargs))


def _module_client(obj, kwargs):
    kwargs = dict(kwargs)
    slot = kwargs.pop("as")
    return _connect_into, (slot, kwargs), {}


def _start_method_of(**kwargs):
    return MP.get_context(**kwargs).get_start_method()


def _module_methods():
    return {
        "current_process": Method(call=_module_function(_current_process_map)),
        "parent_process": Method(call=_module_function(_parent_process_map)),
        "active_children": Method(call=_module_function(_active_children_names)),
        "cpu_count": Method(call=_module_function(_cpu_count)),
        "wait": Method("object_list", "timeout", call=_module_wait, convert=_wait_names),
        "client": Method("as", "address", "family", "authkey", call=_module_client),
        "set_start_method": Method("method", "force",
                                   call=lambda obj, kw: (MP.set_start_method, (), kw)),
        "get_context": Method("method", call=_module_function(_start_method_of)),
        "shared_memory": Method("as", "name", "create", "size", call=_module_shared_memory),
        "manager_create": Method("address", "authkey", "typeid", "args", "kwds", "as",
                                 call=_module_manager_create, slot="Proxy"),
    }


# -- Queue, JoinableQueue, SimpleQueue (spec/queue) --------------------------------------------


def _queue_methods():
    """The protocol methods of Queue (JoinableQueue adds task_done and join)."""
    return {
        "put": Method("obj", "block", "timeout"),
        "put_nowait": Method("obj"),
        "get": Method("block", "timeout"),
        "get_nowait": Method(),
        "qsize": Method(),
        "empty": Method(),
        "full": Method(),
        "close": Method(),
        "join_thread": Method(),
        "cancel_join_thread": Method(),
    }


# -- Value, RawValue, Array, RawArray, Synchronized (spec/sharedctypes/sharedctypes.md) --------


def _sharedctypes():
    """The sharedctypes module of the package under test."""
    return importlib.import_module(MP.__name__ + ".sharedctypes")


def _create_shared(kind):
    """The constructor of Value, RawValue, Array or RawArray: the context's own function.
    RawValue and RawArray take `copy_of` ({"$ref": name} of a shared object) instead of a type
    code: the object is then sharedctypes.copy of it."""

    def create(ctx, kwargs):
        kwargs = dict(kwargs)
        if "copy_of" in kwargs:
            if len(kwargs) != 1:
                raise TypeError("`copy_of` takes no other argument")
            return _sharedctypes().copy(kwargs["copy_of"])
        if "typecode" not in kwargs:
            raise TypeError("%s needs `typecode`" % kind)
        typecode = kwargs.pop("typecode")
        if kind in ("Value", "RawValue"):
            args = (kwargs.pop("value"),) if "value" in kwargs else ()
        else:
            if "size_or_initializer" not in kwargs:
                raise TypeError("%s needs `size_or_initializer`" % kind)
            args = (kwargs.pop("size_or_initializer"),)
        return getattr(ctx, kind)(typecode, *args, **kwargs)

    return create


def _create_synchronized(ctx, kwargs):
    """synchronized(obj, lock) of the package under test, with the setup's context."""
    if "obj" not in kwargs:
        raise TypeError("Synchronized needs `obj`")
    return _sharedctypes().synchronized(kwargs["obj"], kwargs.get("lock"), ctx=ctx)


def _through(obj, kwargs):
    """(target, remaining kwargs): the raw object beneath a synchronized wrapper when the
    call says `obj: true` (get_obj(), no lock), else the object itself."""
    kwargs = dict(kwargs)
    through = kwargs.pop("obj", False)
    if not isinstance(through, bool):
        raise TypeError("`obj` must be a bool, not %r" % (through,))
    if through and hasattr(obj, "get_obj"):
        obj = obj.get_obj()
    return obj, kwargs


def _shared_read(name):
    """A read of the attribute `name` (value, raw) of the object or of get_obj()."""

    def call(obj, kwargs):
        target, _ = _through(obj, kwargs)
        return getattr, (target, name), {}

    return Method("obj", call=call)


def _shared_set_value(obj, kwargs):
    target, kwargs = _through(obj, kwargs)
    if "value" not in kwargs:
        raise TypeError("set_value needs `value`")
    return setattr, (target, "value", kwargs["value"]), {}


def _shared_len(obj, kwargs):
    return len, (obj,), {}


def _shared_getitem(obj, kwargs):
    target, kwargs = _through(obj, kwargs)
    if "index" not in kwargs:
        raise TypeError("getitem needs `index`")
    return operator.getitem, (target, kwargs["index"]), {}


def _shared_setitem(obj, kwargs):
    target, kwargs = _through(obj, kwargs)
    if "index" not in kwargs or "value" not in kwargs:
        raise TypeError("setitem needs `index` and `value`")
    return operator.setitem, (target, kwargs["index"], kwargs["value"]), {}


def _slice_of(kwargs):
    return slice(kwargs.get("start"), kwargs.get("stop"), kwargs.get("step"))


def _shared_getslice(obj, kwargs):
    target, kwargs = _through(obj, kwargs)
    return operator.getitem, (target, _slice_of(kwargs)), {}


def _shared_setslice(obj, kwargs):
    target, kwargs = _through(obj, kwargs)
    if "values" not in kwargs:
        raise TypeError("setslice needs `values`")
    return operator.setitem, (target, _slice_of(kwargs), kwargs["values"]), {}


def _add_to(obj, index, delta, times, locked):
    """`times` read-modify-writes adding `delta` (to `value`, or to element `index`).  Not
    locked: Python's `+=` through the object (a read, then a write).  Locked: each inside one
    acquisition of get_lock(), through get_obj() (so a non-recursive given lock works too)."""
    for _ in range(times):
        if locked:
            with obj.get_lock():
                raw = obj.get_obj()
                if index is None:
                    raw.value += delta
                else:
                    raw[index] += delta
        elif index is None:
            obj.value += delta
        else:
            obj[index] += delta


def _shared_add(obj, kwargs):
    if "delta" not in kwargs:
        raise TypeError("add needs `delta`")
    times = kwargs.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 0:
        raise TypeError("`times` must be an int >= 0, not %r" % (times,))
    locked = kwargs.get("locked", False)
    if not isinstance(locked, bool):
        raise TypeError("`locked` must be a bool, not %r" % (locked,))
    return _add_to, (obj, kwargs.get("index"), kwargs["delta"], times, locked), {}


def _shared_value_methods(synchronized):
    methods = {
        "value": _shared_read("value"),
        "set_value": Method("value", "obj", call=_shared_set_value),
        "add": Method("delta", "times", *(("locked",) if synchronized else ()),
                      call=_shared_add),
    }
    if synchronized:
        methods.update(_semlock_methods())
    return methods


def _shared_array_methods(synchronized):
    methods = {
        "len": Method(call=_shared_len),
        "getitem": Method("index", "obj", call=_shared_getitem),
        "setitem": Method("index", "value", "obj", call=_shared_setitem),
        "getslice": Method("start", "stop", "step", "obj", call=_shared_getslice),
        "setslice": Method("start", "stop", "step", "values", "obj", call=_shared_setslice),
        # 'c' arrays only (the others raise AttributeError, as in CPython).
        "value": _shared_read("value"),
        "raw": _shared_read("raw"),
        "set_value": Method("value", "obj", call=_shared_set_value),
        "add": Method("index", "delta", "times", *(("locked",) if synchronized else ()),
                      call=_shared_add),
    }
    if synchronized:
        methods.update(_semlock_methods())
    return methods


# -- SharedMemory, Module.shared_memory (spec/sharedctypes/shared_memory.md) --------------------


def _shared_memory_module():
    return importlib.import_module(MP.__name__ + ".shared_memory")


class _MemorySlot:
    """A SharedMemory slot: a ``SharedMemory`` entry without args, bound to a handle made by
    ``Module.shared_memory(as=...)`` in the calling process only (like a Connection slot).
    Recognised by its marker attribute (see _Slot)."""

    _mpspec_memory_slot = True

    def __init__(self, name):
        self.name = name
        self.shm = None

    def bind(self, shm):
        # Binding a slot that holds a handle closes the old handle first.
        old, self.shm = self.shm, None
        if old is not None:
            try:
                old.close()
            except Exception:
                pass
        self.shm = shm

    def __getstate__(self):
        return {"name": self.name, "shm": None}  # a handle never travels with its slot

    def __repr__(self):
        return "<SharedMemory slot %s: %r>" % (self.name, self.shm)


def _is_memory_slot(obj):
    return getattr(obj, "_mpspec_memory_slot", False) is True


# The setup's temporary directory in the driver (actors use _ACTOR_TEMPDIR): where the names of
# the segments this setup creates are written down, so that teardown unlinks every one still
# there, even one made by an actor that was killed since.
_SEGMENTS_DIR = [None]
_SEGMENTS_FILE = "mpspec-shared-memory-segments"


def _record_segment(name, filename=_SEGMENTS_FILE):
    directory = _ACTOR_TEMPDIR[0] or _SEGMENTS_DIR[0]
    if directory is None or not isinstance(name, str):
        return
    line = (json.dumps(name) + "\n").encode("utf-8")
    fd = os.open(os.path.join(directory, filename),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines of concurrent actors never mix
    finally:
        os.close(fd)


def _recorded_segments(directory, filename=_SEGMENTS_FILE):
    try:
        with open(os.path.join(directory, filename), "rb") as records:
            lines = records.read().decode("utf-8").splitlines()
    except OSError:
        return []
    names = []
    for line in lines:
        try:
            name = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _open_segment(name=None, create=False, size=0):
    """SharedMemory(name, create, size) of the package under test; a creation is written down
    (a given name before the attempt, a generated one after) for teardown."""
    if create and name is not None:
        _record_segment(name)
    shm = _shared_memory_module().SharedMemory(name=name, create=create, size=size)
    if create and name is None:
        _record_segment(shm.name)
    return shm


def _create_shared_memory(ctx, kwargs):
    return _open_segment(**kwargs)


def _unlink_segments(names):
    """Unlink every segment of `names` that still exists, and leave none of them registered
    with this process's resource tracker (so that it has no "leaked shared_memory" warning to
    give when it stops).  Registering and then unregistering a name is safe whether the tracker
    knew it or not: it keeps a set."""
    if not names:
        return
    try:
        module = _shared_memory_module()
    except ImportError:
        return
    posix = getattr(module, "_posixshmem", None)
    try:
        tracker = importlib.import_module(MP.__name__ + ".resource_tracker")
    except ImportError:
        tracker = None
    tracked = (tracker is not None
               and getattr(getattr(tracker, "_resource_tracker", None), "_fd", None) is not None)
    for name in names:
        system_name = name if name.startswith("/") else "/" + name
        try:
            if tracked:
                tracker.register(system_name, "shared_memory")
            if posix is not None:
                posix.shm_unlink(system_name)
        except FileNotFoundError:
            pass
        except Exception as exc:
            _log("cannot unlink shared memory %r: %s" % (name, exc))
        finally:
            if tracked:
                try:
                    tracker.unregister(system_name, "shared_memory")
                except Exception:
                    pass


def _forget_resource_tracker():
    """In an independent actor: drop the resource tracker inherited from the driver (spawn
    passes its descriptor), so that the actor shares no descriptor with the driver and its
    SharedMemory handles register with a tracker of its own, as in an unrelated program."""
    for package in sorted({"multiprocessing", MP.__name__}):
        module = sys.modules.get(package + ".resource_tracker")
        tracker = getattr(module, "_resource_tracker", None) if module is not None else None
        fd = getattr(tracker, "_fd", None)
        if fd is None:
            continue
        try:
            os.close(fd)
        except OSError:
            pass
        tracker._fd = None
        tracker._pid = None


_MEMORY_CHECKED = [False]


def _withdraw_unusable_types():
    """Take SharedMemory (and Module.shared_memory) out of the type table when the package under
    test cannot make a segment here: its handles register with its resource tracker, which
    must start (Debian 12's multiprocess 0.70.12 cannot start its own under Python 3.11, and
    its SharedMemory then fails after creating the segment).  Checked once, at hello; the
    standard library's tracker is not started for the check."""
    if _MEMORY_CHECKED[0] or "SharedMemory" not in TYPES:
        return
    _MEMORY_CHECKED[0] = True
    reason = None
    try:
        _shared_memory_module()
        if MP.__name__ != "multiprocessing":
            tracker = importlib.import_module(MP.__name__ + ".resource_tracker")
            tracker.ensure_running()
            stop = getattr(tracker._resource_tracker, "_stop", None)
            if stop is not None:
                stop()
    except Exception as exc:
        reason = "%s: %s" % (_type_name(type(exc)), exc)
    if reason is not None:
        _log("SharedMemory is not offered: %s cannot use it here (%s)" % (MP.__name__, reason))
        TYPES.pop("SharedMemory", None)
        TYPES["Module"].methods.pop("shared_memory", None)


def _memory_handle(obj):
    """The handle a SharedMemory call acts on: a slot's bound one, or the object itself."""
    if _is_memory_slot(obj):
        if obj.shm is None:
            raise UnboundSlotError("SharedMemory slot %r is not bound (no shared_memory call "
                                   "has made its handle in this process)" % obj.name)
        return obj.shm
    return obj


def _int_arg(kwargs, key, default):
    value = kwargs.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("`%s` must be an int, not %r" % (key, value))
    return value


def _memory_read(shm, kwargs):
    offset = _int_arg(kwargs, "offset", 0)
    size = _int_arg(kwargs, "size", None)
    if size is None:
        size = shm.size - offset
    # The driver refuses what lies outside [0, size) (spec: shared_memory.buf.bounds is open).
    if offset < 0 or size < 0 or offset + size > shm.size:
        raise ValueError("read of %d bytes at offset %d is outside [0, %d)"
                         % (size, offset, shm.size))
    return bytes(shm.buf[offset:offset + size])


def _memory_write(shm, kwargs):
    offset = _int_arg(kwargs, "offset", 0)
    data = kwargs.get("data")
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("`data` must be bytes")
    if offset < 0 or offset + len(data) > shm.size:
        raise ValueError("write of %d bytes at offset %d is outside [0, %d)"
                         % (len(data), offset, shm.size))
    shm.buf[offset:offset + len(data)] = data


def _memory_call(function):
    def call(obj, kwargs):
        return function, (_memory_handle(obj), kwargs), {}

    return call


def _memory_method(name):
    def call(obj, kwargs):
        return getattr(_memory_handle(obj), name), (), {}

    return Method(call=call)


def _memory_attribute(name):
    def call(obj, kwargs):
        return getattr, (_memory_handle(obj), name), {}

    return Method(call=call)


def _shared_memory_methods():
    return {
        "name": _memory_attribute("name"),
        "size": _memory_attribute("size"),
        "read": Method("offset", "size", call=_memory_call(_memory_read)),
        "write": Method("offset", "data", call=_memory_call(_memory_write)),
        "close": _memory_method("close"),
        "unlink": _memory_method("unlink"),
    }


def _shared_memory_into(slot, kwargs):
    if not _is_memory_slot(slot):  # the driver checks `as`; a last line of defence
        raise TypeError("`as` must name a SharedMemory slot")
    shm = _open_segment(**kwargs)
    slot.bind(shm)
    return shm.name


def _module_shared_memory(obj, kwargs):
    kwargs = dict(kwargs)
    slot = kwargs.pop("as")
    return _shared_memory_into, (slot, kwargs), {}


# -- Pool, AsyncResult, Iterator (spec/pool/pool.md) -------------------------------------------

# The pool task catalogue (spec/pool/pool.md section 1): module level, so that a pool's workers
# find the functions by name under every start method.  CPython's workers call
# func(*args, **kwds); map calls func(item), starmap func(*item).

# set_tag / get_tag: one value per worker process.
_POOL_TAG = [None]


def _pool_task_identity(x):
    return x


def _pool_task_square(x):
    return x * x


def _pool_task_add(a, b):
    return a + b


def _pool_task_sleep(seconds, value=None):
    time.sleep(seconds)
    return value


def _pool_task_slow_identity(x, seconds=0.05):
    time.sleep(seconds)
    return x


def _pool_task_nonneg(x, seconds=0):
    time.sleep(seconds)
    if x < 0:
        raise ValueError(str(x))
    return x


def _pool_task_raise(kind="ValueError", message=""):
    raise _exception_class(kind)(message)


def _pool_task_crash(signal=9):
    task_crash(signal)


def _pool_task_pid():
    return os.getpid()


def _pool_task_set_tag(value):
    _POOL_TAG[0] = value


def _pool_task_get_tag():
    return _POOL_TAG[0]


_POOL_TASKS = {
    "identity": _pool_task_identity,
    "square": _pool_task_square,
    "add": _pool_task_add,
    "sleep": _pool_task_sleep,
    "slow_identity": _pool_task_slow_identity,
    "nonneg": _pool_task_nonneg,
    "raise": _pool_task_raise,
    "crash": _pool_task_crash,
    "pid": _pool_task_pid,
    "set_tag": _pool_task_set_tag,
    "get_tag": _pool_task_get_tag,
}


def _pool_task(name):
    """The function of a pool task; ValueError for a name outside the catalogue."""
    function = _POOL_TASKS.get(name) if isinstance(name, str) else None
    if function is None:
        raise ValueError("no pool task %r in this driver's catalogue" % (name,))
    return function


def _pool_worker_init(module, initializer, initargs):
    """Every pool's initializer (module level: spawn carries it by name): a forked worker lets
    go of the actor's pipes to the driver (as a Process does, see _run_task), a spawned one
    selects the package under test; then the catalogue initializer, if any, runs."""
    _close_inherited()
    if module != MP.__name__:
        select_module(module)
    if initializer is not None:
        _POOL_TASKS[initializer](*initargs)


# Every Pool this actor made, for teardown (_stop_pools).
_ACTOR_POOLS = []


def _create_pool(ctx, kwargs):
    """A Pool of the setup's context (process-local: built by the actor at its first call)."""
    kwargs = dict(kwargs)
    initializer = kwargs.pop("initializer", None)
    initargs = kwargs.pop("initargs", None)
    if initargs is None:
        initargs = []
    if initializer is not None:
        _pool_task(initializer)
    if not isinstance(initargs, list):
        raise TypeError("`initargs` must be a list, not %r" % (initargs,))
    pool = ctx.Pool(processes=kwargs.get("processes"), initializer=_pool_worker_init,
                    initargs=(MP.__name__, initializer, tuple(initargs)),
                    maxtasksperchild=kwargs.get("maxtasksperchild"))
    _ACTOR_POOLS.append(pool)
    for lock in _pool_semlocks(pool):
        _record_segment(getattr(getattr(lock, "_semlock", None), "name", None), _SEMAPHORES_FILE)
    return pool


# Where the setup's temporary directory lists the named semaphores of the actors' pools (spawn
# and forkserver contexts), so that teardown unlinks those of an actor killed since (which
# its resource tracker, the driver's, would otherwise report as leaked).
_SEMAPHORES_FILE = "mpspec-pool-semaphores"


def _pool_semlocks(pool):
    """The SemLocks of a pool's queues."""
    locks = []
    for name in ("_inqueue", "_outqueue", "_change_notifier"):
        simple_queue = getattr(pool, name, None)
        for lock_name in ("_rlock", "_wlock"):
            lock = getattr(simple_queue, lock_name, None)
            if lock is not None:
                locks.append(lock)
    return locks


def _unlink_semaphores(names):
    """Unlink the named semaphores of `names` still there, registered with this process's
    resource tracker or not (as _unlink_segments does for segments)."""
    if not names:
        return
    try:
        synchronize = importlib.import_module(MP.__name__ + ".synchronize")
        tracker = importlib.import_module(MP.__name__ + ".resource_tracker")
    except ImportError:
        return
    sem_unlink = getattr(synchronize, "sem_unlink", None)
    tracked = getattr(getattr(tracker, "_resource_tracker", None), "_fd", None) is not None
    for name in names:
        try:
            if tracked:
                tracker.register(name, "semaphore")
            if sem_unlink is not None:
                sem_unlink(name)
        except FileNotFoundError:
            pass
        except Exception as exc:
            _log("cannot unlink semaphore %r: %s" % (name, exc))
        finally:
            if tracked:
                try:
                    tracker.unregister(name, "semaphore")
                except Exception:
                    pass


class _ResultSlot:
    """An AsyncResult or Iterator slot: an entry of that type (it has no args), bound by a
    Pool's apply_async / map_async / starmap_async or imap / imap_unordered (`as`) in the
    calling actor only, like a Connection slot.  ``handle`` is a _PoolResult or _PoolIterator.
    Recognised by its marker attribute (see _Slot)."""

    _mpspec_result_slot = True

    def __init__(self, name, typename):
        self.name = name
        self.typename = typename
        self.handle = None

    def __getstate__(self):
        return {"name": self.name, "typename": self.typename, "handle": None}

    def __repr__(self):
        return "<%s slot %s: %r>" % (self.typename, self.name, self.handle)


def _is_result_slot(obj):
    return getattr(obj, "_mpspec_result_slot", False) is True


def _check_result_slot(slot, typename):
    # The driver checks `as` (Method.slot); a last line of defence, before submitting.
    if not _is_result_slot(slot) or slot.typename != typename:
        raise TypeError("`as` must name an %s slot" % typename)


def _slot_handle(slot):
    if slot.handle is None:
        raise UnboundSlotError("%s slot %r is not bound (no call has made its %s in this "
                               "process)" % (slot.typename, slot.name, slot.typename))
    return slot.handle


class _PoolResult:
    """What an AsyncResult slot holds: CPython's AsyncResult and the record of its callbacks.
    The record exists before the submission (a callback may run before apply_async returns)
    and is shared with the pool's result handler thread, under `lock`."""

    def __init__(self):
        self.result = None
        self.records = []
        self.lock = threading.Lock()

    def callback(self, mode, which):
        """The Python callback for the protocol's `callback` / `error_callback` value."""
        if mode is None:
            return None
        if mode not in ("record", "raise"):
            raise ValueError("`%s` must be null, \"record\" or \"raise\", not %r"
                             % (which, mode))
        records, lock = self.records, self.lock

        def run(value):
            if which == "error_callback":
                payload = error_payload(value)
                value = {"kind": payload["kind"], "message": payload["message"]}
            with lock:
                records.append({"callback": which, "value": value})
            if mode == "raise":
                raise RuntimeError("callback failed")

        return run

    def recorded(self):
        with self.lock:
            return list(self.records)


class _PoolIterator:
    """What an Iterator slot holds: imap's iterator (chunksize 1: an IMapIterator, whose next
    takes a timeout; otherwise CPython returns a plain generator)."""

    def __init__(self, iterator):
        self.iterator = iterator

    def next(self, timeout=None):
        iterator = self.iterator
        try:
            if timeout is not None and hasattr(iterator, "next"):
                value = iterator.next(timeout)
            else:
                value = next(iterator)
        except StopIteration:
            return {"done": True}
        return {"value": value}


def _task_arguments(kwargs):
    args = kwargs.get("args")
    kwds = kwargs.get("kwds")
    if args is None:
        args = []
    if kwds is None:
        kwds = {}
    if not isinstance(args, list):
        raise TypeError("`args` must be a list, not %r" % (args,))
    if not isinstance(kwds, dict):
        raise TypeError("`kwds` must be a map, not %r" % (kwds,))
    return tuple(args), dict(kwds)


def _pool_apply(pool, kwargs):
    args, kwds = _task_arguments(kwargs)
    return pool.apply, (_pool_task(kwargs.get("func")), args, kwds), {}


def _submit_async(slot, submit, callback, error_callback):
    """Submit through `submit(callback, error_callback)` (returning CPython's AsyncResult) and
    bind the slot to it; a failed submission leaves the slot as it was."""
    _check_result_slot(slot, "AsyncResult")
    handle = _PoolResult()
    on_value = handle.callback(callback, "callback")
    on_error = handle.callback(error_callback, "error_callback")
    handle.result = submit(on_value, on_error)
    slot.handle = handle


def _pool_apply_async(pool, kwargs):
    func = _pool_task(kwargs.get("func"))
    args, kwds = _task_arguments(kwargs)

    def submit(on_value, on_error):
        return pool.apply_async(func, args, kwds, callback=on_value, error_callback=on_error)

    return _submit_async, (kwargs["as"], submit, kwargs.get("callback"),
                           kwargs.get("error_callback")), {}


def _map_arguments(kwargs):
    func = _pool_task(kwargs.get("func"))
    if "iterable" not in kwargs:
        raise TypeError("a map needs `iterable`")
    return func, kwargs["iterable"], kwargs.get("chunksize")


def _pool_map(name):
    """map / starmap: chunksize null is CPython's default (None)."""

    def call(pool, kwargs):
        func, iterable, chunksize = _map_arguments(kwargs)
        return getattr(pool, name), (func, iterable, chunksize), {}

    return Method("func", "iterable", "chunksize", call=call)


def _pool_map_async(name):
    """map_async / starmap_async, binding an AsyncResult slot."""

    def call(pool, kwargs):
        func, iterable, chunksize = _map_arguments(kwargs)
        method = getattr(pool, name)

        def submit(on_value, on_error):
            return method(func, iterable, chunksize, callback=on_value, error_callback=on_error)

        return _submit_async, (kwargs["as"], submit, kwargs.get("callback"),
                               kwargs.get("error_callback")), {}

    return Method("func", "iterable", "chunksize", "callback", "error_callback", "as",
                  call=call, slot="AsyncResult")


def _imap_into(slot, method, func, iterable, chunksize):
    _check_result_slot(slot, "Iterator")
    iterator = method(func, iterable, chunksize)
    slot.handle = _PoolIterator(iterator)


def _pool_imap(name):
    """imap / imap_unordered (chunksize default 1), binding an Iterator slot."""

    def call(pool, kwargs):
        func = _pool_task(kwargs.get("func"))
        if "iterable" not in kwargs:
            raise TypeError("%s needs `iterable`" % name)
        return _imap_into, (kwargs["as"], getattr(pool, name), func, kwargs["iterable"],
                            kwargs.get("chunksize", 1)), {}

    return Method("func", "iterable", "chunksize", "as", call=call, slot="Iterator")


def _worker_pids(pool):
    return [p.pid for p in pool._pool if p.is_alive()]


def _pool_methods():
    return {
        "apply": Method("func", "args", "kwds", call=_pool_apply),
        "apply_async": Method("func", "args", "kwds", "callback", "error_callback", "as",
                              call=_pool_apply_async, slot="AsyncResult"),
        "map": _pool_map("map"),
        "map_async": _pool_map_async("map_async"),
        "starmap": _pool_map("starmap"),
        "starmap_async": _pool_map_async("starmap_async"),
        "imap": _pool_imap("imap"),
        "imap_unordered": _pool_imap("imap_unordered"),
        "close": Method(),
        "terminate": Method(),
        "join": Method(),
        "__enter__": Method(call=_listener_enter),  # returns the pool: the value is null
        "__exit__": Method(call=_scoped_exit),  # terminate()
        "worker_pids": Method(call=lambda pool, kwargs: (_worker_pids, (pool,), {})),
    }


def _result_method(name):
    """An AsyncResult method: CPython's AsyncResult method `name` of the bound result."""

    def call(slot, kwargs):
        return getattr(_slot_handle(slot).result, name), (), kwargs

    return call


def _result_methods():
    return {
        "get": Method("timeout", call=_result_method("get")),
        "wait": Method("timeout", call=_result_method("wait")),
        "ready": Method(call=_result_method("ready")),
        "successful": Method(call=_result_method("successful")),
        "callbacks": Method(call=lambda slot, kwargs: (_slot_handle(slot).recorded, (), {})),
    }


def _iterator_methods():
    return {"next": Method("timeout", call=lambda slot, kwargs: (_slot_handle(slot).next, (),
                                                                  kwargs))}


def _create_result_slot(ctx, kwargs):
    raise TypeError("AsyncResult, Iterator and Proxy entries take no argument (they are slots)")


# Teardown of an actor's pools (the driver asks, see Driver._stop_actor_pools): how long the
# pools get to terminate before their workers are killed by pid.  CPython's terminate() can
# block for ever (an idle worker killed while it held the task queue's read lock) or raise
# AssertionError, leaving its workers running (its result handler died: a raising callback).
POOL_STOP_TIMEOUT = 3.0 * _timeout_multiplier()
# The command that asks an actor to do it, and its answer.
_STOP_POOLS = "mpspec-stop-pools"


def _stop_quietly(stop, item, what, done):
    try:
        stop(item)
    except BaseException as exc:
        _log("stopping %s: %s: %s" % (what, _type_name(type(exc)), exc))
    finally:
        done.set()


def _running_processes(processes):
    """The processes of `processes` that were started and have not been reaped."""
    alive = []
    for process in processes:
        try:
            if process is not None and process.pid is not None and process.exitcode is None:
                alive.append(process)
        except ValueError:
            pass  # closed
    return alive


def _stop_bounded(items, stop, processes, bound, what):
    """stop(item) for every item, each in a daemon thread of its own; once every stop has
    finished, or `bound` seconds after they began (one deadline for all), SIGKILL the
    processes(item) still alive (whether its stop finished, raised or still blocks), and reap
    them.  `what` names an item in the log ("a pool")."""
    stoppers = []
    for item in items:
        done = threading.Event()
        thread = threading.Thread(target=_stop_quietly, args=(stop, item, what, done),
                                  name="mpspec-stop", daemon=True)
        thread.start()
        stoppers.append((item, done))
    deadline = time.monotonic() + bound
    for item, done in stoppers:
        if not done.wait(max(0.0, deadline - time.monotonic())):
            _log("%s did not stop within %.1f s: killing its processes" % (what, bound))
    for item, done in stoppers:
        alive = _running_processes(processes(item))
        if alive and done.is_set():
            _log("%s left %d process(es) running once stopped: killing them"
                 % (what, len(alive)))
        for process in alive:
            try:
                os.kill(process.pid, signal.SIGKILL)
            except OSError:
                pass
        for process in alive:
            if not _await_exit(process, REAP_TIMEOUT):
                _log("process %d of %s could not be reaped" % (process.pid, what))


def _pool_semlock_finalizers(pool):
    """The resource-tracker finalizers of the named semaphores of `pool`'s queues (spawn and
    forkserver contexts; a fork context unlinks them at once and has none)."""
    locks = _pool_semlocks(pool)
    if not locks:
        return []
    registry = getattr(importlib.import_module(MP.__name__ + ".util"), "_finalizer_registry", {})
    finalizers = []
    for finalizer in list(registry.values()):
        ref = getattr(finalizer, "_weakref", None)
        target = ref() if ref is not None else None
        if target is not None and any(target is lock for lock in locks):
            finalizers.append(finalizer)
    return finalizers


def _stop_pools(bound):
    """Terminate every pool this actor made, each in a thread of its own; after `bound`
    seconds, SIGKILL (and reap) every worker process still alive, whether its pool's terminate
    finished, raised or still blocks.  Then unlink the pools' named semaphores, so that even a
    wedged pool leaves nothing for the resource tracker."""
    pools = list(_ACTOR_POOLS)
    del _ACTOR_POOLS[:]
    if not pools:
        return
    _stop_bounded(pools, lambda pool: pool.terminate(),
                  lambda pool: list(getattr(pool, "_pool", ())), bound, "a pool")
    for pool in pools:
        try:
            for finalizer in _pool_semlock_finalizers(pool):
                finalizer()
        except Exception as exc:
            _log("cannot unlink a pool's semaphores: %s: %s" % (_type_name(type(exc)), exc))
    # Let go of the pools and their results (what no blocked call still holds is freed).
    if _ACTOR_STATE is not None:
        for typename, obj in _ACTOR_STATE["objects"].values():
            if _is_local(obj) and typename == "Pool":
                obj.instance = None
            elif _is_result_slot(obj):
                obj.handle = None
    del pools
    gc.collect()


# -- Manager, Proxy, Module.manager_create (spec/manager) ----------------------------------------

# The one dict of the `shared_dict` typeid, in a manager's server process.
_SHARED_DICT = {}


def _shared_dict_referent():
    """The callable of the catalogue typeid `shared_dict`: every create returns the one
    server-global dict (module level, so that a spawned server finds it by name)."""
    return _SHARED_DICT


# The manager classes of each package under test, made on first use (_manager_class) and kept
# as module attributes under these names, so that a spawned server process, which unpickles
# `type(manager)._run_server`, finds its class by name (the module's __getattr__ below makes it
# there on demand).
_MANAGER_CLASS_PREFIX = {"server": "_MpspecManager__", "client": "_MpspecClientManager__"}


def _make_manager_classes(module_name):
    """(server class, client-only class) for the package `module_name`.  The server class is a
    SyncManager subclass that also registers `shared_dict` (a DictProxy to _SHARED_DICT).  The
    client-only class (Module.manager_create) is a BaseManager subclass that registers the
    same typeids without callables, as a remote client of a manager does."""
    managers = importlib.import_module(module_name + ".managers")
    suffix = module_name.replace(".", "_")
    server_name = _MANAGER_CLASS_PREFIX["server"] + suffix
    client_name = _MANAGER_CLASS_PREFIX["client"] + suffix
    server = type(server_name, (managers.SyncManager,),
                  {"__module__": __name__, "__qualname__": server_name})
    server.register("shared_dict", callable=_shared_dict_referent, proxytype=managers.DictProxy)
    client = type(client_name, (managers.BaseManager,),
                  {"__module__": __name__, "__qualname__": client_name})
    for typeid, (_, exposed, method_to_typeid, proxytype) in server._registry.items():
        creates = typeid == "shared_dict" or callable(getattr(managers.SyncManager, typeid, None))
        client.register(typeid, proxytype=proxytype, exposed=exposed,
                        method_to_typeid=method_to_typeid, create_method=creates)
    globals()[server_name] = server
    globals()[client_name] = client
    # In a spawned process the functions' globals are runpy's namespace, of which the module
    # object (__mp_main__) holds a copy: the classes go there too, for pickle to find them.
    module = sys.modules.get(__name__)
    if module is not None and vars(module) is not globals():
        setattr(module, server_name, server)
        setattr(module, client_name, client)
    return server, client


def __getattr__(name):
    # PEP 562: a manager class asked for by name (unpickling in a spawned server process).
    if name in globals():
        return globals()[name]
    for prefix in _MANAGER_CLASS_PREFIX.values():
        if name.startswith(prefix):
            suffix = name[len(prefix):]
            for module_name in sorted({"multiprocessing", MP.__name__} | set(MODULES)):
                if module_name.replace(".", "_") == suffix:
                    _make_manager_classes(module_name)
                    return globals()[name]
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _manager_class(kind):
    """The manager class of the package under test: kind "server" or "client"."""
    name = _MANAGER_CLASS_PREFIX[kind] + MP.__name__.replace(".", "_")
    if name not in globals():
        _make_manager_classes(MP.__name__)
    return globals()[name]


def _manager_state():
    return importlib.import_module(MP.__name__ + ".managers").State


# How long teardown gives a manager's shutdown before its server process is killed by pid.
MANAGER_STOP_TIMEOUT = 3.0 * _timeout_multiplier()
# Every manager this process started (start, __enter__): (pid of the starter, manager).  A
# forked actor inherits the parent's entries; only its own (its pid) are its to stop.
_STARTED_MANAGERS = []
# Where the setup's temporary directory lists the AF_UNIX socket paths of the servers the
# driver's managers bound (start, serve_forever), so that teardown removes the files of servers
# that were killed (a server shut down cleanly unlinks its own).
_SOCKETS_FILE = "mpspec-manager-sockets"


def _create_manager(ctx, kwargs):
    """A manager of the setup's context, not started (process-local; inherited entries are
    built by the parent).  address: null, an AF_UNIX path, or [host, port]."""
    kwargs = dict(kwargs)
    inherited = kwargs.pop("inherited", False)
    if not isinstance(inherited, bool):
        raise TypeError("`inherited` must be a bool, not %r" % (inherited,))
    return _manager_class("server")(address=_address(kwargs.get("address")),
                                    authkey=kwargs.get("authkey"), ctx=ctx)


def _current_tempdir():
    return _ACTOR_TEMPDIR[0] or _SEGMENTS_DIR[0]


def _watch_parent(parent):
    """In a server the driver itself started: end it when the driver is gone (even SIGKILLed),
    since no teardown will then come to end it."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def _manager_server_init(module, tempdir, watch=None):
    """The initializer of every manager server the driver starts (module level: spawn carries
    it by name): a forked server lets go of the driver's and the actor's pipes (as a Process
    does), takes the default signal actions, selects the package under test in a spawned one,
    and puts CPython's temporary files (a default AF_UNIX address) in the setup's directory.
    `watch`: the driver's pid, for a server started by the driver (an inherited manager): the
    server ends when the driver does.  (An actor's servers are in its process group, which the
    actor ends when the driver is gone.)"""
    _close_inherited()
    _SHARED_DICT.clear()  # a new server's own (a forked one may copy an actor's serve_forever)
    if watch is not None:
        threading.Thread(target=_watch_parent, args=(watch,), name="mpspec-watch-driver",
                         daemon=True).start()
    for signame in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, signame, None)
        if signum is not None:
            try:
                signal.signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    if module != MP.__name__:
        select_module(module)
    if tempdir is not None and os.path.isdir(tempdir):
        tempfile.tempdir = tempdir
        try:
            MP.current_process()._config.pop("tempdir", None)
        except AttributeError:
            pass


def _record_socket(address):
    if isinstance(address, str) and address and not address.startswith("\0"):
        _record_segment(os.path.abspath(address), _SOCKETS_FILE)


def _manager_start(manager):
    watch = os.getpid() if _ACTOR_STATE is None else None  # started by the driver
    manager.start(_manager_server_init, (MP.__name__, _current_tempdir(), watch))
    _STARTED_MANAGERS.append((os.getpid(), manager))
    _record_socket(manager.address)


def _manager_enter(manager):
    """`with manager:`'s __enter__: start if not started (through _manager_start, so that the
    driver knows the server), then CPython's own checks; the value is null."""
    if manager._state.value == _manager_state().INITIAL:
        _manager_start(manager)
    manager.__enter__()
    return None


def _manager_create_into(manager, slot, typeid, args, kwds):
    """getattr(manager, typeid)(*args, **kwds), bound into the Proxy slot `slot`."""
    _check_result_slot(slot, "Proxy")
    if not isinstance(typeid, str) or typeid not in type(manager)._registry:
        raise AttributeError("no typeid %r in the manager's registry" % (typeid,))
    create = getattr(manager, typeid, None)
    if not callable(create):
        raise AttributeError("typeid %r has no create method" % (typeid,))
    slot.handle = create(*args, **kwds)


def _manager_create(manager, kwargs):
    args, kwds = _task_arguments(kwargs)
    return _manager_create_into, (manager, kwargs.get("as"), kwargs.get("typeid"), args,
                                  kwds), {}


class _ParkedListener:
    """Stands in for a served-out Server's listener: its accepter thread parks here."""

    def accept(self):
        threading.Event().wait()


def _retire_server(server):
    """After serve_forever returned in an actor (CPython would now exit the process): stop
    accepting (the accepter thread parks on a _ParkedListener) and close the listener, which
    unlinks an AF_UNIX socket file.  Connections already made stay until the actor ends."""
    listener = server.listener
    server.listener = _ParkedListener()
    sock = getattr(getattr(listener, "_listener", None), "_socket", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the accepter's accept (EINVAL)
        except OSError:
            pass
    try:
        listener.close()
    except OSError:
        pass
    try:
        del MP.current_process()._manager_server
    except AttributeError:
        pass


def _manager_serve_forever(manager):
    """manager.get_server().serve_forever() in the calling actor: it returns (CPython:
    sys.exit(0), caught here) once a shutdown request has arrived; the value is null."""
    server = manager.get_server()
    _record_socket(server.address)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    _retire_server(server)
    return None


_DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


def _proxy_call_run(proxy, method, args, kwds, slot):
    if not isinstance(method, str):
        raise TypeError("`method` must be a string, not %r" % (method,))
    if slot is not None:
        _check_result_slot(slot, "Proxy")
    value = proxy._callmethod(method, args, kwds)
    if slot is None:
        if isinstance(value, _DICT_VIEWS):
            return list(value)  # multiprocess (dill) carries dict views; pickle gives lists
        return value
    managers = importlib.import_module(MP.__name__ + ".managers")
    if not isinstance(value, managers.BaseProxy):
        raise TypeError("method %r returned a %s, not a proxy (`as` needs one)"
                        % (method, _type_name(type(value))))
    slot.handle = value
    return None


def _proxy_call(slot, kwargs):
    args, kwds = _task_arguments(kwargs)
    return _proxy_call_run, (_slot_handle(slot), kwargs.get("method"), args, kwds,
                             kwargs.get("as")), {}


def _proxy_getvalue(slot, kwargs):
    return _slot_handle(slot)._getvalue, (), {}


def _manager_create_remote(slot, kwargs):
    """Module.manager_create: a client-only manager connected to the server at `address`
    with `authkey`, and the object of `typeid` created there, bound into the Proxy slot."""
    _check_result_slot(slot, "Proxy")
    args, kwds = _task_arguments(kwargs)
    manager = _manager_class("client")(address=_address(kwargs.get("address")),
                                       authkey=kwargs.get("authkey"))
    manager.connect()
    _manager_create_into(manager, slot, kwargs.get("typeid"), args, kwds)


def _module_manager_create(obj, kwargs):
    kwargs = dict(kwargs)
    slot = kwargs.pop("as")
    return _manager_create_remote, (slot, kwargs), {}


def _manager_methods():
    return {
        "start": Method(call=lambda manager, kwargs: (_manager_start, (manager,), {})),
        "connect": Method(),
        "shutdown": Method(),
        "address": _attribute("address"),
        "create": Method("typeid", "args", "kwds", "as", call=_manager_create, slot="Proxy"),
        "serve_forever": Method(call=lambda manager, kwargs: (_manager_serve_forever,
                                                              (manager,), {})),
        "__enter__": Method(call=lambda manager, kwargs: (_manager_enter, (manager,), {})),
        "__exit__": Method(call=_scoped_exit),
    }


def _proxy_methods():
    return {
        "call": Method("method", "args", "kwds", "as", call=_proxy_call, slot="Proxy",
                       as_optional=True),
        "getvalue": Method(call=_proxy_getvalue),
    }


def _stop_managers(bound):
    """Shut down every manager this process started, each in a thread of its own; after
    `bound` seconds, SIGKILL (and reap) every server process still alive."""
    mine = [manager for pid, manager in _STARTED_MANAGERS if pid == os.getpid()]
    del _STARTED_MANAGERS[:]
    if mine:
        _stop_bounded(mine, lambda manager: manager.shutdown(),
                      lambda manager: [getattr(manager, "_process", None)], bound,
                      "a manager")


def _unlink_sockets(paths):
    """Remove the AF_UNIX socket files of `paths` still there (only sockets), and the
    directory CPython made for a default address when it is left empty."""
    for path in paths:
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                continue
            os.unlink(path)
        except OSError:
            continue
        parent = os.path.dirname(path)
        if os.path.basename(parent).startswith("pymp-"):
            try:
                os.rmdir(parent)
            except OSError:
                pass


# Protocol type name -> TypeSpec.  Keep in sync with spec/protocol.md section 6.  Constructor
# arguments arrive with their references resolved ({"$ref": name} is the object itself,
# {"$call": [name, method]} a _BoundCall), see Driver._constructor_ref.
TYPES = {
    "Lock": TypeSpec(_create_lock, _semlock_methods()),
    "RLock": TypeSpec(lambda ctx, kw: ctx.RLock(**kw), _semlock_methods()),
    "Semaphore": TypeSpec(lambda ctx, kw: ctx.Semaphore(**kw),
                          dict(_semlock_methods(), get_value=Method()),
                          params=("value",)),
    "BoundedSemaphore": TypeSpec(lambda ctx, kw: ctx.BoundedSemaphore(**kw),
                                 dict(_semlock_methods(), get_value=Method()),
                                 params=("value",)),
    "Event": TypeSpec(lambda ctx, kw: ctx.Event(**kw), {
        "is_set": Method(),
        "set": Method(),
        "clear": Method(),
        "wait": Method("timeout"),
    }),
    "Condition": TypeSpec(lambda ctx, kw: ctx.Condition(**kw), _condition_methods(),
                          params=("lock",)),
    "Barrier": TypeSpec(lambda ctx, kw: ctx.Barrier(**kw), {
        "wait": Method("timeout"),
        "abort": Method(),
        "reset": Method(),
        "parties": _attribute("parties"),
        "n_waiting": _attribute("n_waiting"),
        "broken": _attribute("broken"),
    }, params=("parties", "action", "timeout")),
    "Pipe": TypeSpec(_create_pipe, {}, params=("duplex",)),
    # With args (`pipe`, `end`): an end of a Pipe; without: a slot (_Slot, see _build_object).
    "Connection": TypeSpec(_create_connection, _connection_methods(), params=("pipe", "end")),
    "Listener": TypeSpec(_create_listener, {
        "accept": Method("as", call=_listener_accept),
        "address": _attribute("address"),
        "last_accepted": _attribute("last_accepted"),
        "close": Method(),
        "__enter__": Method(call=_listener_enter),
        "__exit__": Method(call=_listener_exit),
    }, params=("address", "family", "backlog", "authkey"), local=True),
    # Process-local, except with `inherited`: true (protocol 3.2, setup.inherited; see
    # _is_inherited_entry), when the driver builds it like any other object.
    "Process": TypeSpec(_create_process, _process_methods(),
                        params=("task", "args", "name", "daemon", "inherited"), local=True),
    "Module": TypeSpec(lambda ctx, kw: "Module", _module_methods()),
    # Shared values (spec/sharedctypes/sharedctypes.md): the context's own functions.  A method
    # given `obj: true` goes through get_obj().  Value and Array with lock=False are raw objects
    # (their lock methods then raise AttributeError, as in CPython).
    "Value": TypeSpec(_create_shared("Value"), _shared_value_methods(True),
                      params=("typecode", "value", "lock")),
    "RawValue": TypeSpec(_create_shared("RawValue"), _shared_value_methods(False),
                         params=("typecode", "value", "copy_of")),
    "Array": TypeSpec(_create_shared("Array"), _shared_array_methods(True),
                      params=("typecode", "size_or_initializer", "lock")),
    "RawArray": TypeSpec(_create_shared("RawArray"), _shared_array_methods(False),
                         params=("typecode", "size_or_initializer", "copy_of")),
    "Synchronized": TypeSpec(_create_synchronized,
                             dict(_shared_value_methods(True), **_shared_array_methods(True)),
                             params=("obj", "lock")),
    # SharedMemory (spec/sharedctypes/shared_memory.md): with args, a handle made in the parent
    # and inherited; without, a slot (_MemorySlot) bound by Module.shared_memory(as=...).
    "SharedMemory": TypeSpec(_create_shared_memory, _shared_memory_methods(),
                             params=("name", "create", "size")),
    # Queues (spec/queue): the context's own classes; queue.Full / queue.Empty are kinds Full /
    # Empty (_error_kind_table).  close, join_thread and cancel_join_thread act on the calling
    # actor's copy only, as in CPython.
    "Queue": TypeSpec(lambda ctx, kw: ctx.Queue(**kw), _queue_methods(), params=("maxsize",)),
    "JoinableQueue": TypeSpec(lambda ctx, kw: ctx.JoinableQueue(**kw),
                              dict(_queue_methods(), task_done=Method(), join=Method()),
                              params=("maxsize",)),
    "SimpleQueue": TypeSpec(lambda ctx, kw: ctx.SimpleQueue(**kw), {
        "put": Method("obj"),
        "get": Method(),
        "empty": Method(),
        "close": Method(),
    }),
    # Pools (spec/pool/pool.md): process-local like Process; AsyncResult and Iterator entries
    # are slots (_ResultSlot), bound by the pool's *_async and imap* calls (`as`).
    "Pool": TypeSpec(_create_pool, _pool_methods(),
                     params=("processes", "initializer", "initargs", "maxtasksperchild"),
                     local=True),
    "AsyncResult": TypeSpec(_create_result_slot, _result_methods()),
    "Iterator": TypeSpec(_create_result_slot, _iterator_methods()),
    # Managers (spec/manager): process-local like Pool, except with `inherited`: true (built
    # by the parent, so that prelude calls start it and create proxies the actors inherit).
    # Proxy entries are slots (_ResultSlot), bound by Manager.create, Module.manager_create and
    # Proxy.call (`as`).
    "Manager": TypeSpec(_create_manager, _manager_methods(),
                        params=("address", "authkey", "inherited"), local=True),
    "Proxy": TypeSpec(_create_result_slot, _proxy_methods()),
}


# -- The manager context (protocol 3.2, setup.context "manager") -------------------------------
#
# With `context: "manager"`, the driver starts one manager (the SyncManager subclass of
# _manager_class) before the setup's objects, and makes every object of MANAGED_TYPES through
# it: the referent (a threading / queue object) lives in the manager's server, the driver holds
# a proxy and the actors inherit it by fork.  Every protocol method of those objects is carried
# out through the proxy (MANAGED_TYPES' methods, chosen by _spec_of); other types are made as
# usual.  The method names and arguments are TYPES' own, so that a request is checked alike in
# either case.

# The setup contexts this driver offers (hello: `contexts`).
CONTEXTS = ("manager",)


def _is_proxy(obj):
    """Whether `obj` is a manager's proxy (an object of the manager context)."""
    managers = sys.modules.get(MP.__name__ + ".managers")
    return managers is not None and isinstance(obj, managers.BaseProxy)


def _remote(name, positional=()):
    """A protocol method carried out as proxy._callmethod(name, args, kwds): the protocol
    arguments named in `positional` go by position, in that order while they are given (the
    referent names them otherwise: Queue.put's `obj` is queue.Queue's `item`), the others by
    keyword (the referent's parameters have the protocol's names).  A method the proxy does not
    expose (a Semaphore's get_value, a Queue's close) fails in the server: RemoteError."""

    def call(proxy, kwargs):
        kwargs = dict(kwargs)
        args = []
        for key in positional:
            if key not in kwargs:
                break
            args.append(kwargs.pop(key))
        return proxy._callmethod, (name, tuple(args), kwargs), {}

    return call


def _proxy_acquire(proxy, kwargs):
    """acquire {block, timeout}: proxy.acquire(block) or proxy.acquire(block, timeout) when the
    timeout is not null (AcquirerProxy forwards (blocking,) or (blocking, timeout) to the
    referent's acquire, whose parameter is `blocking`, not the protocol's `block`)."""
    block = kwargs.get("block", True)
    timeout = kwargs.get("timeout")
    return proxy.acquire, ((block,) if timeout is None else (block, timeout)), {}


def _proxy_enter(proxy, kwargs):
    # `with proxy:`'s __enter__ half: a blocking acquire, whose value (true) is the call's.
    return proxy._callmethod, ("acquire",), {}


def _proxy_exit(proxy, kwargs):
    # The __exit__ half: a release (null).
    return proxy._callmethod, ("release",), {}


def _proxy_attribute(name):
    """A protocol method that reads the referent's attribute `name` (Barrier.parties, ...)."""

    def call(proxy, kwargs):
        return proxy._callmethod, ("__getattribute__", (name,)), {}

    return Method(call=call)


def _managed_methods(typename):
    """The proxy-side methods of protocol type `typename`: TYPES' names and arguments."""
    lockish = {
        "acquire": Method("block", "timeout", call=_proxy_acquire),
        "release": Method(call=_remote("release")),
        "__enter__": Method(call=_proxy_enter),
        "__exit__": Method(call=_proxy_exit),
    }
    plain = ("is_set", "set", "clear", "abort", "reset", "get_nowait", "qsize", "empty", "full",
             "close", "join_thread", "cancel_join_thread", "task_done", "join", "notify_all",
             "get_value")
    methods = {}
    for method, entry in TYPES[typename].methods.items():
        if typename in ("Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition") \
                and method in lockish:
            methods[method] = lockish[method]
        elif method == "wait_for":
            # Evaluated in the caller, as ConditionProxy.wait_for does (repeated remote waits).
            methods[method] = Method(*entry.params, call=lambda proxy, kwargs: (
                proxy.wait_for, (), kwargs))
        elif typename == "Barrier" and method in ("parties", "n_waiting", "broken"):
            methods[method] = _proxy_attribute(method)
        elif method in ("put", "put_nowait"):
            methods[method] = Method(*entry.params, call=_remote(method, ("obj",)))
        elif method in ("wait", "notify", "get") or method in plain:
            methods[method] = Method(*entry.params, call=_remote(method))
        else:
            raise AssertionError("no proxy method for %s.%s" % (typename, method))
        assert methods[method].params == entry.params, (typename, method)
    return methods


def _managed_condition(manager, kwargs):
    # A given lock (a managed Lock or RLock: a proxy) is sent to the server, which unpickles it
    # as its own referent (CPython's RebuildProxy), so the Condition uses that very lock.
    return manager.Condition(**kwargs)


def _managed_barrier(manager, kwargs):
    if kwargs.get("action") is not None:
        raise AssertionError("a Barrier action in the manager context (refused at setup)")
    return manager.Barrier(**kwargs)


# Protocol type name -> TypeSpec whose create(manager, kwargs) makes the object through the
# context's manager (a proxy), and whose methods carry out the protocol's through the proxy.
MANAGED_TYPES = {
    typename: TypeSpec(create, _managed_methods(typename), params=TYPES[typename].params)
    for typename, create in (
        ("Lock", lambda manager, kw: manager.Lock(**kw)),
        ("RLock", lambda manager, kw: manager.RLock(**kw)),
        ("Semaphore", lambda manager, kw: manager.Semaphore(**kw)),
        ("BoundedSemaphore", lambda manager, kw: manager.BoundedSemaphore(**kw)),
        ("Event", lambda manager, kw: manager.Event(**kw)),
        ("Condition", _managed_condition),
        ("Barrier", _managed_barrier),
        ("Queue", lambda manager, kw: manager.Queue(**kw)),
        ("JoinableQueue", lambda manager, kw: manager.JoinableQueue(**kw)),
    )
}


def _spec_of(typename, obj):
    """The TypeSpec that carries out calls on `obj`, an object of protocol type `typename`:
    MANAGED_TYPES' for a proxy of the manager context, else TYPES'."""
    if typename in MANAGED_TYPES and _is_proxy(obj):
        return MANAGED_TYPES[typename]
    return TYPES[typename]


def _start_context_manager(ctx, tempdir):
    """The manager of a setup's manager context, started in the driver (a fork of it: its
    server puts a default AF_UNIX address in the setup's `tempdir`, and ends when the driver is
    gone)."""
    manager = _manager_class("server")(ctx=ctx)
    manager.start(_manager_server_init, (MP.__name__, tempdir, os.getpid()))
    _record_socket(manager.address)
    return manager


def _stop_context_manager(manager, bound):
    """Shut the context's manager down (bounded: its server is killed by pid when that does not
    finish in time); then its proxies' finalizers no longer call it."""
    _stop_bounded([manager], lambda m: m.shutdown(),
                  lambda m: [getattr(m, "_process", None)], bound, "the context's manager")
    try:
        manager._state.value = _manager_state().SHUTDOWN
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# Type table of --library fasteners: the file locks (spec/filelock), nothing else
# ---------------------------------------------------------------------------------------------


def _fasteners_type(class_name, methods):
    """A fasteners class, constructed on `path` alone.  fasteners opens the file at the first
    acquire, in the actor (protocol section 6: every actor has a handle of its own); the
    driver's object never opens it."""

    def create(ctx, kwargs):
        return getattr(importlib.import_module("fasteners"), class_name)(**kwargs)

    return TypeSpec(create, methods, params=("path",))


def _fasteners_acquire(method):
    """An acquire: the protocol's `block` is fasteners' `blocking`; values pass unchanged (a
    negative timeout is fasteners' ValueError)."""

    def call(obj, kwargs):
        kwargs = dict(kwargs)
        if "block" in kwargs:
            kwargs["blocking"] = kwargs.pop("block")
        return getattr(obj, method), (), kwargs

    return Method("block", "timeout", call=call)


def _enter_returns_true(obj):
    obj.__enter__()  # a blocking acquire; fasteners returns the lock itself (`with l as x`)
    return True


def _fasteners_enter(obj, kwargs):
    # `with lock:` as the protocol's __enter__ half, whose value is True.
    return _enter_returns_true, (obj,), {}


FASTENERS_TYPES = {
    "InterProcessLock": _fasteners_type("InterProcessLock", {
        "acquire": _fasteners_acquire("acquire"),
        "release": Method(),
        "__enter__": Method(call=_fasteners_enter),
        "__exit__": Method(call=_scoped_exit),
    }),
    "InterProcessReaderWriterLock": _fasteners_type("InterProcessReaderWriterLock", {
        "acquire_read_lock": _fasteners_acquire("acquire_read_lock"),
        "acquire_write_lock": _fasteners_acquire("acquire_write_lock"),
        "release_read_lock": Method(),
        "release_write_lock": Method(),
    }),
}


# ---------------------------------------------------------------------------------------------
# References to other objects: {"$ref": name} and {"$call": [name, method]} (protocol section 6)
# ---------------------------------------------------------------------------------------------


class _BoundCall:
    """A resolved ``{"$call": [object, method]}``: calling it runs the protocol method
    ``method`` of ``obj`` (a protocol object of type ``typename``) without arguments, through
    the type table (so ``{"$call": ["B", "broken"]}`` reads the attribute), and returns its
    value.

    Module level and picklable, so that a Barrier action or a Condition predicate works with
    every start method: under spawn and forkserver it is pickled with the Barrier while the
    actor is spawned, and ``obj`` (an Event, a Semaphore, ...) may be pickled then.
    """

    __slots__ = ("typename", "obj", "method")

    def __init__(self, typename, obj, method):
        self.typename = typename
        self.obj = obj
        self.method = method

    def __call__(self):
        obj = _local_instance(self.obj) if _is_local(self.obj) else self.obj
        func, args, kwargs = _spec_of(self.typename, obj).methods[self.method].prepare(
            self.method, obj, {})
        return func(*args, **kwargs)

    def __reduce__(self):
        return _BoundCall, (self.typename, self.obj, self.method)

    def __repr__(self):
        return "<$call %s.%s>" % (self.typename, self.method)


# A reference in call arguments, by object name: ``(_NAMED, name, method)``, method None for
# ``$ref``.  It travels to the actor through the command pipe and is bound there (the objects
# cannot travel through a pipe, their names can).  A plain tuple, not a class: decoded protocol
# values never hold tuples, and a tuple survives any pickler (multiprocess's dill pickles
# classes of ``__main__`` by value, which would defeat an isinstance test in the actor).
_NAMED = "mpspec-named-reference"


def _is_named(value):
    return type(value) is tuple and len(value) == 3 and value[0] == _NAMED


def _bind_named(value, objects):
    _, name, method = value
    typename, obj = objects[name]
    return obj if method is None else _BoundCall(typename, obj, method)


class RefError(Exception):
    """A malformed reference, or one to an unknown object or method."""


def _parse_ref(value):
    """(name, method) of a reference (method None for $ref); None when `value` is not one."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if "$ref" in value:
        name = value["$ref"]
        if not isinstance(name, str):
            raise RefError("$ref must hold an object name (a string)")
        return name, None
    if "$call" in value:
        target = value["$call"]
        if (not isinstance(target, list) or len(target) != 2
                or not all(isinstance(item, str) for item in target)):
            raise RefError("$call must hold [object name, method name]")
        return target[0], target[1]
    return None


def _map_refs(value, convert):
    """`value` with every reference replaced by convert(name, method)."""
    ref = _parse_ref(value)
    if ref is not None:
        return convert(*ref)
    if isinstance(value, dict):
        return {key: _map_refs(item, convert) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_refs(item, convert) for item in value]
    return value


def _check_ref(object_types, name, method):
    """Raise RefError unless `name` is an object of `object_types` with protocol `method`."""
    if name not in object_types:
        raise RefError("reference to unknown object %r" % (name,))
    if method is not None:
        entry = TYPES[object_types[name]].methods.get(method)
        if entry is None:
            raise RefError("$call: type %s has no method %r" % (object_types[name], method))


def _name_refs(kwargs, object_types):
    """Call arguments: references -> named references (checked against the setup's objects)."""

    def convert(name, method):
        _check_ref(object_types, name, method)
        return (_NAMED, name, method)

    return _map_refs(kwargs, convert)


def _bind_refs(value, objects):
    """Named references -> the object / a _BoundCall, with `objects` (name -> (type name,
    object)); the uncarriable marker -> an uncarriable object."""
    if _is_named(value):
        return _bind_named(value, objects)
    if _is_uncarriable(value):
        return _uncarriable()
    if isinstance(value, dict):
        return {key: _bind_refs(item, objects) for key, item in value.items()}
    if isinstance(value, list):
        return [_bind_refs(item, objects) for item in value]
    return value


def _is_inherited_entry(typename, kwargs):
    """Whether a setup entry is an inherited Process or Manager (protocol 3.2,
    setup.inherited): built by the driver at setup, not process-local; actors hold copies."""
    return (typename in ("Process", "Manager")
            and kwargs.get("inherited", False) is not False)


# Types whose every entry is a slot (it takes no args).
_RESULT_SLOT_TYPES = ("AsyncResult", "Iterator", "Proxy")


def _build_object(ctx, name, typename, kwargs, created, manager=None):
    """The object of one setup entry (decoded arguments, references unresolved), built after
    `created` (name -> (type name, object)).  A process-local type gives its recipe (_Local),
    a Connection without args a slot (_Slot); with `manager` (the manager context's), a type of
    MANAGED_TYPES a proxy made through it.  RefError for a bad reference; any other exception
    is the constructor's."""
    spec = TYPES[typename]
    object_types = {other: entry[0] for other, entry in created.items()}
    if spec.local and not _is_inherited_entry(typename, kwargs):
        return _Local(name, typename, _name_refs(kwargs, object_types))
    if typename == "Connection" and not kwargs:
        return _Slot(name)
    if typename == "SharedMemory" and not kwargs:
        return _MemorySlot(name)
    if typename in _RESULT_SLOT_TYPES:
        return _ResultSlot(name, typename)
    kwargs = _bind_uncarriables(_map_refs(kwargs, Driver._constructor_ref(created)))
    if manager is not None and typename in MANAGED_TYPES:
        return MANAGED_TYPES[typename].create(manager, kwargs)
    return spec.create(ctx, kwargs)


# ---------------------------------------------------------------------------------------------
# Values (spec/README.md section 6) and error kinds (section 5)
# ---------------------------------------------------------------------------------------------

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class ValueDomainError(Exception):
    """A value outside the protocol's value domain."""


# {"$uncarriable": null} (protocol section 4, values.uncarriable): decoded to this marker, a
# plain tuple that travels to the actor like a named reference, and bound there (or in the
# driver, for a constructor or prelude argument) to an object that neither pickle nor
# multiprocess's dill can carry: a generator.  So `send` raises (TypeError) before writing
# anything, and a spawn `start` raises while pickling the Process.
_UNCARRIABLE = ("mpspec-uncarriable",)


def _is_uncarriable(value):
    return type(value) is tuple and value == _UNCARRIABLE


def _uncarriable():
    return (item for item in ())


def _bind_uncarriables(value):
    """The uncarriable markers in `value` -> uncarriable objects."""
    if _is_uncarriable(value):
        return _uncarriable()
    if isinstance(value, dict):
        return {key: _bind_uncarriables(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_bind_uncarriables(item) for item in value]
    return value


def decode_value(value):
    """Protocol JSON (already parsed) -> Python value."""
    if isinstance(value, dict):
        if len(value) == 1 and "$uncarriable" in value:
            if value["$uncarriable"] is not None:
                raise ValueDomainError("$uncarriable must hold null")
            return _UNCARRIABLE
        if len(value) == 1 and "$bytes" in value:
            text = value["$bytes"]
            if not isinstance(text, str):
                raise ValueDomainError("$bytes must hold a base64 string")
            try:
                return base64.b64decode(text.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raise ValueDomainError("invalid base64 in $bytes")
        return {key: decode_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueDomainError("integer outside int64: %d" % value)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueDomainError("non-finite float")
        return value
    raise ValueDomainError("unexpected JSON value of type %s" % type(value).__name__)


def encode_value(value):
    """Python value -> protocol JSON; ValueDomainError when outside the domain."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueDomainError("integer outside int64")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueDomainError("non-finite float %r" % value)
        return float(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueDomainError("string with lone surrogates")
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [encode_value(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$bytes" in value:
            raise ValueDomainError("a map whose only key is $bytes")
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueDomainError("map key of type %s" % type(key).__name__)
            result[key] = encode_value(item)
        return result
    raise ValueDomainError("value of type %s" % _type_name(type(value)))


def _type_name(cls):
    module = getattr(cls, "__module__", "builtins")
    name = getattr(cls, "__qualname__", cls.__name__)
    return name if module == "builtins" else "%s.%s" % (module, name)


_ERROR_KINDS = None


def _error_kind_table():
    global _ERROR_KINDS
    if _ERROR_KINDS is None:
        table = {
            ValueError: "ValueError",
            AssertionError: "AssertionError",
            RuntimeError: "RuntimeError",
            TypeError: "TypeError",
            AttributeError: "AttributeError",
            # Every OSError subclass, the builtin TimeoutError included, is kind OSError.
            OSError: "OSError",
            OverflowError: "OverflowError",
            NotImplementedError: "NotImplementedError",
            EOFError: "EOFError",
            IndexError: "IndexError",
            KeyError: "KeyError",
            threading.BrokenBarrierError: "BrokenBarrierError",
            queue.Full: "Full",
            queue.Empty: "Empty",
        }
        # The exceptions of the package under test, and of the standard library's (a fork
        # like multiprocess has its own classes).  In an actor, the package that started it.
        names = {"multiprocessing", MP.__name__} | (set(MODULES) & set(sys.modules))
        for module_name in sorted(names):
            try:
                module = importlib.import_module(module_name)
                managers = importlib.import_module(module_name + ".managers")
            except ImportError:
                continue
            table.update({
                module.ProcessError: "ProcessError",
                module.BufferTooShort: "BufferTooShort",
                module.AuthenticationError: "AuthenticationError",
                module.TimeoutError: "TimeoutError",
                managers.RemoteError: "RemoteError",
            })
        _ERROR_KINDS = table
    return _ERROR_KINDS


def error_kind(exc):
    """The spec's error kind of an exception: the most specific class it is an instance of."""
    table = _error_kind_table()
    for cls in type(exc).__mro__:
        kind = table.get(cls)
        if kind is not None:
            return kind
    return "Other"


def error_payload(exc):
    kind = error_kind(exc)
    text = str(exc)
    if kind == "Other":
        name = _type_name(type(exc))
        message = "%s: %s" % (name, text) if text else name
    else:
        message = text or _type_name(type(exc))
    payload = {"kind": kind, "message": message}
    # Error values (protocol section 6): BufferTooShort carries the whole message.
    if kind == "BufferTooShort" and exc.args and isinstance(exc.args[0], (bytes, bytearray)):
        payload["value"] = encode_value(bytes(exc.args[0]))
    # An OSError's errno, by its symbolic name (protocol section 5, event.errors).
    if kind == "OSError" and getattr(exc, "errno", None) in errno.errorcode:
        payload["errno"] = errno.errorcode[exc.errno]
    return payload


def _call_local(entry, method, local, kwargs):
    target = _local_instance(local)  # the first call builds it: its error is this call's
    func, args, kw = entry.prepare(method, target, kwargs)
    return func(*args, **kw)


def invoke(spec, method, obj, kwargs):
    """Run one call.  Returns (invoke_ns, return_ns, value, exception).  On a process-local
    object the construction (at the first call) is inside the timed region."""
    try:
        entry = spec.methods[method]
        if _is_local(obj):
            func, args, kw = _call_local, (entry, method, obj, kwargs), {}
        else:
            func, args, kw = entry.prepare(method, obj, kwargs)
    except BaseException as exc:  # a bad table entry, an unbound slot: one outcome, no crash
        now = time.monotonic_ns()
        return now, now, None, exc
    invoke_ns = time.monotonic_ns()
    try:
        value = func(*args, **kw)
    except BaseException as exc:
        return_ns = time.monotonic_ns()
        return invoke_ns, return_ns, None, exc
    return_ns = time.monotonic_ns()
    return invoke_ns, return_ns, value, None


def outcome_event(tag, invoke_ns, return_ns, value, exc):
    """The `return` event of a finished call (status ok or error)."""
    event = {"event": "return", "tag": tag}
    if exc is None:
        try:
            event["status"] = "ok"
            event["value"] = encode_value(value)
        except (ValueDomainError, RecursionError) as bad:
            event["status"] = "error"
            event["error"] = {
                "kind": "Other",
                "message": "%s: result outside the value domain (%s)"
                % (_type_name(type(value)), bad),
            }
    else:
        event["status"] = "error"
        event["error"] = error_payload(exc)
    event["invoke_ns"] = invoke_ns
    event["return_ns"] = return_ns
    return event


# ---------------------------------------------------------------------------------------------
# Actor side
# ---------------------------------------------------------------------------------------------

# Driver-side resources (the protocol output stream, the driver's ends of every actor's pipes).
# A forked actor inherits them; it closes them first thing, so that it holds nothing of the
# driver's (in particular not the write end of its own command pipe, whose end of file tells
# it that the driver is gone).  Spawned and forkserver actors start from a fresh interpreter in
# which this list is empty.
_INHERITED = []


def _close_inherited():
    for item in _INHERITED:
        try:
            item.close()
        except Exception:
            pass
    del _INHERITED[:]


def _actor_exit(status):
    """End the actor, and with it every process it started that is still alive (its own
    process group, see _actor_main): the driver is gone, nothing may stay behind, not even
    the setup's temporary directory (the driver removes it at teardown, when it can)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if _ACTOR_TEMPDIR[0] is not None:
        shutil.rmtree(_ACTOR_TEMPDIR[0], ignore_errors=True)
    if _ACTOR_GROUP[0] and os.getpgrp() == os.getpid():
        try:
            os.killpg(os.getpid(), signal.SIGKILL)
        except OSError:
            pass
    os._exit(status)


# True in an actor that leads its own process group.
_ACTOR_GROUP = [False]
# The setup's temporary directory, in an actor.
_ACTOR_TEMPDIR = [None]


def _actor_main(name, nthreads, objects, commands, results, library="multiprocessing",
                extra=None):
    """Entry point of an actor process.

    ``objects`` maps object names to ``(type name, object)``; ``commands`` is the read end of
    the command pipe (``(thread, tag, object, method, kwargs)`` tuples), ``results`` the write
    end of the result pipe (``("ready", pid, pgid)``, then one event dict per finished call).
    ``library`` is the driver's --library (a spawned actor starts with the default table).
    ``extra`` (a dict): ``module`` (the driver's --module), ``start_method`` (the setup's, for
    the actor's Processes), ``owners`` (object name -> owner actor: the actor closes the
    Connections it does not own, protocol 3.2) and ``tempdir`` (the setup's private temporary
    directory, where CPython puts its own, e.g. for AF_UNIX Listener sockets; the driver
    removes it at teardown).
    """
    global _ACTOR_STATE
    extra = extra or {}
    module = extra.get("module", MP.__name__)
    if module != MP.__name__:
        select_module(module)  # a spawned actor starts with the default package
    if library != LIBRARY:
        select_library(library)
    for signame in ("SIGINT", "SIGTERM", "SIGHUP"):
        signum = getattr(signal, signame, None)
        if signum is not None:
            try:
                signal.signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    _close_inherited()
    sys.stdout = sys.stderr  # fd 1 is already stderr (the driver redirected it)
    # Its own process group, so that the driver can end the actor together with the processes
    # it starts (Process objects, their children) at teardown, and the actor can end them when
    # the driver is gone.
    try:
        os.setpgid(0, 0)
        _ACTOR_GROUP[0] = True
    except OSError as exc:
        _log("actor %r cannot lead a process group: %s" % (name, exc))
    # The pipes to the driver are the driver's business: a Process forked from here closes them.
    _INHERITED.extend((commands, results))
    for objname, owner in sorted(extra.get("owners", {}).items()):
        typename, obj = objects[objname]
        if owner != name and typename == "Connection" and not _is_slot(obj):
            obj.close()
    tempdir = extra.get("tempdir")
    if tempdir is not None:
        tempfile.tempdir = tempdir
        _ACTOR_TEMPDIR[0] = tempdir
        try:
            MP.current_process()._config.pop("tempdir", None)  # one inherited from the driver
        except AttributeError:
            pass
    ctx = MP.get_context(extra.get("start_method"))
    _ACTOR_STATE = {"objects": objects, "ctx": ctx}

    send_lock = threading.Lock()

    def send(message):
        with send_lock:
            results.send(message)

    inboxes = []
    for index in range(nthreads):
        inbox = queue.Queue()
        worker = threading.Thread(
            target=_actor_worker,
            args=(inbox, objects, send),
            name="%s/%d" % (name, index),
            daemon=True,
        )
        worker.start()
        inboxes.append(inbox)
    send(("ready", os.getpid(), os.getpgrp()))

    while True:
        try:
            command = commands.recv()
        except (EOFError, OSError):
            break  # the driver is gone or closed the pipe
        if command == (_STOP_POOLS,):
            # Teardown is coming: end this actor's pools and the managers it started first
            # (bounded), then say so.
            _stop_pools(POOL_STOP_TIMEOUT)
            _stop_managers(MANAGER_STOP_TIMEOUT)
            try:
                send((_STOP_POOLS, "done"))
            except Exception:
                _actor_exit(3)
            continue
        thread, tag, objname, method, kwargs = command
        inboxes[thread].put((tag, objname, method, kwargs))
    _actor_exit(0)


def _independent_actor_main(name, nthreads, spec, commands, results, library, extra=None):
    """Entry point of an independent actor (protocol 3.2, setup.independent): a spawned
    interpreter that shares no object with the driver.  ``spec`` is ``(module, entries)``: the
    driver's --module and the setup's object entries ``(name, type name, kwargs)``, which it
    builds itself, in order, references resolved among its own objects (no prelude); then it
    runs as ``_actor_main``.  Its objects are never shared, so they come from the fork context
    (a SemLock's name is unlinked at once: nothing for a resource tracker)."""
    module, entries = spec
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # not even the driver's stdin
    os.close(devnull)
    select_module(module)
    select_library(library)
    _forget_resource_tracker()
    ctx = MP.get_context("fork" if "fork" in MP.get_all_start_methods() else None)
    objects = {}
    for objname, typename, kwargs in entries:
        objects[objname] = (typename, _build_object(ctx, objname, typename, kwargs, objects))
    _actor_main(name, nthreads, objects, commands, results, library, extra)


def _actor_worker(inbox, objects, send):
    while True:
        tag, objname, method, kwargs = inbox.get()
        try:
            typename, obj = objects[objname]
            spec = _spec_of(typename, obj)
            kwargs = _bind_refs(kwargs, objects)
        except KeyError as exc:
            now = time.monotonic_ns()
            event = outcome_event(tag, now, now, None, exc)
        else:
            event = outcome_event(tag, *invoke(spec, method, obj, kwargs))
        try:
            send(event)
        except Exception:
            _actor_exit(3)  # the result pipe is broken: the driver is gone


# ---------------------------------------------------------------------------------------------
# The task catalogue (spec/process/process.md section 1): what a Process runs in the child
# ---------------------------------------------------------------------------------------------

# The start method of the Process running the task (start_child's grandchild uses it too).
_TASK_START_METHOD = [None]


def _task_send(conn, value):
    if conn is not None:
        conn.send(value)


def task_identity(value=None, conn=None):
    _task_send(conn, value)


def task_exit(code=0, conn=None):
    sys.exit(code)


def _exception_class(kind):
    """The exception class of an error kind (spec/README.md section 5); Exception otherwise."""
    builtin = {
        "ValueError": ValueError, "TypeError": TypeError, "AssertionError": AssertionError,
        "RuntimeError": RuntimeError, "AttributeError": AttributeError, "OSError": OSError,
        "OverflowError": OverflowError, "NotImplementedError": NotImplementedError,
        "EOFError": EOFError, "IndexError": IndexError, "KeyError": KeyError,
        "BrokenBarrierError": threading.BrokenBarrierError,
        "Full": queue.Full, "Empty": queue.Empty,
    }
    if kind in builtin:
        return builtin[kind]
    if kind in ("ProcessError", "BufferTooShort", "AuthenticationError", "TimeoutError"):
        return getattr(MP, kind)
    if kind == "RemoteError":
        return importlib.import_module(MP.__name__ + ".managers").RemoteError
    return Exception


def task_raise(kind="ValueError", message="", conn=None):
    raise _exception_class(kind)(message)


def task_sleep(seconds, conn=None):
    _task_send(conn, "sleeping")
    try:
        time.sleep(seconds)
    finally:
        _task_send(conn, "done")


def task_crash(signal=9, conn=None):
    os.kill(os.getpid(), signal)
    # A signal whose default action ends the process has ended it by now (a signal sent to
    # oneself is delivered before kill returns); wait a little in case it is late.
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        time.sleep(0.01)
    raise RuntimeError("signal %r did not end the process" % (signal,))


def task_pid(conn):
    conn.send(os.getpid())


def task_describe(conn):
    process = MP.current_process()
    parent = MP.parent_process()
    conn.send({
        "name": process.name,
        "pid": process.pid,
        "daemon": process.daemon,
        "authkey": bytes(process.authkey),
        "parent": None if parent is None else {"name": parent.name, "pid": parent.pid},
    })


def task_watch_parent(timeout=None, conn=None):
    parent = MP.parent_process()
    _task_send(conn, parent.is_alive())
    parent.join(timeout)
    _task_send(conn, parent.is_alive())


def task_start_child(task, args=None, daemon=None, join=True, conn=None):
    if args is None:
        args = {}
    ctx = MP.get_context(_TASK_START_METHOD[0])
    child = ctx.Process(target=_run_task, args=(MP.__name__, ctx.get_start_method(), task, args),
                        daemon=daemon)
    child.start()
    _task_send(conn, {"name": child.name, "pid": child.pid})
    if join:
        child.join()


def task_queue_put(queue, values, exit="return", conn=None):
    """spec/process/process.md, process.task.queue_put: a producer that ends."""
    if exit not in ("return", "hard", "cancel"):
        raise ValueError("exit must be 'return', 'hard' or 'cancel', not %r" % (exit,))
    for value in values:
        queue.put(value)
        _task_send(conn, queue.empty())
    if exit == "hard":
        os._exit(0)
    if exit == "cancel" and hasattr(queue, "cancel_join_thread"):
        queue.cancel_join_thread()


_TASKS = {
    "identity": task_identity,
    "exit": task_exit,
    "raise": task_raise,
    "sleep": task_sleep,
    "crash": task_crash,
    "pid": task_pid,
    "describe": task_describe,
    "start_child": task_start_child,
    "watch_parent": task_watch_parent,
    "queue_put": task_queue_put,
}


def _run_task(module, start_method, task, args):
    """The target of every Process of the driver (module level: spawn carries it by name).
    ``module`` is the package under test (a spawned child starts with the default one)."""
    _close_inherited()  # forked from an actor: the actor's pipes to the driver
    if module != MP.__name__:
        select_module(module)
    _TASK_START_METHOD[0] = start_method
    _TASKS[task](**args)


# ---------------------------------------------------------------------------------------------
# Driver side
# ---------------------------------------------------------------------------------------------


class RequestError(Exception):
    def __init__(self, kind, message):
        Exception.__init__(self, message)
        self.kind = kind
        self.message = message


def _protocol_error(message):
    return RequestError("ProtocolError", message)


def _unsupported(message):
    return RequestError("Unsupported", message)


def _setup_error(message):
    return RequestError("SetupError", message)


class PreludeTimeout(Exception):
    """A prelude call that did not complete in time (protocol 3.2: it must not block)."""


class _PreludeRunner:
    """Runs a setup's prelude calls in the driver, in order, on one helper thread.

    One thread for the whole prelude, so that ownership carries from call to call as if the
    driver ran them itself (an RLock or a Condition acquired by one prelude call and notified
    or released by a later one).  Each call is awaited with a bound, so that a prelude that
    blocks (which the suite must not send: a Barrier.wait, an acquire of a held lock) costs a
    SetupError instead of the driver's main loop.  A wedged thread stays blocked until the
    driver exits (a daemon thread).
    """

    def __init__(self):
        self.requests = queue.Queue()
        self.outcomes = queue.Queue()
        self.wedged = False
        self.thread = threading.Thread(target=self._serve, name="mpspec-prelude", daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            job = self.requests.get()
            if job is None:
                return
            self.outcomes.put(invoke(*job))

    def run(self, spec, method, obj, kwargs):
        """(the value the call returned, None) or (None, the exception it raised)."""
        self.requests.put((spec, method, obj, kwargs))
        try:
            return self.outcomes.get(timeout=PRELUDE_TIMEOUT)[2:]
        except queue.Empty:
            self.wedged = True
            return None, PreludeTimeout("the call did not complete within %.0f s (prelude "
                                        "calls must not block)" % PRELUDE_TIMEOUT)

    def stop(self):
        """Ends the thread, and waits for it unless it is wedged (the actors are forked after
        this: better with one thread only)."""
        self.requests.put(None)
        if not self.wedged:
            self.thread.join()


def _await_exit(process, timeout):
    """Wait up to `timeout` s for a child to end, and reap it (True when it has).  Not
    process.join(timeout): that waits for the sentinel, which a process forked by the child
    keeps open after the child's death; is_alive() asks waitpid (WNOHANG) instead."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while process.is_alive():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        MP.connection.wait([process.sentinel], min(delay, remaining))
        delay = min(delay * 2, 0.05)
    return True


class _Stop(BaseException):
    """Raised by the signal handler: tear down and exit."""


class Actor:
    def __init__(self, name, threads, process, commands, results):
        self.name = name
        self.threads = threads
        self.process = process
        self.commands = commands  # driver's write end
        self.results = results  # driver's read end
        self.pid = None
        self.alive = True  # False once killed, crashed or torn down
        self.results_eof = False
        self.running = {}  # thread -> tag of the call it runs
        self.thread_of = {}  # tag -> thread
        self.exitcode = None
        self.pgid = None  # set when the actor leads its own process group (its pid)


class Session:
    def __init__(self, ctx, start_method):
        self.ctx = ctx
        self.start_method = start_method
        self.objects = {}  # name -> (type name, object)
        self.actors = {}  # name -> Actor, in setup order
        self.tags = set()
        self.slots = set()  # names of the slots (Connection, SharedMemory, AsyncResult, ...)
        self.owners = {}  # object name -> owner actor name (protocol 3.2, setup.owner)
        self.tempdir = None  # the actors' temporary directory, removed at teardown
        self.manager = None  # the manager of setup context "manager", started by the driver
        self.prelude_runner = None  # with a manager: the prelude's thread, kept until teardown


def _int_field(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


# Signals whose default action does not end a process: `kill` refuses them.
_NON_TERMINATING = frozenset(
    getattr(signal, name)
    for name in ("SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH", "SIGSTOP", "SIGTSTP", "SIGTTIN",
                 "SIGTTOU")
    if hasattr(signal, name)
)


class Driver:
    def __init__(self, default_start_method, out, stdin_fd=0):
        self.default_start_method = default_start_method
        self.out = out
        self.stdin_fd = stdin_fd
        self.pid = os.getpid()
        self.greeted = False
        self.session = None
        self.exiting = False
        self.out_broken = False
        self.stop_signum = None
        self._shield = 0
        self._stopping = False
        self.ops = {
            "hello": self.op_hello,
            "setup": self.op_setup,
            "call": self.op_call,
            "kill": self.op_kill,
            "teardown": self.op_teardown,
            "bye": self.op_bye,
        }

    # -- output ---------------------------------------------------------------------------

    def emit(self, message):
        if self.out_broken:
            return
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self._shield += 1
        try:
            self.out.write(data + b"\n")
            self.out.flush()
        except (OSError, ValueError) as exc:
            self.out_broken = True
            _log("cannot write to stdout (%s): shutting down" % exc)
        finally:
            self._shield -= 1

    def reply_ok(self, rid, result):
        self.emit({"id": rid, "ok": True, "result": result})

    def reply_error(self, rid, kind, message):
        self.emit({"id": rid, "ok": False, "error": {"kind": kind, "message": message}})

    # -- signals --------------------------------------------------------------------------

    def on_signal(self, signum, frame):
        if os.getpid() != self.pid:
            # A freshly forked child that has not reset its handlers yet: act as the default.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.stop_signum is None:
            self.stop_signum = signum
            if self._shield == 0:
                raise _Stop()
        elif not self._stopping:
            raise _Stop()  # a second signal interrupts even a blocked write

    def _check_stop(self):
        if self.stop_signum is not None or self.out_broken:
            raise _Stop()

    # -- main loop ------------------------------------------------------------------------

    def serve(self):
        """Serve until bye, end of input or a signal; tear down; return the exit status."""
        failed = False
        try:
            self._loop()
        except _Stop:
            pass
        except Exception:
            failed = True
            _log("internal error, shutting down:\n%s" % traceback.format_exc())
        finally:
            self._stopping = True  # from here on, signals only set the flag
            self._shield += 1
        if self.stop_signum is not None:
            _log("received signal %d: tearing down" % self.stop_signum)
            status = 128 + self.stop_signum
            # Best effort from here on: the suite may have stopped reading, and a full stdout
            # pipe must not keep the driver from reaping its actors.
            try:
                os.set_blocking(self.out.fileno(), False)
            except (OSError, ValueError):
                pass
        else:
            status = 1 if (failed or self.out_broken) else 0
        self.shutdown()
        return status

    def _loop(self):
        pending = bytearray()
        while True:
            self._check_stop()
            waitables = [self.stdin_fd]
            # An actor's sentinel fires when it dies, unless a process it forked holds a copy
            # of the sentinel pipe's write end (every forked child does, and outlives a killed
            # actor).  End of file on its result pipe tells then: it is dying, poll it.
            poll = None
            for actor in self._live_actors():
                if not actor.results_eof:
                    waitables.append(actor.results)
                else:
                    poll = DEATH_POLL
                waitables.append(actor.process.sentinel)
            ready = MP.connection.wait(waitables, poll)

            # Results first, then deaths (a dead actor's last results precede its info events).
            for actor in self._live_actors():
                if not actor.results_eof and actor.results in ready:
                    self._drain(actor)
            for actor in self._live_actors():
                if actor.process.sentinel in ready:
                    self._on_death(actor)
                elif actor.results_eof and not actor.process.is_alive():
                    self._on_death(actor)

            if self.stdin_fd in ready:
                try:
                    chunk = os.read(self.stdin_fd, 1 << 16)
                except OSError as exc:
                    _log("cannot read stdin (%s): treating it as end of input" % exc)
                    chunk = b""
                if not chunk:
                    if pending.strip():
                        self.handle_line(bytes(pending))
                    _log("end of input: tearing down")
                    return
                pending += chunk
                while True:
                    newline = pending.find(b"\n")
                    if newline < 0:
                        break
                    line = bytes(pending[:newline])
                    del pending[: newline + 1]
                    self.handle_line(line)
                    if self.exiting:
                        return
                    self._check_stop()

    def _live_actors(self):
        if self.session is None:
            return []
        return [a for a in self.session.actors.values() if a.alive]

    def handle_line(self, line):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.reply_error(None, "ProtocolError", "request is not valid UTF-8")
            return
        try:
            request = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            self.reply_error(None, "ProtocolError", "request is not JSON: %s" % exc)
            return
        if not isinstance(request, dict):
            self.reply_error(None, "ProtocolError", "request is not a JSON object")
            return
        if "id" not in request:
            self.reply_error(None, "ProtocolError", "request has no id")
            return
        rid = request["id"]
        if not _int_field(rid):
            self.reply_error(None, "ProtocolError", "request id must be an integer")
            return
        op = request.get("op")
        if not isinstance(op, str):
            self.reply_error(rid, "ProtocolError", "request has no op (a string)")
            return
        handler = self.ops.get(op)
        if handler is None:
            self.reply_error(rid, "ProtocolError", "unknown op %r" % op)
            return
        if not self.greeted and op != "hello":
            self.reply_error(rid, "ProtocolError", "the first request must be hello")
            return
        try:
            result = handler(request)
        except RequestError as exc:
            self.reply_error(rid, exc.kind, exc.message)
            return
        except Exception as exc:
            _log("internal error in %s:\n%s" % (op, traceback.format_exc()))
            kind = "SetupError" if op == "setup" else "ProtocolError"
            self.reply_error(rid, kind, "driver internal error: %s: %s"
                             % (_type_name(type(exc)), exc))
            return
        self.reply_ok(rid, result)

    # -- hello ----------------------------------------------------------------------------

    def op_hello(self, request):
        version = request.get("protocol")
        if not _int_field(version) or version != PROTOCOL_VERSION:
            raise _protocol_error("this driver speaks protocol %d, not %r"
                                  % (PROTOCOL_VERSION, version))
        self.greeted = True
        _withdraw_unusable_types()
        return {
            "protocol": PROTOCOL_VERSION,
            "name": backend_name(),
            "version": package_version(),
            "types": {name: list(spec.methods) for name, spec in TYPES.items()},
            "features": list(FEATURES),
            "start_methods": list(MP.get_all_start_methods()),
            "contexts": list(CONTEXTS) if LIBRARY == "multiprocessing" else [],
        }

    # -- setup ----------------------------------------------------------------------------

    @staticmethod
    def _list_field(request, key):
        value = request.get(key, [])
        if not isinstance(value, list):
            raise _protocol_error("%s must be a list" % key)
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise _protocol_error("%s[%d] must be an object" % (key, index))
        return value

    @staticmethod
    def _args_field(item, where):
        args = item.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise _protocol_error("%s: args must be an object" % where)
        try:
            return {key: decode_value(value) for key, value in args.items()}
        except ValueDomainError as exc:
            raise _protocol_error("%s: bad argument value: %s" % (where, exc))

    @staticmethod
    def _method_args(spec, typename, method, kwargs, where, object_types, slots=()):
        entry = spec.methods.get(method)
        if entry is None:
            raise _unsupported("%s: type %s has no method %r" % (where, typename, method))
        unknown = sorted(set(kwargs) - entry.params)
        if unknown:
            raise _unsupported("%s: %s.%s takes no argument %s"
                               % (where, typename, method, ", ".join(map(repr, unknown))))
        if entry.as_optional and kwargs.get("as") is None:
            kwargs = {key: value for key, value in kwargs.items() if key != "as"}
        elif "as" in entry.params:
            # The Connection slot the call binds (Listener.accept, Module.client): required,
            # and sent to the actor as a reference to the slot.
            slot = kwargs.get("as")
            if not isinstance(slot, str) or slot not in slots:
                raise _protocol_error("%s: %s.%s needs `as`, the name of a Connection slot (a "
                                      "Connection without args), not %r"
                                      % (where, typename, method, slot))
            if entry.slot is not None and object_types.get(slot) != entry.slot:
                raise _protocol_error("%s: %s.%s needs `as`, the name of an %s slot, not %r"
                                      % (where, typename, method, entry.slot, slot))
            kwargs = dict(kwargs, **{"as": {"$ref": slot}})
        if entry.convert is not None:
            try:
                kwargs = entry.convert(dict(kwargs))
            except Exception as exc:
                raise _protocol_error("%s: bad arguments for %s.%s: %s"
                                      % (where, typename, method, exc))
        try:
            return _name_refs(kwargs, object_types)
        except RefError as exc:
            raise _protocol_error("%s: %s" % (where, exc))

    def op_setup(self, request):
        if self.session is not None:
            raise _protocol_error("a setup is already active (teardown first)")
        start_method = request.get("start_method")
        if start_method is None:
            start_method = self.default_start_method
        if not isinstance(start_method, str):
            raise _protocol_error("start_method must be a string")
        if start_method not in MP.get_all_start_methods():
            raise _unsupported("start method %r is not offered on this platform" % start_method)
        context = request.get("context")
        if context is not None:
            if not isinstance(context, str):
                raise _protocol_error("context must be a string or null")
            if context not in CONTEXTS or LIBRARY != "multiprocessing":
                raise _unsupported("setup context %r is not offered by %s"
                                   % (context, backend_name()))
            if start_method != "fork":
                # The driver's proxies reach the actors by fork only.
                raise _unsupported("setup context %r needs the fork start method, not %r"
                                   % (context, start_method))

        # Validate everything before creating anything.
        objects = []
        owners = {}
        for index, item in enumerate(self._list_field(request, "objects")):
            where = "objects[%d]" % index
            name, typename = item.get("name"), item.get("type")
            if not isinstance(name, str) or not name:
                raise _protocol_error("%s: name must be a non-empty string" % where)
            if any(name == other for other, _, _ in objects):
                raise _protocol_error("duplicate object name %r" % name)
            if not isinstance(typename, str):
                raise _protocol_error("%s: type must be a string" % where)
            spec = TYPES.get(typename)
            if spec is None:
                raise _unsupported("unknown type %r" % typename)
            kwargs = self._args_field(item, where)
            unknown = sorted(set(kwargs) - spec.params)
            if unknown:
                raise _setup_error("%s: %s() takes no argument %s"
                                   % (where, typename, ", ".join(map(repr, unknown))))
            if (typename == "Process" and isinstance(kwargs.get("task"), str)
                    and kwargs["task"] not in _TASKS):
                raise _unsupported("%s: no task %r in this driver's catalogue"
                                   % (where, kwargs["task"]))
            if "owner" in item and not isinstance(item["owner"], str):
                raise _protocol_error("%s: owner must be an actor name (a string)" % where)
            if (context == "manager" and typename == "Barrier"
                    and kwargs.get("action") is not None):
                raise _unsupported("%s: a Barrier action cannot run in the manager's server "
                                   "(setup context 'manager')" % where)
            objects.append((name, typename, kwargs))
            if "owner" in item:
                owners[name] = item["owner"]
        object_types = {name: typename for name, typename, _ in objects}
        slots = {name for name, typename, kwargs in objects
                 if (typename in ("Connection", "SharedMemory") and not kwargs)
                 or typename in _RESULT_SLOT_TYPES}
        inherited = {name for name, typename, kwargs in objects
                     if _is_inherited_entry(typename, kwargs)}
        for name in sorted(inherited):
            if object_types[name] == "Manager" and start_method != "fork":
                # Its prelude-made proxies reach the actors by fork only.
                raise _unsupported("object %r: an inherited Manager needs the fork start "
                                   "method, not %r" % (name, start_method))

        prelude = []
        for index, item in enumerate(self._list_field(request, "prelude")):
            where = "prelude[%d]" % index
            objname, method = item.get("object"), item.get("method")
            if objname not in object_types:
                raise _protocol_error("%s: unknown object %r" % (where, objname))
            if not isinstance(method, str):
                raise _protocol_error("%s: method must be a string" % where)
            typename = object_types[objname]
            if TYPES[typename].local and objname not in inherited:
                raise _protocol_error("%s: %s %r lives in the actors only (protocol section 6), "
                                      "not in the prelude" % (where, typename, objname))
            if objname in inherited and method == "start" and start_method != "fork":
                # A started Process holds its Popen (a weakref finalizer among it), which
                # cannot be pickled into a spawned or forkserver actor.
                raise _unsupported("%s: under %s, actors cannot be given a copy of a Process "
                                   "the parent started" % (where, start_method))
            if (typename == "Module" and method == "manager_create"
                    and start_method != "fork"):
                raise _unsupported("%s: under %s, a proxy the prelude makes does not reach "
                                   "the actors" % (where, start_method))
            kwargs = self._method_args(TYPES[typename], typename, method,
                                       self._args_field(item, where), where, object_types,
                                       slots)
            prelude.append((objname, method, kwargs))

        actors = []
        for index, item in enumerate(self._list_field(request, "actors")):
            where = "actors[%d]" % index
            name, threads = item.get("name"), item.get("threads", 1)
            if not isinstance(name, str) or not name:
                raise _protocol_error("%s: name must be a non-empty string" % where)
            if any(name == other for other, _, _ in actors):
                raise _protocol_error("duplicate actor name %r" % name)
            if not _int_field(threads) or not 1 <= threads <= MAX_THREADS:
                raise _protocol_error("%s: threads must be an integer in 1..%d"
                                      % (where, MAX_THREADS))
            independent = item.get("independent", False)
            if not isinstance(independent, bool):
                raise _protocol_error("%s: independent must be a bool" % where)
            if independent and context is not None:
                raise _unsupported("%s: independent actors in setup context %r"
                                   % (where, context))
            actors.append((name, threads, objects if independent else None))
        actor_names = {name for name, _, _ in actors}
        for objname, owner in sorted(owners.items()):
            if owner not in actor_names:
                raise _protocol_error("object %r: owner %r is not an actor of this setup"
                                      % (objname, owner))

        # Build.  On any failure, tear the partial setup down and reply SetupError.
        ctx = MP.get_context(start_method)
        if start_method != "fork" or "SharedMemory" in object_types.values():
            # Also before the actors of a setup with SharedMemory: they then share the
            # driver's tracker, as children of a process that made a segment do.
            self._start_resource_tracker(start_method)
        session = Session(ctx, start_method)
        session.slots = slots
        session.owners = owners
        self.session = session
        try:
            session.tempdir = tempfile.mkdtemp(prefix="mpspec-driver-")
            _SEGMENTS_DIR[0] = session.tempdir
            if context == "manager":
                try:
                    session.manager = _start_context_manager(ctx, session.tempdir)
                except Exception as exc:
                    raise _setup_error("cannot start the manager of setup context 'manager': "
                                       "%s: %s" % (error_kind(exc), exc))
            for name, typename, kwargs in objects:
                try:
                    obj = _build_object(ctx, name, typename, kwargs, session.objects,
                                        session.manager)
                except RefError as exc:
                    raise _setup_error("cannot create %s %r: %s" % (typename, name, exc))
                except Exception as exc:
                    raise _setup_error("cannot create %s %r: %s: %s"
                                       % (typename, name, error_kind(exc), exc))
                session.objects[name] = (typename, obj)
            runner = _PreludeRunner() if prelude else None
            prelude_values = []  # protocol 3.2, setup.prelude.results
            try:
                for index, (objname, method, kwargs) in enumerate(prelude):
                    typename, obj = session.objects[objname]
                    value, exc = runner.run(_spec_of(typename, obj), method, obj,
                                            _bind_refs(kwargs, session.objects))
                    if exc is not None:
                        raise _setup_error("prelude[%d] %s.%s raised %s: %s"
                                           % (index, objname, method, error_kind(exc), exc))
                    try:
                        prelude_values.append(encode_value(value))
                    except (ValueDomainError, RecursionError) as bad:
                        raise _setup_error("prelude[%d] %s.%s returned a %s, outside the value "
                                           "domain (%s)" % (index, objname, method,
                                                            _type_name(type(value)), bad))
            finally:
                if runner is not None and session.manager is not None:
                    # The manager context: the prelude thread lives on until teardown, and with
                    # it its connections to the manager, as a parent's own thread would; else
                    # the server thread that served it would end, and a new one (an actor's)
                    # could get its thread id, and with it an RLock the prelude acquired.
                    session.prelude_runner = runner
                elif runner is not None:
                    runner.stop()
                del runner
            for name, threads, entries in actors:
                self._start_actor(session, name, threads, entries)
            self._await_ready(session)
            # Every actor has its copy (inherited, or duplicated into it while spawning): the
            # parent gives up its own copy of each owned object (protocol 3.2, setup.owner).
            for objname in sorted(owners):
                typename, obj = session.objects[objname]
                if typename == "Connection" and not _is_slot(obj):
                    obj.close()
        except BaseException:
            self._teardown("teardown", announce=False)
            raise
        return {"actors": {a.name: {"pid": a.pid} for a in session.actors.values()},
                "prelude": prelude_values}

    @staticmethod
    def _start_resource_tracker(start_method):
        """Objects of a spawn or forkserver context keep named semaphores that the resource
        tracker unlinks if the driver dies.  Start it before creating any: if it cannot start,
        SemLock's constructor would fail after creating its semaphore and before registering
        its finalizer, leaking the name in /dev/shm (multiprocess 0.70.12 on Python 3.11)."""
        try:
            tracker = importlib.import_module(MP.__name__ + ".resource_tracker")
            tracker.ensure_running()
        except Exception as exc:
            raise _setup_error("start method %r cannot be used: the resource tracker of %s "
                               "does not start: %s: %s"
                               % (start_method, MP.__name__, error_kind(exc), exc))

    @staticmethod
    def _constructor_ref(created):
        """References in constructor arguments name objects created before (protocol 6)."""

        def convert(name, method):
            _check_ref({n: entry[0] for n, entry in created.items()}, name, method)
            typename, obj = created[name]
            return obj if method is None else _BoundCall(typename, obj, method)

        return convert

    def _start_actor(self, session, name, threads, entries=None):
        # Every object goes to every actor, as a Process argument (inheritance); except to an
        # independent one (`entries`: the setup's object entries), a fresh interpreter started
        # by the standard library's spawn (whatever --module: its process machinery is not
        # under test) that builds its own objects from the entries.
        if entries is None:
            ctx, target, objects = session.ctx, _actor_main, dict(session.objects)
        else:
            ctx = multiprocessing.get_context("spawn")
            target, objects = _independent_actor_main, (MP.__name__, entries)
        extra = {"module": MP.__name__, "start_method": session.start_method,
                 "owners": dict(session.owners), "tempdir": session.tempdir}
        command_r, command_w = ctx.Pipe(duplex=False)
        result_r, result_w = ctx.Pipe(duplex=False)
        # Not daemonic: an actor may start Processes of its own, which a daemonic process may
        # not (spec/process/process.md, "Protocol").  Teardown kills and reaps it either way.
        process = ctx.Process(
            target=target,
            name="mpspec-actor-%s" % name,
            args=(name, threads, objects, command_r, result_w, LIBRARY, extra),
            daemon=False,
        )
        actor = Actor(name, threads, process, command_w, result_r)
        session.actors[name] = actor
        _INHERITED.extend((command_w, result_r))
        try:
            process.start()
        except Exception as exc:
            actor.alive = False
            self._close_actor(actor)
            raise _setup_error("cannot start actor %r (%s): %s: %s"
                               % (name, session.start_method, error_kind(exc), exc))
        finally:
            command_r.close()
            result_w.close()
        actor.pid = process.pid

    def _await_ready(self, session):
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = {}
        for actor in session.actors.values():
            waiting[actor.results] = actor
            waiting[actor.process.sentinel] = actor
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = sorted({a.name for a in waiting.values()})
                raise _setup_error("actors %s not ready after %.0f s"
                                   % (", ".join(names), READY_TIMEOUT))
            for handle in MP.connection.wait(list(waiting), remaining):
                actor = waiting.get(handle)
                if actor is None:
                    continue
                message = None
                if handle is actor.results:
                    try:
                        message = actor.results.recv()
                    except (EOFError, OSError):
                        message = None
                if isinstance(message, tuple) and message[:1] == ("ready",):
                    if len(message) >= 3 and message[1] == message[2] == actor.pid:
                        actor.pgid = actor.pid  # it leads its own process group
                    del waiting[actor.results]
                    del waiting[actor.process.sentinel]
                    continue
                actor.process.join(REAP_TIMEOUT)
                raise _setup_error("actor %r did not start: exit code %s (its stderr says why)"
                                   % (actor.name, actor.process.exitcode))

    # -- call -----------------------------------------------------------------------------

    def op_call(self, request):
        session = self.session
        if session is None:
            raise _protocol_error("call without setup")
        tag = request.get("tag")
        if not isinstance(tag, str):
            raise _protocol_error("call: tag must be a string")
        if tag in session.tags:
            raise _protocol_error("call: tag %r already used in this setup" % tag)
        actor = session.actors.get(request.get("actor"))
        if actor is None:
            raise _protocol_error("call: unknown actor %r" % (request.get("actor"),))
        if not actor.alive:
            raise _protocol_error("call: actor %r is dead (exit code %s)"
                                  % (actor.name, actor.exitcode))
        thread = request.get("thread", 0)
        if not _int_field(thread) or not 0 <= thread < actor.threads:
            raise _protocol_error("call: actor %r has no thread %r" % (actor.name, thread))
        objname = request.get("object")
        if objname not in session.objects:
            raise _protocol_error("call: unknown object %r" % (objname,))
        method = request.get("method")
        if not isinstance(method, str):
            raise _protocol_error("call: method must be a string")
        typename = session.objects[objname][0]
        object_types = {name: entry[0] for name, entry in session.objects.items()}
        kwargs = self._method_args(TYPES[typename], typename, method,
                                   self._args_field(request, "call"), "call", object_types,
                                   session.slots)
        if thread in actor.running:
            raise _protocol_error("call: thread %d of actor %r is busy with call %r"
                                  % (thread, actor.name, actor.running[thread]))
        session.tags.add(tag)
        actor.running[thread] = tag
        actor.thread_of[tag] = thread
        try:
            actor.commands.send((thread, tag, objname, method, kwargs))
        except (OSError, ValueError) as exc:
            # The actor is dying; its sentinel will fire and the call gets its info event.
            _log("cannot send call %r to actor %r: %s" % (tag, actor.name, exc))
        return {}

    # -- actor results and deaths ---------------------------------------------------------

    def _drain(self, actor):
        """Deliver every result the actor has already sent (never blocks)."""
        while not actor.results_eof:
            try:
                if not actor.results.poll(0):
                    return
                message = actor.results.recv()
            except (EOFError, OSError):
                actor.results_eof = True
                return
            self._deliver(actor, message)

    def _deliver(self, actor, message):
        if message == (_STOP_POOLS, "done"):
            return  # a late answer to _stop_actor_pools
        if not isinstance(message, dict) or "tag" not in message:
            _log("unexpected message from actor %r: %r" % (actor.name, message))
            return
        tag = message["tag"]
        thread = actor.thread_of.pop(tag, None)
        if thread is None:
            _log("result for unknown call %r from actor %r" % (tag, actor.name))
            return
        actor.running.pop(thread, None)
        self.emit(message)

    def _announce_lost(self, actor, reason):
        for thread in sorted(actor.running):
            tag = actor.running[thread]
            self.emit({"event": "return", "tag": tag, "status": "info", "reason": reason})
        actor.running.clear()
        actor.thread_of.clear()

    def _reap(self, actor, escalate=True):
        """Join a signalled actor; SIGKILL it if it does not die in time.  True when reaped."""
        process = actor.process
        if process.pid is None:
            return True
        _await_exit(process, REAP_TIMEOUT)
        if process.exitcode is None and escalate:
            _log("actor %r (pid %d) still alive after its signal: sending SIGKILL"
                 % (actor.name, process.pid))
            try:
                os.kill(process.pid, signal.SIGKILL)
            except OSError:
                pass
            _await_exit(process, REAP_TIMEOUT)
        if process.exitcode is None:
            _log("actor %r (pid %d) could not be reaped" % (actor.name, process.pid))
            return False
        return True

    def _finish(self, actor, reason, announce=True):
        """The actor is dead and reaped: deliver its results, then info events; free it."""
        actor.alive = False
        actor.exitcode = actor.process.exitcode
        if announce:
            self._drain(actor)
            self._announce_lost(actor, reason)
        self._close_actor(actor)

    def _close_actor(self, actor):
        for conn in (actor.commands, actor.results):
            try:
                conn.close()
            except OSError:
                pass
            try:
                _INHERITED.remove(conn)
            except ValueError:
                pass
        if actor.process.exitcode is not None:
            try:
                actor.process.close()
            except ValueError:
                pass

    def _on_death(self, actor):
        self._reap(actor)
        _log("actor %r (pid %s) died on its own, exit code %s"
             % (actor.name, actor.pid, actor.process.exitcode))
        self._finish(actor, "crashed")

    # -- kill -----------------------------------------------------------------------------

    def op_kill(self, request):
        session = self.session
        if session is None:
            raise _protocol_error("kill without setup")
        actor = session.actors.get(request.get("actor"))
        if actor is None:
            raise _protocol_error("kill: unknown actor %r" % (request.get("actor"),))
        if not actor.alive:
            raise _protocol_error("kill: actor %r is already dead (exit code %s)"
                                  % (actor.name, actor.exitcode))
        signum = request.get("signal", int(signal.SIGKILL))
        if not _int_field(signum) or signum not in signal.valid_signals() or signum == 0:
            raise _protocol_error("kill: invalid signal %r" % (signum,))
        if signum in _NON_TERMINATING:
            raise _unsupported("kill: signal %d does not terminate a process" % signum)
        try:
            os.kill(actor.pid, signum)
        except ProcessLookupError:
            pass  # already gone (reaped by nobody yet is impossible: it would be a zombie)
        self._reap(actor)
        self._finish(actor, "killed")
        return {"exitcode": actor.exitcode}

    # -- teardown / bye -------------------------------------------------------------------

    def _teardown(self, reason, announce=True):
        session = self.session
        if session is None:
            return
        live = [a for a in session.actors.values() if a.alive]
        if announce:
            self._stop_actor_pools(session, live)
        # Managers the prelude started in the driver (inherited entries), before the actors
        # are killed (protocol section 6, manager teardown): shut down (bounded), their servers
        # killed by pid when that does not finish.
        _stop_managers(MANAGER_STOP_TIMEOUT)
        for actor in live:
            if actor.process.pid is not None and actor.process.exitcode is None:
                # The actor and every process it started (its process group).  Safe: the actor
                # is not reaped yet, so its pid (the group's id) cannot have been reused.
                try:
                    if actor.pgid is not None:
                        os.killpg(actor.pgid, signal.SIGKILL)
                    else:
                        os.kill(actor.process.pid, signal.SIGKILL)
                except OSError:
                    pass
        for actor in live:
            self._reap(actor)
            self._finish(actor, reason, announce)
        # Processes started by actors that died before (kill, crash), or that escaped the kill
        # above: orphans now, still in their actor's group.
        _kill_groups([a.pgid for a in session.actors.values() if a.pgid is not None])
        # Children of inherited Processes that the prelude started in the driver (protocol 3.2,
        # setup.inherited): killed and reaped here.
        for typename, obj in session.objects.values():
            if typename == "Process" and not _is_local(obj):
                _stop_parent_child(obj)
        # The manager of setup context "manager", once the actors are gone (none of their calls
        # sees it end), before its proxies are let go (a proxy of a live manager calls it).
        manager, session.manager = session.manager, None
        if manager is not None:
            _stop_context_manager(manager, MANAGER_STOP_TIMEOUT)
            del manager
        runner, session.prelude_runner = session.prelude_runner, None
        if runner is not None:
            runner.stop()
            del runner
        session.actors.clear()
        session.objects.clear()
        tempdir, session.tempdir = session.tempdir, None
        self.session = None
        del session, live
        # Drop the last references now: with spawn/forkserver this unlinks the named
        # semaphores and unregisters them from the resource tracker.
        gc.collect()
        if tempdir is not None:
            # Every SharedMemory segment the setup or its slots created, if still there.
            _SEGMENTS_DIR[0] = None
            _unlink_segments(_recorded_segments(tempdir))
            _unlink_semaphores(_recorded_segments(tempdir, _SEMAPHORES_FILE))
            _unlink_sockets(_recorded_segments(tempdir, _SOCKETS_FILE))
            shutil.rmtree(tempdir, ignore_errors=True)

    def _stop_actor_pools(self, session, live):
        """Before the actors are killed: have each end the Pools it made (_stop_pools), so that
        their workers are terminated and their semaphores unlinked.  Bounded: an actor that
        does not answer in time is killed with its pools' workers (its process group)."""
        if not any(typename in ("Pool", "Manager") for typename, _ in session.objects.values()):
            return
        waiting = {}
        for actor in live:
            if actor.results_eof or actor.process.exitcode is not None:
                continue
            try:
                actor.commands.send((_STOP_POOLS,))
            except (OSError, ValueError):
                continue
            waiting[actor.results] = actor
        deadline = time.monotonic() + 2 * POOL_STOP_TIMEOUT + 2 * MANAGER_STOP_TIMEOUT + 1.0
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _log("actors %s did not stop their pools in time"
                     % ", ".join(sorted(a.name for a in waiting.values())))
                return
            for conn in MP.connection.wait(list(waiting), remaining):
                actor = waiting[conn]
                while True:
                    try:
                        if not conn.poll(0):
                            break
                        message = conn.recv()
                    except (EOFError, OSError):
                        actor.results_eof = True
                        del waiting[conn]
                        break
                    if message == (_STOP_POOLS, "done"):
                        del waiting[conn]
                        break
                    self._deliver(actor, message)

    def op_teardown(self, request):
        self._teardown("teardown")
        return {}

    def op_bye(self, request):
        self._teardown("teardown")
        _stop_helpers()
        self.exiting = True
        return {}

    def shutdown(self):
        try:
            self._teardown("teardown")
        except BaseException:
            _log("error during teardown:\n%s" % traceback.format_exc())
        # Anything multiprocessing still knows about (e.g. a start interrupted by a signal);
        # independent actors are the standard library's processes.
        children = MP.active_children()
        if MP is not multiprocessing:
            children += multiprocessing.active_children()
        for child in children:
            try:
                child.kill()
                _await_exit(child, REAP_TIMEOUT)
            except Exception:
                pass
        _stop_helpers()


def _stop_parent_child(process):
    """SIGKILL and reap the child of a Process this process started, if it still runs."""
    try:
        if process._parent_pid != os.getpid() or process._popen is None:
            return  # never started here (or closed)
        if process.exitcode is None:
            process.kill()
        if not _await_exit(process, REAP_TIMEOUT):
            _log("child %s of an inherited Process could not be reaped" % process.pid)
    except ValueError:
        pass  # closed


def _group_members(pgids):
    """pgid -> pids of the live (not zombie) processes in that process group, from /proc;
    None where /proc cannot be read."""
    members = {pgid: [] for pgid in pgids}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        try:
            state, pgrp = fields[0], int(fields[2])
        except (IndexError, ValueError):
            continue
        if pgrp in members and state not in ("Z", "X"):
            members[pgrp].append(int(entry))
    return members


def _kill_groups(pgids):
    """SIGKILL what is left of the process groups of reaped actors, and wait (bounded) until
    it is gone.  A group is only signalled while it has members: its id then cannot belong to
    anyone else (POSIX does not reuse a process id while a group of that id exists), and no
    process has that pid (the actor, its leader, has been reaped)."""
    pgids = sorted(set(pgids))
    if not pgids:
        return
    deadline = time.monotonic() + REAP_TIMEOUT
    signalled = set()
    while True:
        members = _group_members(pgids)
        if members is None:
            return  # no /proc: the live actors' groups were signalled before their reaping
        left = {pgid: pids for pgid, pids in members.items() if pids}
        if not left:
            return
        for pgid in left:
            if pgid in signalled or os.path.exists("/proc/%d" % pgid):
                continue
            _log("killing %d leftover process(es) of actor group %d: %s"
                 % (len(left[pgid]), pgid, left[pgid]))
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
            signalled.add(pgid)
        if time.monotonic() >= deadline or not (set(left) & signalled):
            _log("processes of actor groups still alive: %r" % left)
            return
        time.sleep(0.005)


def _stop_helpers():
    """Stop the resource tracker and forkserver processes, if this driver started them (the
    standard library's too: spawning an independent actor starts its resource tracker)."""
    packages = sorted({MP.__name__, "multiprocessing"})
    helpers = [(package + module, attribute) for package in packages
               for module, attribute in ((".resource_tracker", "_resource_tracker"),
                                         (".forkserver", "_forkserver"))]
    for module_name, attribute in helpers:
        module = sys.modules.get(module_name)
        helper = getattr(module, attribute, None) if module is not None else None
        stop = getattr(helper, "_stop", None)
        if stop is None:
            continue
        try:
            stop()
        except Exception as exc:
            _log("cannot stop %s: %s" % (module_name, exc))


def backend_name():
    """The backend's name in the hello reply."""
    if LIBRARY != "multiprocessing":
        return LIBRARY
    return MODULES.get(MP.__name__, MP.__name__)


def package_version():
    """The version of the package under test: CPython's for the standard library's."""
    if LIBRARY != "multiprocessing":
        return str(getattr(sys.modules[LIBRARY], "__version__", "unknown"))
    if MP.__name__ == "multiprocessing":
        return platform.python_version()
    return str(getattr(MP, "__version__", "unknown"))


def select_module(name):
    """Make the package `name` the one under test; a RuntimeError says why it cannot be."""
    global MP, _ERROR_KINDS
    if sys.version_info[:2] < MIN_PYTHON:
        raise RuntimeError("Python %s is older than %d.%d, the oldest this driver supports"
                           % ((platform.python_version(),) + MIN_PYTHON))
    try:
        module = importlib.import_module(name)
        importlib.import_module(name + ".connection")
    except ImportError as exc:
        raise RuntimeError("cannot import %r with %s (Python %s): %s"
                           % (name, sys.executable, platform.python_version(), exc))
    MP = module
    _ERROR_KINDS = None


def select_library(name):
    """Offer the types of `name` (LIBRARIES); a RuntimeError says why it cannot be done."""
    global TYPES, LIBRARY
    if name == "fasteners":
        try:
            importlib.import_module("fasteners")
        except ImportError as exc:
            raise RuntimeError("cannot import 'fasteners' with %s (Python %s): %s"
                               % (sys.executable, platform.python_version(), exc))
        TYPES = FASTENERS_TYPES
    LIBRARY = name


def main(argv=None):
    parser = argparse.ArgumentParser(description="mpspec protocol-v1 driver for CPython "
                                                 "multiprocessing and its drop-in forks, and "
                                                 "for fasteners' file locks")
    parser.add_argument("--start-method", default="fork",
                        choices=("fork", "spawn", "forkserver"),
                        help="default start method of setups (default: fork)")
    parser.add_argument("--module", default="multiprocessing", choices=sorted(MODULES),
                        help="the package under test (default: multiprocessing)")
    parser.add_argument("--library", default="multiprocessing", choices=LIBRARIES,
                        help="the types offered: those of --module (default), or fasteners' "
                             "file locks (InterProcessLock, InterProcessReaderWriterLock)")
    parser.add_argument("--check", action="store_true",
                        help="only check that the driver can run here: print what it would "
                             "test and exit 0, or print why not and exit 1")
    options = parser.parse_args(argv)
    if options.library != "multiprocessing" and options.module != "multiprocessing":
        parser.error("--library %s runs its actors with the standard library's multiprocessing: "
                     "--module does not apply" % options.library)
    try:
        select_module(options.module)
        select_library(options.library)
    except RuntimeError as exc:
        sys.stderr.write("cpython-driver: cannot run: %s\n" % exc)
        return 1
    if options.start_method not in MP.get_all_start_methods():
        if options.check:
            sys.stderr.write("cpython-driver: cannot run: start method %r is not offered "
                             "here\n" % options.start_method)
            return 1
        parser.error("start method %r is not offered on this platform" % options.start_method)
    if options.check:
        sys.stdout.write("%s %s on Python %s (%s), start method %s\n"
                         % (backend_name(), package_version(),
                            platform.python_version(), sys.executable, options.start_method))
        return 0

    # The protocol owns a private copy of stdout; fd 1 becomes stderr, so a stray print (here,
    # in an actor or in a helper process) can never corrupt the protocol stream.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _INHERITED.append(out.raw)  # closed by forked actors without flushing

    driver = Driver(options.start_method, out)
    for signame in ("SIGTERM", "SIGINT", "SIGHUP"):
        signum = getattr(signal, signame, None)
        if signum is not None:
            signal.signal(signum, driver.on_signal)
    status = driver.serve()
    try:
        out.close()
    except (OSError, ValueError):
        pass
    return status


if __name__ == "__main__":
    sys.exit(main())

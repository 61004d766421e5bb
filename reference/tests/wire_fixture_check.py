#!/usr/bin/env python3
"""Checks the wire fixtures (fixtures/wire/**/*.hex) against a real CPython.

For every fixture, CPython's own multiprocessing.connection produces and consumes the bytes:

  kind: frames        Connection.send_bytes (or send, for an `object:`) of each `send:` payload
                      over a socketpair writes exactly `wire:`; recv_bytes (maxlength if given)
                      on `wire:` followed by end of file gives each `expect:` in turn.
  kind: large-header  Connection._send_bytes of a buffer of `length:` bytes (a stand-in object;
                      the writes are recorded, no payload is allocated) writes `wire:` first;
                      reading `wire:` + 3 bytes + EOF asks _recv for `length:` payload bytes,
                      and with maxlength length - 1 raises OSError('bad message length').
  kind: handshake     each side whose version this interpreter has (legacy: <= 3.11, modern:
                      >= 3.12) runs deliver_challenge/answer_challenge (server order or client
                      order) on one end of a socketpair with os.urandom patched to return the
                      fixture's nonce; the other end has the peer's frames written in advance.
                      What it writes must be the transcript's frames of its side, and its
                      outcome (ok or the exception) the fixture's.

Usage:
  wire_fixture_check.py FIXTURES_DIR --python 3.12     find CPython 3.12 (pyenv, then PATH)
  wire_fixture_check.py FIXTURES_DIR --python /usr/bin/python3
  wire_fixture_check.py FIXTURES_DIR                   this interpreter

Exit status: 0 all checks passed, 1 a check failed, 77 the interpreter is absent (CTest: skipped).
Standard library only; runs on CPython 3.8 and later. Everything is bounded by socket timeouts.
"""

import ast
import glob
import os
import socket
import struct
import subprocess
import sys

SKIP = 77
TIMEOUT = 10.0  # seconds, per socket operation; everything here takes milliseconds


# ---- fixture files ---------------------------------------------------------------------------

def parse_hex(text):
    text = "".join(text.split())
    if text == "empty":
        return b""
    return bytes.fromhex(text)


def load_fixture(path):
    """Returns (fields, ordered) where fields maps a key to the list of its values and ordered is
    the list of (key, value) in file order. `#` starts a comment (whole line, or after spaces)."""
    fields, ordered = {}, []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if " #" in s:
                s = s[:s.index(" #")].rstrip()
            if ":" not in s:
                raise ValueError("%s:%d: expected 'key: value'" % (path, lineno))
            key, value = s.split(":", 1)
            key, value = key.strip(), value.strip()
            fields.setdefault(key, []).append(value)
            ordered.append((key, value))
    return fields, ordered


def one(fields, key, default=None):
    v = fields.get(key)
    if not v:
        if default is not None:
            return default
        raise ValueError("missing field %r" % key)
    return v[0]


def fixture_paths(root):
    return sorted(glob.glob(os.path.join(root, "**", "*.hex"), recursive=True))


# ---- helpers -----------------------------------------------------------------------------------

def socketpair():
    a, b = socket.socketpair()
    a.settimeout(TIMEOUT)
    b.settimeout(TIMEOUT)
    return a, b


def read_all(sock):
    out = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(out)
        out += chunk


def describe_error(e):
    if isinstance(e, EOFError):
        return "EOFError"
    name = "OSError" if isinstance(e, OSError) else type(e).__name__
    msg = str(e)
    return name + (": " + msg if msg else "")


def expected_outcome(text):
    """'message <hex>' -> ('message', bytes); 'Kind[: msg]' -> ('error', text)."""
    if text.startswith("message"):
        return ("message", parse_hex(text[len("message"):]))
    return ("error", text)


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ---- kind: frames --------------------------------------------------------------------------

def check_frames(mpc, fields):
    wire = b"".join(parse_hex(w) for w in fields.get("wire", []))
    sends = [parse_hex(s) for s in fields.get("send", [])]
    maxlength = int(one(fields, "maxlength", "-1"))
    maxlength = None if maxlength < 0 else maxlength
    expects = [expected_outcome(e) for e in fields.get("expect", [])]
    obj = None
    if "object" in fields:
        obj = ast.literal_eval(one(fields, "object"))

    if sends:
        # The sender: CPython's send_bytes (and send, for an object) writes exactly `wire`.
        a, b = socketpair()
        c = mpc.Connection(a.detach())
        for payload in sends:
            c.send_bytes(payload)
        c.close()
        got = read_all(b)
        b.close()
        check(got == wire, "send_bytes wrote %s, fixture %s" % (got.hex(), wire.hex()))
        if obj is not None:
            check(len(sends) == 1, "an object fixture has one send")
            a, b = socketpair()
            c = mpc.Connection(a.detach())
            c.send(obj)
            c.close()
            got = read_all(b)
            b.close()
            check(got == wire, "send(%r) wrote %s, fixture %s" % (obj, got.hex(), wire.hex()))

    # The receiver: recv_bytes on `wire` then end of file.
    a, b = socketpair()
    b.sendall(wire)
    b.close()
    c = mpc.Connection(a.detach())
    outcomes = []
    for _ in range(len(expects)):
        try:
            outcomes.append(("message", c.recv_bytes(maxlength)))
        except Exception as e:  # noqa: BLE001 - compared with the fixture
            outcomes.append(("error", describe_error(e)))
            break
    c.close()
    check(outcomes == expects, "recv_bytes gave %r, fixture %r" % (outcomes, expects))
    if obj is not None:
        a, b = socketpair()
        b.sendall(wire)
        b.close()
        c = mpc.Connection(a.detach())
        got = c.recv()
        c.close()
        check(got == obj and type(got) is type(obj), "recv() gave %r, fixture %r" % (got, obj))


# ---- kind: large-header ----------------------------------------------------------------------

class _Stop(Exception):
    pass


class _FakeBuffer:
    """Stands for a payload of `n` bytes: only its length is ever looked at by _send_bytes."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def check_large_header(mpc, fields):
    n = int(one(fields, "length"))
    header = parse_hex(one(fields, "wire"))

    class Recording(mpc.Connection):
        def _send(self, buf, *args, **kwargs):
            if isinstance(buf, _FakeBuffer):
                self.writes.append(("payload", len(buf)))
            else:
                self.writes.append(("bytes", bytes(buf)))

        def _recv(self, size, *args, **kwargs):
            if size > (1 << 20):
                self.requested.append(size)
                raise _Stop()
            return super()._recv(size, *args, **kwargs)

    def make():
        a, b = socketpair()
        c = Recording(a.detach())
        c.writes, c.requested = [], []
        return c, b

    # Sender: the header CPython writes before a payload of n bytes.
    c, b = make()
    c._send_bytes(_FakeBuffer(n))
    c.close()
    b.close()
    written = b"".join(data for what, data in c.writes if what == "bytes")
    payloads = [data for what, data in c.writes if what == "payload"]
    check(payloads == [n], "_send_bytes wrote the payload as %r" % (payloads,))
    check(written == header, "_send_bytes wrote header %s, fixture %s" % (written.hex(), header.hex()))

    # Receiver: the header then 3 bytes and EOF; CPython asks for n payload bytes.
    for maxlength in (None, n):
        c, b = make()
        b.sendall(header + b"xyz")
        b.close()
        try:
            c.recv_bytes(maxlength)
            raise Failure("recv_bytes returned a message")
        except _Stop:
            pass
        c.close()
        check(c.requested == [n], "recv_bytes(%r) asked for %r payload bytes, fixture %d"
              % (maxlength, c.requested, n))
    c, b = make()
    b.sendall(header + b"xyz")
    b.close()
    try:
        c.recv_bytes(n - 1)
        raise Failure("recv_bytes(n - 1) returned a message")
    except OSError as e:
        check(str(e) == "bad message length", "recv_bytes(n - 1) raised %r" % (e,))
    check(c.requested == [], "recv_bytes(n - 1) asked for the payload")
    c.close()


# ---- kind: handshake -------------------------------------------------------------------------

def frames_of(ordered, direction):
    return [parse_hex(v) for k, v in ordered if k == direction]


def check_handshake(mpc, fields, ordered):
    version = "modern" if sys.version_info >= (3, 12) else "legacy"
    sides = [s for s in ("server", "client") if one(fields, s) == version]
    if not sides:
        return "no side is %s (this is %d.%d)" % ((version,) + sys.version_info[:2])
    s2c, c2s = frames_of(ordered, "s>c"), frames_of(ordered, "c>s")
    real_urandom = os.urandom
    for side in sides:
        key = parse_hex(one(fields, side + "-key"))
        nonce = parse_hex(one(fields, side + "-nonce"))
        mine, theirs = (s2c, c2s) if side == "server" else (c2s, s2c)
        a, b = socketpair()
        b.sendall(b"".join(theirs))
        b.shutdown(socket.SHUT_WR)
        c = mpc.Connection(a.detach())
        calls = []

        def fake_urandom(size, nonce=nonce, calls=calls):
            calls.append(size)
            if size != len(nonce):
                raise Failure("os.urandom(%d) called, fixture nonce has %d bytes" % (size, len(nonce)))
            return nonce

        os.urandom = fake_urandom
        try:
            if side == "server":
                mpc.deliver_challenge(c, key)
                mpc.answer_challenge(c, key)
            else:
                mpc.answer_challenge(c, key)
                mpc.deliver_challenge(c, key)
            outcome = "ok"
        except mpc.AuthenticationError as e:
            outcome = "AuthenticationError: " + str(e)
        finally:
            os.urandom = real_urandom
            c.close()
        got = read_all(b)
        b.close()
        want = b"".join(mine)
        check(got == want, "%s side wrote %s, transcript %s" % (side, got.hex(), want.hex()))
        expected = one(fields, side + "-result")
        check(outcome == expected, "%s side: %s, fixture %s" % (side, outcome, expected))
        check(len(calls) <= 1, "%s side called os.urandom %d times" % (side, len(calls)))
    return None


# ---- driver ----------------------------------------------------------------------------------

def run_checks(root):
    import multiprocessing.connection as mpc

    paths = fixture_paths(root)
    if not paths:
        print("no fixtures under %s" % root)
        return 1
    failed = 0
    tag = "%d.%d.%d" % sys.version_info[:3]
    for path in paths:
        name = os.path.relpath(path, root)
        try:
            fields, ordered = load_fixture(path)
            kind = one(fields, "kind")
            skipped = None
            if kind == "frames":
                check_frames(mpc, fields)
            elif kind == "large-header":
                check_large_header(mpc, fields)
            elif kind == "handshake":
                skipped = check_handshake(mpc, fields, ordered)
            else:
                raise Failure("unknown kind %r" % kind)
            print("%s %-50s %s" % ("SKIP" if skipped else "PASS", name, skipped or "CPython " + tag))
        except Exception as e:  # noqa: BLE001 - every failure is reported per fixture
            failed += 1
            print("FAIL %-50s CPython %s: %s" % (name, tag, describe_error(e) if not isinstance(e, Failure) else e))
    print("%d fixtures, %d failed (CPython %s, %s)" % (len(paths), failed, tag, sys.executable))
    return 1 if failed else 0


def find_python(spec):
    """An interpreter for `spec`: a path, or a version '3.N' (pyenv first, then PATH); None."""
    if os.sep in spec:
        return spec if os.access(spec, os.X_OK) else None
    home = os.path.expanduser("~")
    root = os.environ.get("PYENV_ROOT", os.path.join(home, ".pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", spec + ".*", "bin", "python3")))
    found = [p for p in found if os.access(p, os.X_OK)]
    if found:
        return found[-1]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "python" + spec)
        if d and ".pyenv/shims" not in d and os.access(p, os.X_OK):
            return p
    return None


def main(argv):
    args = list(argv)
    python = None
    if "--python" in args:
        i = args.index("--python")
        python = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__)
        return 2
    root = os.path.abspath(args[0])
    if python is None:
        return run_checks(root)
    exe = find_python(python)
    if exe is None:
        print("SKIP: no CPython %s on this machine" % python)
        return SKIP
    try:
        return subprocess.call([exe, os.path.abspath(__file__), root], timeout=120)
    except subprocess.TimeoutExpired:
        print("FAIL: the check under %s did not finish in 120 s" % exe)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

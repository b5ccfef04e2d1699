"""The narrow channel between a judged job's judge and its candidate (see sandboxes.base.Candidate).

Privilege separation after OpenSSH's privsep: the judge (trusted task code) holds the data, the
budget and the result; the candidate's code runs in another process, under another uid, and
hears only the calls the judge makes over one stream socket on fd CHANNEL_FD. This file is
shipped into both working directories as `clade_channel.py` (standard library only; NumPy is
used when importable, so arrays travel as raw bytes):

- judge side: `Channel.open()`, then `call(target, *args)`, `construct(handle, class_name, *args)`
  (a class of the program, or `module:Class` of an adapter the task ships beside it)
  and `call("handle.method", ...)` for ask/tell objects, `put(name, value)` and `Ref(name)` for
  large arguments sent once (a distance matrix). Every failure of the candidate (an error reply,
  a per-call timeout, EOF, a malformed or oversized frame) raises one `CandidateFault` with a
  one-line reason; the judge writes it as the result and the host makes the node invalid.
- candidate side: `python clade_channel.py serve program.py` imports the program and serves
  calls. It runs at the candidate's privilege and holds no authority: a program that rewrites
  it only changes what it says, and the judge checks everything it hears.

Frames: a 5-byte header (kind: 1 byte, body length: 4 bytes, big-endian) and a body of at most
`max_frame` bytes, encoded with a tagged binary codec whose decoder is bounded in depth,
element count and sizes and raises nothing but `ChannelError`.
"""

from __future__ import annotations

import builtins
import json
import os
import select
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

try:  # optional: without NumPy, arrays are refused by the encoder and the decoder
    import numpy as _np
except ImportError:  # pragma: no cover - the sandbox image and the host have NumPy
    _np = None  # type: ignore[assignment]

CHANNEL_FD = 3
CHANNEL_ENV = "CLADE_CHANNEL_FD"
SHIPPED_NAME = "clade_channel.py"

CALL, REPLY, ERROR, READY, PUT, CONSTRUCT = 1, 2, 3, 4, 5, 6
_KINDS = {CALL, REPLY, ERROR, READY, PUT, CONSTRUCT}
_HEADER = struct.Struct(">BI")

MAX_FRAME = 32 * 1024 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 4_000_000
MAX_NDIM = 8
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

_Q = struct.Struct("<q")
_D = struct.Struct("<d")
_I = struct.Struct("<I")


class ChannelError(Exception):
    """A frame or value that breaks the channel's format or bounds."""


class CandidateFault(Exception):
    """The candidate failed a call: error reply, timeout, EOF or malformed frame (one-line reason).

    `brief` says the same in the judge's words alone, with nothing the candidate chose (no
    message or value of its own) and no instance data; it stands for the reason where a stage's
    instances are secret and the candidate must not reach the next prompt."""

    def __init__(self, reason: str, brief: str = "the reply broke the protocol") -> None:
        super().__init__(reason)
        self.brief = brief


class Ref:
    """An argument naming a value sent once with `Channel.put` (the runner substitutes it)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


# ---------------------------------------------------------------------------------- codec
# Tags: N None, T/F bools, i int64, d float64, s str, b bytes, l list, u tuple, S set, D dict,
# a ndarray (dtype code, ndim, shape, raw little-endian bytes), R Ref.
_DTYPES = {b"d": "<f8", b"q": "<i8", b"?": "|b1"}


def _encode(value: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ChannelError(f"value nested deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind is float:
        out += b"d" + _D.pack(value)
    elif kind is int:
        if not INT_MIN <= value <= INT_MAX:
            raise ChannelError("an integer does not fit in 64 bits")
        out += b"i" + _Q.pack(value)
    elif kind is bool:
        out += b"T" if value else b"F"
    elif value is None:
        out += b"N"
    elif kind is str:
        data = value.encode("utf-8", "surrogatepass")
        out += b"s" + _I.pack(len(data)) + data
    elif kind is bytes:
        out += b"b" + _I.pack(len(value)) + value
    elif kind is list or kind is tuple or kind is set or kind is frozenset:
        out += (b"l" if kind is list else b"u" if kind is tuple else b"S") + _I.pack(len(value))
        for item in value:
            _encode(item, out, depth + 1)
    elif kind is dict:
        out += b"D" + _I.pack(len(value))
        for key, item in value.items():
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    elif kind is Ref:
        data = value.name.encode()
        out += b"R" + _I.pack(len(data)) + data
    elif _np is not None and isinstance(value, _np.ndarray):
        _encode_array(value, out)
    elif _np is not None and isinstance(value, _np.generic):
        _encode(value.item(), out, depth)
    else:
        raise ChannelError(f"a value of type {kind.__name__} cannot be sent")


def _encode_array(value: Any, out: bytearray) -> None:
    assert _np is not None
    if value.ndim > MAX_NDIM:
        raise ChannelError(f"an array has more than {MAX_NDIM} dimensions")
    if value.dtype.kind == "f":
        code, array = b"d", value.astype("<f8", copy=False)
    elif value.dtype.kind == "b":
        code, array = b"?", value
    elif value.dtype.kind in "iu":
        if value.dtype.kind == "u" and value.size and int(value.max()) > INT_MAX:
            raise ChannelError("an integer array does not fit in 64 bits")
        code, array = b"q", value.astype("<i8", copy=False)
    else:
        raise ChannelError(f"an array of dtype {value.dtype} cannot be sent")
    out += b"a" + code + bytes([array.ndim])
    for dim in array.shape:
        out += _I.pack(dim)
    out += array.tobytes()


def encode(value: Any) -> bytes:
    """The codec's bytes for `value`; ChannelError for anything it does not carry."""
    out = bytearray()
    try:
        _encode(value, out, 0)
    except RecursionError:
        raise ChannelError("value nested too deep") from None
    return bytes(out)


class _Decoder:
    __slots__ = ("data", "elements", "end", "pos", "refs")

    def __init__(self, data: bytes, refs: dict[str, Any] | None) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.elements = 0
        self.refs = refs

    def take(self, size: int) -> bytes:
        pos = self.pos
        if pos + size > self.end:
            raise ChannelError("frame ends inside a value")
        self.pos = pos + size
        return self.data[pos : pos + size]

    def count(self) -> int:
        if self.pos + 4 > self.end:
            raise ChannelError("frame ends inside a value")
        (size,) = _I.unpack_from(self.data, self.pos)
        self.pos += 4
        self.elements += size
        if self.elements > MAX_ELEMENTS or size > self.end - self.pos:
            raise ChannelError("too many elements in a frame")
        return size

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ChannelError(f"value nested deeper than {MAX_DEPTH}")
        pos = self.pos
        if pos >= self.end:
            raise ChannelError("frame ends inside a value")
        tag = self.data[pos]
        self.pos = pos + 1
        if tag == 100 or tag == 105:  # b"d", b"i"
            if pos + 9 > self.end:
                raise ChannelError("frame ends inside a value")
            self.pos = pos + 9
            return (_D if tag == 100 else _Q).unpack_from(self.data, pos + 1)[0]
        if tag == 84 or tag == 70 or tag == 78:  # b"T", b"F", b"N"
            return True if tag == 84 else False if tag == 70 else None
        if tag == 115:  # b"s"
            try:
                return str(self.take(self.count()), "utf-8")
            except UnicodeDecodeError:
                raise ChannelError("a string is not UTF-8") from None
        if tag == 98:  # b"b"
            return self.take(self.count())
        if tag == 108 or tag == 117 or tag == 83:  # b"l", b"u", b"S"
            items = [self.value(depth + 1) for _ in range(self.count())]
            if tag == 108:
                return items
            if tag == 117:
                return tuple(items)
            try:
                return set(items)
            except TypeError:
                raise ChannelError("a set holds an unhashable value") from None
        if tag == 68:  # b"D"
            result = {}
            for _ in range(self.count()):
                key = self.value(depth + 1)
                if type(key) not in (str, int):
                    raise ChannelError("a dict key is not a str or int")
                result[key] = self.value(depth + 1)
            return result
        if tag == 97:  # b"a"
            return self.array()
        if tag == 82:  # b"R"
            name = str(self.take(self.count()), "utf-8", "replace")
            if self.refs is None:
                return Ref(name)
            if name not in self.refs:
                raise ChannelError(f"unknown reference {name[:40]!r}")
            return self.refs[name]
        raise ChannelError(f"unknown tag {tag}")

    def array(self) -> Any:
        if _np is None:
            raise ChannelError("an array arrived but NumPy is not installed")
        code = self.take(1)
        ndim = self.take(1)[0]
        if code not in _DTYPES or ndim > MAX_NDIM:
            raise ChannelError("malformed array header")
        shape = tuple(_I.unpack(self.take(4))[0] for _ in range(ndim))
        size = 1
        for dim in shape:
            size *= dim
        self.elements += size
        itemsize = 1 if code == b"?" else 8
        if self.elements > MAX_ELEMENTS or size * itemsize > self.end - self.pos:
            raise ChannelError("array larger than its frame")
        start = self.pos
        self.pos += size * itemsize
        return _np.frombuffer(self.data, dtype=_DTYPES[code], count=size, offset=start).reshape(shape).copy()


def decode(data: bytes, refs: dict[str, Any] | None = None) -> Any:
    """Decode one value, bounded; raises only ChannelError."""
    decoder = _Decoder(bytes(data), refs)
    try:
        value = decoder.value(0)
    except ChannelError:
        raise
    except (struct.error, ValueError, TypeError, MemoryError, RecursionError, OverflowError) as exc:
        raise ChannelError(f"malformed value ({type(exc).__name__})") from None
    if decoder.pos != decoder.end:
        raise ChannelError("trailing bytes after a value")
    return value


# ------------------------------------------------------------------------------- framing
def _frame(kind: int, value: Any) -> bytearray:
    """One frame holding `value`, encoded in place after its header (no copy of the body)."""
    out = bytearray(_HEADER.size)
    try:
        _encode(value, out, 0)
    except RecursionError:
        raise ChannelError("value nested too deep") from None
    _HEADER.pack_into(out, 0, kind, len(out) - _HEADER.size)
    return out


class _Reader:
    """Reads whole frames from a socket, bounded by `max_frame`, with an optional deadline."""

    def __init__(self, sock: socket.socket, max_frame: int) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self.buffer = bytearray()
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)

    def _fill(self, need: int, deadline: float | None) -> None:
        while len(self.buffer) < need:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self.poller.poll(max(1, int(left * 1000))):
                    if time.monotonic() >= deadline:
                        raise TimeoutError
                    continue
            chunk = self.sock.recv(max(need - len(self.buffer), 65536))
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def read(self, deadline: float | None) -> tuple[int, bytes]:
        self._fill(_HEADER.size, deadline)
        kind, length = _HEADER.unpack_from(self.buffer)
        if kind not in _KINDS:
            raise ChannelError(f"unknown frame kind {kind}")
        if length > self.max_frame:
            raise ChannelError(f"frame of {length} bytes exceeds the limit of {self.max_frame}")
        self._fill(_HEADER.size + length, deadline)
        body = bytes(self.buffer[_HEADER.size : _HEADER.size + length])
        del self.buffer[: _HEADER.size + length]
        return kind, body


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


# ---------------------------------------------------------------------------- judge side
class Channel:
    """The judge's end: calls into the candidate, each bounded in time and in reply size."""

    def __init__(self, sock: socket.socket, timeout_s: float = 10.0, max_frame: int = MAX_FRAME) -> None:
        self.sock = sock
        self.timeout_s = timeout_s
        self.reader = _Reader(sock, max_frame)
        self.calls = 0

    @classmethod
    def open(cls, timeout_s: float = 10.0, max_frame: int = MAX_FRAME, ready_timeout_s: float = 60.0) -> Channel:
        """The judge's end of the job's channel, once the candidate has imported its program."""
        fd = int(os.environ.get(CHANNEL_ENV, CHANNEL_FD))
        channel = cls(socket.socket(fileno=fd), timeout_s, max_frame)
        channel._expect_reply(READY, ready_timeout_s, "importing the program")
        return channel

    def _expect_reply(self, wanted: int, timeout_s: float, what: str) -> Any:
        try:
            kind, body = self.reader.read(time.monotonic() + timeout_s)
            value = decode(body)
        except TimeoutError:
            late = f"{what} took longer than {timeout_s:g}s"
            raise CandidateFault(late, late) from None
        except (EOFError, OSError):
            ended = f"the candidate's process ended while {what}"
            raise CandidateFault(ended, ended) from None
        except ChannelError as exc:
            raise CandidateFault(f"malformed reply while {what}: {exc}", f"malformed reply while {what}") from None
        if kind == ERROR:
            text = value if isinstance(value, str) else repr(value)
            name = text.partition(":")[0].strip()
            known = isinstance(getattr(builtins, name, None), type) and issubclass(
                getattr(builtins, name), BaseException
            )
            raise CandidateFault(f"{what}: {_one_line(text)}", f"{what} raised {name if known else 'an error'}")
        if kind != wanted:
            unexpected = f"unexpected frame kind {kind} while {what}"
            raise CandidateFault(unexpected, unexpected)
        return value

    def _send(self, kind: int, value: Any) -> None:
        try:
            self.sock.sendall(_frame(kind, value))
        except OSError:
            closed = "the candidate's process closed the channel"
            raise CandidateFault(closed, closed) from None

    def call(
        self, target: str, *args: Any, timeout_s: float | None = None, kwargs: dict[str, Any] | None = None
    ) -> Any:
        """Call `target` (a function of the program, or `handle.method`) and return its reply."""
        self.calls += 1
        self._send(CALL, [target, list(args), kwargs] if kwargs else [target, list(args)])
        return self._expect_reply(REPLY, self.timeout_s if timeout_s is None else timeout_s, f"{target}()")

    def construct(self, handle: str, class_name: str, *args: Any, timeout_s: float | None = None) -> None:
        """Make `class_name(*args)` in the candidate and name it `handle` (for `handle.method` calls)."""
        self._send(CONSTRUCT, [handle, class_name, list(args)])
        self._expect_reply(REPLY, self.timeout_s if timeout_s is None else timeout_s, f"{class_name}()")

    def put(self, name: str, value: Any, timeout_s: float | None = None) -> None:
        """Store `value` in the candidate under `name`; later arguments `Ref(name)` stand for it."""
        self._send(PUT, [name, value])
        self._expect_reply(REPLY, self.timeout_s if timeout_s is None else timeout_s, "storing data")

    def close(self) -> None:
        self.sock.close()


_SHARED: list[Channel] = []


def shared(timeout_s: float = 300.0) -> Channel:
    """One channel per judge process, opened on first use (for proxies that are imported many times)."""
    if not _SHARED:
        _SHARED.append(Channel.open(timeout_s))
    return _SHARED[0]


def run_judge(stage: str, body: Callable[[Channel], dict[str, Any]], timeout_s: float = 10.0) -> None:
    """A judge's main: open the channel, run `body`, write its result (or the candidate's fault).

    `body` raises CandidateFault for a reply that breaks the protocol (a wrong shape, a city
    already visited); the result is then `{"stage", "fault"}` and the host makes the node
    invalid with that reason. The result file is written only here, in the judge's directory."""
    try:
        channel = Channel.open(timeout_s)
        result = {"stage": stage, **body(channel)}
    except CandidateFault as fault:
        result = {"stage": stage, "fault": _one_line(str(fault)), "fault_brief": _one_line(fault.brief)}
    with open("result.json.tmp", "w") as handle:
        json.dump(result, handle, allow_nan=False)
    os.replace("result.json.tmp", "result.json")


# ------------------------------------------------------------------------ candidate side
def _error_text(exc: BaseException) -> str:
    """One line: the exception's type and message and the program's last frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        code = f": {_one_line(last.line, 80)}" if last.line else ""
        where = f" (at {os.path.basename(last.filename)}:{last.lineno}{code})"
    return _one_line(f"{type(exc).__name__}: {exc}", 240) + where


def serve(program: str, fd: int = CHANNEL_FD) -> None:
    """Import `program` and answer the judge's calls until the channel closes."""
    import importlib
    import importlib.util

    sock = socket.socket(fileno=fd)
    reader = _Reader(sock, MAX_FRAME)
    refs: dict[str, Any] = {}
    handles: dict[str, Any] = {}
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
        spec = importlib.util.spec_from_file_location("program", program)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["program"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # the program's own failure: tell the judge, then stop
        sock.sendall(_frame(ERROR, "cannot import the program: " + _error_text(exc)))
        return
    sock.sendall(_frame(READY, None))
    while True:
        try:
            kind, body = reader.read(None)
        except (EOFError, OSError, ChannelError):
            return
        try:
            message = decode(body, refs)
            if kind == CALL:
                target, args, *rest = message
                kwargs = rest[0] if rest else {}
                owner, _, name = target.rpartition(".")
                function = getattr(handles[owner] if owner else module, name)
                reply = function(*args, **kwargs)
            elif kind == CONSTRUCT:
                handle, class_name, args = message
                home, _, class_name = class_name.rpartition(":")  # "module:Class": a shipped adapter
                handles[handle] = getattr(importlib.import_module(home) if home else module, class_name)(*args)
                reply = None
            elif kind == PUT:
                name, value = message
                refs[name] = value
                reply = None
            else:
                raise ChannelError(f"unexpected frame kind {kind}")
            out = _frame(REPLY, reply)
        except BaseException as exc:
            text = f"cannot send the reply: {exc}" if isinstance(exc, ChannelError) else _error_text(exc)
            out = _frame(ERROR, text)
        try:
            sock.sendall(out)
        except OSError:
            return


if __name__ == "__main__":  # the candidate's process: python clade_channel.py serve program.py
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        sys.exit("usage: clade_channel.py serve PROGRAM")
    serve(sys.argv[2], int(os.environ.get(CHANNEL_ENV, CHANNEL_FD)))

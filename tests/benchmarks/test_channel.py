"""sandboxes/channel.py: the codec round-trips what it carries, refuses the rest, and its decoder
and the judge's client turn every malformed, oversized, slow or dead peer into one error."""

from __future__ import annotations

import contextlib
import math
import random
import socket
import struct
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from sandboxes import channel
from sandboxes.channel import CandidateFault, Channel, ChannelError, decode, encode


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(2**63),
        2**63 - 1,
        1.5,
        math.inf,
        "ünï",
        b"\x00\xff",
        [1, [2.0, "x"]],
        (1, 2),
        {1, 2},
        {"a": [None], 3: {"b": b""}},
    ],
)
def test_codec_round_trips_plain_values(value: object) -> None:
    back = decode(encode(value))
    assert back == value and type(back) is type(value)


def test_arrays_travel_as_raw_bytes_with_dtype_and_shape() -> None:
    for array in (
        np.arange(12.0).reshape(3, 4),
        np.arange(5, dtype=np.int32),
        np.array([True, False]),
        np.zeros((0, 5)),
        np.float32(2.5) * np.ones(3),
    ):
        back = decode(encode(array))
        assert back.shape == array.shape and np.array_equal(back, array) and back.dtype.kind == array.dtype.kind
    assert decode(encode(np.float64(3.0))) == 3.0 and type(decode(encode(np.int64(3)))) is int
    nan = decode(encode(np.array([math.nan])))
    assert math.isnan(nan[0])  # carried: the judge decides what a NaN means


@pytest.mark.parametrize(
    "value",
    [2**64, -(2**63) - 1, object(), type("F", (float,), {})(1.0), np.array(["s"]), np.array([2**64 - 1], np.uint64)],
)
def test_encoder_refuses_what_it_does_not_carry(value: object) -> None:
    with pytest.raises(ChannelError):
        encode(value)


def test_decoder_bounds_depth_counts_and_sizes() -> None:
    deep: list[object] = []
    for _ in range(channel.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(ChannelError, match="deeper"):
        encode(deep)
    bomb = b"l" * 200 + struct.pack("<I", 1) * 0
    with pytest.raises(ChannelError):
        decode(bomb)
    with pytest.raises(ChannelError, match="too many"):
        decode(b"l" + struct.pack("<I", 2**31))  # claims more elements than the frame holds
    with pytest.raises(ChannelError, match="larger than its frame"):
        decode(b"ad\x02" + struct.pack("<II", 2**20, 2**20))
    with pytest.raises(ChannelError, match="trailing"):
        decode(encode(1) + b"N")
    with pytest.raises(ChannelError, match="dict key"):
        decode(b"D" + struct.pack("<I", 1) + b"N" + b"N")


def test_random_bytes_never_raise_anything_but_channel_error() -> None:
    rng = random.Random(0)
    seeds = [encode(v) for v in ([1, "a", {"k": [1.0, None]}], np.arange(6.0).reshape(2, 3), {1, 2})]
    for _ in range(4000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data) + 1)]
        with contextlib.suppress(ChannelError):  # anything else fails the test
            decode(bytes(data))


def _peer(script: Callable[[socket.socket], None]) -> tuple[Channel, threading.Thread]:
    """A judge channel whose candidate end is played by `script(sock)` in a thread."""
    judge, candidate = socket.socketpair()
    thread = threading.Thread(target=script, args=(candidate,), daemon=True)
    thread.start()
    return Channel(judge, timeout_s=0.5, max_frame=1024), thread


def _reply(sock: socket.socket, kind: int, value: object) -> None:
    body = encode(value)
    sock.sendall(struct.pack(">BI", kind, len(body)) + body)


def _serve(answer: object) -> Callable[[socket.socket], None]:
    def script(sock: socket.socket) -> None:
        with sock:
            sock.recv(65536)
            if callable(answer):
                answer(sock)
            else:
                _reply(sock, channel.REPLY, answer)
            time.sleep(1.5)

    return script


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda s: _reply(s, channel.ERROR, "ValueError: no (at program.py:3)"), "ValueError: no"),
        (lambda s: None, "took longer than 0.5s"),
        (lambda s: s.close(), "process ended"),
        (lambda s: s.sendall(struct.pack(">BI", channel.REPLY, 10**6)), "exceeds the limit"),
        (lambda s: s.sendall(struct.pack(">BI", 99, 0)), "unknown frame kind"),
        (lambda s: s.sendall(struct.pack(">BI", channel.REPLY, 3) + b"zzz"), "malformed reply"),
        (lambda s: _reply(s, channel.READY, None), "unexpected frame kind"),
    ],
)
def test_every_candidate_failure_is_one_candidate_fault(answer: object, reason: str) -> None:
    judge, _ = _peer(_serve(answer))
    with pytest.raises(CandidateFault, match=reason) as raised:
        judge.call("priority", 1.0)
    assert "\n" not in str(raised.value)


def test_a_good_reply_comes_back_decoded() -> None:
    judge, _ = _peer(_serve([1.0, 2.0]))
    assert judge.call("priority", 1.0) == [1.0, 2.0] and judge.calls == 1

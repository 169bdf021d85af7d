"""Frames between the kgc process and a sandbox worker, and the checks on what comes back.

A frame is a 4-byte big-endian length and UTF-8 JSON. What a worker sends is untrusted: a frame
over its limit, JSON nested deeper than ``MAX_VALUE_DEPTH``, ``NaN``/``Infinity`` or non-finite
numbers, or text that is not Unicode is refused here (``ValueError``/``OverflowError``), before a
receipt, the journal or a client could choke on it.
"""

from __future__ import annotations

import base64
import functools
import json
import marshal
import math
import socket
import struct
import time
from typing import Any

from kgc.errors import SandboxUnavailable

HEADER = struct.Struct(">I")
READY_TIMEOUT_S = 5.0
MAX_VALUE_DEPTH = 32
MAX_LOG_LINES = 1000
MAX_MESSAGE_CHARS = 4000


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())


class Expired(Exception):
    pass


def recv_exact(sock: socket.socket, n: int, deadline: Deadline) -> bytes:
    chunks, left = [], n
    while left:
        timeout = deadline.left()
        if timeout <= 0:
            raise Expired
        sock.settimeout(timeout)
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except TimeoutError:
            raise Expired from None
        if not chunk:
            raise EOFError(f"stream ended with {left} of {n} bytes unread")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket, limit: int, deadline: Deadline) -> Any:
    """One frame, decoded and checked: ``ValueError`` names what makes it unacceptable."""
    (size,) = HEADER.unpack(recv_exact(sock, HEADER.size, deadline))
    if size > limit:
        raise OverflowError(f"result frame of {size} bytes; the limit is {limit}")
    data = recv_exact(sock, size, deadline)
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("the frame nests too deeply to decode") from None
    check_value(value)
    return value


def check_value(value: Any) -> None:
    """Refuse JSON nested deeper than ``MAX_VALUE_DEPTH`` or holding text that is not Unicode
    (a lone surrogate): either would fail later, in the receipt, the journal or a client."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_VALUE_DEPTH:
            raise ValueError(f"the result nests deeper than {MAX_VALUE_DEPTH} levels")
        if isinstance(item, str):
            _unicode(item)
        elif isinstance(item, float) and not math.isfinite(item):  # 1e400 decodes as inf
            raise ValueError("the result holds a number JSON cannot carry (not finite)")
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _unicode(key)
                stack.append((child, depth + 1))


def _no_constant(name: str) -> Any:
    raise ValueError(f"the result holds {name}, which is not JSON")


def _unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the result holds text that is not Unicode (a lone surrogate)") from None


def send_frame(sock: socket.socket, value: Any, limit: int) -> None:
    data = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    if len(data) > limit:
        raise SandboxUnavailable(f"the call is {len(data)} bytes; the call limit is {limit}")
    sock.settimeout(READY_TIMEOUT_S)
    sock.sendall(HEADER.pack(len(data)) + data)


@functools.lru_cache(maxsize=256)
def compiled(source: str, filename: str) -> str | None:
    """The effect's code object, marshalled for the worker (base64), or ``None`` when the source
    does not compile (the worker then compiles it and reports the error as the effect's)."""
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


def bounded_logs(lines: list[str], limit: int, dropped: int = 0) -> list[str]:
    """At most ``limit`` characters and ``MAX_LOG_LINES`` lines, and then one more line saying
    how many were cut (``dropped``: what the worker says it cut already)."""
    kept, size = [], 0
    for line in lines[:MAX_LOG_LINES]:
        size += len(line)
        if size > limit:
            break
        kept.append(line)
    cut = len(lines) - len(kept) + max(0, dropped)
    if cut:
        kept.append(f"[kgc: {cut} more log line(s) cut at {MAX_LOG_LINES} lines / {limit} chars]")
    return kept

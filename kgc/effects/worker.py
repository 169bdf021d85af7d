"""The sandbox's zygote and the harness each worker runs: standard library only.

``kgc.effects.pool`` starts this file as ``python -I -S worker.py FD`` with an empty environment;
it imports nothing from kgc or site-packages. The zygote waits on its control socket (FD, a
``SOCK_SEQPACKET``). For each ``spawn`` it forks a worker, which:

1. moves its end of a fresh socket pair to descriptor 3, puts /dev/null on 0-2 and closes the
   rest;
2. applies ``confine`` (limits, user, no_new_privs, Landlock, seccomp) and reports the layers in a
   ``ready`` frame, or a ``refused`` frame naming the missing layer in strict mode;
3. reads one call frame, runs the effect's entry function on the event, writes one result frame
   and exits. A worker never serves a second call.

The zygote hands the kgc process the other end of the socket pair and a pidfd of the worker over
``SCM_RIGHTS``, reaps workers when they exit and reports their wait status. It never reads from a
worker. Frames are a 4-byte big-endian length and UTF-8 JSON.
"""

from __future__ import annotations

import array
import base64
import builtins
import contextlib
import fcntl
import gc
import json
import linecache
import marshal
import os
import selectors
import signal
import socket
import struct
import sys
import traceback
from typing import Any

if __package__:
    from kgc.effects import confine
else:  # run as a script by the pool, under -I: the script's own directory is not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import confine  # type: ignore[import-not-found,no-redef]

# Modules an effect may use: imported once in the zygote, since a confined worker cannot read
# the file system to import anything new. subprocess and threading are here so that an effect
# that tries them meets the kernel's refusal, not an ImportError: confinement is not by omission.
PRELOADED = [
    "base64",
    "bisect",
    "collections",
    "datetime",
    "decimal",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "itertools",
    "math",
    "operator",
    "random",
    "re",
    "statistics",
    "string",
    "subprocess",
    "textwrap",
    "threading",
    "time",
    "unicodedata",
    "uuid",
]
CHANNEL_FD = 3
HEADER = struct.Struct(">I")
MAX_LOG_LINES = 1000
# The harness's own references: an effect that replaces json.dumps breaks only its own values.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_decode = json.JSONDecoder().decode
_write, _read, _exit = os.write, os.read, os._exit


# -- framing --------------------------------------------------------------------------------


def write_frame(fd: int, value: Any) -> None:
    data = _encode(value).encode("utf-8")
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[_write(fd, view) :]


def read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = _read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError(f"channel closed with {left} of {n} bytes unread")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int) -> Any:
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > limit:
        raise ValueError(f"frame of {size} bytes exceeds the {limit}-byte limit")
    return _decode(read_exact(fd, size).decode("utf-8"))


# -- the worker's harness -----------------------------------------------------------------------


class BoundedLog:
    """``sys.stdout`` for an effect: keeps at most ``limit`` characters of whole lines."""

    def __init__(self, limit: int) -> None:
        self.lines: list[str] = []
        self.limit, self.size, self.partial, self.dropped = limit, 0, "", 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        *complete, self.partial = (self.partial + text).split("\n")
        if len(self.partial) > self.limit:
            complete.append(self.partial)
            self.partial = ""
        for line in complete:
            self._keep(line)
        return len(text)

    def _keep(self, line: str) -> None:
        if self.size + len(line) > self.limit or len(self.lines) >= MAX_LOG_LINES:
            self.dropped += 1
            return
        self.size += len(line)
        self.lines.append(line)

    def flush(self) -> None:
        return None

    def close(self) -> list[str]:
        if self.partial:
            self._keep(self.partial)
        return self.lines


def run_call(call: dict[str, Any]) -> dict[str, Any]:
    """Run the effect in ``call``; every outcome, including a failure, is a result dict."""
    log = BoundedLog(int(call["log_limit"]))
    sys.stdout = sys.stderr = log
    filename = f"<effect {call['name']}>"
    source = call["code"]
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        namespace: dict[str, Any] = {"__name__": "kgc_effect", "__builtins__": builtins}
        exec(_code(call, source, filename), namespace)
        entry = namespace.get(call["entry"])
        if not callable(entry):
            raise NameError(f"the effect defines no function {call['entry']!r}")
        value = entry(call["event"])
        result = {"ok": True, "value": value}
        _encode(result)  # a value JSON cannot hold is the effect's error
    except MemoryError:
        result = {"ok": False, "kind": "memory", "message": "the effect ran out of memory"}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are the effect's errors too
        result = {"ok": False, "kind": "error", "message": _describe(exc)}
    result["logs"] = log.close()
    result["logs_dropped"] = log.dropped
    return result


def _code(call: dict[str, Any], source: str, filename: str) -> Any:
    """The kgc process compiles the source once and sends the code object (marshal, same
    interpreter): cheaper here than compiling per call. Without it, compile the source."""
    compiled = call.get("compiled")
    if isinstance(compiled, str):
        return marshal.loads(base64.b64decode(compiled))
    return compile(source, filename, "exec")


def _describe(exc: BaseException) -> str:
    # The effect's own frames: the harness's frame (run_call) is the first and is left out.
    if exc.__traceback__ is not None:
        exc = exc.with_traceback(exc.__traceback__.tb_next)
    lines = traceback.format_exception(exc, limit=-8)
    text = "".join(lines)
    return text[-4000:]


def worker(fd: int, config: dict[str, Any], devnull: int) -> int:
    """Steps 1-3 of the module docstring; the return value is the exit status."""
    os.dup2(fd, CHANNEL_FD)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    os.closerange(CHANNEL_FD + 1, 1 << 16)
    try:
        layers = confine.confine(config)
    except confine.LayerUnavailable as exc:
        write_frame(CHANNEL_FD, {"ready": False, "refused": str(exc)})
        return 3
    # Where the host keeps its interpreter is none of an effect's business either (module
    # __file__ attributes still show it; see docs/effects.md).
    sys.path, sys.argv, sys.executable, sys.orig_argv = [], [""], "", []
    sys.prefix = sys.base_prefix = sys.exec_prefix = sys.base_exec_prefix = ""
    sys._base_executable = ""  # type: ignore[attr-defined]
    for module in (sys.modules["__main__"], confine):
        module.__file__ = None
    write_frame(CHANNEL_FD, {"ready": True, "layers": layers})
    call = read_frame(CHANNEL_FD, int(config["call_limit"]))
    result = run_call(call)
    try:
        write_frame(CHANNEL_FD, result)
    except (TypeError, ValueError) as exc:
        write_frame(CHANNEL_FD, {"ok": False, "kind": "error", "message": f"result: {exc}"})
    # End of stream now, not after the kernel has torn down the address space at exit.
    os.close(CHANNEL_FD)
    return 0


# -- the zygote ---------------------------------------------------------------------------------


class Zygote:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: set[int] = set()
        # Above the descriptors a worker rearranges (0-3), whatever the zygote opened first.
        opened = os.open(os.devnull, os.O_RDWR)
        self.devnull = fcntl.fcntl(opened, fcntl.F_DUPFD, 10)
        os.close(opened)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def hello(self) -> dict[str, Any]:
        return {
            "op": "hello",
            "pid": os.getpid(),
            "euid": os.geteuid(),
            "python": sys.version.split()[0],
            "landlock_abi": confine.landlock_abi(),
            "seccomp": confine.seccomp_supported(),
        }

    def serve(self) -> None:
        self.send(self.hello())
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ)
        selector.register(self.wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is self.control:
                    try:
                        message = self.control.recv(1 << 16)
                    except ConnectionError:
                        message = b""
                    if not message:
                        return self.shutdown()
                    self.handle(json.loads(message))
                else:
                    os.read(self.wake_r, 4096)
                    self.reap()

    def handle(self, message: dict[str, Any]) -> None:
        if message.get("op") == "spawn":
            self.spawn(message["config"], message.get("ticket"))
        elif message.get("op") == "stop":
            self.shutdown()

    def spawn(self, config: dict[str, Any], ticket: Any) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            status = 70
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                status = worker(theirs.fileno(), config, self.devnull)
            finally:
                _exit(status)
        theirs.close()
        pidfd = os.pidfd_open(pid)
        self.children.add(pid)
        fds = array.array("i", [ours.fileno(), pidfd])
        body = json.dumps({"op": "spawned", "pid": pid, "ticket": ticket}).encode()
        self.control.sendmsg([body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        ours.close()
        os.close(pidfd)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            cpu = usage.ru_utime + usage.ru_stime
            message = {"op": "exited", "pid": pid, "status": status, "cpu_s": cpu}
            self.send(message | {"max_rss_kib": usage.ru_maxrss})

    def send(self, message: dict[str, Any]) -> None:
        self.control.send(json.dumps(message).encode())

    def shutdown(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        sys.exit(0)


# A first compile in a process costs over a millisecond (the parser's one-time set-up): done
# once here, every worker starts with a warm compiler and harness.
WARM_UP = """
import json, re
class Note:
    def __init__(self, text: str) -> None:
        self.text = f"{text!r:>4}"
def run(event, *args, **kwargs):
    try:
        rows = [{k: v for k, v in row.items() if k} for row in event.get("rows", ())]
        found = {m.group(0) for m in re.finditer(r"\\w+", json.dumps(rows))}
        total = sum(x * 2 for x in range(3) if x) + len(found)
    except (KeyError, ValueError) as exc:
        raise RuntimeError("warm-up") from exc
    finally:
        pass
    print("warm", Note("up").text, total, lambda: None is None)
    return {"add": [], "remove": [], "events": [{"n": total, "ok": True, "x": None}]}
"""


def warm_up() -> None:
    stdout, stderr = sys.stdout, sys.stderr
    call = {"name": "warm-up", "code": WARM_UP, "entry": "run", "log_limit": 1024}
    call["event"] = {"rows": [{"a": 1}]}
    try:
        json.dumps(run_call(call))
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        linecache.clearcache()


def main() -> None:
    for name in PRELOADED:
        __import__(name)
    warm_up()
    confine.prepare()
    control = socket.socket(fileno=int(sys.argv[1]))
    zygote = Zygote(control)
    # Workers then never scan (and so never copy) the zygote's objects in a collection.
    gc.freeze()
    try:
        zygote.serve()
    except ConnectionError:  # the kgc process closed the pool (or died) mid-message
        zygote.shutdown()


if __name__ == "__main__":
    main()

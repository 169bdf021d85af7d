"""``SandboxPool``: a warm pool of confined, single-use worker processes for untrusted effects.

The pool starts ``worker.py`` as a zygote (``python -I -S``, empty environment, no descriptor of
ours but its control socket). The zygote forks workers ahead of demand; each confines itself
(``confine.py``) and waits. A call:

1. takes a ready worker and reads its ``ready`` frame: the layers it applied, or why it refused;
2. in strict mode, refuses unless every layer is on (``SandboxUnavailable`` names the missing one);
3. sends one call frame (effect source, entry, event) and asks the zygote for a replacement;
4. waits for one result frame until the wall-time limit; past it, kills the worker through its
   pidfd and waits until the kernel reports it dead (the zygote, its parent, reaps it);
5. reads to end of stream: bytes after the result frame are a protocol violation;
6. kills the worker in every case (a no-op when it already exited) and closes its descriptors.

What crosses back is data, never trusted: the caller validates the value (``kgc.effects.runner``).
A worker's own claims cannot change which hook ran, whether it was sandboxed or which layers were
on: those come from this process and from the ``ready`` frame sent before any effect code ran.
"""

from __future__ import annotations

import array
import contextlib
import json
import logging
import math
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kgc.effects.frames import (
    MAX_MESSAGE_CHARS,
    READY_TIMEOUT_S,
    Deadline,
    Expired,
    bounded_logs,
    compiled,
    recv_frame,
    send_frame,
)
from kgc.errors import SandboxUnavailable

logger = logging.getLogger(__name__)
WORKER = Path(__file__).with_name("worker.py")
_FDS = socket.CMSG_SPACE(2 * array.array("i").itemsize)
_START_TIMEOUT_S = 10.0
_EXIT_WAIT_S = 2.0
_EXITS_KEPT = 1024
Status = Literal["ok", "error", "timeout", "memory", "cpu", "output", "protocol", "crashed"]


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and pool shape. ``memory_bytes`` is what an effect may allocate on top of the
    interpreter it starts in; ``cpu_seconds`` defaults to the wall-time limit, rounded up."""

    timeout_ms: float = 30_000.0
    memory_bytes: int = 64 * 1024 * 1024
    strict: bool = True
    pool_size: int = 4
    uid: int = 65534
    gid: int = 65534
    cpu_seconds: int | None = None
    descriptors: int = 8
    call_limit: int = 4 * 1024 * 1024
    result_limit: int = 1024 * 1024
    log_limit: int = 64 * 1024

    def worker_config(self) -> dict[str, Any]:
        cpu = self.cpu_seconds or max(1, math.ceil(self.timeout_ms / 1000.0))
        return {
            "strict": self.strict,
            "memory_bytes": self.memory_bytes,
            "cpu_seconds": cpu,
            "descriptors": self.descriptors,
            "uid": self.uid,
            "gid": self.gid,
            "call_limit": self.call_limit,
        }


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed call did. ``value`` is the entry function's return value (``ok``)."""

    status: Status
    message: str = ""
    value: Any = None
    logs: tuple[str, ...] = ()
    layers: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    pid: int = 0
    # CPU time the worker used, known when it died without a result (from the zygote's wait4).
    cpu_ms: float | None = None


@dataclass
class _Worker:
    pid: int
    sock: socket.socket
    pidfd: int

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def wait_dead(self, timeout_s: float) -> bool:
        readable, _, _ = select.select([self.pidfd], [], [], timeout_s)
        return bool(readable)

    def close(self) -> None:
        self.sock.close()
        os.close(self.pidfd)


class _WorkerLost(Exception):
    pass


class SandboxPool:
    """Runs effect source code in confined worker processes; thread-safe."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._lock = threading.Condition()
        self._send_lock = threading.Lock()
        self._ready: deque[_Worker] = deque()
        self._exits: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._hello: dict[str, Any] = {}
        self._layers: dict[str, Any] = {}
        self._refused: str | None = None
        self._broken: str | None = None
        self._closed = False
        self.calls = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the zygote and fill the pool (idempotent); raise ``SandboxUnavailable``."""
        with self._lock:
            if self._closed:
                raise SandboxUnavailable("the sandbox pool is closed")
            if self._process is not None and self._broken is None:
                return
            self._start_zygote()
        for _ in range(self.config.pool_size):
            self._request_spawn()

    def _start_zygote(self) -> None:
        self._discard_zygote()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WORKER), str(theirs.fileno())],
                env={},
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd="/",
            )
        except OSError as exc:
            ours.close()
            raise SandboxUnavailable(f"cannot start the sandbox zygote: {exc}") from exc
        finally:
            theirs.close()
        ours.settimeout(_START_TIMEOUT_S)
        try:
            hello = json.loads(ours.recv(1 << 16) or b"null")
        except (TimeoutError, ValueError) as exc:
            process.kill()
            raise SandboxUnavailable(f"the sandbox zygote did not start: {exc}") from exc
        if not isinstance(hello, dict) or hello.get("op") != "hello":
            process.kill()
            _, err = process.communicate(timeout=_EXIT_WAIT_S)
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [repr(hello)]
            raise SandboxUnavailable(f"the sandbox zygote did not start: {last[0]}")
        ours.settimeout(None)
        self._process, self._control, self._hello, self._broken = process, ours, hello, None
        threading.Thread(target=self._listen, args=(ours,), name="kgc-sandbox", daemon=True).start()
        threading.Thread(target=self._drain_stderr, args=(process,), daemon=True).start()
        logger.info("Sandbox zygote %s started (%s)", hello.get("pid"), _describe_host(hello))

    def _discard_zygote(self) -> None:
        """Forget a dead zygote: its workers died with it (parent-death signal); reap it."""
        workers, self._ready = list(self._ready), deque()
        for worker in workers:
            worker.kill()
            worker.close()
        if self._control is not None:
            self._control.close()
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        self._control = self._process = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._ready = list(self._ready), deque()
            control, process = self._control, self._process
            self._lock.notify_all()
        for worker in workers:
            worker.kill()
            worker.close()
        if control is not None:
            control.close()  # the zygote kills its workers and exits on end of stream
        if process is not None:
            try:
                process.wait(timeout=_EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # -- the zygote's messages ------------------------------------------------------------------

    def _listen(self, control: socket.socket) -> None:
        while True:
            try:
                data, ancdata, _, _ = control.recvmsg(1 << 16, _FDS)
            except OSError:
                data, ancdata = b"", []
            if not data:
                with self._lock:
                    if self._control is control:
                        self._broken = "the sandbox zygote exited"
                    self._lock.notify_all()
                return
            self._dispatch(json.loads(data), ancdata)

    def _dispatch(self, message: dict[str, Any], ancdata: list[Any]) -> None:
        if message.get("op") == "exited":
            with self._lock:
                self._exits[message["pid"]] = message
                while len(self._exits) > _EXITS_KEPT:
                    self._exits.popitem(last=False)
                self._lock.notify_all()
        elif message.get("op") == "spawned":
            fds = array.array("i")
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            worker = _Worker(message["pid"], socket.socket(fileno=fds[0]), fds[1])
            with self._lock:
                # An exit report for this pid is an earlier worker's (pids are reused): the zygote
                # reported that exit before it forked this one, on the same ordered socket.
                self._exits.pop(worker.pid, None)
                if not self._closed:
                    self._ready.append(worker)
                    self._lock.notify_all()
                    return
            worker.kill()
            worker.close()

    def _drain_stderr(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        with process.stderr:
            for line in process.stderr:
                logger.warning("Sandbox zygote: %s", line.decode("utf-8", "replace").rstrip())

    def _request_spawn(self) -> None:
        message = {"op": "spawn", "config": self.config.worker_config()}
        with self._send_lock:
            control = self._control
            if control is None:
                return
            try:
                control.send(json.dumps(message).encode())
            except OSError as exc:
                with self._lock:
                    self._broken = f"the sandbox zygote is gone: {exc}"

    # -- calls -----------------------------------------------------------------------------------

    def _take(self) -> _Worker:
        if self._process is None or self._broken is not None:
            self.start()
        deadline = Deadline(READY_TIMEOUT_S)
        with self._lock:
            while not self._ready:
                if self._closed or self._broken is not None:
                    raise SandboxUnavailable(self._broken or "the sandbox pool is closed")
                if not self._lock.wait(deadline.left()) and not self._ready:
                    raise SandboxUnavailable(
                        f"no sandbox worker became ready within {READY_TIMEOUT_S:.0f} s"
                    )
            worker = self._ready.popleft()
        self._request_spawn()
        return worker

    def probe(self) -> dict[str, Any]:
        """Start the pool if needed and spend one worker to learn the layers it applies."""
        if self._refused is not None:
            raise SandboxUnavailable(self._refused)
        worker, layers = self._confined_worker()
        worker.kill()
        worker.close()
        return layers

    def call(
        self, name: str, code: str, event: Any, *, entry: str = "run", timeout_ms: float | None
    ) -> SandboxResult:
        """Run ``entry(event)`` from ``code`` in a fresh confined worker (steps in the module
        docstring). ``SandboxUnavailable`` when no worker can be had or a layer is missing."""
        if self._refused is not None:
            raise SandboxUnavailable(self._refused)
        worker, layers = self._confined_worker()
        try:
            self.calls += 1
            return self._run(worker, layers, name, code, event, entry, timeout_ms)
        finally:
            worker.kill()
            worker.close()

    def _confined_worker(self) -> tuple[_Worker, dict[str, Any]]:
        """A warm worker and its layers. One that died waiting (its zygote was killed, say) is
        replaced once; a second loss, or a refusal, is ``SandboxUnavailable``."""
        for attempt in (1, 2):
            worker = self._take()
            try:
                return worker, self._ready_frame(worker)
            except _WorkerLost as exc:
                worker.kill()
                worker.close()
                self._notice_dead_zygote()
                if attempt == 2:
                    raise SandboxUnavailable(str(exc)) from exc
            except BaseException:
                worker.kill()
                worker.close()
                raise
        raise AssertionError("unreachable")

    def _notice_dead_zygote(self) -> None:
        with self._lock:
            process = self._process
            if process is not None and process.poll() is not None and self._broken is None:
                self._broken = f"the sandbox zygote exited (status {process.returncode})"

    def _ready_frame(self, worker: _Worker) -> dict[str, Any]:
        try:
            ready = recv_frame(worker.sock, 1 << 16, Deadline(READY_TIMEOUT_S))
        except (EOFError, ConnectionError, Expired, OverflowError, ValueError) as exc:
            raise _WorkerLost(f"sandbox worker {worker.pid} never became ready: {exc}") from exc
        if not ready.get("ready"):
            self._refused = f"sandbox refuses to run effects: {ready.get('refused')}"
            raise SandboxUnavailable(self._refused)
        layers: dict[str, Any] = ready["layers"]
        missing = [k for k, v in layers.items() if isinstance(v, str) and v.startswith("missing")]
        if missing and self.config.strict:
            self._refused = f"sandbox refuses to run effects: {missing[0]} is {layers[missing[0]]}"
            raise SandboxUnavailable(self._refused)
        self._layers = layers
        return layers

    def _run(
        self,
        worker: _Worker,
        layers: dict[str, Any],
        name: str,
        code: str,
        event: Any,
        entry: str,
        timeout_ms: float | None,
    ) -> SandboxResult:
        limit_ms = min(timeout_ms or self.config.timeout_ms, self.config.timeout_ms)
        call = {"name": name, "code": code, "entry": entry, "event": event}
        call["compiled"] = compiled(code, f"<effect {name}>")
        call["log_limit"] = self.config.log_limit
        t0 = time.perf_counter()
        send_frame(worker.sock, call, self.config.call_limit)
        deadline = Deadline(limit_ms / 1000.0)
        try:
            reply = recv_frame(worker.sock, self.config.result_limit, deadline)
            trailing = self._trailing(worker, deadline)
        except Expired:
            worker.kill()
            worker.wait_dead(_EXIT_WAIT_S)
            message = f"did not finish within {limit_ms:.0f} ms; killed"
            return self._result(worker, layers, t0, "timeout", message)
        except OverflowError as exc:
            return self._result(worker, layers, t0, "output", str(exc))
        except (EOFError, ConnectionError) as exc:
            return self._died(worker, layers, t0, str(exc))
        except ValueError as exc:
            return self._result(worker, layers, t0, "protocol", f"unreadable result: {exc}")
        if trailing:
            message = f"wrote {trailing} byte(s) after its result frame; result discarded"
            return self._result(worker, layers, t0, "protocol", message)
        return self._reply(worker, layers, t0, reply)

    def _trailing(self, worker: _Worker, deadline: Deadline) -> int:
        """Bytes the worker sent after its result, up to end of stream: its harness closes the
        channel right after the result, so any byte here is the effect's own, and ends it."""
        timeout = deadline.left()
        if timeout <= 0:
            raise Expired
        worker.sock.settimeout(timeout)
        try:
            chunk = worker.sock.recv(1 << 16)
        except TimeoutError:
            raise Expired from None
        except ConnectionError:
            return 0
        return len(chunk)

    def _reply(
        self, worker: _Worker, layers: dict[str, Any], t0: float, reply: Any
    ) -> SandboxResult:
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            return self._result(worker, layers, t0, "protocol", "the result frame is not a result")
        logs = reply.get("logs", [])
        if not isinstance(logs, list) or not all(isinstance(line, str) for line in logs):
            return self._result(worker, layers, t0, "protocol", "'logs' is not a list of text")
        # The worker caps its logs too, but that cap is the effect's to break.
        dropped = reply.get("logs_dropped")
        dropped = dropped if type(dropped) is int else 0
        logs = bounded_logs(
            logs, self.config.log_limit, dropped
        )  # the worker's own cap is its to break
        if reply["ok"]:
            return self._result(worker, layers, t0, "ok", "", reply.get("value"), logs)
        kind = reply.get("kind")
        status: Status = "memory" if kind == "memory" else "error"
        message = str(reply.get("message", ""))[-MAX_MESSAGE_CHARS:]
        return self._result(worker, layers, t0, status, message, None, logs)

    def _died(
        self, worker: _Worker, layers: dict[str, Any], t0: float, detail: str
    ) -> SandboxResult:
        """The worker closed its channel without a result: say why, from its wait status."""
        worker.kill()
        exit_report = self._exit_report(worker)
        cpu_ms = round(float(exit_report.get("cpu_s", 0.0)) * 1000.0, 1)
        status_code = exit_report.get("status")
        if status_code is None:
            message = f"closed its channel without a result ({detail}); killed"
            return self._result(worker, layers, t0, "crashed", message, cpu_ms=cpu_ms)
        if os.WIFSIGNALED(status_code):
            sig = signal.Signals(os.WTERMSIG(status_code))
            cpu_limit = float(self.config.worker_config()["cpu_seconds"])
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_ms >= cpu_limit * 1000):
                message = f"exceeded its CPU limit of {cpu_limit:.0f} s ({sig.name})"
                return self._result(worker, layers, t0, "cpu", message, cpu_ms=cpu_ms)
            message = f"was killed by {sig.name} before returning a result"
            if sig == signal.SIGXFSZ:
                message = "tried to write to a file (SIGXFSZ)"
            return self._result(worker, layers, t0, "crashed", message, cpu_ms=cpu_ms)
        code = os.WEXITSTATUS(status_code)
        message = f"exited with status {code} without a result"
        return self._result(worker, layers, t0, "crashed", message, cpu_ms=cpu_ms)

    def _exit_report(self, worker: _Worker) -> dict[str, Any]:
        worker.wait_dead(_EXIT_WAIT_S)
        deadline = Deadline(_EXIT_WAIT_S)
        with self._lock:
            while worker.pid not in self._exits and deadline.left() > 0:
                self._lock.wait(deadline.left())
            return self._exits.pop(worker.pid, {})

    def _result(
        self,
        worker: _Worker,
        layers: dict[str, Any],
        t0: float,
        status: Status,
        message: str,
        value: Any = None,
        logs: list[str] | None = None,
        *,
        cpu_ms: float | None = None,
    ) -> SandboxResult:
        duration = round((time.perf_counter() - t0) * 1000.0, 4)
        return SandboxResult(
            status, message, value, tuple(logs or ()), dict(layers), duration, worker.pid, cpu_ms
        )

    # -- state -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For ``/ready`` and ``kgc sandbox check``: running or not, layers, refusals."""
        with self._lock:
            ready = len(self._ready)
        state = "closed" if self._closed else "not started" if self._process is None else "ok"
        if self._broken is not None:
            state = "broken"
        if self._refused is not None:
            state = "refusing"
        return {
            "state": state,
            "strict": self.config.strict,
            "warm_workers": ready,
            "calls": self.calls,
            "layers": dict(self._layers),
            "host": dict(self._hello),
            "problem": self._refused or self._broken,
        }


def _describe_host(hello: dict[str, Any]) -> str:
    abi = hello.get("landlock_abi") or "none"
    seccomp = hello.get("seccomp") or "available"
    return f"euid {hello.get('euid')}, Landlock ABI {abi}, seccomp {seccomp}"

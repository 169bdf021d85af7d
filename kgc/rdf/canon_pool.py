"""Worker processes for ``kgc.rdf.canon``: started, reused, killed and always reaped.

A worker is ``canon_worker.py`` run as a script under ``python -I`` (no kgc import, ~35 ms to
start). The pool keeps at most ``KEEP_IDLE`` warm workers; a call takes one (or starts one), and
gives it back only after a clean reply. A worker that overruns its deadline, dies, or breaks the
protocol is killed and waited for at once, so no zombie and no stray process is left behind; the
next call starts a fresh one. Idle workers end at interpreter exit (``atexit``) or on
``close_workers()``; a forked child forgets its parent's workers rather than sharing their pipes.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("canon_worker.py")
KEEP_IDLE = 1
_CHUNK = 1 << 16
_CLOSE_WAIT_S = 2.0


class WorkerTimeout(Exception):
    """The deadline passed before the worker replied; it has been killed and reaped."""


class WorkerDied(Exception):
    """The worker ended or broke the protocol; it has been reaped. ``signal`` is what ended it."""

    def __init__(self, message: str, signal_number: int | None, stderr: str) -> None:
        super().__init__(message)
        self.signal_number = signal_number
        self.stderr = stderr


class Worker:
    """One worker process and its pipes. Used by one thread at a time."""

    def __init__(self, deadline: float) -> None:
        # Closed with the pipes in _close_files, when the worker is dropped.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", str(WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                bufsize=0,
            )
        except OSError:
            self._stderr.close()
            raise
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in = self.process.stdin.fileno()
        self._out = self.process.stdout.fileno()
        os.set_blocking(self._in, False)
        os.set_blocking(self._out, False)
        self._pending = b""
        logger.debug("started canonicalization worker %d", self.process.pid)
        try:
            self._expect_ready(deadline)
        except BaseException:
            self.kill()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def request(self, header: str, body: bytes, deadline: float) -> tuple[str, bytes]:
        """Send one request and wait for its reply until ``deadline`` (``time.monotonic``)."""
        try:
            self._write(header.encode("ascii") + body, deadline)
            kind, size = self._read_line(deadline).split()
            return kind.decode("ascii"), self._read_exact(int(size), deadline)
        except (OSError, ValueError) as exc:
            raise self._died(f"the worker broke off ({type(exc).__name__}: {exc})") from exc
        except BaseException:
            self.kill()  # interrupted (KeyboardInterrupt, say): never leave it computing
            raise

    def kill(self) -> None:
        """Kill the process (if it still runs), reap it and close its pipes."""
        self._reap()
        self._close_files()

    def close(self) -> None:
        """Let an idle worker end on end of input; kill it if it does not."""
        try:
            self._close_files()
            self.process.wait(timeout=_CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def _expect_ready(self, deadline: float) -> None:
        try:
            line = self._read_line(deadline)
        except (OSError, ValueError) as exc:
            raise self._died(f"the worker did not start ({exc})") from exc
        if line != b"ready":
            raise self._died(f"the worker did not start: it wrote {line[:80]!r}")

    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            self._wait(None, self._in, deadline)
            try:
                view = view[os.write(self._in, view[:_CHUNK]) :]
            except BlockingIOError:
                continue

    def _read_line(self, deadline: float) -> bytes:
        while b"\n" not in self._pending:
            self._pending += self._read_some(deadline)
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _read_exact(self, size: int, deadline: float) -> bytes:
        chunks = [self._pending[:size]]
        got = len(chunks[0])
        self._pending = self._pending[size:]
        while got < size:
            chunk = self._read_some(deadline, size - got)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_some(self, deadline: float, most: int = _CHUNK) -> bytes:
        while True:
            self._wait(self._out, None, deadline)
            try:
                chunk = os.read(self._out, min(most, _CHUNK))
            except BlockingIOError:
                continue
            if not chunk:
                raise self._died("the worker ended without a reply")
            return chunk

    def _wait(self, readable: int | None, writable: int | None, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            reads, writes, _ = select.select(
                [] if readable is None else [readable],
                [] if writable is None else [writable],
                [],
                remaining,
            )
            if reads or writes:
                return
        self.kill()
        raise WorkerTimeout

    def _reap(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            logger.debug("killed canonicalization worker %d", self.process.pid)
        self.process.wait()

    def _died(self, message: str) -> WorkerDied:
        self._reap()
        stderr = self._stderr_text()
        self._close_files()
        code = self.process.returncode
        number = -code if code is not None and code < 0 else None
        if number is not None:
            message += f"; it was ended by {signal.Signals(number).name}"
        elif code:
            message += f"; it exited with status {code}"
        return WorkerDied(message, number, stderr)

    def _stderr_text(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _close_files(self) -> None:
        for file in (self.process.stdin, self.process.stdout, self._stderr):
            if file is not None:
                file.close()


class Pool:
    """Idle workers kept warm between calls; at most ``keep`` of them."""

    def __init__(self, keep: int = KEEP_IDLE) -> None:
        self._keep = keep
        self._idle: list[Worker] = []
        self._forgotten: list[Worker] = []
        self._lock = threading.Lock()

    def take(self, deadline: float) -> Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return Worker(deadline)

    def give_back(self, worker: Worker) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(worker)
                return
        worker.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's workers without touching them."""
        self._forgotten.extend(self._idle)  # kept referenced: collecting them would warn
        self._idle = []
        self._lock = threading.Lock()


POOL = Pool()
atexit.register(POOL.close)
os.register_at_fork(after_in_child=POOL.forget)

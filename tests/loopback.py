"""Loopback helpers for tests: a throwaway HTTP server on 127.0.0.1 (a free port), stopped when
the block ends, and waiting for a ``kgc serve`` process to answer."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on loopback; yields the base URL (``http://127.0.0.1:PORT``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def wait_healthy(
    process: subprocess.Popen[bytes], url: str, output: Callable[[], str], timeout_s: float
) -> None:
    """Wait until the ``kgc serve`` at ``url`` answers ``/health`` with 200; ``RuntimeError``
    with its log (``output()``) when it exits first or does not answer in ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kgc serve exited with {process.returncode}:\n{output()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"kgc serve did not answer /health in {timeout_s:.0f} s:\n{output()}")

"""A real ``redis-server`` on loopback for the cache tests.

``scripts/install-redis.sh`` provides the binary (from PATH, or Debian's package unpacked into
``.cache/redis``). When it cannot, the tests that need Redis fail, saying why: they do not skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

INSTALL = Path(__file__).resolve().parents[1] / "scripts" / "install-redis.sh"


class RedisServer:
    """One redis-server bound to 127.0.0.1 on a free port, without persistence."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.log = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.directory)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}: {self._log()}")
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except redis.ConnectionError:
                time.sleep(0.02)
        self.kill()
        pytest.fail(f"redis-server on port {self.port} did not answer PING in 10 s: {self._log()}")

    def kill(self) -> None:
        """SIGKILL: the server vanishes without a goodbye, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the server still accepts connections but never answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def _log(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


def install_redis() -> str:
    """The path of a runnable redis-server; fails the test session's Redis tests if none."""
    try:
        done = subprocess.run(
            ["bash", str(INSTALL)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"{INSTALL} could not be run: {exc}", pytrace=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(
            f"{INSTALL} could not provide redis-server (exit {done.returncode}); "
            f"the Redis cache tests need one.\n{done.stderr[-3000:]}",
            pytrace=False,
        )
    return lines[-1]


@pytest.fixture(scope="session")
def redis_binary() -> str:
    return install_redis()


@pytest.fixture
def redis_server(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh server per test, so a test may kill or pause it."""
    server = RedisServer(redis_binary, tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.resume()
    server.kill()


def free_port() -> int:
    """A loopback port that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

"""Helpers for the server tests: an in-process app (TestClient) and a real ``kgc serve`` process.

The process binds 127.0.0.1 on a free port; nothing leaves the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hookfiles
from loopback import wait_healthy
from starlette.testclient import TestClient

from kgc import KnowledgeEngine
from kgc.server import ServerSettings, create_app

READ_KEY = "read-key-000000000000000000000001"
WRITE_KEY = "write-key-00000000000000000000002"
ADMIN_KEY = "admin-key-00000000000000000000003"
KEYS = f"{READ_KEY}:read,{WRITE_KEY}:write,{ADMIN_KEY}:admin"
BAD_LABEL = "<urn:example:bad>"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def write_veto_hook(folder: Path) -> Path:
    """The shared veto hook (``hookfiles``), refusing the object BAD_LABEL."""
    return hookfiles.write_veto_hook(folder, BAD_LABEL)


def make_client(engine: KnowledgeEngine, **settings: object) -> TestClient:
    values: dict[str, object] = {"api_keys": KEYS, **settings}
    app = create_app(engine, ServerSettings(**values), keepalive_s=0.5)  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """A running ``kgc serve`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_server(tmp_path: Path, **env: str) -> Served:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("KGC_") and k != "MAX_CONCURRENCY"
    }
    environment.update(env)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "kgc", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, f"http://127.0.0.1:{port}", log, env)
    try:
        wait_healthy(process, served.url, served.output, 30)
    except RuntimeError:
        served.stop()
        raise
    return served

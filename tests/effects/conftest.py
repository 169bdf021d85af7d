"""A real sandbox pool (zygote, confined workers) shared by a module, and targets to attack."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_targets import SECRET, Targets

from kgc.effects.pool import SandboxConfig, SandboxPool


@pytest.fixture(scope="module")
def pool(targets: Targets) -> Iterator[SandboxPool]:
    """Started after ``targets``, so the host's environment holds the secret when it starts."""
    sandbox = SandboxPool(SandboxConfig(timeout_ms=1500, memory_bytes=64 << 20, cpu_seconds=3))
    sandbox.start()
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def targets() -> Iterator[Targets]:
    os.environ["HOST_SECRET_TOKEN"] = SECRET
    root = tempfile.mkdtemp(prefix="kgc-sandbox-targets-", dir="/tmp")
    os.chmod(root, 0o755)
    secret_file = os.path.join(root, "secret.txt")
    Path(secret_file).write_text(SECRET)
    os.chmod(secret_file, 0o644)
    open_dir = os.path.join(root, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix_path = os.path.join(root, "target.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen()
    os.chmod(unix_path, 0o777)
    abstract_name = f"kgc-sandbox-target-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + abstract_name)
    abstract.listen()
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield Targets(tcp, udp, unix, unix_path, abstract, abstract_name, victim, secret_file, open_dir)
    victim.kill()
    victim.wait()
    for sock in (tcp, udp, unix, abstract):
        sock.close()
    shutil.rmtree(root, ignore_errors=True)
    os.environ.pop("HOST_SECRET_TOKEN", None)

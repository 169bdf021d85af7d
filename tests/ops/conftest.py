"""Fixtures for the operations tests: promtool and a live ``kgc serve`` with a lockchain."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ops_helpers import (
    INSTALL_PROMTOOL,
    Server,
    clean_environment,
    exercise,
    free_port,
    kgc_serve_command,
    start_server,
    write_veto_hook,
)


@pytest.fixture(scope="session")
def promtool() -> Iterator[str]:
    """A runnable promtool (scripts/install-promtool.sh); skips, saying why, if none.

    At the end of the session no promtool or Prometheus process may be left running."""
    try:
        done = subprocess.run(
            ["bash", str(INSTALL_PROMTOOL)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"promtool cannot be installed here: {INSTALL_PROMTOOL} failed: {exc}")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.skip(
            f"promtool cannot be installed here: {INSTALL_PROMTOOL} exited {done.returncode}: "
            f"{done.stderr.strip()[-1500:]}"
        )
    yield lines[-1]
    assert leftover_prometheus_processes() == []


def leftover_prometheus_processes() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            exe = os.readlink(proc / "exe")
        except OSError:
            continue
        if Path(exe).name in ("prometheus", "promtool"):
            found.append(f"{proc.name}: {exe}")
    return found


@pytest.fixture(scope="session")
def live_server() -> Iterator[Server]:
    """``kgc serve`` with a lockchain and a vetoing hook, after a few transactions."""
    with tempfile.TemporaryDirectory(prefix="kgc-ops-") as scratch:
        root = Path(scratch)
        port = free_port()
        env = clean_environment(
            {
                "BASE_PATH": str(root / "data"),
                "KGC_HOOKS_PATH": str(write_veto_hook(root / "hooks")),
                "KGC_ALLOW_ANONYMOUS_WRITES": "true",
                "KGC_ENABLE_OBSERVABILITY": "false",
            }
        )
        server = start_server(kgc_serve_command(port), root / "serve.log", port, env)
        try:
            exercise(server.url)
            yield server
        finally:
            assert server.stop() == 0, server.output()


@pytest.fixture(scope="session")
def live_metrics(live_server: Server) -> str:
    """The text of GET /metrics from the live server."""
    answer = httpx.get(f"{live_server.url}/metrics", timeout=10)
    assert answer.status_code == 200
    return answer.text

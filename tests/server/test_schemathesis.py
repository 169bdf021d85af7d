"""Schemathesis against the served OpenAPI document: no input may produce a server error.

Runs the schemathesis CLI on a real ``kgc serve`` process (admin key, so every route is reached),
with a bounded number of examples per operation. The endless event stream is left out.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from served import ADMIN_KEY, KEYS, WRITE_KEY, Served, start_server

EXAMPLES = "25"


def _schemathesis(server: Served, key: str, *options: str) -> None:
    """Run the CLI's server-error check on ``server`` (stopped afterwards); fail with its report."""
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    args = [cli, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error"]
    args += ["--max-examples", EXAMPLES, *options]
    args += ["--header", f"Authorization: Bearer {key}", "--no-color"]
    try:
        run = subprocess.run(args, capture_output=True, text=True, timeout=240, check=False)
    finally:
        server.stop()

    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-4000:]
    assert "Traceback" not in server.output()


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    server = start_server(tmp_path, KGC_API_KEYS=KEYS, KGC_MAX_CONCURRENCY="64")
    _schemathesis(
        server, ADMIN_KEY, "--exclude-path", "/receipts/stream", "--request-timeout", "10"
    )


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_in_the_resolution_routes(tmp_path: Path) -> None:
    """The run above sees these routes disabled (404); this one enables them."""
    server = start_server(
        tmp_path, KGC_API_KEYS=KEYS, ENABLE_RESOLUTION="true", RESOLUTION_TIMEOUT_MS="200"
    )
    _schemathesis(server, WRITE_KEY, "--include-path-regex", "^/(proposals|resolutions)")

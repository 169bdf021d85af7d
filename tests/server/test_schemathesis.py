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
from served import ADMIN_KEY, KEYS, start_server

EXAMPLES = "25"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    server = start_server(tmp_path, KGC_API_KEYS=KEYS, KGC_MAX_CONCURRENCY="64")
    try:
        run = subprocess.run(
            [
                cli,
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                EXAMPLES,
                "--exclude-path",
                "/receipts/stream",
                "--header",
                f"Authorization: Bearer {ADMIN_KEY}",
                "--request-timeout",
                "10",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        server.stop()

    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-4000:]
    assert "Traceback" not in server.output()

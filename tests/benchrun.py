"""Run a script of ``benchmarks/`` as the README does, for the smoke tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_benchmark(script: str | Path, *args: str) -> str:
    """``python benchmarks/<script> args``: its standard output; fails with its stderr unless it
    exits 0 within 300 s."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

"""The transaction benchmark runs end to end and prints its whole table (timings are not judged)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "transactions.py"
ROWS = [
    "raw pyoxigraph extend",
    "raw pyoxigraph ASK query",
    "kgc apply, no hooks",
    "kgc apply, 1 ASK hook",
    "kgc apply, 10 hooks",
    "kgc apply, 1 SHACL hook",
]


def test_quick_benchmark_prints_the_table() -> None:
    args = ["--quick", "--iterations", "20", "--warmup", "2"]
    args += ["--shacl-iterations", "3", "--shacl-warmup", "1", "--quiet"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("size", "configuration", "p50 us", "p50 target", "p99 us", "p99 target"):
        assert heading in out
    for line in ("pyoxigraph 0.", "cores", "targets:"):
        assert line in out
    table = [line for line in out.splitlines() if line.strip().startswith("10k ")]
    assert [row for row in ROWS if not any(row in line for line in table)] == []
    assert len(table) == len(ROWS)
    assert "1 ASK hook, 10k: p50" in out and "1 ASK hook, 10k: p99" in out

"""The SHACL scale benchmark runs end to end at tiny sizes and prints its table (times not judged).

It replicates the Gates Hillman Center model from ``../shared/data/brick`` and skips without it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from benchrun import run_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "shacl_scale.py"
GHC = Path(__file__).resolve().parents[2] / "shared" / "data" / "brick" / "ghc_brick.ttl"
ROW = re.compile(r"\s*(?P<size>\d+[kM]?)\s+(?P<kind>incremental|full) \(scope=")
COLUMNS = ["size", "measurement", "p50 ms", "p50 target", "p99 ms", "p99 target", "apply p50 ms"]


def run(*args: str) -> str:
    if not GHC.is_file():
        pytest.skip(f"Brick model not found at {GHC}: clone shared/ beside the checkout")
    base = ["--repeats", "5", "--warmup", "1", "--full-runs", "1", "--source", str(GHC)]
    return run_benchmark(SCRIPT, *base, *args)


def rows(out: str) -> dict[tuple[str, str], str]:
    found = (ROW.match(line) for line in out.splitlines())
    return {(m["size"], m["kind"]): m.string for m in found if m}


def test_scale_benchmark_prints_every_row_and_judges_the_larger_size() -> None:
    out = run("--sizes", "2000,4000")

    head = next(line for line in out.splitlines() if line.lstrip().startswith("size "))
    assert [column for column in COLUMNS if column not in head] == []
    table = rows(out)
    assert set(table) == {(s, k) for s in ("2k", "4k") for k in ("incremental", "full")}
    assert "<=" in table[("4k", "incremental")]  # the target is printed beside the figure
    assert "incremental SHACL, 4k: p50" in out and "its 2k figure (target <= 2.0x)" in out
    assert "full, 4k: 1 run(s)" in out
    assert "total run time" in out


def test_a_full_run_over_its_time_bound_is_reported_without_a_figure() -> None:
    out = run("--sizes", "2000", "--full-timeout", "0.01")

    assert "not finished within 0.01 s: no figure" in rows(out)[("2k", "full")]
    assert "n/a   incremental SHACL: one size only" in out

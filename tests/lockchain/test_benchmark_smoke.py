"""The lockchain benchmark runs end to end; its header and every row print (timings not judged)."""

from __future__ import annotations

from pathlib import Path

from benchrun import run_benchmark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lockchain.py"
ROWS = {
    "(a)": "disk, no lockchain (baseline)",
    "(b)": "disk, journal fsync, anchor batch 1",
    "(c)": "disk, journal fsync, anchor batch 100",
    "(d)": "disk, journal no fsync, anchor batch 100",
    "(e0)": "memory, no lockchain (baseline)",
    "(e)": "memory, journal fsync, anchor batch 100",
    "(v)": "verify_lockchain, no replay",
    "(vr)": "verify_lockchain, with replay",
}
HEADER = [
    "kgc lockchain benchmark",
    "python 3.",
    "pyoxigraph 0.",
    "kgc ",
    "cores",
    "load average at start:",
    "disk fsync latency:",
    "load average at end:",
]
COLUMNS = ["row", "configuration", "p50 us", "p99 us", "p50 +%", "p50 +% target", "receipts/s"]
COLUMNS += ["rate target", "max lag", "end lag", "flush ms", "verify"]


def test_quick_benchmark_prints_every_row(tmp_path: Path) -> None:
    args = ["--quick", "--iterations", "20", "--warmup", "2", "--receipts", "300", "--quiet"]
    out = run_benchmark(SCRIPT, *args, "--tmpdir", str(tmp_path))
    assert [line for line in HEADER if line not in out] == []
    head = next(line for line in out.splitlines() if line.startswith("row "))
    assert [column for column in COLUMNS if column not in head] == []
    table = {line.split()[0]: line for line in out.splitlines() if line.startswith("(")}
    assert set(table) == set(ROWS)
    for tag, label in ROWS.items():
        assert label in table[tag]
        if tag not in ("(a)", "(e0)"):
            assert table[tag].rstrip().endswith("ok"), table[tag]
    assert "<=10% PASS" in table["(c)"] or "<=10% FAIL" in table["(c)"]
    assert ">=20,000 PASS" in table["(v)"] or ">=20,000 FAIL" in table["(v)"]
    assert "targets:" in out and "at batch 100 the lockchain adds" in out
    assert "verify_lockchain without replay:" in out
    assert out.count("kept up") + out.count("FELL BEHIND") == 4

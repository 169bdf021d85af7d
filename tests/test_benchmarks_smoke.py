"""The transaction benchmark runs end to end and prints its whole table (timings are not judged)."""

from __future__ import annotations

from pathlib import Path

from benchrun import run_benchmark

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
    out = run_benchmark(SCRIPT, *args)
    for heading in ("size", "configuration", "p50 us", "p50 target", "p99 us", "p99 target"):
        assert heading in out
    for line in ("pyoxigraph 0.", "cores", "targets:"):
        assert line in out
    table = [line for line in out.splitlines() if line.strip().startswith("10k ")]
    assert [row for row in ROWS if not any(row in line for line in table)] == []
    assert len(table) == len(ROWS)
    assert "1 ASK hook, 10k: p50" in out and "1 ASK hook, 10k: p99" in out


HOOKS_SCRIPT = SCRIPT.parent / "hooks.py"
HOOK_COUNTS = ["1", "100", "1000", "10000"]


def _figures(line: str) -> list[float]:
    return [float(cell.replace(",", "")) for cell in line.split() if cell[:1].isdigit()]


def test_quick_hook_benchmark_prints_its_tables() -> None:
    args = ["--quick", "--no-shacl", "--iterations", "5", "--warmup", "1", "--quiet"]
    out = run_benchmark(HOOKS_SCRIPT, *args)
    for heading in ("hooks", "workload", "planner", "p50 ms", "p99 ms", "eval/tx", "skip/tx"):
        assert heading in out
    for line in ("load average at start", "load average at end", "hook mix", "targets:"):
        assert line in out
    rows = [line.split() for line in out.splitlines()]
    timed = [r for r in rows if len(r) > 3 and r[0] in HOOK_COUNTS and r[1] in ("add", "set")]
    for count in HOOK_COUNTS:
        assert any(r[0] == count and r[3] == "on" for r in timed), count
    for row in timed:
        assert len(_figures(" ".join(row[4:]))) >= 5, row
    assert "1,000 hooks, add point: p99" in out and "1,000 hooks, set value: p99" in out
    per_minute = next(line for line in out.splitlines() if line.startswith("evaluations per"))
    assert _figures(per_minute.split(":", 1)[1])[0] > 0
    assert "SHACL rows: left out (--no-shacl)" in out


def test_http_benchmark_serves_and_prints_both_targets() -> None:
    """``python benchmarks/http.py`` (the issue's name) starts kgc serve and drives it."""
    out = run_benchmark(SCRIPT.parent / "http.py", "--seconds", "0.5", "--rates", "50,500")
    assert "target >= 1,000" in out
    assert "target p99 <= 10 ms" in out
    rows = [line for line in out.splitlines() if line.strip().startswith(("50 ", "500 "))]
    assert len(rows) == 2 and all(line.split()[-1] in ("0", "meets", "MISSES") for line in rows)


def test_resolution_benchmark_prints_every_strategy_beside_its_target() -> None:
    """``python benchmarks/resolution.py``: 100 proposals of 100 quads, each strategy."""
    out = run_benchmark(SCRIPT.parent / "resolution.py", "--repeats", "2")
    assert "100 proposals of 100 quads (10,000 stances)" in out
    for heading in ("strategy", "median ms", "target", "conflicts"):
        assert heading in out
    strategies = ["voting", "merging", "crdt", "priority", "consensus"]
    rows = [line.split() for line in out.splitlines()]
    table = [r for r in rows if len(r) > 6 and r[0] in strategies and r[4] == "<="]
    assert [r[0] for r in table] == strategies
    assert all(r[6] in ("PASS", "FAIL") and float(r[1]) > 0 for r in table)
    assert "round end to end (voting, in-memory engine" in out


SANDBOX_SCRIPT = SCRIPT.parent / "sandbox.py"


def test_quick_sandbox_benchmark_prints_its_table_with_every_layer_on() -> None:
    out = run_benchmark(SANDBOX_SCRIPT, "--calls", "40", "--warmup", "5")
    assert "NOT ALL LAYERS ON" not in out
    for layer in ("user: ", "no_new_privs: True", "landlock: ABI", "seccomp: "):
        assert layer in out
    rows = [line for line in out.splitlines() if line.startswith("sandboxed call")]
    assert len(rows) == 2
    for row in rows:
        figures = _figures(row.split("  ", 1)[1])  # after the row's name
        assert figures[1] == 2.0 and figures[3] == 10.0  # the targets, beside p50 and p99
        assert "PASS" in row or "FAIL" in row
    limits = [line for line in out.splitlines() if "within 10%" in line]
    assert [line.split(" (")[0] for line in limits] == ["memory"] * 3 + ["wall time"] * 2 + [
        "CPU time"
    ]
    # Each limit was reached (the call ended by it), whatever the ratio on a loaded machine.
    assert [line.split("(")[1].split(")")[0] for line in limits] == ["ok"] * 3 + ["timeout"] * 2 + [
        "cpu"
    ]

"""The demo's summary, as printed by ``kgc demo``."""

from __future__ import annotations

import math

from kgc.demo.runner import DemoReport

_SHOWN_UNEXPECTED = 5


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def format_report(report: DemoReport) -> str:
    replay = report.replay
    lines = [
        f"kgc demo: {report.source}",
        f"  triples loaded     {report.triples_loaded:,} in {report.load_seconds:.2f} s",
        f"  policy             {len(report.hooks)} hooks, digest {report.policy_digest}",
        *(f"    pack {pack}" for pack in report.packs),
        f"  changes            {replay.transactions:,} (seed {report.seed})",
        f"  committed          {replay.committed:,}",
        f"  vetoed             {replay.vetoed:,}",
        *_veto_lines(report),
        f"  failed             {replay.failed:,} (hook errors or timeouts)",
        f"  unexpected         {len(replay.unexpected):,}",
        *(f"    {outcome}" for outcome in replay.unexpected[:_SHOWN_UNEXPECTED]),
        f"  hooks evaluated    {replay.hooks_evaluated:,}; skipped by the planner "
        f"{replay.hooks_skipped:,}",
        f"  condition cache    {report.cache_hits:,} hits of {report.cache_lookups:,} lookups",
        f"  throughput         {_throughput(report)}",
        f"  apply latency      p50 {percentile(replay.latencies_ms, 0.5):.2f} ms, "
        f"p99 {percentile(replay.latencies_ms, 0.99):.2f} ms",
        f"  triples now        {report.triples_final:,}",
        f"  state digest       {report.state_digest}",
        f"  recomputed digest  {report.recomputed_digest} "
        f"({'matches' if report.digest_matches else 'DIFFERS'})",
        *_lockchain_lines(report),
    ]
    return "\n".join(lines)


def _lockchain_lines(report: DemoReport) -> list[str]:
    if report.lockchain is None:
        return []
    anchored = "all anchored" if report.anchor_lag == 0 else f"{report.anchor_lag} not anchored"
    return [
        f"  lockchain          {report.lockchain}: {report.receipts_sealed:,} receipts sealed "
        f"and signed, {anchored}",
        f"                     check it with: kgc lockchain verify {report.lockchain} --replay",
    ]


def _veto_lines(report: DemoReport) -> list[str]:
    width = max((len(name) for name in report.hooks), default=0)
    counts = report.replay.vetoes_by_hook
    return [f"    {name:<{width}}  {counts[name]:,}" for name in report.hooks]


def _throughput(report: DemoReport) -> str:
    replay = report.replay
    if replay.seconds <= 0:
        return "n/a"
    rate = replay.transactions / replay.seconds
    return f"{rate:,.1f} tx/s ({replay.transactions:,} transactions in {replay.seconds:.2f} s)"

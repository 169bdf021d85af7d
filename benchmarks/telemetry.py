"""Telemetry overhead: ``apply`` latency with tracing off, on (sampled and not) and with metrics.

    python benchmarks/telemetry.py [MODE ...] [--n 3000]

Modes (each in a process of its own, so a tracer provider never leaks between them):

* ``plain``: no telemetry configured (the no-op path every library user gets);
* ``metrics``: a ``Metrics`` registry attached, rendered once at the end;
* ``sdk``: the OpenTelemetry SDK with a batch processor and an exporter that discards
  (ratio 1.0: every span recorded and handed over; nothing leaves the process);
* ``sdk-unsampled``: the SDK with sampling ratio 0 (spans created, none recorded).

Workload: an in-memory engine with two pre-commit hooks and one post-commit hook whose
conditions read the added quads (the planner cannot skip them), ``n`` distinct one-quad
additions, each committed: 1 transaction span, 3 hook spans, 3 condition spans, 1 effect span.
Times are ``perf_counter_ns`` around ``apply``; the first 200 are warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

MODES = ("plain", "metrics", "sdk", "sdk-unsampled")
WARMUP = 200
ADDS = "ASK { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } }"


def measure(mode: str, n: int) -> dict[str, Any]:
    from kgc import Delta, Hook, KnowledgeEngine, SparqlAsk

    provider = None
    if mode.startswith("sdk"):
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        from kgc.telemetry import configure_tracing

        class Discard(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        ratio = 0.0 if mode == "sdk-unsampled" else 1.0
        provider = configure_tracing(
            enabled=True, sampling_ratio=ratio, exporter=Discard(), install_global=False
        )
        assert provider is not None
    engine = KnowledgeEngine()
    engine.hooks.register(Hook("guard-a", SparqlAsk(ADDS.replace("?o", '"never"'))))
    engine.hooks.register(Hook("guard-b", SparqlAsk(ADDS.replace("?p", "<urn:never>"))))
    engine.hooks.register(Hook("notify", SparqlAsk(ADDS), phase="post", run=lambda e: None))
    metrics = None
    if mode == "metrics":
        from kgc.telemetry import Metrics

        metrics = Metrics(high_latency_ms=None, memory_log_interval_s=None).attach(engine)
    times: list[int] = []
    for i in range(n + WARMUP):
        delta = Delta.from_text(f'<urn:s{i}> <urn:p> "{i}" .')
        t = time.perf_counter_ns()
        receipt = engine.apply(delta)
        times.append(time.perf_counter_ns() - t)
        assert receipt.committed and len(receipt.effects) == 1, receipt
    if metrics is not None:
        metrics.render()
    if provider is not None:
        provider.shutdown()
    engine.close()
    timed = sorted(times[WARMUP:])
    return {
        "mode": mode,
        "n": n,
        "p50_us": timed[len(timed) // 2] / 1000,
        "p99_us": timed[int(len(timed) * 0.99)] / 1000,
        "mean_us": statistics.fmean(timed) / 1000,
    }


def span_cost(calls: int = 200_000) -> float:
    """ns per ``tracing.span`` enter and exit with no SDK configured."""
    from kgc.telemetry import tracing

    t = time.perf_counter_ns()
    for _ in range(calls):
        with tracing.span("kgc.condition", {"kgc.hook": "x"}):
            pass
    return (time.perf_counter_ns() - t) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("modes", nargs="*", default=list(MODES))
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(measure(args.modes[0], args.n))
        return
    for mode in args.modes:
        out = subprocess.run(
            [sys.executable, __file__, mode, "--n", str(args.n), "--child"],
            capture_output=True,
            text=True,
            check=True,
        )
        print(out.stdout.strip())
    print({"no-op span enter+exit ns": round(span_cost(), 1)})


if __name__ == "__main__":
    main()

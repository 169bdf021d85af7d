"""``GET /health`` (liveness), ``GET /ready`` (readiness) and ``GET /metrics`` (Prometheus text).

Liveness answers while the process runs. Readiness runs one check per part and answers 503 with
the failures listed: the store (a count under the lock), the condition cache, observability and
the effect sandbox (its layers; a failure when strict mode finds one missing), and the lockchain
(its journal answers; a git anchorer that is retrying after an error is reported, not failed).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from kgc.server.errors import REQUEST_ERROR_KINDS
from kgc.server.state import AppState

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


async def health(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    return JSONResponse(
        {
            "status": "healthy",
            "timestamp": _now(),
            "uptime": round(_uptime(state), 3),
            "memory": memory(),
        }
    )


async def ready(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    results = await run_in_threadpool(run_checks, state)
    failures = [f"{name}: {detail}" for name, (ok, detail) in results.items() if not ok]
    checks = {name: detail for name, (_, detail) in results.items()}
    body: dict[str, object] = {
        "status": "not_ready" if failures else "ready",
        "timestamp": _now(),
        "checks": checks,
    }
    if failures:
        body["failures"] = failures
    return JSONResponse(body, status_code=503 if failures else 200)


async def metrics(request: Request) -> Response:
    return PlainTextResponse(metrics_text(request.app.state.kgc), media_type=PROMETHEUS)


def metrics_text(state: AppState) -> str:
    """Prometheus text: the engine's series (``kgc.telemetry.Metrics``: latency, hooks, errors,
    memory, cache, queue) and what only the server knows (capacity, streams, refusals)."""
    queue = state.queue
    state.metrics.set_queue(queue.depth, queue.high, queue.low)
    for kind in REQUEST_ERROR_KINDS:  # present at 0 from the first scrape, so rate() sees the first
        state.metrics.record_error(kind, 0)
    lines = [state.metrics.render().rstrip("\n")]
    gauges = (
        ("kgc_queue_capacity", "Depth at which writes get 503.", queue.capacity),
        ("kgc_receipt_stream_subscribers", "Live receipt streams.", state.receipts.subscribers),
    )
    for name, text, value in gauges:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {value}"]
    lines += [
        "# HELP kgc_queue_rejected_total Writes refused by backpressure, by reason.",
        "# TYPE kgc_queue_rejected_total counter",
    ]
    for reason, count in queue.rejected.items():
        lines.append(f'kgc_queue_rejected_total{{reason="{reason}"}} {count}')
    return "\n".join(lines) + "\n"


def run_checks(state: AppState) -> dict[str, tuple[bool, str]]:
    checks: dict[str, Callable[[AppState], str]] = {
        "store": _store,
        "cache": _cache,
        "observability": _observability,
        "sandbox": _sandbox,
        "lockchain": _lockchain,
    }
    results: dict[str, tuple[bool, str]] = {}
    for name, check in checks.items():
        try:
            results[name] = (True, check(state))
        except Exception as exc:  # a readiness check reports every failure, whatever its kind
            results[name] = (False, f"{type(exc).__name__}: {exc}")
    return results


def _observability(state: AppState) -> str:
    """Whether spans go anywhere: the OpenTelemetry SDK installed (``configure_tracing``) or not."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if type(provider).__module__.startswith("opentelemetry.sdk"):
        return "tracing: OpenTelemetry SDK installed"
    return "tracing: not configured (spans are no-ops)"


def _sandbox(state: AppState) -> str:
    """Ready when effects can run confined: started, every layer on (or, not strict, named)."""
    status = state.engine.transactions.effects.status()
    if status["state"] == "disabled":
        return "disabled (ENABLE_SANDBOXING=false): effect code from hook files never runs"
    if status["state"] != "ok" or not status["layers"]:
        raise RuntimeError(f"sandbox {status['state']}: {status['problem'] or 'starting'}")
    layers = status["layers"]
    missing = sorted(k for k, v in layers.items() if str(v).startswith("missing"))
    on = ", ".join(f"{k} ({_brief(v)})" for k, v in layers.items() if k not in missing)
    text = f"ok: {status['warm_workers']} warm worker(s); layers on: {on}"
    return text + (f"; missing (not strict): {', '.join(missing)}" if missing else "")


def _brief(value: object) -> str:
    if isinstance(value, dict):
        return f"AS {value.get('RLIMIT_AS', 0) >> 20} MiB, CPU {value.get('RLIMIT_CPU')} s"
    return str(value)


def _store(state: AppState) -> str:
    state.engine.query("ASK { }")
    return "ok"


def _cache(state: AppState) -> str:
    cache = state.engine.transactions.cache
    if cache is None or not cache.enabled:
        return "disabled"
    stats = cache.stats()
    if stats.l2_errors:
        return f"ok ({stats.l2_errors} second-level errors so far)"
    return "ok"


def _lockchain(state: AppState) -> str:
    engine = state.engine
    if engine.journal is None:
        return "not configured"
    engine.journal.next_seq()
    anchorer = engine.anchorer
    if anchorer is not None:
        # Anchoring retries with backoff and never blocks a commit: a failure degrades, not fails.
        if anchorer.last_error is not None:
            return f"ok, but anchoring is retrying ({anchorer.last_error}); lag {anchorer.lag}"
        return f"ok (anchoring lag {anchorer.lag})"
    return "ok"


def memory() -> dict[str, int]:
    """Resident and peak memory of this process, in bytes.

    The peak is never below the current size: ``ru_maxrss`` is the kernel's high-water mark,
    updated from its own accounting at other moments than ``/proc/self/statm`` is read, so a
    fresh ``rss`` can exceed it for a while.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = peak if sys.platform == "darwin" else peak * 1024
    rss = peak
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    return {"rss": rss, "peak_rss": max(peak, rss)}


def _uptime(state: AppState) -> float:
    return time.monotonic() - state.started


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")

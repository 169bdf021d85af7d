"""``Metrics``: the sidecar's Prometheus series, fed by receipts.

A ``Metrics`` registry listens to a ``TransactionManager`` (``attach``) and renders the series the
runbook's alert rules, dashboards and diagnostic commands read, in the Prometheus text exposition
format 0.0.4 (``render``). Every series, its type, labels and unit are listed in
``docs/observability.md``.

Windows. The latency percentiles (``kgc_transaction_latency_p50``, ``_p95``, ``_p99``, ``_max``)
and ``kgc_errors_rate`` are computed at render time over the transactions of the last
``window_s`` seconds (60 by default), at most the ``window_size`` most recent (10 000). An empty
window reads 0, never NaN, so the runbook's ``bc`` comparisons always get a number. Percentiles
are nearest-rank over the window, exact (no sketch); counters and the
``kgc_transaction_duration_seconds`` histogram count every transaction since the registry was
made.

Units follow the runbook, not the Prometheus naming convention, where they disagree: the
percentile gauges are in milliseconds (its alert reads ``p99 > 2`` as 2 ms); the histogram is in
seconds. ``kgc_errors_rate`` and ``kgc_system_memory_usage`` are ratios in [0, 1].

Series that the runbook extracts with ``grep NAME | awk '{print $2}'`` (the latency quartet,
``kgc_errors_rate``, ``kgc_system_memory_usage``) are written without ``# HELP``/``# TYPE``
lines, which would contain the name and so match the grep; Prometheus reads them as untyped
samples. Every other family has both lines.

Logging: a transaction slower than ``high_latency_ms`` logs ``High latency`` (WARNING), and
``Memory usage`` is logged (INFO; WARNING above ``memory_warning_ratio``) at most once per
``memory_log_interval_s``, checked when a receipt arrives or the registry is rendered: an idle,
unscraped process logs no memory line. Thread-safe: one lock guards every update and snapshot.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import resource
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgc.hooks.cache import ConditionCache, render_prometheus
from kgc.receipt import Receipt

logger = logging.getLogger(__name__)

WINDOW_S = 60.0
WINDOW_SIZE = 10_000
HIGH_LATENCY_MS = 2.0  # the runbook's HighTransactionLatency threshold (p99 > 2 ms)
HIGH_LATENCY_LOG_S = 10.0  # at most one High latency line per this many seconds
MEMORY_WARNING_RATIO = 0.8  # the runbook's HighMemoryUsage threshold
MEMORY_LOG_INTERVAL_S = 60.0
DURATION_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
ERROR_KINDS = ("transaction_error", "transaction_timeout", "hook_error", "hook_timeout")
STATUSES = ("committed", "vetoed", "error", "timeout")
_FAILED = frozenset({"error", "timeout"})


@dataclass(frozen=True)
class MemoryReading:
    """Resident set size and the limit it is measured against, in bytes."""

    rss_bytes: int
    limit_bytes: int
    rss_source: str
    limit_source: str

    @property
    def usage(self) -> float:
        return self.rss_bytes / self.limit_bytes if self.limit_bytes > 0 else 0.0


class Metrics:
    """A thread-safe registry of the sidecar's metrics; see the module docstring."""

    def __init__(
        self,
        *,
        cache: ConditionCache | None = None,
        window_s: float = WINDOW_S,
        window_size: int = WINDOW_SIZE,
        high_latency_ms: float | None = HIGH_LATENCY_MS,
        memory_limit_bytes: int | None = None,
        memory_warning_ratio: float = MEMORY_WARNING_RATIO,
        memory_log_interval_s: float | None = MEMORY_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``cache``: the condition cache whose stats are rendered (``attach`` finds the
        manager's when none is given). ``high_latency_ms=None`` turns the ``High latency`` log
        off; ``memory_log_interval_s=None`` turns the periodic ``Memory usage`` log off
        (``log_memory()`` still logs on demand). ``memory_limit_bytes`` overrides the limit
        found in the cgroup or ``/proc/meminfo``."""
        if window_s <= 0 or window_size < 1:
            raise ValueError(
                f"window needs window_s > 0 and window_size >= 1: {window_s}, {window_size}"
            )
        self.cache = cache
        self.window_s = window_s
        self.high_latency_ms = high_latency_ms
        self._slow = 0
        self._slow_logged = float("-inf")
        self.memory_limit_bytes = memory_limit_bytes
        self.memory_warning_ratio = memory_warning_ratio
        self.memory_log_interval_s = memory_log_interval_s
        self.anchorer: Any = None
        self._clock = clock
        self._lock = threading.Lock()
        # (time, latency in ms, failed) of recent transactions, oldest first.
        self._window: deque[tuple[float, float, bool]] = deque(maxlen=window_size)
        self._transactions = dict.fromkeys(STATUSES, 0)
        self._errors = dict.fromkeys(ERROR_KINDS, 0)
        self._hooks_executed = 0
        self._hooks_skipped = 0
        self._verdicts: dict[tuple[str, str], int] = {}
        self._effects: dict[tuple[str, str], int] = {}
        self._buckets = [0] * (len(DURATION_BUCKETS_S) + 1)
        self._duration_sum = 0.0
        self._queue: tuple[int, int, int] | None = None
        self._memory_logged_at: float | None = None
        self._attached: list[tuple[list[Callable[[Receipt], None]], Callable[[Receipt], None]]] = []

    # Feeding --------------------------------------------------------------------------------

    def attach(self, target: Any) -> Metrics:
        """Listen to the receipts of ``target``: a ``KnowledgeEngine`` or ``TransactionManager``.

        Also takes the manager's condition cache (unless one was given) and an engine's
        anchorer (for ``kgc_lockchain_anchor_lag``). Returns ``self``.
        """
        manager = getattr(target, "transactions", target)
        listeners: list[Callable[[Receipt], None]] = manager.on_receipt
        listeners.append(self.observe)
        self._attached.append((listeners, self.observe))
        if self.cache is None:
            self.cache = getattr(manager, "cache", None)
        if self.anchorer is None:
            self.anchorer = getattr(target, "anchorer", None)
        return self

    def detach(self) -> None:
        """Stop listening to every manager ``attach`` attached to."""
        for listeners, listener in self._attached:
            if listener in listeners:
                listeners.remove(listener)
        self._attached.clear()

    def observe(self, receipt: Receipt) -> None:
        """Count one receipt (the ``on_receipt`` listener)."""
        latency_ms = float(receipt.timings_ms.get("total", 0.0))
        failed = receipt.status in _FAILED
        verdicts = [*receipt.hooks, *receipt.effects]
        now = self._clock()
        with self._lock:
            self._window.append((now, latency_ms, failed))
            self._transactions[receipt.status] = self._transactions.get(receipt.status, 0) + 1
            if failed:
                self._errors[f"transaction_{receipt.status}"] += 1
            self._hooks_executed += len(verdicts)
            self._hooks_skipped += receipt.hooks_skipped
            for v in verdicts:
                key = (v.phase, v.verdict)
                self._verdicts[key] = self._verdicts.get(key, 0) + 1
                if v.verdict in ("error", "timeout"):
                    self._errors[f"hook_{v.verdict}"] += 1
            for v in receipt.effects:
                trust = str(getattr(v, "trust", "trusted"))
                outcome = str(getattr(v, "error_kind", None) or v.verdict)
                self._effects[(trust, outcome)] = self._effects.get((trust, outcome), 0) + 1
            seconds = latency_ms / 1000.0
            self._buckets[bisect.bisect_left(DURATION_BUCKETS_S, seconds)] += 1
            self._duration_sum += seconds
        if self.high_latency_ms is not None and latency_ms > self.high_latency_ms:
            self._log_high_latency(receipt, latency_ms)
        self._maybe_log_memory()

    def _log_high_latency(self, receipt: Receipt, latency_ms: float) -> None:
        """One ``High latency`` WARNING, then at most one per ``HIGH_LATENCY_LOG_S`` that counts
        the slow transactions since (a log line per slow transaction buried the log)."""
        now = time.monotonic()
        with self._lock:
            self._slow += 1
            if now - self._slow_logged < HIGH_LATENCY_LOG_S:
                return
            slow, self._slow, self._slow_logged = self._slow, 0, now
        logger.warning(
            "High latency: transaction %s by %s took %.3f ms (threshold %s ms); "
            "%d transaction(s) over the threshold since the last such line",
            receipt.id,
            receipt.actor,
            latency_ms,
            self.high_latency_ms,
            slow,
            extra={
                "receipt_id": receipt.id,
                "actor": receipt.actor,
                "status": receipt.status,
                "latency_ms": latency_ms,
                "threshold_ms": self.high_latency_ms,
                "slow_transactions": slow,
            },
        )

    def record_error(self, kind: str, count: int = 1) -> None:
        """Count errors the receipts do not show (the server's request errors, say)."""
        with self._lock:
            self._errors[kind] = self._errors.get(kind, 0) + count

    def set_queue(self, depth: int, high: int, low: int) -> None:
        """Set the backpressure gauges (queue depth and its watermarks); the server owns them.

        Until the first call the three series are not rendered.
        """
        with self._lock:
            self._queue = (int(depth), int(high), int(low))

    # Reading --------------------------------------------------------------------------------

    def latency_percentiles(self) -> dict[str, float]:
        """``p50``, ``p95``, ``p99`` and ``max`` in ms over the window (0.0 when it is empty)."""
        latencies = sorted(latency for _, latency, _ in self._recent())
        return {
            "p50": _rank(latencies, 0.50),
            "p95": _rank(latencies, 0.95),
            "p99": _rank(latencies, 0.99),
            "max": latencies[-1] if latencies else 0.0,
        }

    def error_rate(self) -> float:
        """Share of the window's transactions refused by an error or a timeout, in [0, 1]."""
        recent = self._recent()
        return sum(1 for _, _, failed in recent if failed) / len(recent) if recent else 0.0

    def memory(self) -> MemoryReading:
        rss, rss_source = process_rss_bytes()
        if self.memory_limit_bytes is not None:
            return MemoryReading(rss, self.memory_limit_bytes, rss_source, "configured")
        limit, limit_source = memory_limit_bytes()
        return MemoryReading(rss, limit, rss_source, limit_source)

    def log_memory(self) -> MemoryReading:
        """Log ``Memory usage`` now: INFO, or WARNING above ``memory_warning_ratio``."""
        reading = self.memory()
        level = logging.WARNING if reading.usage > self.memory_warning_ratio else logging.INFO
        logger.log(
            level,
            "Memory usage: %.1f%% (%d MiB resident of %d MiB, limit from %s)",
            reading.usage * 100.0,
            reading.rss_bytes >> 20,
            reading.limit_bytes >> 20,
            reading.limit_source,
            extra={
                "rss_bytes": reading.rss_bytes,
                "limit_bytes": reading.limit_bytes,
                "usage": round(reading.usage, 6),
            },
        )
        return reading

    def render(self) -> str:
        """Every series in the Prometheus text exposition format 0.0.4."""
        self._maybe_log_memory()
        percentiles = self.latency_percentiles()
        error_rate = self.error_rate()
        memory = self.memory()
        with self._lock:
            transactions = dict(self._transactions)
            errors = dict(self._errors)
            hooks_executed, hooks_skipped = self._hooks_executed, self._hooks_skipped
            verdicts = sorted(self._verdicts.items())
            effects = sorted(self._effects.items())
            buckets, duration_sum = list(self._buckets), self._duration_sum
            queue = self._queue
        out: list[str] = []
        out.append("# Latency percentiles over the sliding window, in milliseconds (untyped).")
        for name, value in percentiles.items():
            out.append(f"kgc_transaction_latency_{name} {_num(value)}")
        _family(out, "kgc_transactions_total", "counter", "Transactions by final status.")
        for status, count in transactions.items():
            out.append(f'kgc_transactions_total{{status="{status}"}} {count}')
        _family(
            out,
            "kgc_transaction_duration_seconds",
            "histogram",
            "Transaction latency (receipt timings_ms.total), in seconds.",
        )
        cumulative = 0
        for bound, count in zip((*DURATION_BUCKETS_S, math.inf), buckets, strict=True):
            cumulative += count
            le = "+Inf" if bound == math.inf else repr(bound)
            out.append(f'kgc_transaction_duration_seconds_bucket{{le="{le}"}} {cumulative}')
        out.append(f"kgc_transaction_duration_seconds_sum {_num(duration_sum, 9)}")
        out.append(f"kgc_transaction_duration_seconds_count {cumulative}")
        _family(out, "kgc_hooks_executed_total", "counter", "Hook verdicts and effects recorded.")
        out.append(f"kgc_hooks_executed_total {hooks_executed}")
        _family(
            out,
            "kgc_hooks_skipped_total",
            "counter",
            "Hooks the planner proved the delta cannot affect (not evaluated).",
        )
        out.append(f"kgc_hooks_skipped_total {hooks_skipped}")
        _family(out, "kgc_hooks_verdicts_total", "counter", "Hook verdicts by phase and kind.")
        for (phase, verdict), count in verdicts:
            out.append(f'kgc_hooks_verdicts_total{{phase="{phase}",verdict="{verdict}"}} {count}')
        _family(
            out,
            "kgc_effects_total",
            "counter",
            "Post-commit effects by trust (trusted, sandboxed) and outcome (ran, or error kind).",
        )
        for (trust, outcome), count in effects:
            out.append(f'kgc_effects_total{{trust="{trust}",outcome="{_label(outcome)}"}} {count}')
        _family(out, "kgc_errors_total", "counter", "Errors by kind.")
        for kind, count in errors.items():
            out.append(f'kgc_errors_total{{kind="{_label(kind)}"}} {count}')
        out.append("# Share of the window's transactions refused by error or timeout (untyped).")
        out.append(f"kgc_errors_rate {_num(error_rate)}")
        self._render_system(out, memory, queue)
        text = "\n".join(out) + "\n"
        if self.cache is not None:
            text += render_prometheus(self.cache.stats())
        return text

    def _render_system(
        self, out: list[str], memory: MemoryReading, queue: tuple[int, int, int] | None
    ) -> None:
        out.append("# Resident memory over the memory limit, a ratio (untyped).")
        out.append(f"kgc_system_memory_usage {_num(memory.usage)}")
        _family(out, "kgc_system_memory_rss_bytes", "gauge", "Resident set size of the process.")
        out.append(f"kgc_system_memory_rss_bytes {memory.rss_bytes}")
        _family(
            out,
            "kgc_system_memory_limit_bytes",
            "gauge",
            "Memory limit usage is measured against (cgroup, MemTotal or configured).",
        )
        out.append(f"kgc_system_memory_limit_bytes {memory.limit_bytes}")
        if queue is not None:
            depth, high, low = queue
            for name, value, help_text in (
                ("kgc_queue_depth", depth, "Requests waiting to be applied."),
                ("kgc_queue_watermark_high", high, "Depth at which new requests are refused."),
                ("kgc_queue_watermark_low", low, "Depth at which requests are accepted again."),
            ):
                _family(out, name, "gauge", help_text)
                out.append(f"{name} {value}")
        lag = self._anchor_lag()
        if lag is not None:
            _family(
                out,
                "kgc_lockchain_anchor_lag",
                "gauge",
                "Sealed receipts not yet anchored in git.",
            )
            out.append(f"kgc_lockchain_anchor_lag {lag}")

    # Internals ------------------------------------------------------------------------------

    def _recent(self) -> list[tuple[float, float, bool]]:
        horizon = self._clock() - self.window_s
        with self._lock:
            window = self._window
            while window and window[0][0] < horizon:
                window.popleft()
            return list(window)

    def _anchor_lag(self) -> int | None:
        if self.anchorer is None:
            return None
        try:
            return int(self.anchorer.lag)
        except Exception as exc:  # a metric must not break the scrape
            logger.debug("anchor lag unavailable: %s", exc)
            return None

    def _maybe_log_memory(self) -> None:
        interval = self.memory_log_interval_s
        if interval is None:
            return
        now = self._clock()
        with self._lock:
            due = self._memory_logged_at is None or now - self._memory_logged_at >= interval
            if due:
                self._memory_logged_at = now
        if due:
            self.log_memory()


def process_rss_bytes() -> tuple[int, str]:
    """The current resident set size and where it was read (``/proc`` or peak from ``resource``)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm"
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is in KiB on Linux, bytes on macOS; it is the peak, not the current size.
        return (peak if sys.platform == "darwin" else peak * 1024), "getrusage peak"


def memory_limit_bytes() -> tuple[int, str]:
    """The memory limit of this process: its cgroup's, else the machine's ``MemTotal``."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # "max" or a huge v1 value means no limit
            return int(raw), path
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024, "/proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "sysconf"
    except (OSError, ValueError):
        return 0, "unknown"


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _num(value: float, digits: int = 6) -> str:
    """A plain decimal (no exponent, never NaN), so shell tools such as ``bc`` read it."""
    if not math.isfinite(value):
        return "0"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")


def series_names(text: str) -> Iterable[str]:
    """Names of the samples in exposition ``text`` (comments skipped), in order."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            yield line.split("{", 1)[0].split(" ", 1)[0]

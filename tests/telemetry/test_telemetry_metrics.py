"""``kgc.telemetry.metrics``: the runbook's series parse, are present and move with transactions."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from loopback import loopback_server
from prometheus_client.parser import text_string_to_metric_families

from kgc import Delta, Hook, HookEvent, KnowledgeEngine, SparqlAsk
from kgc.telemetry import Metrics
from kgc.telemetry.metrics import process_rss_bytes, series_names

# Every kgc_ series the runbook's alert rules, dashboard exprs and diagnostic commands name.
RUNBOOK_SERIES = (
    "kgc_transaction_latency_p50",
    "kgc_transaction_latency_p95",
    "kgc_transaction_latency_p99",
    "kgc_transaction_latency_max",
    "kgc_hooks_executed_total",
    "kgc_errors_total",
    "kgc_errors_rate",
    "kgc_system_memory_usage",
    "kgc_cache_hit_rate",
    "kgc_queue_depth",
    "kgc_queue_watermark_high",
    "kgc_queue_watermark_low",
)
ASK_ANY_ADDITION = "ASK { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } }"


def _delta(i: int) -> Delta:
    return Delta.from_text(f'<urn:s{i}> <urn:p> "{i}" .')


def _raise(event: HookEvent) -> None:
    raise RuntimeError("hook blew up")


@pytest.fixture
def engine() -> Iterator[KnowledgeEngine]:
    with KnowledgeEngine() as engine:
        engine.hooks.register(Hook("watch", SparqlAsk("ASK { ?s <urn:forbidden> ?o }")))
        yield engine


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(text: str, name: str, **labels: str) -> float:
    return _samples(text)[(name, tuple(sorted(labels.items())))]


def test_render_parses_as_prometheus_text_with_help_and_type(engine: KnowledgeEngine) -> None:
    metrics = Metrics().attach(engine)
    metrics.set_queue(3, 100, 10)
    for i in range(5):
        engine.apply(_delta(i))

    text = metrics.render()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    assert families["kgc_transaction_duration_seconds"].type == "histogram"
    assert families["kgc_hooks_executed"].type == "counter"
    assert families["kgc_errors"].type == "counter"
    assert families["kgc_queue_depth"].type == "gauge"
    assert "# TYPE kgc_hooks_executed_total counter" in text
    assert text.endswith("\n")


def test_every_runbook_series_is_rendered(engine: KnowledgeEngine) -> None:
    metrics = Metrics().attach(engine)
    metrics.set_queue(0, 1000, 100)
    engine.apply(_delta(1))

    names = set(series_names(metrics.render()))

    assert set(RUNBOOK_SERIES) <= names


def test_series_move_as_transactions_happen(engine: KnowledgeEngine) -> None:
    metrics = Metrics().attach(engine)
    before = metrics.render()
    assert _value(before, "kgc_hooks_executed_total") == 0
    assert _value(before, "kgc_transaction_latency_p99") == 0

    for i in range(20):
        engine.apply(_delta(i))
    after = metrics.render()

    executed = _value(after, "kgc_hooks_executed_total")
    assert executed >= 1  # the planner skips the hook once it has proved the delta cannot fire it
    assert executed + _value(after, "kgc_hooks_skipped_total") == 20
    assert _value(after, "kgc_transactions_total", status="committed") == 20
    assert _value(after, "kgc_transaction_duration_seconds_count") == 20
    assert _value(after, "kgc_transaction_duration_seconds_bucket", le="+Inf") == 20
    assert _value(after, "kgc_transaction_duration_seconds_sum") > 0
    p50, p99, top = (_value(after, f"kgc_transaction_latency_{q}") for q in ("p50", "p99", "max"))
    assert 0 < p50 <= p99 <= top
    assert _value(after, "kgc_errors_rate") == 0
    assert 0 < _value(after, "kgc_system_memory_usage") < 1
    assert _value(after, "kgc_cache_hit_rate") >= 0  # the engine's condition cache


def test_refused_transactions_count_as_errors() -> None:
    with KnowledgeEngine() as engine:
        metrics = Metrics().attach(engine)
        engine.apply(_delta(0))
        engine.hooks.register(Hook("fragile", SparqlAsk("ASK {}"), run=_raise))
        receipt = engine.apply(_delta(1))
        assert receipt.status == "error"

        text = metrics.render()

    assert _value(text, "kgc_errors_total", kind="transaction_error") == 1
    assert _value(text, "kgc_errors_total", kind="hook_error") == 1
    assert _value(text, "kgc_errors_rate") == 0.5
    assert _value(text, "kgc_hooks_verdicts_total", phase="pre", verdict="error") == 1


def test_vetoes_are_counted_but_are_not_errors() -> None:
    with KnowledgeEngine() as engine:
        metrics = Metrics().attach(engine)
        engine.hooks.register(Hook("no-adds", SparqlAsk(ASK_ANY_ADDITION)))
        assert engine.apply(_delta(0)).status == "vetoed"
        text = metrics.render()

    assert _value(text, "kgc_transactions_total", status="vetoed") == 1
    assert _value(text, "kgc_errors_rate") == 0
    assert _value(text, "kgc_hooks_verdicts_total", phase="pre", verdict="veto") == 1


def test_post_commit_effects_count_as_hooks_executed() -> None:
    ran = threading.Event()
    with KnowledgeEngine() as engine:
        metrics = Metrics().attach(engine)
        engine.hooks.register(
            Hook("notify", SparqlAsk(ASK_ANY_ADDITION), phase="post", run=lambda e: ran.set())
        )
        engine.apply(_delta(0))
        text = metrics.render()

    assert ran.is_set()
    assert _value(text, "kgc_hooks_executed_total") == 1
    assert _value(text, "kgc_hooks_verdicts_total", phase="post", verdict="ran") == 1


def test_window_forgets_old_transactions_and_percentiles_are_nearest_rank() -> None:
    now = [1000.0]
    metrics = Metrics(window_s=60.0, clock=lambda: now[0], memory_log_interval_s=None)
    with KnowledgeEngine() as engine:
        metrics.attach(engine)
        for _ in range(3):
            engine.apply(_delta(0))  # the second and third change nothing; still transactions
    assert len(metrics._recent()) == 3
    now[0] += 61.0
    assert metrics.latency_percentiles() == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    assert metrics.error_rate() == 0.0
    # Counters keep everything.
    assert _value(metrics.render(), "kgc_transaction_duration_seconds_count") == 3


def test_window_size_bounds_the_samples() -> None:
    metrics = Metrics(window_size=4, memory_log_interval_s=None)
    with KnowledgeEngine() as engine:
        metrics.attach(engine)
        for i in range(10):
            engine.apply(_delta(i))
    assert len(metrics._recent()) == 4


def test_queue_series_appear_once_the_server_sets_them() -> None:
    metrics = Metrics(memory_log_interval_s=None)
    assert "kgc_queue_depth" not in set(series_names(metrics.render()))

    metrics.set_queue(7, 100, 20)
    text = metrics.render()

    assert _value(text, "kgc_queue_depth") == 7
    assert _value(text, "kgc_queue_watermark_high") == 100
    assert _value(text, "kgc_queue_watermark_low") == 20


def test_record_error_counts_a_server_error_kind() -> None:
    metrics = Metrics(memory_log_interval_s=None)
    metrics.record_error("request")
    assert _value(metrics.render(), "kgc_errors_total", kind="request") == 1


def test_memory_usage_is_rss_over_the_limit() -> None:
    rss, source = process_rss_bytes()
    assert source == "/proc/self/statm"
    assert rss > 1 << 20
    metrics = Metrics(memory_limit_bytes=rss * 4, memory_log_interval_s=None)
    text = metrics.render()
    assert 0.15 < _value(text, "kgc_system_memory_usage") < 0.5
    assert _value(text, "kgc_system_memory_limit_bytes") == rss * 4


def test_concurrent_transactions_are_all_counted() -> None:
    with KnowledgeEngine() as engine:
        metrics = Metrics(memory_log_interval_s=None).attach(engine)
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for i in range(25):
                    engine.apply(_delta(t * 100 + i), actor=f"w{t}")
                    metrics.render()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert _value(metrics.render(), "kgc_transaction_duration_seconds_count") == 100


def test_detach_stops_counting(engine: KnowledgeEngine) -> None:
    metrics = Metrics(memory_log_interval_s=None).attach(engine)
    metrics.detach()
    engine.apply(_delta(1))
    assert _value(metrics.render(), "kgc_transaction_duration_seconds_count") == 0


def test_anchor_lag_is_rendered_for_an_engine_with_a_lockchain(tmp_path: Any) -> None:
    with KnowledgeEngine(lockchain_path=tmp_path / "chain", anchor_batch_size=50) as engine:
        metrics = Metrics(memory_log_interval_s=None).attach(engine)
        engine.apply(_delta(1))
        assert _value(metrics.render(), "kgc_lockchain_anchor_lag") == 1
        assert engine.anchorer is not None
        engine.anchorer.flush()
        assert _value(metrics.render(), "kgc_lockchain_anchor_lag") == 0


def test_high_latency_is_logged_above_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    with KnowledgeEngine() as engine:
        Metrics(high_latency_ms=0.0, memory_log_interval_s=None).attach(engine)
        with caplog.at_level(logging.WARNING, logger="kgc"):
            receipt = engine.apply(_delta(1), actor="alice")
    [record] = [r for r in caplog.records if "High latency" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.receipt_id == receipt.id  # type: ignore[attr-defined]
    assert record.actor == "alice"  # type: ignore[attr-defined]


def test_memory_usage_is_logged_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    metrics = Metrics(memory_log_interval_s=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="kgc.telemetry"):
        metrics.render()
        metrics.render()
        now[0] = 61.0
        metrics.render()
    lines = [r for r in caplog.records if r.getMessage().startswith("Memory usage")]
    assert len(lines) == 2
    assert lines[0].levelno == logging.INFO


def test_memory_usage_over_the_alert_threshold_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics(memory_limit_bytes=1 << 20, memory_log_interval_s=None)
    with caplog.at_level(logging.INFO, logger="kgc.telemetry"):
        reading = metrics.log_memory()
    assert reading.usage > 0.8
    assert caplog.records[-1].levelno == logging.WARNING


# The runbook's diagnostic commands, run against a real /metrics on loopback --------------------


@contextmanager
def _serve(metrics: Metrics) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with loopback_server(Handler) as url:
        yield url


def _sh(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )


# From RUNBOOK.md, Maintenance > Performance Monitoring (the URL is the only change).
PERFORMANCE_SCRIPT = """
LATENCY_P99=$(curl -s {url}/metrics | grep kgc_transaction_latency_p99 | awk '{{print $2}}')
if (( $(echo "$LATENCY_P99 > 2" | bc -l) )); then
    echo "WARNING: Transaction latency p99 is $LATENCY_P99 ms (threshold: 2 ms)"
fi
ERROR_RATE=$(curl -s {url}/metrics | grep kgc_errors_rate | awk '{{print $2}}')
if (( $(echo "$ERROR_RATE > 0.01" | bc -l) )); then
    echo "WARNING: Error rate is $ERROR_RATE (threshold: 0.01)"
fi
MEMORY_USAGE=$(curl -s {url}/metrics | grep kgc_system_memory_usage | awk '{{print $2}}')
if (( $(echo "$MEMORY_USAGE > 0.8" | bc -l) )); then
    echo "WARNING: Memory usage is $MEMORY_USAGE (threshold: 0.8)"
fi
echo "p99=$LATENCY_P99 errors=$ERROR_RATE memory=$MEMORY_USAGE"
"""


def test_runbook_performance_script_reads_one_number_per_series() -> None:
    with KnowledgeEngine() as engine:
        metrics = Metrics(memory_log_interval_s=None).attach(engine)
        for i in range(5):
            engine.apply(_delta(i))
        with _serve(metrics) as url:
            done = _sh(PERFORMANCE_SCRIPT.format(url=url))

    assert done.returncode == 0
    assert done.stderr == ""
    last = done.stdout.strip().splitlines()[-1]
    values = dict(part.split("=") for part in last.split())
    assert set(values) == {"p99", "errors", "memory"}
    for value in values.values():
        float(value)  # one plain number each: no HELP/TYPE line matched the grep


def test_runbook_performance_script_warns_when_thresholds_are_crossed() -> None:
    with KnowledgeEngine() as engine:
        metrics = Metrics(memory_limit_bytes=1 << 20, memory_log_interval_s=None).attach(engine)
        engine.hooks.register(Hook("fragile", SparqlAsk("ASK {}"), run=_raise))
        engine.hooks.register(
            Hook("slow", SparqlAsk("ASK {}"), run=lambda e: threading.Event().wait(0.005))
        )
        engine.apply(_delta(1))
        with _serve(metrics) as url:
            done = _sh(PERFORMANCE_SCRIPT.format(url=url))

    assert done.stderr == ""
    assert "WARNING: Transaction latency p99 is" in done.stdout
    assert "WARNING: Error rate is 1 (threshold: 0.01)" in done.stdout
    assert "WARNING: Memory usage is" in done.stdout


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("kgc_transaction", "kgc_transaction_latency_p99"),
        ("kgc_hooks", "kgc_hooks_executed_total"),
        ("kgc_errors", "kgc_errors_total"),
        ("kgc_system_memory", "kgc_system_memory_usage"),
        ("kgc_errors_total", 'kgc_errors_total{kind="transaction_error"}'),
    ],
)
def test_runbook_diagnostic_greps_return_their_series(pattern: str, expected: str) -> None:
    with KnowledgeEngine() as engine:
        metrics = Metrics(memory_log_interval_s=None).attach(engine)
        engine.apply(_delta(1))
        with _serve(metrics) as url:
            done = _sh(f"curl -s {url}/metrics | grep {pattern}")
    assert done.returncode == 0
    assert any(
        expected in (line.split(" ")[0], line.split("{")[0]) for line in done.stdout.splitlines()
    )

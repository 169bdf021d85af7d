"""``kgc.telemetry.logs``: JSON lines at LOG_LEVEL, carrying the runbook's grep phrases."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from kgc import Delta, Hook, HookEvent, KnowledgeEngine, SparqlAsk
from kgc.errors import ConfigError
from kgc.telemetry import JsonFormatter, Metrics, configure_logging, tracing
from kgc.telemetry.logs import parse_level

RUNBOOK_PHRASES = ("Transaction failed", "Hook execution failed", "High latency", "Memory usage")


def _delta(i: int) -> Delta:
    return Delta.from_text(f'<urn:s{i}> <urn:p> "{i}" .')


def _boom(event: HookEvent) -> None:
    raise RuntimeError("boom")


@pytest.fixture
def kgc_log(tmp_path: Path) -> Iterator[Path]:
    """JSON lines from the ``kgc`` loggers into a file, as ``kgc serve`` would configure them."""
    path = tmp_path / "kgc-sidecar.log"
    logger = logging.getLogger("kgc")
    level, propagate = logger.level, logger.propagate
    with path.open("w", encoding="utf-8") as stream:
        handler = configure_logging("info", stream=stream, logger_name="kgc")
        logger.propagate = False
        try:
            yield path
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_runbook_phrase_is_logged_and_greppable(kgc_log: Path) -> None:
    with KnowledgeEngine() as engine:
        Metrics(high_latency_ms=0.0).attach(engine)  # logs Memory usage on its first receipt
        engine.hooks.register(Hook("fragile", SparqlAsk("ASK {}"), run=_boom))
        receipt = engine.apply(_delta(1), actor="carol")
    assert receipt.status == "error"

    for phrase in RUNBOOK_PHRASES:  # the runbook's Log Analysis commands
        found = subprocess.run(
            ["grep", phrase, str(kgc_log)], capture_output=True, text=True, check=False
        )
        assert found.returncode == 0, phrase
    by_phrase = {p: [e for e in _lines(kgc_log) if p in e["message"]] for p in RUNBOOK_PHRASES}
    [failed] = by_phrase["Transaction failed"]
    assert failed["level"] == "WARNING"
    assert failed["logger"] == "kgc.transaction"
    assert failed["receipt_id"] == receipt.id
    assert failed["actor"] == "carol"
    assert failed["status"] == "error"
    [hook] = by_phrase["Hook execution failed"]
    assert hook["level"] == "WARNING"
    assert "fragile" in hook["message"]
    [slow] = by_phrase["High latency"]
    assert slow["latency_ms"] > 0
    assert by_phrase["Memory usage"][0]["rss_bytes"] > 0


def test_an_exception_from_apply_logs_transaction_failed_as_an_error(kgc_log: Path) -> None:
    with KnowledgeEngine() as engine:

        def nested(event: HookEvent) -> None:
            engine.apply(_delta(99), actor="inner")

        engine.hooks.register(Hook("nests", SparqlAsk("ASK {}"), run=nested))
        engine.apply(_delta(1))
    errors = [e for e in _lines(kgc_log) if e["level"] == "ERROR"]
    assert errors and errors[0]["message"].startswith("Transaction failed: by inner, raised")
    assert errors[0]["actor"] == "inner"


def test_each_line_has_the_documented_fields() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("kgc.test.json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("hello %s", "world", extra={"hook": "h1", "count": 3})
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("caught")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"ts", "level", "logger", "message", "hook", "count"}
    assert first["message"] == "hello world"
    assert first["ts"].endswith("+00:00")
    assert (first["level"], first["logger"], first["hook"]) == ("WARNING", "kgc.test.json", "h1")
    assert "ValueError: bad" in second["exception"]


def test_lines_inside_a_span_carry_its_trace_id() -> None:
    provider = TracerProvider()
    tracing.use_provider(provider)
    try:
        record = logging.LogRecord("kgc", logging.INFO, __file__, 1, "in a span", None, None)
        with tracing.span("kgc.transaction") as span:
            entry = json.loads(JsonFormatter().format(record))
        assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
        assert len(entry["span_id"]) == 16
    finally:
        tracing.use_provider(None)
        provider.shutdown()


def test_log_level_filters_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    logger = logging.getLogger("kgc.test.level")
    handler = configure_logging("warn", stream=stream, logger_name="kgc.test.level")
    try:
        logger.info("quiet")
        logger.warning("loud")
        again = configure_logging("debug", stream=stream, logger_name="kgc.test.level")
        assert logger.handlers == [again]  # replaced, not added
        logger.debug("debugging")
    finally:
        logger.handlers.clear()
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
        "loud",
        "debugging",
    ]
    assert handler not in logger.handlers


@pytest.mark.parametrize(
    ("text", "level"),
    [("debug", 10), ("INFO", 20), ("warn", 30), ("error", 40), (" Warning ", 30), (15, 15)],
)
def test_log_levels_parse(text: str | int, level: int) -> None:
    assert parse_level(text) == level


def test_an_unknown_log_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown log level 'loud'"):
        parse_level("loud")


def test_the_library_installs_no_handler() -> None:
    with KnowledgeEngine() as engine:
        engine.apply(_delta(1))
    assert logging.getLogger("kgc").handlers == []


def test_a_hook_timeout_is_logged_as_a_hook_execution_failure(kgc_log: Path) -> None:
    with KnowledgeEngine() as engine:
        engine.hooks.register(
            Hook("sleepy", SparqlAsk("ASK {}"), run=lambda e: time.sleep(0.2), timeout_ms=20)
        )
        assert engine.apply(_delta(1)).status == "timeout"
    [entry] = [e for e in _lines(kgc_log) if e["message"].startswith("Hook execution failed")]
    assert entry["message"].startswith("Hook execution failed: sleepy: timeout:")
    assert (entry["hook"], entry["phase"], entry["level"]) == ("sleepy", "pre", "WARNING")
    assert any(e["message"].startswith("Transaction failed") for e in _lines(kgc_log))


def test_an_unsampled_span_gives_its_trace_id_but_no_span_id() -> None:
    # The span id of a span that is never exported cannot be found in any backend.
    unsampled = trace.NonRecordingSpan(
        trace.SpanContext(0x1111 << 64, 0x2222, is_remote=False, trace_flags=trace.TraceFlags(0))
    )
    record = logging.LogRecord("kgc", logging.INFO, __file__, 1, "unsampled", None, None)
    with trace.use_span(unsampled):
        entry = json.loads(JsonFormatter().format(record))
    assert entry["trace_id"] == format(0x1111 << 64, "032x")
    assert "span_id" not in entry


def test_a_lone_surrogate_in_a_message_is_escaped_not_a_logging_error() -> None:
    record = logging.LogRecord(
        "kgc", logging.WARNING, __file__, 1, "unknown key %s", ("additions\ud800",), None
    )
    line = JsonFormatter().format(record)
    line.encode("utf-8")  # would raise UnicodeEncodeError in the handler's stream
    assert json.loads(line)["message"] == "unknown key additions\ud800"


def test_uvicorns_coloured_copy_of_a_message_is_left_out() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", None, None)
    record.color_message = "\x1b[32mStarted\x1b[0m"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Started" and "color_message" not in entry

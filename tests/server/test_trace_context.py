"""A caller's W3C ``traceparent`` is joined: kgc's request and transaction spans join its trace."""

from __future__ import annotations

import io
import json
import logging
import secrets
import sys
from pathlib import Path

import httpx
import opentelemetry
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from otlp_receiver import otlp_receiver
from served import WRITE_KEY, auth, make_client, start_server

from kgc import KnowledgeEngine
from kgc.server import trace_context
from kgc.telemetry import JsonFormatter, tracing

NQ = {"Content-Type": "application/n-quads"}


def _traceparent(sampled: bool = True) -> tuple[str, int, int]:
    trace_id, span_id = secrets.randbits(128) | 1, secrets.randbits(64) | 1
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}", trace_id, span_id


def _named(found: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [one] = [s for s in found if s.name == name]
    return one


def _post(engine: KnowledgeEngine, body: str, **headers: str) -> httpx.Response:
    with make_client(engine) as client:
        response: httpx.Response = client.post(
            "/transactions", content=body, headers={**NQ, **auth(WRITE_KEY), **headers}
        )
        return response


def test_a_write_joins_the_callers_trace(spans: InMemorySpanExporter) -> None:
    header, trace_id, caller_span = _traceparent()
    with KnowledgeEngine() as engine:
        response = _post(engine, "<urn:s> <urn:p> <urn:o> .", traceparent=header)
    assert response.status_code == 201

    found = spans.get_finished_spans()
    request = _named(found, "POST /transactions")
    assert request.kind is SpanKind.SERVER
    assert request.context is not None and request.context.trace_id == trace_id
    assert request.parent is not None and request.parent.span_id == caller_span
    assert request.parent.is_remote
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/transactions"
    assert request.attributes["http.response.status_code"] == 201
    # The transaction ran on the writer thread, still inside the request's span.
    transaction = _named(found, "kgc.transaction")
    assert transaction.context is not None and transaction.context.trace_id == trace_id
    assert transaction.parent is not None
    assert transaction.parent.span_id == request.context.span_id


def test_an_unsampled_caller_trace_records_nothing(spans: InMemorySpanExporter) -> None:
    header, _, _ = _traceparent(sampled=False)
    with KnowledgeEngine() as engine:
        assert _post(engine, "<urn:s> <urn:p> <urn:o> .", traceparent=header).status_code == 201
        assert len(engine) == 1
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize(
    "header",
    ["garbage", "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "00-abc-def-01", "ff-" + "1" * 49],
)
def test_a_malformed_traceparent_starts_a_new_trace_and_the_write_still_commits(
    spans: InMemorySpanExporter, header: str
) -> None:
    with KnowledgeEngine() as engine:
        response = _post(engine, "<urn:s> <urn:p> <urn:o> .", traceparent=header)
        assert response.status_code == 201 and len(engine) == 1
    request = _named(spans.get_finished_spans(), "POST /transactions")
    assert request.parent is None  # a root span of a new trace


def test_span_names_use_the_route_template_and_errors_are_marked(
    spans: InMemorySpanExporter,
) -> None:
    with KnowledgeEngine() as engine, make_client(engine) as client:
        assert client.get("/receipts/no-such-receipt", headers=auth(WRITE_KEY)).status_code == 404
        assert client.get("/no/such/path").status_code == 404
        assert client.post("/transactions", content="<bad", headers={**NQ, **auth(WRITE_KEY)})
    names = [s.name for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert names == ["GET /receipts/{receipt_id}", "GET", "POST /transactions"]
    for server_span in spans.get_finished_spans():
        # A refused request is the caller's fault, not the server's: no error status.
        assert server_span.status.status_code is not StatusCode.ERROR


def test_an_unknown_otel_propagators_value_falls_back_to_w3c_with_a_warning(
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # opentelemetry.propagate raises at import when OTEL_PROPAGATORS names a missing propagator;
    # that must not take the server down or lose the caller's trace.
    monkeypatch.setenv("OTEL_PROPAGATORS", "no-such-propagator")
    monkeypatch.delitem(sys.modules, "opentelemetry.propagate", raising=False)
    monkeypatch.delattr(opentelemetry, "propagate", raising=False)  # so the import runs again
    trace_context._propagator.cache_clear()
    header, trace_id, _ = _traceparent()
    try:
        with KnowledgeEngine() as engine, caplog.at_level(logging.WARNING, "kgc"):
            assert _post(engine, "<urn:s> <urn:p> <urn:o> .", traceparent=header).status_code == 201
    finally:
        trace_context._propagator.cache_clear()
    assert "no-such-propagator" in caplog.text and "using W3C traceparent" in caplog.text
    request = _named(spans.get_finished_spans(), "POST /transactions")
    assert request.context is not None and request.context.trace_id == trace_id


def test_without_tracing_configured_no_span_is_made() -> None:
    header, _, _ = _traceparent()
    assert tracing.tracer() is None
    with KnowledgeEngine() as engine:
        assert _post(engine, "<urn:s> <urn:p> <urn:o> .", traceparent=header).status_code == 201


def test_kgc_serve_exports_the_callers_trace_to_the_collector(tmp_path: Path) -> None:
    header, trace_id, caller_span = _traceparent()
    with otlp_receiver() as (url, received):
        served = start_server(
            tmp_path,
            KGC_API_KEYS=f"{WRITE_KEY}:write",
            ENABLE_OBSERVABILITY="true",
            OBSERVABILITY_ENDPOINT=url,
        )
        try:
            response = httpx.post(
                f"{served.url}/transactions",
                content="<urn:s> <urn:p> <urn:o> .",
                headers={**NQ, **auth(WRITE_KEY), "traceparent": header},
                timeout=30,
            )
            assert response.status_code == 201, response.text
        finally:
            assert served.stop() == 0, served.output()  # shutdown flushes the last spans
    ours = [s for _, _, s in received.spans() if int.from_bytes(s.trace_id, "big") == trace_id]
    by_name = {s.name: s for s in ours}
    assert {"POST /transactions", "kgc.transaction"} <= set(by_name), sorted(by_name)
    assert int.from_bytes(by_name["POST /transactions"].parent_span_id, "big") == caller_span
    assert by_name["kgc.transaction"].parent_span_id == by_name["POST /transactions"].span_id


def test_a_request_that_fails_inside_kgc_is_an_error_span_with_status_500(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the intake broke")

    monkeypatch.setattr("kgc.server.transactions._intake", broken)
    with KnowledgeEngine() as engine:
        assert _post(engine, "<urn:s> <urn:p> <urn:o> .").status_code == 500
    request = _named(spans.get_finished_spans(), "POST /transactions")
    assert request.status.status_code is StatusCode.ERROR
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 500
    assert [e.name for e in request.events] == ["exception"]


def test_the_500_log_line_carries_the_callers_trace(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The catch-all handler logged after the request's span had ended: no trace_id to join on.
    def broken(*args: object) -> None:
        raise RuntimeError("the intake broke")

    monkeypatch.setattr("kgc.server.transactions._intake", broken)
    header, trace_id, _ = _traceparent()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # formats at emit: the span current then counts
    logging.getLogger("kgc").addHandler(handler)
    try:
        with KnowledgeEngine() as engine:
            response = _post(engine, "<urn:s> <urn:p> <urn:o> .", traceparent=header)
    finally:
        logging.getLogger("kgc").removeHandler(handler)
    assert response.status_code == 500
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [line for line in lines if line["message"].startswith("Request failed")]
    assert len(failed) == 1  # logged once, not again by the handler
    assert failed[0]["trace_id"] == format(trace_id, "032x")


def test_repeated_propagation_headers_combine_as_one_list(spans: InMemorySpanExporter) -> None:
    header, trace_id, _ = _traceparent()
    other, _, _ = _traceparent()
    with KnowledgeEngine() as engine, make_client(engine) as client:
        write = {**NQ, **auth(WRITE_KEY)}
        # Two tracestate headers are one list; two traceparents are invalid: a new trace.
        combined = [*write.items(), ("traceparent", header), ("tracestate", "a=1")]
        combined.append(("tracestate", "b=2"))
        assert client.post("/transactions", content="<urn:s> <urn:p> <urn:o> .", headers=combined)
        twice = [*write.items(), ("traceparent", header), ("traceparent", other)]
        assert client.post("/transactions", content="<urn:t> <urn:p> <urn:o> .", headers=twice)
    first, second = [s for s in spans.get_finished_spans() if s.name == "POST /transactions"]
    assert first.context is not None and first.context.trace_id == trace_id
    assert dict(first.context.trace_state) == {"a": "1", "b": "2"}
    assert second.parent is None  # neither caller's trace

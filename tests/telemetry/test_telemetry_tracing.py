"""``kgc.telemetry.tracing``: the span tree of a governed apply, OTLP export, sampling, failures."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from otlp_receiver import otlp_receiver

from kgc import Delta, Hook, HookEvent, KnowledgeEngine, SparqlAsk
from kgc.telemetry import configure_tracing, tracing

ADDS = "ASK { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } }"
BAD = "ASK { GRAPH <urn:kgc:delta:additions> { <urn:bad> ?p ?o } }"


def _delta(i: int) -> Delta:
    return Delta.from_text(f'<urn:s{i}> <urn:p> "{i}" .')


@pytest.fixture(autouse=True)
def _no_kgc_provider_left() -> Iterator[None]:
    yield
    tracing.use_provider(None)


def _children(all_spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        s for s in all_spans if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def _one(all_spans: tuple[ReadableSpan, ...], name: str, **attrs: object) -> ReadableSpan:
    found = [
        s
        for s in all_spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attrs.items())
    ]
    assert len(found) == 1, (name, attrs, [(s.name, dict(s.attributes or {})) for s in all_spans])
    return found[0]


def test_no_sdk_means_no_tracer_and_a_shared_no_op_span() -> None:
    assert tracing.tracer() is None
    with tracing.span("kgc.transaction", {"kgc.actor": "a"}) as span:
        assert span is None
    assert tracing.span("x") is tracing.span("y")


def test_governed_apply_builds_the_span_tree(spans: InMemorySpanExporter) -> None:
    ran = threading.Event()

    def decide(event: HookEvent) -> None:  # a run callable: judged on a watchdog thread
        return None

    with KnowledgeEngine() as engine:
        engine.hooks.register(Hook("no-bad", SparqlAsk(BAD)))
        engine.hooks.register(Hook("decides", SparqlAsk(ADDS), run=decide))
        engine.hooks.register(
            Hook("notify", SparqlAsk(ADDS), phase="post", run=lambda e: ran.set())
        )
        receipt = engine.apply(_delta(1), actor="alice")
    assert ran.is_set()

    done = spans.get_finished_spans()
    tx = _one(done, "kgc.transaction")
    assert tx.parent is None
    attrs = dict(tx.attributes or {})
    assert attrs["kgc.actor"] == "alice"
    assert attrs["kgc.status"] == "committed"
    assert attrs["kgc.receipt_id"] == receipt.id
    assert attrs["kgc.committed"] is True
    assert attrs["kgc.additions"] == 1

    children = _children(done, tx)
    hooks = {s.attributes["kgc.hook"]: s for s in children if s.name == "kgc.hook"}  # type: ignore[index]
    assert set(hooks) == {"no-bad", "decides", "notify"}
    assert dict(hooks["no-bad"].attributes or {})["kgc.verdict"] == "pass"
    assert dict(hooks["no-bad"].attributes or {})["kgc.phase"] == "pre"
    for name, hook_span in hooks.items():
        [condition] = _children(done, hook_span)
        assert condition.name == "kgc.condition"
        assert dict(condition.attributes or {})["kgc.hook"] == name
        assert dict(condition.attributes or {})["kgc.kind"] == "sparql-ask"
    assert dict(_children(done, hooks["decides"])[0].attributes or {})["kgc.fired"] is True

    [effect] = [s for s in children if s.name == "kgc.effect"]
    assert dict(effect.attributes or {}) == {
        "kgc.hook": "notify",
        "kgc.verdict": "ran",
        "kgc.fired": True,
        "kgc.phase": "post",
    }


def test_veto_and_refusal_are_on_the_spans(spans: InMemorySpanExporter) -> None:
    def boom(event: HookEvent) -> None:
        raise RuntimeError("boom")

    with KnowledgeEngine() as engine:
        engine.hooks.register(Hook("no-adds", SparqlAsk(ADDS)))
        assert engine.apply(_delta(1)).status == "vetoed"
    with KnowledgeEngine() as engine:
        engine.hooks.register(Hook("fragile", SparqlAsk("ASK {}"), run=boom))
        assert engine.apply(_delta(2)).status == "error"

    done = spans.get_finished_spans()
    vetoed = _one(done, "kgc.transaction", **{"kgc.status": "vetoed"})
    assert vetoed.status.status_code is StatusCode.UNSET
    assert (
        dict(_one(done, "kgc.hook", **{"kgc.hook": "no-adds"}).attributes or {})["kgc.verdict"]
        == "veto"
    )
    failed = _one(done, "kgc.transaction", **{"kgc.status": "error"})
    assert failed.status.status_code is StatusCode.ERROR
    fragile = _one(done, "kgc.hook", **{"kgc.hook": "fragile"})
    assert fragile.status.status_code is StatusCode.ERROR


def test_an_exception_from_apply_is_recorded_on_the_span(spans: InMemorySpanExporter) -> None:
    with KnowledgeEngine() as engine:

        def nested(event: HookEvent) -> None:
            engine.apply(_delta(99))  # apply from inside a pre-hook is refused

        engine.hooks.register(Hook("nests", SparqlAsk("ASK {}"), run=nested))
        engine.apply(_delta(1))
    done = spans.get_finished_spans()
    inner = [s for s in done if s.name == "kgc.transaction" and s.parent is not None]
    assert inner, "the nested apply's span is a child of the hook that called it"
    assert inner[0].status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in inner[0].events)


def test_anchoring_has_its_span(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    with KnowledgeEngine(lockchain_path=tmp_path / "chain", anchor_batch_size=50) as engine:
        receipt = engine.apply(_delta(1))
        engine.apply(_delta(2))
        assert engine.anchorer is not None
        engine.anchorer.flush()

    done = spans.get_finished_spans()
    tx = [s for s in done if s.name == "kgc.transaction"]
    assert dict(tx[0].attributes or {})["kgc.seq"] == receipt.seq
    anchor = _one(done, "kgc.anchor")
    attrs = dict(anchor.attributes or {})
    assert attrs["kgc.batch.size"] == 2
    assert attrs["kgc.batch.first_seq"] == 1
    assert attrs["kgc.batch.last_seq"] == 2
    assert attrs["kgc.anchored_seq"] == 2
    assert len(str(attrs["kgc.commit"])) == 40


# The SDK and a real OTLP/HTTP receiver ---------------------------------------------------------


def test_spans_reach_an_otlp_receiver_with_the_service_name() -> None:
    with otlp_receiver() as (url, received):
        settings = SimpleNamespace(
            enable_observability=True,
            observability_endpoint=url,
            service_name="kgc-test",
            service_version="9.9.9",
            sampling_ratio=1.0,
        )
        provider = configure_tracing(settings, install_global=False)
        assert provider is not None
        try:
            with KnowledgeEngine() as engine:
                engine.hooks.register(Hook("no-bad", SparqlAsk(BAD)))
                engine.apply(_delta(1), actor="bob")
            assert provider.force_flush(10_000)
        finally:
            provider.shutdown()
            tracing.use_provider(None)

    assert received.paths and set(received.paths) == {"/v1/traces"}
    got = received.spans()
    assert {service for service, _, _ in got} == {"kgc-test"}
    assert got[0][1]["service.version"] == "9.9.9"
    names = sorted(s.name for _, _, s in got)
    assert names == ["kgc.condition", "kgc.hook", "kgc.transaction"]
    [tx] = [s for _, _, s in got if s.name == "kgc.transaction"]
    attrs = {a.key: a.value.string_value for a in tx.attributes}
    assert attrs["kgc.actor"] == "bob"


def test_sampling_ratio_zero_sends_no_spans() -> None:
    with otlp_receiver() as (url, received):
        provider = configure_tracing(
            enabled=True, endpoint=url, sampling_ratio=0.0, install_global=False
        )
        assert provider is not None
        try:
            with KnowledgeEngine() as engine:
                for i in range(20):
                    engine.apply(_delta(i))
            assert provider.force_flush(10_000)
        finally:
            provider.shutdown()
            tracing.use_provider(None)
    assert received.spans() == []


def test_tracing_stays_off_unless_enabled_with_an_endpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert configure_tracing(None) is None
    assert configure_tracing(SimpleNamespace(enable_observability=False)) is None
    with caplog.at_level(logging.INFO, logger="kgc"):
        assert configure_tracing(enabled=True, install_global=False) is None
    # The default configuration (observability on, no endpoint) is said at INFO, not WARNING.
    [said] = [r for r in caplog.records if "no observability endpoint" in r.getMessage()]
    assert said.levelno == logging.INFO
    assert tracing.tracer() is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampling_ratio": 1.5}, "sampling ratio must be in [0, 1]"),
        ({"endpoint": "jaeger:14268"}, "must be an http(s) URL"),
    ],
)
def test_bad_settings_are_logged_not_raised(
    kwargs: dict[str, object], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    base: dict[str, object] = {
        "enabled": True,
        "endpoint": "http://127.0.0.1:9",
        "install_global": False,
    }
    with caplog.at_level(logging.WARNING, logger="kgc"):
        assert configure_tracing(**{**base, **kwargs}) is None  # type: ignore[arg-type]
    assert "Tracing not configured" in caplog.text
    assert message in caplog.text


def test_endpoint_without_a_path_gets_v1_traces() -> None:
    assert tracing.traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert tracing.traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert tracing.traces_url("http://c:4318/custom") == "http://c:4318/custom"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("dead", ["refusing receiver", "closed port"])
def test_export_failures_are_logged_once_and_never_reach_apply(
    dead: str, caplog: pytest.LogCaptureFixture
) -> None:
    def run(url: str) -> None:
        provider = configure_tracing(
            enabled=True, endpoint=url, install_global=False, export_timeout_s=0.5
        )
        assert provider is not None
        try:
            with KnowledgeEngine() as engine:
                for i in range(3):
                    assert engine.apply(_delta(i)).committed
                    provider.force_flush(5_000)
        finally:
            provider.shutdown()
            tracing.use_provider(None)

    with caplog.at_level(logging.DEBUG):
        if dead == "refusing receiver":
            with otlp_receiver(status=400) as (url, received):
                run(url)
            assert len(received.paths) == 3
        else:
            run(f"http://127.0.0.1:{_closed_port()}")

    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(" (")[0] for r in failures] == ["Trace export failed"], [
        (r.name, r.getMessage()) for r in failures
    ]


def test_export_recovery_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with otlp_receiver(status=400) as (url, received), caplog.at_level(logging.INFO, "kgc"):
        provider = configure_tracing(enabled=True, endpoint=url, install_global=False)
        assert provider is not None
        try:
            with KnowledgeEngine() as engine:
                engine.apply(_delta(1))
                provider.force_flush(5_000)
                received.status = 200
                engine.apply(_delta(2))
                provider.force_flush(5_000)
        finally:
            provider.shutdown()
            tracing.use_provider(None)
    messages = [r.getMessage() for r in caplog.records if r.name == "kgc.telemetry.tracing"]
    assert any(m.startswith("Trace export failed") for m in messages)
    assert "Trace export recovered" in messages
    assert [s.name for _, _, s in received.spans()] == ["kgc.transaction"]


# OpenTelemetry's global provider is set once per process: these run in a process of their own.

GLOBAL_BY_HOST = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from kgc import Delta, KnowledgeEngine

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
with KnowledgeEngine() as engine:
    engine.apply(Delta.from_text('<urn:a> <urn:p> "1" .'))
print(sorted(s.name for s in exporter.get_finished_spans()))
"""

GLOBAL_BY_CONFIGURE = """
from opentelemetry import trace
from kgc import Delta, KnowledgeEngine
from kgc.telemetry import configure_tracing

provider = configure_tracing(enabled=True, endpoint="{url}", service_name="kgc-global")
assert trace.get_tracer_provider() is provider
with KnowledgeEngine() as engine:
    engine.apply(Delta.from_text('<urn:a> <urn:p> "1" .'))
provider.force_flush(10_000)
provider.shutdown()
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_global_provider_set_by_the_host_receives_kgc_spans() -> None:
    done = _python(GLOBAL_BY_HOST)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['kgc.transaction']"


def test_configure_tracing_installs_the_global_provider() -> None:
    with otlp_receiver() as (url, received):
        done = _python(GLOBAL_BY_CONFIGURE.format(url=url))
    assert done.returncode == 0, done.stderr
    assert [(svc, s.name) for svc, _, s in received.spans()] == [("kgc-global", "kgc.transaction")]

"""OpenTelemetry spans for transactions, hooks, conditions, effects and anchoring.

Library code uses ``opentelemetry-api`` only. Spans (attributes in ``docs/observability.md``):

- ``kgc.transaction``: one ``apply``, from intake to the last post-commit effect;
- ``kgc.hook``: one hook judged (``before``, condition, ``run``, ``after``), child of the
  transaction;
- ``kgc.condition``: one condition evaluated, child of its hook;
- ``kgc.effect``: a fired post-commit hook's ``run`` and ``after``, after the commit;
- ``kgc.anchor``: one batch of receipts anchored in git, on the anchorer's thread (a root span).

Without an SDK (nothing called ``configure_tracing``, ``use_provider`` or set a global tracer
provider) ``span`` returns a shared no-op context manager without touching OpenTelemetry's
context: the cost is a function call and a type check (measured in ``docs/observability.md``).

``configure_tracing`` installs the SDK (the ``otel`` extra) with an OTLP/HTTP exporter. It never
raises: a missing SDK, a bad setting or an exporter failure is logged once (WARNING) and tracing
stays off or drops spans. Only ``kgc serve`` and the CLI call it; the library never configures
telemetry by itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from kgc.hooks.model import HookVerdict
    from kgc.receipt import Receipt

logger = logging.getLogger(__name__)

TRACER_NAME = "kgc"
DEFAULT_SERVICE_NAME = "kgc-sidecar"
DEFAULT_SERVICE_VERSION = "0.1.0"
EXPORT_TIMEOUT_S = 5.0
RECHECK_S = 1.0
TRACES_PATH = "/v1/traces"
_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


class _Chosen:
    """The provider ``use_provider`` chose and its tracer; the global SDK tracer once found."""

    provider: trace.TracerProvider | None = None
    tracer: trace.Tracer | None = None
    global_tracer: trace.Tracer | None = None
    # Until then, no global SDK provider: asking OpenTelemetry costs about 1 us (it reads
    # os.environ), so the answer is kept for RECHECK_S.
    recheck_at = 0.0


class _NoSpan(contextlib.AbstractContextManager[None]):
    """The shared context manager ``span`` returns when no SDK records spans."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Send kgc's spans to ``provider`` rather than the global tracer provider (``None``: back to
    the global one). For tests and for hosts that keep several providers."""
    _Chosen.provider = provider
    _Chosen.tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None


def tracer() -> trace.Tracer | None:
    """The tracer kgc's spans go to, or ``None`` when no SDK is configured anywhere.

    A global provider set by the host (``trace.set_tracer_provider``) is noticed within
    ``RECHECK_S`` seconds; ``configure_tracing`` and ``use_provider`` take effect at once.
    """
    if _Chosen.tracer is not None:
        return _Chosen.tracer
    if _Chosen.global_tracer is not None:
        return _Chosen.global_tracer
    now = time.monotonic()
    if now < _Chosen.recheck_at:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, _NO_SDK):
        _Chosen.recheck_at = now + RECHECK_S
        return None
    # OpenTelemetry's global provider is set once per process: keep its tracer.
    _Chosen.global_tracer = provider.get_tracer(TRACER_NAME)
    return _Chosen.global_tracer


def span(
    name: str, attributes: dict[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name``, current inside the ``with`` block; yields the ``Span`` or ``None``.

    An exception leaving the block is recorded on the span and sets its status to ERROR.
    """
    current = tracer()
    if current is None:
        return _NO_SPAN
    parent = trace.get_current_span()
    if parent.get_span_context().is_valid and not parent.is_recording():
        return _NO_SPAN  # the parent was not sampled; a child would not be either (ParentBased)
    return current.start_as_current_span(name, attributes=attributes)


def transaction_ended(span_: Span | None, receipt: Receipt) -> None:
    """Put a receipt's outcome on its ``kgc.transaction`` span."""
    if span_ is None:
        return
    span_.set_attributes(
        {
            "kgc.receipt_id": receipt.id,
            "kgc.status": receipt.status,
            "kgc.committed": receipt.committed,
            "kgc.additions": receipt.additions,
            "kgc.removals": receipt.removals,
            "kgc.hooks_evaluated": len(receipt.hooks) + len(receipt.effects),
            "kgc.hooks_skipped": receipt.hooks_skipped,
            "kgc.latency_ms": float(receipt.timings_ms.get("total", 0.0)),
        }
    )
    if receipt.seq is not None:
        span_.set_attribute("kgc.seq", receipt.seq)
    if receipt.status in ("error", "timeout"):
        span_.set_status(Status(StatusCode.ERROR, receipt.error or receipt.status))


def verdict_reached(span_: Span | None, verdict: HookVerdict) -> None:
    """Put a hook's verdict on its ``kgc.hook`` or ``kgc.effect`` span."""
    if span_ is None:
        return
    span_.set_attributes(
        {"kgc.verdict": verdict.verdict, "kgc.fired": verdict.fired, "kgc.phase": verdict.phase}
    )
    if verdict.verdict in ("error", "timeout"):
        span_.set_status(Status(StatusCode.ERROR, verdict.reason or verdict.verdict))


def batch_attributes(batch: Sequence[Any]) -> dict[str, Any]:
    """Attributes of a ``kgc.anchor`` span: the batch's size and sequence range."""
    if not batch:
        return {"kgc.batch.size": 0}
    return {
        "kgc.batch.size": len(batch),
        "kgc.batch.first_seq": batch[0].seq,
        "kgc.batch.last_seq": batch[-1].seq,
    }


def anchored(span_: Span | None, anchored_seq: int, head: str | None) -> None:
    """Put where the anchor stands after a batch on its ``kgc.anchor`` span."""
    if span_ is None:
        return
    span_.set_attribute("kgc.anchored_seq", anchored_seq)
    if head is not None:
        span_.set_attribute("kgc.commit", head)


# The SDK --------------------------------------------------------------------------------------


def configure_tracing(
    settings: object | None = None,
    *,
    enabled: bool | None = None,
    endpoint: str | None = None,
    service_name: str | None = None,
    service_version: str | None = None,
    sampling_ratio: float | None = None,
    export_timeout_s: float = EXPORT_TIMEOUT_S,
    install_global: bool = True,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Install the OpenTelemetry SDK with an OTLP/HTTP exporter; return its provider or ``None``.

    Values come from the keyword arguments, else from ``settings`` (any object with
    ``enable_observability``, ``observability_endpoint``, ``service_name``, ``service_version``,
    ``sampling_ratio`` attributes; missing ones take their defaults). Nothing is installed unless
    tracing is enabled and an endpoint (or an ``exporter``, for tests) is given. ``endpoint`` is
    the URL of an OTLP/HTTP receiver; one with no path gets ``/v1/traces``.

    Spans are sampled by trace id with ratio ``sampling_ratio`` (parent-based, so a transaction's
    hooks follow it) and exported in batches by a background thread. ``install_global`` also
    makes the provider OpenTelemetry's global one (possible once per process); kgc's own spans
    go to it either way. Never raises: failures are logged once and tracing stays off.
    """
    try:
        return _configure(
            settings,
            enabled=enabled,
            endpoint=endpoint,
            service_name=service_name,
            service_version=service_version,
            sampling_ratio=sampling_ratio,
            export_timeout_s=export_timeout_s,
            install_global=install_global,
            exporter=exporter,
        )
    except Exception as exc:  # telemetry never breaks the host
        logger.warning("Tracing not configured: %s: %s", type(exc).__name__, exc)
        return None


def _configure(
    settings: object | None,
    *,
    enabled: bool | None,
    endpoint: str | None,
    service_name: str | None,
    service_version: str | None,
    sampling_ratio: float | None,
    export_timeout_s: float,
    install_global: bool,
    exporter: SpanExporter | None,
) -> TracerProvider | None:
    def pick(value: Any, name: str, default: Any) -> Any:
        if value is not None:
            return value
        found = getattr(settings, name, None)
        return default if found is None else found

    if not pick(enabled, "enable_observability", False):
        return None
    url = pick(endpoint, "observability_endpoint", None)
    if exporter is None and not url:
        # ENABLE_OBSERVABILITY is on by default (the runbook's default), so this is the default
        # configuration, not a fault: INFO, not WARNING.
        logger.info(
            "Tracing off: no observability endpoint is set "
            "(set OBSERVABILITY_ENDPOINT to export traces)"
        )
        return None
    ratio = float(pick(sampling_ratio, "sampling_ratio", 1.0))
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"sampling ratio must be in [0, 1], got {ratio}")
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        logger.warning(
            "Tracing not configured: the OpenTelemetry SDK is not installed "
            "(pip install 'kgc-governance[otel]')"
        )
        return None
    if exporter is None:
        exporter = _otlp_exporter(traces_url(str(url)), export_timeout_s)
    resource = Resource.create(
        {
            "service.name": str(pick(service_name, "service_name", DEFAULT_SERVICE_NAME)),
            "service.version": str(
                pick(service_version, "service_version", DEFAULT_SERVICE_VERSION)
            ),
        }
    )
    provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(guarded(exporter)))
    if install_global:
        trace.set_tracer_provider(provider)
    use_provider(provider)
    logger.info(
        "Tracing to %s, sampling ratio %s",
        url or type(exporter).__name__,
        ratio,
        extra={"endpoint": url, "sampling_ratio": ratio},
    )
    return provider


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for ``endpoint``: as given, or with ``/v1/traces`` when it has
    no path."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"observability endpoint must be an http(s) URL, got {endpoint!r}")
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + TRACES_PATH
    return endpoint


def _otlp_exporter(url: str, timeout_s: float) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=url, timeout=timeout_s)


def guarded(inner: SpanExporter) -> SpanExporter:
    """``inner`` wrapped so that it never raises and a run of failures is logged once.

    The first failed export logs a WARNING with the exporter's reason (the OTLP exporter's own
    WARNING and ERROR records are kept out of the log and used as that reason, so a dead
    collector does not flood it); the first success after failures logs that export resumed.
    """
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Guarded(SpanExporter):
        def __init__(self) -> None:
            self.inner = inner
            self.failing = False
            self.failures = 0
            self.detail: str | None = None
            self._lock = threading.Lock()
            self._quiet = _Quiet(self)
            self._noisy = logging.getLogger(type(inner).__module__)
            self._noisy.addFilter(self._quiet)

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.detail = None
            try:
                result = self.inner.export(spans)
                error = None if result is SpanExportResult.SUCCESS else "export failed"
            except Exception as exc:
                result, error = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
            if error is not None and self.detail:
                error = f"{error}: {self.detail}"
            self._report(error, len(spans))
            return result

        def _report(self, error: str | None, count: int) -> None:
            with self._lock:
                was_failing, self.failing = self.failing, error is not None
                if error is not None:
                    self.failures += 1
            if error is not None and not was_failing:
                logger.warning(
                    "Trace export failed (%d spans dropped; further failures are not logged "
                    "until an export succeeds): %s",
                    count,
                    error,
                )
            elif error is None and was_failing:
                logger.info("Trace export recovered")

        def shutdown(self) -> None:
            try:
                self.inner.shutdown()
            except Exception as exc:
                logger.debug("trace exporter shutdown failed: %s", exc)
            finally:
                self._noisy.removeFilter(self._quiet)

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            try:
                return bool(self.inner.force_flush(timeout_millis))
            except Exception:
                return False

    return Guarded()


class _Quiet(logging.Filter):
    """Keeps the exporter's WARNING and ERROR records for the guard instead of the log."""

    def __init__(self, guard: Any) -> None:
        super().__init__()
        self.guard = guard

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        with contextlib.suppress(Exception):
            self.guard.detail = record.getMessage()
        return False

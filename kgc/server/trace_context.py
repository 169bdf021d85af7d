"""Join the caller's trace: each HTTP request is a SERVER span, child of its ``traceparent``.

A host in any language that sends W3C trace context (``traceparent``, ``tracestate``) sees kgc's
work inside its own trace: the request's span ``POST /transactions``, under it the
``kgc.transaction`` span and its hooks (the write queue carries the context to the writer
thread). The caller's sampling decision holds (the sampler is parent-based): an unsampled
``traceparent`` records nothing. A missing or malformed header starts a new trace, as
OpenTelemetry's propagator does; it never fails the request. The propagator is OpenTelemetry's
configured one (``OTEL_PROPAGATORS``); when that names one not installed, W3C trace context and
baggage are used and a WARNING says so once (``kgc serve`` still starts).

Without an SDK (tracing not configured) the middleware costs one check per request and touches
no headers. Span names use the route's template (``GET /receipts/{receipt_id}``), never the raw
path, so they stay few; an unmatched path is named by its method alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Any

from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kgc.server.errors import log_unexpected
from kgc.telemetry.tracing import tracer

logger = logging.getLogger(__name__)

# Only these request headers are read; the rest of a request never reaches the propagator.
PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})


class TraceRequests:
    """ASGI middleware: a SERVER span per HTTP request, parented by the caller's trace context."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        current = tracer() if scope["type"] == "http" else None
        if current is None:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        route = self._route(scope)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        if route is not None:
            attributes["http.route"] = route
        status: list[int] = []

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        name = f"{method} {route}" if route is not None else method
        with current.start_as_current_span(
            name, context=_caller(scope), kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            try:
                await self.app(scope, receive, send_and_note)
            except Exception as exc:
                if not status:  # the server answers 500 (the span records the exception)
                    span.set_attribute("http.response.status_code", 500)
                log_unexpected(method, scope["path"], exc)  # inside the span: with its trace
                raise
            if status:
                span.set_attribute("http.response.status_code", status[0])
                if status[0] >= 500:  # a 4xx is the caller's fault, not the server's (semconv)
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status[0]}"))

    def _route(self, scope: Scope) -> str | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                path: str | None = getattr(route, "path", None)
                return path
        return None


def _caller(scope: Scope) -> Any:
    """The caller's context from its propagation headers (an empty context when it sent none)."""
    found: dict[str, list[str]] = {}
    for key, value in scope.get("headers", ()):
        name = key.lower()
        if name in PROPAGATION_HEADERS:
            found.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    if not found:
        return None
    # Repeated headers are one comma-separated list (RFC 9110): tracestate and baggage members
    # combine, and two traceparents make an invalid one, which starts a new trace (W3C).
    return _propagator().extract({name: ",".join(values) for name, values in found.items()})


@cache
def _propagator() -> TextMapPropagator:
    """OpenTelemetry's configured propagator, or W3C trace context and baggage when it cannot
    be loaded (``opentelemetry.propagate`` raises at import on an unknown ``OTEL_PROPAGATORS``)."""
    try:
        from opentelemetry import propagate

        return propagate.get_global_textmap()
    except Exception as exc:  # a bad OTEL_PROPAGATORS must not stop the server
        logger.warning("Trace context propagator not loaded (%s); using W3C traceparent", exc)
        return CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])

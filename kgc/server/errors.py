"""HTTP errors: one JSON shape, ``{"error": message, "status": code}``, for every refusal.

``HTTPError`` is raised by the routes; ``status_for`` maps kgc's own errors (``kgc.errors``) to a
status: bad input is a 4xx naming the fault, never a 500.

Any other exception is kgc's fault: a JSON 500, logged with its traceback (``Request failed``).
Every refusal is counted in ``kgc_errors_total{kind="request_4xx"|"request_5xx"}`` except
backpressure (``Backpressure``: 429 and 503 while the write queue is full), which is not a
fault of the request or of the server and is counted in ``kgc_queue_rejected_total``.
"""

from __future__ import annotations

import contextlib
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kgc.errors import (
    HookError,
    InputError,
    KGCError,
    LockchainError,
    PolicyPackError,
    StoreError,
    TransactionError,
    UnknownHook,
)

logger = logging.getLogger(__name__)


class HTTPError(Exception):
    """A refusal with a status, a message for the client and optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Backpressure(HTTPError):
    """A write refused because the write queue is full or throttling (429 or 503)."""


def status_for(exc: KGCError) -> int:
    if isinstance(exc, UnknownHook):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, HookError | PolicyPackError):
        return 409
    if isinstance(exc, TransactionError):
        return 503
    if isinstance(exc, StoreError | LockchainError):
        return 503
    return 400


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # A message may quote the request, lone surrogates included ("\\ud800" in a JSON key), which
    # UTF-8 cannot encode: they are written as escapes rather than failing the reply.
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": text, "status": status}, status_code=status, headers=headers)


REQUEST_ERROR_KINDS = ("request_4xx", "request_5xx")


def _count(request: Request, status: int) -> None:
    """``kgc_errors_total{kind="request_4xx"|"request_5xx"}``: refusals no receipt shows."""
    state = getattr(request.app.state, "kgc", None)
    if state is not None:
        state.metrics.record_error("request_5xx" if status >= 500 else "request_4xx")


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    if not isinstance(exc, Backpressure):
        _count(request, exc.status)
    return error_response(exc.status, exc.message, exc.headers)


async def on_kgc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KGCError)
    status = status_for(exc)
    if status >= 500:
        logger.error("Request failed: %s %s: %s", request.method, request.url.path, exc)
    _count(request, status)
    return error_response(status, str(exc))


async def on_starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    _count(request, exc.status_code)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


def log_unexpected(method: str, path: str, exc: BaseException) -> None:
    """``Request failed`` with the traceback, once per exception: the request's middleware logs it
    while the request's span is current (so the line carries its trace), the handler otherwise."""
    if getattr(exc, "_kgc_logged", False):
        return
    logger.error(
        "Request failed: %s %s: %s: %s", method, path, type(exc).__name__, exc, exc_info=exc
    )
    with contextlib.suppress(AttributeError):  # an exception type that takes no attributes
        exc._kgc_logged = True  # type: ignore[attr-defined]


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    """A fault of kgc's, not of the request: logged with its traceback, counted, answered in the
    same JSON shape (Starlette then re-raises it to the server, which logs it too)."""
    log_unexpected(request.method, request.url.path, exc)
    _count(request, 500)
    return error_response(500, "internal error; the server log has the details")


HANDLERS = {
    HTTPError: on_http_error,
    KGCError: on_kgc_error,
    HTTPException: on_starlette_error,
    Exception: on_unexpected_error,
}

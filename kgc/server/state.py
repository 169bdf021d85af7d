"""``AppState``: what every route reads (engine, settings, keys, write queue, receipts)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request

from kgc.engine import KnowledgeEngine
from kgc.server.auth import KeyRing, Principal, Role, presented_key
from kgc.server.backpressure import WriteQueue
from kgc.server.errors import HTTPError
from kgc.server.receipts import ReceiptLog
from kgc.server.settings import ServerSettings
from kgc.telemetry import Metrics

logger = logging.getLogger(__name__)


class AppState:
    def __init__(
        self,
        engine: KnowledgeEngine,
        settings: ServerSettings,
        keys: KeyRing,
        *,
        keepalive_s: float = 15.0,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.keys = keys
        self.queue = WriteQueue(
            settings.max_concurrency, settings.high_watermark, settings.low_watermark
        )
        self.receipts = ReceiptLog()
        self.metrics = Metrics(high_latency_ms=settings.high_latency_ms).attach(engine)
        self.started = time.monotonic()
        self.keepalive_s = keepalive_s
        # Set by ``kgc serve`` to the server's "exit requested" flag, so live streams end.
        self.shutting_down: Callable[[], bool] = lambda: False

    def authorize(self, request: Request, role: Role) -> Principal:
        """The request's principal if it may act as ``role``; 401 or 403 otherwise."""
        headers = request.headers
        key = presented_key(headers.get("authorization"), headers.get("x-api-key"))
        if key is None:
            principal = self.keys.anonymous
            if principal is None:
                raise HTTPError(
                    401, "an API key is required", {"WWW-Authenticate": 'Bearer realm="kgc"'}
                )
        else:
            found = self.keys.identify(key)
            if found is None:
                logger.info("Refused an unknown API key: %s %s", request.method, request.url.path)
                raise HTTPError(
                    401, "the API key is not valid", {"WWW-Authenticate": 'Bearer realm="kgc"'}
                )
            principal = found
        if not principal.may(role):
            raise HTTPError(
                403, f"{principal.name} has role {principal.role!r}; this needs {role!r}"
            )
        return principal


async def read_body(request: Request, limit: int, limit_name: str = "max_body_bytes") -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes
    (``limit_name`` says which limit, in the message); a client gone mid-body gets 400."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPError(400, f"Content-Length is not a whole number: {declared[:40]!r}")
        if int(declared) > limit:
            raise _too_large(int(declared), limit, limit_name)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(size, limit, limit_name)
            chunks.append(chunk)
    except ClientDisconnect:
        raise HTTPError(400, "the client closed the connection before sending the body") from None
    return b"".join(chunks)


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"the body is not UTF-8 (byte {exc.start})") from exc


def parse_json(text: str) -> Any:
    """A request body's JSON, or a 400 naming what is wrong with it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"the body is not JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError:
        raise HTTPError(400, "the body's JSON is nested too deeply") from None
    except ValueError as exc:  # an integer past Python's digit limit for int() (4300 digits)
        raise HTTPError(
            400, f"the body's JSON holds a number too long to read: {str(exc)[:120]}"
        ) from exc


def _too_large(size: int, limit: int, limit_name: str) -> HTTPError:
    return HTTPError(
        413, f"the request body is {size:,} bytes or more; the limit is {limit:,} ({limit_name})"
    )

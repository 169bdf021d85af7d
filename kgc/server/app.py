"""``create_app``: the Starlette application of ``kgc serve`` (routes listed in ``ROUTES``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kgc.engine import KnowledgeEngine
from kgc.errors import SandboxUnavailable
from kgc.server import admin, health, receipts_routes, resolution_routes, sparql, transactions
from kgc.server.auth import KeyRing
from kgc.server.errors import HANDLERS
from kgc.server.settings import ServerSettings
from kgc.server.state import AppState
from kgc.server.trace_context import TraceRequests

logger = logging.getLogger(__name__)


@cache
def openapi_document() -> dict[str, Any]:
    text = resources.files("kgc.server").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


ROUTES = [
    Route("/health", health.health, methods=["GET"]),
    Route("/ready", health.ready, methods=["GET"]),
    Route("/metrics", health.metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/transactions", transactions.post_transaction, methods=["POST"]),
    Route("/receipts", receipts_routes.list_receipts, methods=["GET"]),
    Route("/receipts/stream", receipts_routes.stream_receipts, methods=["GET"]),
    Route("/receipts/{receipt_id}", receipts_routes.get_receipt, methods=["GET"]),
    Route("/sparql", sparql.sparql_endpoint, methods=["GET", "POST"]),
    Route("/hooks", admin.list_hooks, methods=["GET"]),
    Route("/hooks/{name}", admin.get_hook, methods=["GET"]),
    Route("/hooks/{name}", admin.delete_hook, methods=["DELETE"]),
    Route("/policy", admin.get_policy, methods=["GET"]),
    Route("/policy/activate", admin.activate, methods=["POST"]),
    Route("/policy/deactivate", admin.deactivate, methods=["POST"]),
    Route("/policy/rollback", admin.rollback, methods=["POST"]),
    Route("/lockchain/verify", admin.verify_lockchain, methods=["POST"]),
    Route("/proposals", resolution_routes.post_proposal, methods=["POST"]),
    Route("/resolutions/{round_id}", resolution_routes.get_resolution, methods=["GET"]),
]


def _warm_sandbox(engine: KnowledgeEngine) -> None:
    effects = engine.transactions.effects
    if not effects.enabled:
        return
    try:
        layers = effects.probe()
        logger.info("Sandbox ready: %s", ", ".join(f"{k}={v}" for k, v in layers.items()))
    except SandboxUnavailable as exc:
        logger.error("Sandbox unavailable: %s", exc)


def create_app(
    engine: KnowledgeEngine,
    settings: ServerSettings | None = None,
    *,
    keys: KeyRing | None = None,
    keepalive_s: float = 15.0,
) -> Starlette:
    """The app over ``engine``; the caller keeps ownership of the engine (and closes it)."""
    settings = settings if settings is not None else ServerSettings()
    keys = keys if keys is not None else KeyRing.from_settings(settings)
    state = AppState(engine, settings, keys, keepalive_s=keepalive_s)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.receipts.bind(asyncio.get_running_loop())
        engine.transactions.on_receipt.append(state.receipts.add)
        # Requests are served once the sandbox has confined a worker (or failed to, for /ready).
        await asyncio.to_thread(_warm_sandbox, engine)
        try:
            yield
        finally:
            resolver = getattr(app.state, "kgc_resolver", None)
            if resolver is not None:  # no round timer may fire into a closing engine
                resolver.shutdown()
            state.receipts.close_streams()
            engine.transactions.on_receipt.remove(state.receipts.add)
            state.queue.close()

    app = Starlette(
        routes=ROUTES,
        exception_handlers=HANDLERS,
        lifespan=lifespan,
        middleware=[Middleware(TraceRequests, routes=ROUTES)],
    )
    app.state.kgc = state
    return app

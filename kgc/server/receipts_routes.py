"""Receipt routes: ``GET /receipts/{id}``, ``GET /receipts?after=SEQ``, ``GET /receipts/stream``.

``log_seq`` is a receipt's place in the server's log. The stream is server-sent events: one
``receipt`` event per receipt (``id:`` is its log sequence
number, ``data:`` the receipt as JSON), a ``: keepalive`` comment when idle, and a final ``end``
event when the server shuts down or the reader falls more than a buffer behind. ``after=SEQ`` (or
a reconnecting client's ``Last-Event-ID``) first replays what the in-memory log still holds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kgc.server.errors import HTTPError
from kgc.server.receipts import Entry, Subscriber
from kgc.server.state import AppState

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_POLL_S = 0.5


async def get_receipt(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    receipt_id = request.path_params["receipt_id"]
    entry = state.receipts.get(receipt_id)
    if entry is None:
        raise HTTPError(404, f"no receipt {receipt_id[:80]!r} in this server's log")
    return Response(entry.text, media_type="application/json")


async def list_receipts(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    after = _whole(request.query_params.get("after"), "after") or 0
    limit = _whole(request.query_params.get("limit"), "limit")
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise HTTPError(400, f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    entries = state.receipts.after(after, limit)
    last = entries[-1].seq if entries else after
    listed = ",".join(e.text for e in entries)
    return Response(f'{{"receipts":[{listed}],"last":{last}}}', media_type="application/json")


async def stream_receipts(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    after = _whole(request.query_params.get("after"), "after")
    if after is None:
        after = _whole(request.headers.get("last-event-id"), "Last-Event-ID")
    subscriber, backlog = state.receipts.subscribe(after)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _events(state, subscriber, backlog), media_type="text/event-stream", headers=headers
    )


async def _events(
    state: AppState, subscriber: Subscriber, backlog: list[Entry]
) -> AsyncIterator[str]:
    try:
        yield ": kgc receipts\n\n"
        for entry in backlog:
            yield _event(entry)
        idle = 0.0
        while not state.shutting_down():
            try:
                item = await asyncio.wait_for(_next(subscriber), _POLL_S)
            except TimeoutError:
                idle += _POLL_S
                if idle >= state.keepalive_s:
                    idle = 0.0
                    yield ": keepalive\n\n"
                continue
            if item is None:
                break
            idle = 0.0
            yield _event(item)
        reason = "overflow" if subscriber.overflowed else "shutdown"
        yield f"event: end\ndata: {json.dumps({'reason': reason})}\n\n"
    finally:
        state.receipts.unsubscribe(subscriber)


async def _next(subscriber: Subscriber) -> Entry | None:
    return await subscriber.queue.get()


def _event(entry: Entry) -> str:
    return f"event: receipt\nid: {entry.seq}\ndata: {entry.text}\n\n"


def _whole(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise HTTPError(400, f"{name} must be a whole number, got {text[:40]!r}")
    return int(text)

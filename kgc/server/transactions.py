"""``POST /transactions``: a delta in, a receipt out.

Bodies by ``Content-Type``: ``application/json`` (kgc's JSON delta, docs/deltas.md);
``application/n-quads``, ``application/trig``, ``text/turtle``, ``application/n-triples``
(everything in the body is added); ``application/rdf-patch`` (additions and removals, see
``kgc.server.patch``). The body and every literal are size-limited (413). The delta is parsed and
checked before it is queued, so bad input is refused (400) without touching the writer.

Answers: 201 with the receipt when committed; 409 with the receipt when refused by governance (a
veto, or in strict mode a hook error or timeout); the receipt is kept for ``GET /receipts/{id}``
either way. The actor recorded is the API key's name (``key-1a2b3c4d``) or ``anonymous``.
"""

from __future__ import annotations

import logging

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from kgc.rdf.delta import Delta
from kgc.receipt import Receipt
from kgc.server.errors import HTTPError
from kgc.server.patch import MEDIA_TYPES as PATCH_TYPES
from kgc.server.patch import parse_patch
from kgc.server.receipts import Entry
from kgc.server.state import AppState, decode, read_body

logger = logging.getLogger(__name__)
RDF_TYPES = {
    "application/n-quads": "nquads",
    "application/trig": "trig",
    "text/turtle": "turtle",
    "application/n-triples": "ntriples",
}
ACCEPTED = ("application/json", *RDF_TYPES, *PATCH_TYPES)
INLINE_PARSE_BYTES = 64 * 1024


async def post_transaction(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    principal = state.authorize(request, "write")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ACCEPTED:
        raise HTTPError(
            415, f"a transaction body must be one of {', '.join(ACCEPTED)}; got {media or 'none'!r}"
        )
    body = await read_body(request, state.settings.max_body_bytes)
    if not body.strip():
        # An empty transaction is legal in the API, but over HTTP an empty body is almost always
        # a mistake (curl --data-binary @missing-file sends nothing): say so, change nothing.
        raise HTTPError(400, "the request body is empty: send a delta (see docs/server.md)")
    if len(body) > INLINE_PARSE_BYTES:  # a large parse would stall the event loop
        delta = await run_in_threadpool(_intake, state, media, body)
    else:
        delta = _intake(state, media, body)
    if not len(delta):
        # Only prefixes, comments or empty lists: as mistaken as an empty body, and a receipt of
        # nothing would still take a place in the lockchain.
        raise HTTPError(400, f"the request body ({media}) holds no quads: nothing to add or remove")

    def work() -> Receipt:
        return state.engine.apply(delta, actor=principal.name)

    receipt = await state.queue.submit(work)
    # The log's entry holds the receipt's JSON (with log_seq); a receipt the log has already
    # dropped (a flood past its capacity) is serialized here.
    entry = state.receipts.get(receipt.id) or Entry.of(0, receipt)
    logger.info(
        "Transaction %s: %s by %s (+%d -%d)",
        entry.id,
        entry.status,
        principal.name,
        entry.additions,
        entry.removals,
    )
    return Response(
        entry.text,
        status_code=201 if entry.committed else 409,
        media_type="application/json",
        headers={"Location": f"/receipts/{entry.id}"},
    )


def _intake(state: AppState, media: str, body: bytes) -> Delta:
    text = decode(body)
    policy = state.engine.settings.literal_policy
    if media == "application/json":
        delta = Delta.from_json(text, literal_policy=policy)
    elif media in PATCH_TYPES:
        delta = parse_patch(text, literal_policy=policy)
    else:
        delta = Delta.from_text(text, format=RDF_TYPES[media], literal_policy=policy)
    check_literals(delta, state.settings.max_literal_bytes)
    return delta


def check_literals(delta: Delta, limit: int) -> None:
    """413 for the first literal longer than ``limit`` UTF-8 bytes, naming where it is."""
    for side, quads in (("additions", delta.additions), ("removals", delta.removals)):
        for index, quad in enumerate(quads):
            term = quad.object
            if isinstance(term, ox.Literal) and len(term.value) * 4 > limit:
                size = len(term.value.encode("utf-8", "surrogatepass"))
                if size > limit:
                    raise HTTPError(
                        413,
                        f"{side}[{index}]: a literal of {size:,} bytes; the limit is {limit:,} "
                        "(max_literal_bytes)",
                    )

"""The resolution layer over HTTP: ``POST /proposals`` and ``GET /resolutions/{round_id}``.

``POST /proposals`` (role write) takes a JSON proposal (docs/resolution.md): ``agent``, ``delta``
(kgc's JSON delta), ``confidence``, optional ``priority``, ``depends_on``, ``conflicts_with``, and
two round fields: ``topic`` (default ``"default"``) and ``expected`` (how many proposals close the
round, when this proposal opens it). It answers 202 with the round's record, the proposal's
digest and ``duplicate`` (the round held it already); ``Location`` names the round. The API key's
principal is recorded with the proposal (``submitted_by``). A proposal that fills its round is
resolved and applied before the answer, through the write queue like ``POST /transactions``. A bad
proposal is refused with 400 naming the field, a literal over ``max_literal_bytes`` with 413, a
full round with 413 and one round too many with 429 (naming the limit); nothing changes.

``GET /resolutions/{round_id}`` (role read): the round's record, with each proposal's accepted,
superseded and rejected quads and the receipt once applied.

With ``enable_resolution`` false (the default), both answer 404 naming ``ENABLE_RESOLUTION``.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kgc.errors import (
    ProposalError,
    ResolutionDisabled,
    ResolutionLimitExceeded,
    RoundMismatch,
    UnknownRound,
)
from kgc.resolution import Proposal, ResolutionRecord, Resolver
from kgc.resolution.resolver import check_round_fields
from kgc.server.errors import HTTPError
from kgc.server.state import AppState, decode, parse_json, read_body
from kgc.server.transactions import check_literals

_ROUND_FIELDS = ("topic", "expected")
_create_lock = threading.Lock()
_LIMIT_STATUS = {"resolution_max_open_rounds": 429, "resolution_max_proposals": 413}


async def post_proposal(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    principal = state.authorize(request, "write")
    resolver = _resolver(request, state)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise HTTPError(415, f"a proposal must be application/json; got {media or 'none'!r}")
    data = _json_object(decode(await read_body(request, state.settings.max_body_bytes)))
    topic = data.pop("topic", "default")
    expected = data.pop("expected", None)
    check_round_fields(topic, expected)
    proposal = Proposal.from_json(
        data, literal_policy=state.engine.settings.literal_policy, also=_ROUND_FIELDS
    )
    check_literals(proposal.delta, state.settings.max_literal_bytes)

    def work() -> tuple[ResolutionRecord, bool]:
        return resolver.offer(proposal, topic=topic, expected=expected, submitted_by=principal.name)

    try:
        record, duplicate = await state.queue.submit(work)
    except RoundMismatch as exc:
        raise HTTPError(409, str(exc)) from exc
    except ResolutionLimitExceeded as exc:
        raise HTTPError(_LIMIT_STATUS.get(exc.limit, 429), str(exc)) from exc
    body = {"proposal": proposal.digest, "duplicate": duplicate, "round": record.to_json()}
    location = {"Location": f"/resolutions/{record.id}"}
    return JSONResponse(body, status_code=202, headers=location)


async def get_resolution(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    resolver = _resolver(request, state)
    round_id = request.path_params["round_id"]
    try:
        record = resolver.record(round_id)
    except UnknownRound as exc:
        raise HTTPError(404, str(exc)) from exc
    return JSONResponse(record.to_json())


def _resolver(request: Request, state: AppState) -> Resolver:
    """The app's one ``Resolver``, made on first use; 404 while the layer is disabled."""
    found: Resolver | None = getattr(request.app.state, "kgc_resolver", None)
    if found is not None:
        return found
    with _create_lock:
        found = getattr(request.app.state, "kgc_resolver", None)
        if found is None:
            try:
                found = Resolver(state.engine)
            except ResolutionDisabled as exc:
                raise HTTPError(404, str(exc)) from exc
            request.app.state.kgc_resolver = found
    return found


def _json_object(text: str) -> dict[str, Any]:
    data = parse_json(text)
    if not isinstance(data, dict):
        raise ProposalError("proposal", f"expected a JSON object, got {type(data).__name__}")
    return data

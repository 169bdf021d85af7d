"""The SPARQL 1.1 Protocol query operation, read only: ``GET`` and ``POST /sparql``.

Requests: ``GET ?query=...``; ``POST`` form-encoded (``query=...``) or with the query as an
``application/sparql-query`` body. ``default-graph-uri`` and ``named-graph-uri`` set the dataset.
Other parameters (``format``, ``output`` that some clients add) are ignored: the format is chosen
from ``Accept``. Updates (an ``update`` parameter, ``application/sparql-update``) are refused:
writes go through ``POST /transactions``, where hooks govern them.

Responses: SELECT and ASK as SPARQL results JSON (default), XML, CSV or TSV; CONSTRUCT and
DESCRIBE as Turtle (default), N-Triples or RDF/XML. Queries run on a committed state (the
transaction lock's shared side) on a worker thread; they are not interrupted by a timeout.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import pyoxigraph as ox
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from kgc.server.errors import HTTPError
from kgc.server.state import AppState, decode, read_body

RESULTS = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "application/xml": ox.QueryResultsFormat.XML,
    "text/xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}
GRAPHS = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
}
FORM = "application/x-www-form-urlencoded"
QUERY_BODY = "application/sparql-query"
UPDATE_BODY = "application/sparql-update"


async def sparql_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    params = _params(request.query_params.multi_items())
    if request.method == "POST":
        params = await _post_params(request, state, params)
    query = _one(params, "query")
    options = _dataset(params)
    accept = request.headers.get("accept", "")
    results, graph = negotiate(accept, RESULTS), negotiate(accept, GRAPHS)

    def consume(result: Any) -> tuple[bytes, str]:
        return serialize(result, results, graph, accept)

    def run() -> tuple[bytes, str]:
        return state.engine.transactions.query_with(query, consume, **options)

    body, media_type = await run_in_threadpool(run)
    return Response(body, media_type=media_type)


def serialize(
    result: Any, results: str | None, graph: str | None, accept: str
) -> tuple[bytes, str]:
    if isinstance(result, ox.QueryTriples):
        if graph is None:
            raise _not_acceptable(accept, "a graph (CONSTRUCT or DESCRIBE)", GRAPHS)
        return result.serialize(format=GRAPHS[graph]) or b"", graph
    if results is None:
        raise _not_acceptable(accept, "results (SELECT or ASK)", RESULTS)
    return result.serialize(format=RESULTS[results]) or b"", results


def negotiate(accept: str, offers: dict[str, Any]) -> str | None:
    """The offered media type the ``Accept`` header likes best (the first offer for ``*/*``)."""
    if not accept.strip():
        return next(iter(offers))
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        media, *attrs = (part.strip() for part in item.split(";"))
        q = 1.0
        for attr in attrs:
            name, _, value = attr.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((-q, position, media.lower()))
    for negative_q, _, media in sorted(ranges):
        if negative_q >= 0:
            break
        for offer in offers:
            if media in (offer, "*/*") or (media.endswith("/*") and offer.startswith(media[:-1])):
                return offer
    return None


def _not_acceptable(accept: str, what: str, offers: dict[str, Any]) -> HTTPError:
    return HTTPError(
        406, f"cannot serve {what} as {accept[:200]!r}; acceptable: {', '.join(offers)}"
    )


def _params(items: Any) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in items:
        params.setdefault(name, []).append(value)
    return params


async def _post_params(
    request: Request, state: AppState, params: dict[str, list[str]]
) -> dict[str, list[str]]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == UPDATE_BODY or "update" in params:
        raise _update_refused()
    if media not in (FORM, QUERY_BODY):
        raise HTTPError(
            415, f"POST /sparql takes {FORM} or {QUERY_BODY}, got {media or 'no content type'!r}"
        )
    text = decode(await read_body(request, state.settings.max_body_bytes))
    if media == QUERY_BODY:
        if "query" in params:
            raise HTTPError(400, "a query in the body and in the URL: send one")
        return {**params, "query": [text]}
    form = parse_qs(text, keep_blank_values=True)
    merged = {**params}
    for name, values in form.items():
        merged.setdefault(name, []).extend(values)
    return merged


def _one(params: dict[str, list[str]], name: str) -> str:
    if "update" in params:
        raise _update_refused()
    values = params.get(name, [])
    if len(values) != 1:
        count = "no" if not values else str(len(values))
        raise HTTPError(400, f"expected exactly one {name!r} parameter, got {count}")
    if not values[0].strip():
        raise HTTPError(400, f"the {name!r} parameter is empty")
    return values[0]


def _dataset(params: dict[str, list[str]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, key in (("default-graph-uri", "default_graph"), ("named-graph-uri", "named_graphs")):
        if name in params:
            options[key] = [_iri(value, name) for value in params[name]]
    return options


def _iri(value: str, name: str) -> ox.NamedNode:
    try:
        return ox.NamedNode(value)
    except ValueError as exc:
        raise HTTPError(400, f"{name}: not an absolute IRI: {value[:200]!r} ({exc})") from exc


def _update_refused() -> HTTPError:
    return HTTPError(
        400,
        "SPARQL Update is not accepted: this endpoint is read only; "
        "write through POST /transactions, where hooks govern the change",
    )

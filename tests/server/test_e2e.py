"""``kgc serve`` as a real process on loopback, driven by httpx, SPARQLWrapper and rdflib."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import rdflib
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from served import (
    ADMIN_KEY,
    BAD_LABEL,
    KEYS,
    READ_KEY,
    WRITE_KEY,
    Served,
    auth,
    start_server,
    write_veto_hook,
)
from SPARQLWrapper import JSON, TURTLE, SPARQLWrapper

DATA = '<urn:ex:a> <urn:ex:p> "alpha" .\n<urn:ex:b> <urn:ex:p> "beta" .\n'


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    server = start_server(
        tmp, KGC_API_KEYS=KEYS, KGC_HOOKS_PATH=str(write_veto_hook(tmp / "hooks"))
    )
    try:
        response = httpx.post(
            f"{server.url}/transactions",
            content=DATA,
            headers={**auth(WRITE_KEY), "Content-Type": "application/n-triples"},
        )
        assert response.status_code == 201, response.text
        yield server
    finally:
        server.stop()


def test_httpx_round_trip_and_vetoed_transaction_changes_nothing(served: Served) -> None:
    with httpx.Client(base_url=served.url, headers=auth(WRITE_KEY)) as client:
        before = client.get("/receipts", params={"limit": 1000}).json()["last"]
        body = {"additions": [f"<urn:ex:c> <urn:ex:p> {BAD_LABEL} ."]}
        vetoed = client.post("/transactions", json=body)
        ask = client.get("/sparql", params={"query": f"ASK {{ ?s ?p {BAD_LABEL} }}"})

    assert vetoed.status_code == 409
    assert vetoed.json()["hooks"][0]["verdict"] == "veto"
    assert vetoed.json()["status"] == "vetoed"
    assert vetoed.json()["log_seq"] == before + 1
    assert ask.json()["boolean"] is False


def test_sparqlwrapper_select_ask_construct(served: Served) -> None:
    wrapper = SPARQLWrapper(f"{served.url}/sparql")
    wrapper.addCustomHttpHeader("Authorization", f"Bearer {READ_KEY}")
    wrapper.setReturnFormat(JSON)

    wrapper.setQuery("SELECT ?o WHERE { ?s <urn:ex:p> ?o } ORDER BY ?o")
    rows = wrapper.query().convert()["results"]["bindings"]  # type: ignore[index,call-overload]
    wrapper.setQuery("ASK { <urn:ex:a> <urn:ex:p> 'alpha' }")
    asked = wrapper.query().convert()["boolean"]  # type: ignore[index,call-overload]
    wrapper.setQuery("CONSTRUCT { ?s <urn:ex:q> ?o } WHERE { ?s <urn:ex:p> ?o }")
    wrapper.setReturnFormat(TURTLE)
    graph = rdflib.Graph().parse(data=wrapper.query().convert(), format="turtle")

    assert [r["o"]["value"] for r in rows] == ["alpha", "beta"]
    assert asked is True
    assert len(graph) == 2


def test_sparqlwrapper_post_form(served: Served) -> None:
    wrapper = SPARQLWrapper(f"{served.url}/sparql")
    wrapper.addCustomHttpHeader("X-API-Key", READ_KEY)
    wrapper.setMethod("POST")
    wrapper.setReturnFormat(JSON)
    wrapper.setQuery("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")

    count = wrapper.query().convert()["results"]["bindings"][0]["n"]["value"]  # type: ignore[index,call-overload]

    assert int(count) >= 2


def test_rdflib_sparqlstore_queries_through_a_graph(served: Served) -> None:
    store = SPARQLStore(f"{served.url}/sparql", auth=("kgc", READ_KEY))
    graph = rdflib.Graph(store=store)

    rows = list(graph.query("SELECT ?s WHERE { ?s <urn:ex:p> 'beta' }"))
    asked = graph.query("ASK { <urn:ex:a> ?p ?o }").askAnswer
    triples = list(graph.triples((rdflib.URIRef("urn:ex:a"), None, None)))

    assert [str(row[0]) for row in rows] == ["urn:ex:b"]  # type: ignore[index]
    assert asked is True
    assert len(triples) == 1


def test_bad_query_is_400_with_the_parser_message(served: Served) -> None:
    response = httpx.get(f"{served.url}/sparql", params={"query": "SELEC"}, headers=auth(READ_KEY))
    update = httpx.post(
        f"{served.url}/sparql",
        content="INSERT DATA { <urn:x> <urn:y> <urn:z> }",
        headers={**auth(READ_KEY), "Content-Type": "application/sparql-update"},
    )

    assert response.status_code == 400
    assert "does not parse" in response.json()["error"]
    assert update.status_code == 400
    assert "read only" in update.json()["error"]


def test_a_refused_accept_leaves_no_traceback_in_the_log(served: Served) -> None:
    # The 406 was right, but pyoxigraph's result, carried to the event loop by the exception's
    # traceback, panicked there ("unsendable ... dropped on another thread"): a plain-text
    # traceback on stderr per request, in a log that is otherwise JSON.
    before = served.output()
    for query, accept in (
        ("SELECT * WHERE { ?s ?p ?o }", "text/turtle"),
        ("CONSTRUCT WHERE { ?s ?p ?o }", "application/sparql-results+json"),
    ):
        response = httpx.get(
            f"{served.url}/sparql",
            params={"query": query},
            headers={**auth(READ_KEY), "Accept": accept},
        )
        assert response.status_code == 406, response.text
    time.sleep(0.5)
    added = served.output()[len(before) :]
    assert "unsendable" not in added and "Traceback" not in added, added
    assert all(line.startswith("{") for line in added.splitlines()), added


@pytest.mark.parametrize(
    ("path", "body", "fault"),
    [
        ("/transactions", '{"additions\\ud800": []}', "unknown key"),
        ("/transactions", '{"additions": ' + "1" * 5000 + "}", "integer string conversion"),
    ],
    ids=["lone-surrogate-key", "5000-digit-number"],
)
def test_bad_json_bodies_get_a_json_400_naming_the_fault(
    served: Served, path: str, body: str, fault: str
) -> None:
    response = httpx.post(
        f"{served.url}{path}",
        content=body,
        headers={**auth(WRITE_KEY), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400 and fault in response.json()["error"]


def test_limits_and_roles_over_the_wire(served: Served) -> None:
    huge = "x" * (11 * 1024 * 1024)
    too_big = httpx.post(
        f"{served.url}/transactions",
        content=huge,
        headers={**auth(WRITE_KEY), "Content-Type": "application/n-quads"},
    )
    literal = '<urn:ex:big> <urn:ex:p> "' + "y" * (1024 * 1024 + 1) + '" .'
    big_literal = httpx.post(
        f"{served.url}/transactions",
        content=literal,
        headers={**auth(WRITE_KEY), "Content-Type": "application/n-quads"},
    )
    anonymous = httpx.get(f"{served.url}/receipts")
    reader = httpx.post(f"{served.url}/policy/rollback", headers=auth(READ_KEY))
    admin = httpx.post(f"{served.url}/policy/rollback", headers=auth(ADMIN_KEY))

    assert too_big.status_code == 413
    assert big_literal.status_code == 413
    assert "max_literal_bytes" in big_literal.json()["error"]
    assert (anonymous.status_code, reader.status_code, admin.status_code) == (401, 403, 409)


def test_sse_stream_receives_receipts(served: Served) -> None:
    seen: list[str] = []
    ready = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", f"{served.url}/receipts/stream", headers=auth(READ_KEY), timeout=10
        ) as stream:
            for line in stream.iter_lines():
                ready.set()
                if line.startswith("data: "):
                    seen.append(line)
                    return

    thread = threading.Thread(target=listen)
    thread.start()
    assert ready.wait(10)
    body = {"additions": ['<urn:ex:sse> <urn:ex:p> "live" .']}
    posted = httpx.post(f"{served.url}/transactions", json=body, headers=auth(WRITE_KEY))
    thread.join(10)

    assert posted.status_code == 201
    assert seen and posted.json()["id"] in seen[0]


def test_keys_never_appear_in_the_log(served: Served) -> None:
    httpx.get(f"{served.url}/receipts", headers=auth("wrong-key-that-must-not-be-logged"))
    httpx.get(f"{served.url}/receipts", headers=auth(READ_KEY))

    log = served.output()
    assert "Refused an unknown API key" in log
    for secret in (READ_KEY, WRITE_KEY, ADMIN_KEY, "wrong-key-that-must-not-be-logged"):
        assert secret not in log


async def _flood(url: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, headers=auth(WRITE_KEY), timeout=30) as client:
        posts = [
            client.post("/transactions", json={"additions": [f'<urn:ex:f{i}> <urn:ex:p> "{i}" .']})
            for i in range(count)
        ]
        return list(await asyncio.gather(*posts))


@pytest.mark.parametrize(
    ("high", "refusal"),
    [("1", 429), ("2", 503)],
    ids=["above-high-watermark-429", "queue-full-503"],
)
def test_flood_gets_refusals_with_retry_after_and_no_crash(
    tmp_path: Path, high: str, refusal: int
) -> None:
    server = start_server(
        tmp_path,
        KGC_API_KEYS=KEYS,
        KGC_MAX_CONCURRENCY="2",
        KGC_QUEUE_HIGH_WATERMARK=high,
        KGC_QUEUE_LOW_WATERMARK="0",
    )
    try:
        responses = asyncio.run(_flood(server.url, 200))
        metrics = httpx.get(f"{server.url}/metrics").text
        health = httpx.get(f"{server.url}/health")
    finally:
        code = server.stop()

    statuses = {r.status_code for r in responses}
    refused = [r for r in responses if r.status_code == refusal]
    assert statuses <= {201, 429, 503}
    assert 201 in statuses and refused
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert "kgc_queue_depth 0" in metrics
    assert health.status_code == 200
    assert code == 0


def test_sigterm_shuts_down_cleanly_with_a_stream_open(tmp_path: Path) -> None:
    server = start_server(tmp_path, KGC_API_KEYS=KEYS)
    lines: list[str] = []

    def listen() -> None:
        with httpx.stream(
            "GET", f"{server.url}/receipts/stream", headers=auth(READ_KEY), timeout=30
        ) as stream:
            lines.extend(stream.iter_lines())

    thread = threading.Thread(target=listen)
    thread.start()
    # Wait until the server counts the stream, by time rather than by 100 back-to-back requests
    # (which a loaded machine can finish before the listener has connected).
    deadline = time.monotonic() + 30
    while "kgc_receipt_stream_subscribers 1" not in httpx.get(f"{server.url}/metrics").text:
        assert time.monotonic() < deadline, "the stream was never counted as a subscriber"
        time.sleep(0.02)
    code = server.stop(timeout=15)
    thread.join(15)

    assert code == 0
    assert not thread.is_alive()
    assert "event: end" in lines
    assert "Traceback" not in server.output()

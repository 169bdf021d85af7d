"""In-process tests of the routes (Starlette's TestClient over a real engine)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from served import ADMIN_KEY, BAD_LABEL, READ_KEY, WRITE_KEY, auth, make_client, write_veto_hook
from starlette.testclient import TestClient

from kgc import KnowledgeEngine

ADD = {"additions": ['<urn:a> <urn:p> "x" .']}


def post(client: TestClient, body: object, key: str = WRITE_KEY) -> object:
    return client.post("/transactions", json=body, headers=auth(key))


def test_health_reports_status_uptime_and_memory(client: TestClient) -> None:
    body = client.get("/health").json()

    assert body["status"] == "healthy"
    assert body["uptime"] >= 0
    assert body["memory"]["rss"] > 0


def test_ready_lists_every_check(client: TestClient) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert set(response.json()["checks"]) == {
        "store",
        "cache",
        "observability",
        "sandbox",
        "lockchain",
    }


def test_ready_reports_the_sandbox_and_its_layers(client: TestClient) -> None:
    sandbox = client.get("/ready").json()["checks"]["sandbox"]

    assert sandbox.startswith("ok: ")
    for layer in ("rlimits", "user", "no_new_privs", "landlock", "seccomp"):
        assert layer in sandbox
    assert "missing" not in sandbox


def test_ready_says_when_sandboxing_is_disabled() -> None:
    with KnowledgeEngine(enable_sandboxing=False) as engine, make_client(engine) as client:
        response = client.get("/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["sandbox"].startswith("disabled (ENABLE_SANDBOXING=false)")


def test_ready_fails_when_the_sandbox_refuses_to_run(engine: KnowledgeEngine) -> None:
    with make_client(engine) as client:
        # The state a strict pool enters when a worker reports a missing layer; the real path is
        # tested in tests/effects/test_pool.py, in a process whose seccomp profile blocks Landlock.
        engine.transactions.effects.pool._refused = "sandbox refuses to run effects: landlock: x"
        response = client.get("/ready")

    assert response.status_code == 503
    assert response.json()["failures"] == [
        "sandbox: RuntimeError: sandbox refusing: sandbox refuses to run effects: landlock: x"
    ]


def test_ready_answers_503_naming_a_failed_check(engine: KnowledgeEngine) -> None:
    with make_client(engine) as client:
        engine.store.close()  # the store is gone: readiness must say so, not crash
        response = client.get("/ready")

    assert response.status_code == 503
    assert response.json()["failures"][0].startswith("store: ")


def test_committed_transaction_returns_201_and_its_receipt(client: TestClient) -> None:
    response = client.post("/transactions", json=ADD, headers=auth(WRITE_KEY))

    receipt = response.json()
    assert response.status_code == 201
    assert receipt["committed"] is True
    assert receipt["actor"].startswith("key-")
    assert response.headers["location"] == f"/receipts/{receipt['id']}"
    assert client.get(response.headers["location"], headers=auth(READ_KEY)).json() == receipt


def test_vetoed_transaction_returns_409_and_changes_nothing(tmp_path: Path) -> None:
    with KnowledgeEngine(hooks_path=write_veto_hook(tmp_path)) as engine:
        before = engine.state_digest
        with make_client(engine) as client:
            body = {"additions": [f"<urn:a> <urn:p> {BAD_LABEL} ."]}
            response = client.post("/transactions", json=body, headers=auth(WRITE_KEY))

        assert response.status_code == 409
        assert response.json()["status"] == "vetoed"
        assert engine.state_digest == before
        assert len(engine) == 0


@pytest.mark.parametrize(
    ("media", "body"),
    [
        ("application/n-quads", '<urn:a> <urn:p> "x" <urn:g> .\n'),
        ("application/trig", '<urn:g> { <urn:a> <urn:p> "x" }'),
        ("text/turtle", '<urn:a> <urn:p> "x" .'),
        ("application/n-triples", '<urn:a> <urn:p> "x" .\n'),
        ("application/rdf-patch", 'TX .\nA <urn:a> <urn:p> "x" .\nTC .\n'),
    ],
)
def test_rdf_bodies_are_applied(client: TestClient, media: str, body: str) -> None:
    headers = {**auth(WRITE_KEY), "Content-Type": media}

    response = client.post("/transactions", content=body, headers=headers)

    assert response.status_code == 201, response.text
    assert response.json()["additions"] == 1


def test_rdf_patch_deletes_and_adds(client: TestClient, engine: KnowledgeEngine) -> None:
    post(client, ADD)
    patch = 'D <urn:a> <urn:p> "x" .\nA <urn:b> <urn:p> "y" .\n'
    headers = {**auth(WRITE_KEY), "Content-Type": "application/rdf-patch"}

    receipt = client.post("/transactions", content=patch, headers=headers).json()

    assert (receipt["additions"], receipt["removals"]) == (1, 1)
    assert engine.query("ASK { <urn:b> <urn:p> 'y' }") is True


@pytest.mark.parametrize(
    ("media", "body", "message"),
    [
        ("application/json", "{", "invalid JSON"),
        ("application/json", '{"additions": 3}', "'additions' must be a list"),
        ("application/json", '{"extra": []}', "unknown key"),
        ("application/n-quads", "<urn:a> <urn:p> .", "line 1"),
        ("application/rdf-patch", 'A <urn:a> <urn:p> "x" .\nQ x .', "patch line 2: unknown row"),
        ("application/rdf-patch", "PA ex <urn:ex#> .", "prefix lines"),
        ("application/rdf-patch", 'A <urn:a> <urn:p> "x" .\nA <urn:a> <urn:p', "patch line 2"),
        ("application/rdf-patch", "TA .", "aborted"),
        ("application/json", b'{"additions": ["\xff"]}', "not UTF-8"),
    ],
)
def test_bad_bodies_get_400_naming_the_fault(
    client: TestClient, engine: KnowledgeEngine, media: str, body: str | bytes, message: str
) -> None:
    headers = {**auth(WRITE_KEY), "Content-Type": media}

    response = client.post("/transactions", content=body, headers=headers)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert len(engine) == 0


def test_unknown_content_type_gets_415(client: TestClient) -> None:
    headers = {**auth(WRITE_KEY), "Content-Type": "text/plain"}

    response = client.post("/transactions", content="x", headers=headers)

    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_oversized_body_gets_413_and_changes_nothing(engine: KnowledgeEngine) -> None:
    with make_client(engine, max_body_bytes=1000) as client:
        body = {"additions": [f'<urn:a{i}> <urn:p> "x" .' for i in range(100)]}
        response = client.post("/transactions", json=body, headers=auth(WRITE_KEY))

    assert response.status_code == 413
    assert "max_body_bytes" in response.json()["error"]
    assert len(engine) == 0


def test_oversized_literal_gets_413_naming_it(engine: KnowledgeEngine) -> None:
    with make_client(engine, max_literal_bytes=10) as client:
        body = {"additions": ['<urn:a> <urn:p> "short" .', '<urn:a> <urn:p> "much too long" .']}
        response = client.post("/transactions", json=body, headers=auth(WRITE_KEY))

    assert response.status_code == 413
    assert "additions[1]" in response.json()["error"]
    assert len(engine) == 0


def test_missing_key_gets_401_and_read_key_gets_403_on_write(client: TestClient) -> None:
    anonymous = client.post("/transactions", json=ADD)
    wrong = client.post("/transactions", json=ADD, headers=auth("not-a-key"))
    reader = client.post("/transactions", json=ADD, headers=auth(READ_KEY))

    assert (anonymous.status_code, wrong.status_code, reader.status_code) == (401, 401, 403)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert "needs 'write'" in reader.json()["error"]


def test_every_way_of_presenting_a_key_works(client: TestClient) -> None:
    basic = ("anyone", READ_KEY)

    assert client.get("/receipts", headers={"X-API-Key": READ_KEY}).status_code == 200
    assert client.get("/receipts", headers=auth(READ_KEY)).status_code == 200
    assert client.get("/receipts", auth=basic).status_code == 200


def test_anonymous_writes_only_when_configured(engine: KnowledgeEngine) -> None:
    with make_client(engine, api_keys=None, allow_anonymous_writes=True) as client:
        response = client.post("/transactions", json=ADD)

    assert response.status_code == 201
    assert response.json()["actor"] == "anonymous"


def test_without_keys_reads_are_open_and_writes_refused(engine: KnowledgeEngine) -> None:
    with make_client(engine, api_keys=None) as client:
        assert client.get("/receipts").status_code == 200
        assert client.post("/transactions", json=ADD).status_code == 403


def test_receipts_after_seq_pages_in_order(client: TestClient) -> None:
    for index in range(5):
        post(client, {"additions": [f'<urn:a> <urn:p> "{index}" .']})

    page = client.get("/receipts?after=2&limit=2", headers=auth(READ_KEY)).json()

    assert [r["log_seq"] for r in page["receipts"]] == [3, 4]
    assert page["last"] == 4


@pytest.mark.parametrize("query", ["after=-1", "after=x", "limit=0", "limit=5000"])
def test_bad_receipt_paging_gets_400(client: TestClient, query: str) -> None:
    assert client.get(f"/receipts?{query}", headers=auth(READ_KEY)).status_code == 400


def test_unknown_receipt_gets_404(client: TestClient) -> None:
    assert client.get("/receipts/nope", headers=auth(READ_KEY)).status_code == 404


def test_sse_stream_replays_after_seq_then_ends_at_shutdown(engine: KnowledgeEngine) -> None:
    with make_client(engine) as client:
        post(client, ADD)
        post(client, {"additions": ['<urn:b> <urn:p> "y" .']})
        state = client.app.state.kgc  # type: ignore[attr-defined]
        state.shutting_down = lambda: True  # the stream replays the backlog, then says goodbye
        with client.stream("GET", "/receipts/stream?after=1", headers=auth(READ_KEY)) as stream:
            text = "".join(stream.iter_text())

    assert text.count("event: receipt") == 1
    assert "id: 2\n" in text
    assert "event: end" in text


def test_metrics_export_queue_depth_and_transactions(client: TestClient) -> None:
    post(client, ADD)

    text = client.get("/metrics").text

    assert "kgc_queue_depth 0" in text
    assert "kgc_queue_watermark_high 8" in text
    assert "kgc_queue_watermark_low 5" in text
    assert 'kgc_transactions_total{status="committed"} 1' in text
    assert "kgc_cache_hits_total" in text


def test_hooks_are_listed_and_removed_by_admin_only(tmp_path: Path) -> None:
    with (
        KnowledgeEngine(hooks_path=write_veto_hook(tmp_path)) as engine,
        make_client(engine) as client,
    ):
        listed = client.get("/hooks", headers=auth(READ_KEY)).json()["hooks"]
        refused = client.delete("/hooks/no-bad", headers=auth(WRITE_KEY))
        removed = client.delete("/hooks/no-bad", headers=auth(ADMIN_KEY))
        again = client.delete("/hooks/no-bad", headers=auth(ADMIN_KEY))

    assert [h["name"] for h in listed] == ["no-bad"]
    assert (refused.status_code, removed.status_code, again.status_code) == (403, 200, 404)


def test_policy_routes_refuse_paths_and_unknown_packs(client: TestClient) -> None:
    path = client.post("/policy/activate", json={"packs": ["../etc"]}, headers=auth(ADMIN_KEY))
    unknown = client.post("/policy/activate", json={"packs": ["nope"]}, headers=auth(ADMIN_KEY))
    rollback = client.post("/policy/rollback", headers=auth(ADMIN_KEY))

    assert path.status_code == 400
    assert unknown.status_code == 404
    assert rollback.status_code == 409
    assert client.get("/policy", headers=auth(READ_KEY)).json()["active"] == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"packs": [' + "1" * 5000 + "]}", "a number too long to read"),  # it was a 500
        ('{"packs": ["a"]', "the body is not JSON"),
        ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
    ],
    ids=["5000-digit-number", "truncated", "deep-nesting"],
)
def test_policy_routes_refuse_bad_json_with_a_400(client: TestClient, body: str, says: str) -> None:
    response = client.post(
        "/policy/activate",
        content=body,
        headers={**auth(ADMIN_KEY), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]
    assert client.get("/policy", headers=auth(READ_KEY)).json()["active"] == []


def test_lockchain_verify_without_lockchain_is_404(client: TestClient) -> None:
    response = client.post("/lockchain/verify", headers=auth(ADMIN_KEY))

    assert response.status_code == 404


def test_lockchain_verify_reports_ok(tmp_path: Path) -> None:
    with (
        KnowledgeEngine(lockchain_path=tmp_path / "chain", journal_fsync=False) as engine,
        make_client(engine) as client,
    ):
        post(client, ADD)
        engine.anchorer.flush()  # type: ignore[union-attr]
        response = client.post("/lockchain/verify", headers=auth(ADMIN_KEY))
        receipt = client.get("/receipts", headers=auth(READ_KEY)).json()["receipts"][0]

    assert response.json()["ok"] is True, response.json()["summary"]
    assert receipt["seq"] == receipt["log_seq"] == 1


def test_openapi_document_names_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    routes = {route.path for route in client.app.routes}  # type: ignore[attr-defined]
    assert routes == set(paths)


def test_unknown_route_and_method_are_json_errors(client: TestClient) -> None:
    missing = client.get("/nope")
    method = client.put("/transactions", headers=auth(WRITE_KEY))

    assert (missing.status_code, method.status_code) == (404, 405)
    assert json.loads(missing.text)["status"] == 404


# Found by review: each once crashed the server, reached out, or answered 500.


def test_a_deeply_nested_query_is_refused_not_a_crash(client: TestClient) -> None:
    # 5,000 nested groups overflowed pyoxigraph's parser stack: a segfault took the server down.
    query = "SELECT * WHERE " + "{" * 5000 + " ?s ?p ?o " + "}" * 5000
    response = client.post(
        "/sparql",
        content=query,
        headers={**auth(READ_KEY), "Content-Type": "application/sparql-query"},
    )
    assert response.status_code == 400
    assert "nests groups 5000 deep" in response.json()["error"]
    assert client.get("/health").status_code == 200


def test_a_federated_query_is_refused_before_anything_is_sent(client: TestClient) -> None:
    query = "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }"
    response = client.get("/sparql", params={"query": query}, headers=auth(READ_KEY))
    assert response.status_code == 400
    assert "SERVICE" in response.json()["error"]


def test_deeply_nested_json_is_a_400(client: TestClient) -> None:
    body = "[" * 100_000
    response = client.post(
        "/transactions",
        content=body,
        headers={**auth(WRITE_KEY), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]
    admin = client.post(
        "/policy/activate",
        content="[" * 30_000,
        headers={**auth(ADMIN_KEY), "Content-Type": "application/json"},
    )
    assert admin.status_code in (400, 413)
    assert admin.status_code != 413 or "admin routes' limit" in admin.json()["error"]


def test_an_empty_body_is_refused_and_commits_nothing(client: TestClient) -> None:
    response = client.post(
        "/transactions",
        content=b"",
        headers={**auth(WRITE_KEY), "Content-Type": "application/n-quads"},
    )
    assert response.status_code == 400
    assert "empty" in response.json()["error"]
    listed = client.get("/receipts", headers=auth(READ_KEY)).json()
    assert listed["receipts"] == []


@pytest.mark.parametrize(
    ("media", "body"),
    [
        ("text/turtle", "@prefix ex: <urn:ex:> .\n"),
        ("application/rdf-patch", "# nothing but a comment\n"),
        ("application/json", '{"additions": [], "removals": []}'),
    ],
    ids=["turtle-prefixes", "patch-comment", "json-empty-lists"],
)
def test_a_body_that_holds_no_quads_is_refused_and_takes_no_receipt(
    client: TestClient, media: str, body: str
) -> None:
    # It was committed as an empty receipt: a log_seq, a lockchain entry, a committed count.
    response = client.post(
        "/transactions", content=body, headers={**auth(WRITE_KEY), "Content-Type": media}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == (
        f"the request body ({media}) holds no quads: nothing to add or remove"
    )
    assert client.get("/receipts", headers=auth(READ_KEY)).json()["receipts"] == []


def test_a_keys_file_with_no_key_or_a_key_twice_is_refused(tmp_path: Path) -> None:
    from kgc.config_keys import read_api_keys
    from kgc.errors import ConfigError

    empty = tmp_path / "keys"
    empty.write_text("# keys go here\n")
    with pytest.raises(ConfigError, match="holds no key"):
        read_api_keys(empty)
    twice = tmp_path / "twice"
    twice.write_text("k-0000000000000001 read\nk-0000000000000001 admin\n")
    with pytest.raises(ConfigError, match="line 2: this key was given the role 'read' before"):
        read_api_keys(twice)


def test_health_peak_rss_is_never_below_rss(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ru_maxrss and /proc/self/statm are sampled differently: a peak below rss was reported."""
    from kgc.server import health

    class Usage:
        ru_maxrss = 1  # 1 KiB: far below any real resident size

    monkeypatch.setattr(health.resource, "getrusage", lambda who: Usage())
    memory = client.get("/health").json()["memory"]

    assert memory["rss"] > 1024
    assert memory["peak_rss"] == memory["rss"]


def request_errors(client: TestClient) -> dict[str, int]:
    found = {}
    for line in client.get("/metrics").text.splitlines():
        for kind in ("request_4xx", "request_5xx"):
            if line.startswith(f'kgc_errors_total{{kind="{kind}"}} '):
                found[kind] = int(line.split()[-1])
    return found


def test_request_error_counters_are_exported_at_zero_from_the_start(client: TestClient) -> None:
    assert request_errors(client) == {"request_4xx": 0, "request_5xx": 0}

    client.post("/transactions", json=ADD)  # no key: 401

    assert request_errors(client) == {"request_4xx": 1, "request_5xx": 0}


def test_a_fault_of_kgcs_is_a_json_500_counted_and_logged(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Anything kgc did not expect used to reach Starlette's plain-text 500, uncounted.
    def broken(*args: object) -> None:
        raise RuntimeError("the intake broke")

    monkeypatch.setattr("kgc.server.transactions._intake", broken)
    with caplog.at_level(logging.ERROR, "kgc"):
        response = client.post("/transactions", json=ADD, headers=auth(WRITE_KEY))

    assert response.status_code == 500
    assert response.json() == {
        "error": "internal error; the server log has the details",
        "status": 500,
    }
    assert request_errors(client) == {"request_4xx": 0, "request_5xx": 1}
    [logged] = [r for r in caplog.records if r.getMessage().startswith("Request failed")]
    assert "POST /transactions: RuntimeError: the intake broke" in logged.getMessage()
    assert logged.exc_info is not None  # the traceback goes to the log, never to the client


def test_backpressure_refusals_are_not_counted_as_request_errors(client: TestClient) -> None:
    """A full queue's 503 and a throttling 429 are counted in kgc_queue_rejected_total only:
    KgcServerErrors must not fire on backpressure."""
    queue = client.app.state.kgc.queue  # type: ignore[attr-defined]
    queue.depth = queue.capacity
    full = post(client, ADD)
    queue.depth, queue.throttling = 0, True
    throttled = post(client, ADD)
    queue.throttling = False

    assert (full.status_code, throttled.status_code) == (503, 429)  # type: ignore[attr-defined]
    assert request_errors(client) == {"request_4xx": 0, "request_5xx": 0}
    text = client.get("/metrics").text
    assert 'kgc_queue_rejected_total{reason="full"} 1' in text
    assert 'kgc_queue_rejected_total{reason="throttled"} 1' in text

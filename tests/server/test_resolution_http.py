"""``POST /proposals`` and ``GET /resolutions/{id}``: in process, and on a real ``kgc serve``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import (
    BAD_LABEL,
    KEYS,
    READ_KEY,
    WRITE_KEY,
    Served,
    auth,
    make_client,
    start_server,
    write_veto_hook,
)
from starlette.testclient import TestClient

from kgc import KnowledgeEngine

A = "<urn:ex:ahu1> <urn:ex:feeds> <urn:ex:vav1> ."
B = "<urn:ex:ahu1> <urn:ex:feeds> <urn:ex:vav2> ."
ASK_A = "ASK { <urn:ex:ahu1> <urn:ex:feeds> <urn:ex:vav1> }"


def body(agent: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"agent": agent, "delta": {"additions": [A]}, "confidence": 0.8}
    data.update(fields)
    return data


@pytest.fixture
def enabled() -> Iterator[TestClient]:
    with KnowledgeEngine(enable_resolution=True) as engine, make_client(engine) as client:
        yield client


def test_disabled_layer_answers_404_naming_the_setting(client: TestClient) -> None:
    posted = client.post("/proposals", json=body("bms"), headers=auth(WRITE_KEY))
    read = client.get("/resolutions/round-x", headers=auth(READ_KEY))

    assert (posted.status_code, read.status_code) == (404, 404)
    assert "ENABLE_RESOLUTION" in posted.json()["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": None}, "confidence"),
        ({"priority": "high"}, "priority"),
        ({"agent": ""}, "agent"),
        ({"delta": {"additions": ["<urn:ex:a> <urn:ex:p> ."]}}, "delta"),
        ({"depends_on": ["123"]}, "depends_on[0]"),
        ({"expected": 0}, "expected"),
        ({"topic": 5}, "topic"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_proposal_is_400_naming_the_field_and_changes_nothing(
    enabled: TestClient, change: dict[str, Any], field: str
) -> None:
    response = enabled.post("/proposals", json={**body("bms"), **change}, headers=auth(WRITE_KEY))
    ask = enabled.get("/sparql", params={"query": ASK_A}, headers=auth(READ_KEY))

    assert response.status_code == 400, response.text
    assert f"proposal field {field!r}" in response.json()["error"]
    assert ask.json()["boolean"] is False


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        # The error quoted the key and could not be encoded: a plain-text 500.
        ('"delta": {"additions\\ud800": []}', "delta", "additions\\ud800"),
        ('"delta": "<urn:ex:a> <urn:ex:p> <urn:ex:o> ."', "delta", "got a string"),
        ('"delta": {"additions": []}, "confidense": 0.1', "confidense", "topic, expected"),
    ],
    ids=["lone-surrogate-key", "delta-as-a-string", "unknown-field-lists-round-fields"],
)
def test_bad_proposal_json_is_a_400_that_says_what_is_wrong(
    enabled: TestClient, raw: str, field: str, says: str
) -> None:
    content = '{"agent": "bms", "confidence": 0.5, ' + raw + "}"
    response = enabled.post(
        "/proposals",
        content=content,
        headers={**auth(WRITE_KEY), "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert f"proposal field {field!r}" in response.json()["error"]
    assert says in response.json()["error"]


def test_roles_media_type_and_unknown_rounds(enabled: TestClient) -> None:
    reader = enabled.post("/proposals", json=body("bms"), headers=auth(READ_KEY))
    text = enabled.post(
        "/proposals", content=A, headers={**auth(WRITE_KEY), "Content-Type": "text/plain"}
    )
    missing = enabled.get("/resolutions/round-nope", headers=auth(READ_KEY))

    assert (reader.status_code, text.status_code, missing.status_code) == (403, 415, 404)
    assert "no resolution round 'round-nope'" in missing.json()["error"]


def test_zero_confidence_and_priority_survive_the_wire(enabled: TestClient) -> None:
    posted = enabled.post(
        "/proposals",
        json=body("bms", confidence=0, priority=0, expected=1),
        headers=auth(WRITE_KEY),
    )

    assert posted.status_code == 202
    proposal = posted.json()["round"]["proposals"][0]
    assert (proposal["confidence"], proposal["priority"]) == (0.0, 0)
    # Voting: a lone voter with confidence 0 gives no support, so nothing is applied.
    assert posted.json()["round"]["status"] == "empty"
    assert proposal["rejected"][0]["reason"] == "no support: its only voter gave confidence 0"


def test_a_round_mismatch_is_409(enabled: TestClient) -> None:
    first = enabled.post(
        "/proposals", json=body("bms", expected=3, topic="t"), headers=auth(WRITE_KEY)
    )
    second = enabled.post(
        "/proposals", json=body("model", expected=2, topic="t"), headers=auth(WRITE_KEY)
    )

    assert first.status_code == 202
    assert second.status_code == 409 and "expects 3 proposals" in second.json()["error"]


def test_a_literal_over_max_literal_bytes_is_413_like_transactions() -> None:
    big = f'<urn:ex:big> <urn:ex:p> "{"x" * 3_000_000}" .'
    with (
        KnowledgeEngine(enable_resolution=True) as engine,
        make_client(engine, max_body_bytes=8_000_000) as client,
    ):
        posted = client.post(
            "/proposals",
            json=body("a", expected=1, delta={"additions": [big]}),
            headers=auth(WRITE_KEY),
        )
        sent = client.post("/transactions", json={"additions": [big]}, headers=auth(WRITE_KEY))

    assert (posted.status_code, sent.status_code) == (413, 413)
    assert "additions[0]: a literal of 3,000,000 bytes" in posted.json()["error"]
    assert "(max_literal_bytes)" in posted.json()["error"]


def test_a_huge_integer_in_the_body_is_400_not_500(enabled: TestClient) -> None:
    text = '{"agent": "a", "confidence": 1, "priority": ' + "9" * 5000 + ', "delta": {}}'
    posted = enabled.post(
        "/proposals", content=text, headers={**auth(WRITE_KEY), "Content-Type": "application/json"}
    )

    assert posted.status_code == 400
    assert "number too long to read" in posted.json()["error"]


def test_a_duplicate_is_reported_and_the_principal_recorded(enabled: TestClient) -> None:
    first = enabled.post("/proposals", json=body("bms", topic="d"), headers=auth(WRITE_KEY))
    again = enabled.post("/proposals", json=body("bms", topic="d"), headers=auth(WRITE_KEY))

    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    (held,) = again.json()["round"]["proposals"]
    assert held["submitted_by"] == [f"key-{_key_name(WRITE_KEY)}"]


def _key_name(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:8]


def test_the_limits_on_open_rounds_and_proposals_answer_429_and_413() -> None:
    with (
        KnowledgeEngine(
            enable_resolution=True, resolution_max_open_rounds=1, resolution_max_proposals=1
        ) as engine,
        make_client(engine) as client,
    ):
        first = client.post("/proposals", json=body("a", topic="x"), headers=auth(WRITE_KEY))
        other = client.post("/proposals", json=body("a", topic="y"), headers=auth(WRITE_KEY))
        full = client.post("/proposals", json=body("b", topic="x"), headers=auth(WRITE_KEY))

    assert (first.status_code, other.status_code, full.status_code) == (202, 429, 413)
    assert "resolution_max_open_rounds" in other.json()["error"]
    assert "resolution_max_proposals" in full.json()["error"]


# A real kgc serve ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve-resolution")
    server = start_server(
        tmp,
        KGC_API_KEYS=KEYS,
        KGC_HOOKS_PATH=str(write_veto_hook(tmp / "hooks")),
        ENABLE_RESOLUTION="true",
        RESOLUTION_STRATEGY="merging",
    )
    try:
        yield server
    finally:
        server.stop()


def test_three_agents_resolve_over_http_and_the_receipt_cites_them(served: Served) -> None:
    with httpx.Client(base_url=served.url, headers=auth(WRITE_KEY)) as client:
        proposals = [
            body("bms", expected=3, topic="ahu1", delta={"additions": [A, B]}),
            body("survey", topic="ahu1", delta={"additions": [A]}),
            body("model", topic="ahu1", delta={"removals": [B]}, confidence=0.9),
        ]
        answers = [client.post("/proposals", json=p) for p in proposals]
        round_id = answers[0].json()["round"]["id"]
        record = client.get(f"/resolutions/{round_id}").json()
        receipt = client.get(f"/receipts/{record['receipt']['id']}").json()
        has_a = client.get("/sparql", params={"query": ASK_A}).json()["boolean"]

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert answers[0].headers["location"] == f"/resolutions/{round_id}"
    assert [a.json()["round"]["status"] for a in answers] == ["open", "open", "committed"]
    assert record["status"] == "committed" and record["closed_by"] == "count"
    assert record["outcome"]["resolved"] == {"additions": [A], "removals": [B]}
    bms = next(p for p in record["proposals"] if p["agent"] == "bms")
    assert bms["status"] == "partial"
    assert bms["rejected"][0]["quad"] == B
    assert "removal ranks higher by confidence" in bms["rejected"][0]["reason"]
    sealed = receipt["provenance"]["resolution"]
    assert sealed["round"] == round_id and sealed["strategy"] == "merging"
    digests = {a.json()["proposal"] for a in answers}
    assert {p["digest"] for p in sealed["proposals"]} == digests
    assert has_a is True


def test_a_vetoed_resolution_is_visible_in_its_record(served: Served) -> None:
    bad = f"<urn:ex:c> <urn:ex:p> {BAD_LABEL} ."
    with httpx.Client(base_url=served.url, headers=auth(WRITE_KEY)) as client:
        answer = client.post(
            "/proposals", json=body("model", expected=1, topic="bad", delta={"additions": [bad]})
        )
        record = client.get(f"/resolutions/{answer.json()['round']['id']}").json()
        ask = client.get("/sparql", params={"query": f"ASK {{ ?s ?p {BAD_LABEL} }}"}).json()

    assert answer.status_code == 202
    assert record["status"] == "vetoed"
    assert record["receipt"]["committed"] is False
    assert record["receipt"]["vetoed_by"] == ["no-bad"]
    assert ask["boolean"] is False


def test_a_round_without_a_count_resolves_on_its_timeout(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, KGC_API_KEYS=KEYS, ENABLE_RESOLUTION="true", RESOLUTION_TIMEOUT_MS="200"
    )
    try:
        with httpx.Client(base_url=server.url, headers=auth(WRITE_KEY)) as client:
            answer = client.post("/proposals", json=body("bms"))
            round_id = answer.json()["round"]["id"]
            record = _wait_done(client, round_id)
    finally:
        server.stop()

    assert answer.json()["round"]["status"] == "open"
    assert (record["status"], record["closed_by"]) == ("committed", "timeout")


def _wait_done(client: httpx.Client, round_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        record: dict[str, Any] = client.get(f"/resolutions/{round_id}").json()
        if record["status"] not in ("open", "resolving") or time.monotonic() > deadline:
            return record
        time.sleep(0.05)


def test_shutting_the_server_down_cancels_open_rounds_timers() -> None:
    engine = KnowledgeEngine(enable_resolution=True, resolution_timeout_ms=300)
    with make_client(engine) as client:
        answer = client.post("/proposals", json=body("bms"), headers=auth(WRITE_KEY))
        resolver = client.app.state.kgc_resolver  # type: ignore[attr-defined]
    engine.close()
    time.sleep(0.6)  # past the round's timeout: a timer left running would fire now

    record = resolver.record(answer.json()["round"]["id"])
    assert record.status == "open"  # not "failed" on a closed store


def test_the_openapi_proposal_schema_takes_digest_and_states_the_bounds() -> None:
    import json
    from importlib.resources import files

    from kgc.resolution.proposal import MAX_PRIORITY, MAX_REFERENCES

    spec = json.loads(files("kgc.server").joinpath("openapi.json").read_text("utf-8"))
    schemas = spec["components"]["schemas"]
    fields = schemas["Proposal"]["properties"]

    assert "digest" in fields
    assert (fields["priority"]["minimum"], fields["priority"]["maximum"]) == (
        -MAX_PRIORITY,
        MAX_PRIORITY,
    )
    assert (
        fields["depends_on"]["maxItems"] == fields["conflicts_with"]["maxItems"] == MAX_REFERENCES
    )
    assert "duplicate" in schemas["Submitted"]["required"]

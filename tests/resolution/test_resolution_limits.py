"""Regressions from the review: bounded timeouts, threads, open rounds, round sizes, records."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proposals import propose, quad

from kgc import ConfigError, KnowledgeEngine, Resolver
from kgc.errors import InputError, ProposalError, ResolutionLimitExceeded, RoundMismatch
from kgc.resolution.resolver import MAX_TIMEOUT_MS


@pytest.fixture
def engine() -> Iterator[KnowledgeEngine]:
    with KnowledgeEngine(enable_resolution=True) as engine:
        yield engine


@pytest.mark.parametrize("value", ["inf", "nan", "1e15", "86400001"])
def test_an_infinite_or_huge_resolution_timeout_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("RESOLUTION_TIMEOUT_MS", value)

    with pytest.raises(ConfigError, match=r"RESOLUTION_TIMEOUT_MS"):
        KnowledgeEngine(enable_resolution=True)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e15, MAX_TIMEOUT_MS + 1, 0])
def test_an_infinite_or_huge_round_timeout_is_refused(
    engine: KnowledgeEngine, value: float
) -> None:
    with pytest.raises(InputError, match=r"timeout_ms must be above 0 and at most 86400000"):
        Resolver(engine, timeout_ms=value)
    with pytest.raises(InputError, match=r"timeout_ms must be above 0 and at most 86400000"):
        Resolver(engine).open("t", timeout_ms=value)


def test_2000_open_rounds_share_one_timer_thread(engine: KnowledgeEngine) -> None:
    resolver = Resolver(engine, timeout_ms=600_000, max_open_rounds=5000)
    before = threading.active_count()
    try:
        for i in range(2000):
            resolver.submit(propose("a", add=[quad("a")], confidence=0.5), topic=f"t{i}")
        assert resolver.open_rounds == 2000
        assert threading.active_count() <= before + 1
    finally:
        resolver.shutdown()


def test_rounds_still_expire_on_the_one_deadline_thread(engine: KnowledgeEngine) -> None:
    resolver = Resolver(engine, timeout_ms=50)
    ids = [resolver.submit(propose("a", add=[quad(f"s{i}")]), topic=f"t{i}").id for i in range(5)]

    records = [resolver.wait(round_id, timeout_s=10) for round_id in ids]

    assert [r.status for r in records] == ["committed"] * 5
    assert {r.closed_by for r in records} == {"timeout"}


def test_one_round_past_max_open_rounds_is_refused_naming_the_limit(
    engine: KnowledgeEngine,
) -> None:
    resolver = Resolver(engine, timeout_ms=600_000, max_open_rounds=3)
    try:
        for i in range(3):
            resolver.submit(propose("a", add=[quad("a")]), topic=f"t{i}")

        with pytest.raises(ResolutionLimitExceeded, match="resolution_max_open_rounds") as caught:
            resolver.submit(propose("a", add=[quad("a")]), topic="t3")
        resolver.submit(propose("b", add=[quad("a")]), topic="t0")  # an open round still takes
    finally:
        resolver.shutdown()

    assert caught.value.limit == "resolution_max_open_rounds"
    assert resolver.open_rounds == 3


def test_one_proposal_past_max_proposals_is_refused_naming_the_limit(
    engine: KnowledgeEngine,
) -> None:
    resolver = Resolver(engine, timeout_ms=600_000, max_proposals=2)
    try:
        first = resolver.submit(propose("a", add=[quad("a")]), topic="t")
        resolver.submit(propose("b", add=[quad("a")]), topic="t")
        resolver.submit(propose("b", add=[quad("a")]), topic="t")  # a duplicate is no new one

        with pytest.raises(ResolutionLimitExceeded, match="holds 2 proposals") as caught:
            resolver.submit(propose("c", add=[quad("a")]), topic="t")
        with pytest.raises(ProposalError, match=r"'expected': at most 2"):
            resolver.submit(propose("c", add=[quad("a")]), topic="u", expected=3)
    finally:
        resolver.shutdown()

    assert caught.value.limit == "resolution_max_proposals"
    assert len(resolver.record(first.id).proposals) == 2


def test_finished_records_past_keep_are_forgotten_while_an_older_round_is_open(
    engine: KnowledgeEngine,
) -> None:
    resolver = Resolver(engine, timeout_ms=3_600_000, keep=100)
    try:
        slow = resolver.open("slow")
        for i in range(300):
            side = {"add": [quad("a")]} if i % 2 else {"remove": [quad("a")]}
            resolver.submit(propose("a", **side, confidence=0.5), topic=f"t{i}", expected=1)  # type: ignore[arg-type]

        assert len(resolver._records) == 100
        assert len(resolver._rounds) == 100 and len(resolver._done) == 100
        assert resolver.record(slow.id).status == "open"
    finally:
        resolver.shutdown()


def test_a_mismatched_count_on_a_round_without_one_says_it_has_none(
    engine: KnowledgeEngine,
) -> None:
    resolver = Resolver(engine, timeout_ms=600_000)
    try:
        resolver.submit(propose("a", add=[quad("a")]), topic="t")
        with pytest.raises(RoundMismatch, match="has no expected count"):
            resolver.submit(propose("b", add=[quad("a")]), topic="t", expected=3)
    finally:
        resolver.shutdown()


@pytest.mark.parametrize("topic", ["a\nb", "tab\there", "nul\x00", "nbsp\u00a0x"])
def test_a_topic_with_control_characters_is_refused(engine: KnowledgeEngine, topic: str) -> None:
    with pytest.raises(ProposalError, match=r"'topic': must hold printable characters only"):
        Resolver(engine).submit(propose("a", add=[quad("a")]), topic=topic)


def test_the_submitting_principal_is_recorded_in_the_record_and_the_receipt(
    engine: KnowledgeEngine,
) -> None:
    resolver = Resolver(engine)
    one = propose("bms", add=[quad("a")])

    resolver.submit(one, topic="t", expected=2, submitted_by="key-1111")
    record, duplicate = resolver.offer(one, topic="t", submitted_by="key-2222")
    done = resolver.submit(propose("bms", add=[quad("b")]), topic="t", submitted_by="key-1111")

    assert duplicate is True and record.submitted_by == (
        (one.digest, "key-1111"),
        (one.digest, "key-2222"),
    )
    assert done.receipt is not None
    cited = done.receipt.provenance["resolution"]["proposals"]
    assert {p["digest"]: p["submitted_by"] for p in cited}[one.digest] == ["key-1111", "key-2222"]
    assert {p["agent"] for p in cited} == {"bms"}


def test_a_timer_thread_count_stays_flat_after_rounds_close(engine: KnowledgeEngine) -> None:
    resolver = Resolver(engine, timeout_ms=600_000)
    for i in range(50):
        resolver.submit(propose("a", add=[quad(f"s{i}")]), topic=f"t{i}", expected=1)
    time.sleep(0.05)

    assert resolver._deadlines.pending == 0
    resolver.shutdown()


def test_the_round_limits_can_be_set_in_the_configuration_file(tmp_path: Path) -> None:
    from kgc.config import load_settings

    path = tmp_path / "kgc.toml"
    path.write_text("[resolution]\nmaxOpenRounds = 7\nmaxProposals = 9\n")
    settings = load_settings(config_file=path)

    assert (settings.resolution_max_open_rounds, settings.resolution_max_proposals) == (7, 9)

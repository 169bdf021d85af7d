"""The on-disk store's applied-sequence marker: one quad, whatever was vetoed in between."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox

from kgc import Delta, Hook, KnowledgeEngine, SparqlAsk
from kgc.lockchain.journal import META_GRAPH, write_marker
from kgc.store.oxigraph import OxigraphStore


def markers(store: OxigraphStore) -> list[int]:
    found = [q.object for q in store.quads_for_pattern(None, None, None, META_GRAPH)]
    return sorted(int(o.value) for o in found if isinstance(o, ox.Literal))


def quad(name: str) -> ox.Quad:
    return ox.Quad(ox.NamedNode(f"urn:{name}"), ox.NamedNode("urn:p"), ox.Literal("x"))


def open_engine(directory: Path) -> KnowledgeEngine:
    return KnowledgeEngine(
        store_path=directory / "store",
        lockchain_path=directory / "lockchain",
        git_anchoring=False,
        journal_fsync=False,
    )


def test_vetoed_receipts_leave_no_stale_marker(tmp_path: Path) -> None:
    with open_engine(tmp_path) as engine:
        engine.hooks.register(Hook("no-bad", SparqlAsk("ASK { <urn:bad> ?p ?o }")))
        for i in range(3):
            assert engine.apply(Delta([quad("bad")])).status == "vetoed"
            assert engine.apply(Delta([quad(f"ok{i}")])).committed
        assert markers(engine.store) == [6]


def leave_stale_markers(directory: Path) -> None:
    """Three receipts, and markers 1 and 2 still in the store beside 3, as older kgc left them."""
    with open_engine(directory) as engine:
        for i in range(3):
            assert engine.apply(Delta([quad(f"ok{i}")])).committed
        write_marker(engine.store, 0, 1)
        write_marker(engine.store, 0, 2)
        assert markers(engine.store) == [1, 2, 3]


def test_recovery_drops_markers_left_by_older_versions(tmp_path: Path) -> None:
    leave_stale_markers(tmp_path)  # returns once the store is released
    with open_engine(tmp_path) as engine:
        assert markers(engine.store) == [3]
        assert engine.apply(Delta([quad("ok3")])).committed
        assert markers(engine.store) == [4]


def test_recovery_holds_only_the_records_after_the_stores_marker(tmp_path: Path) -> None:
    # Holding every record of the journal at start cost 7.5 KiB per receipt: an on-disk store
    # that is up to date needs none of them in memory.
    from kgc import Delta, KnowledgeEngine
    from kgc.lockchain.journal import _index

    with KnowledgeEngine(
        store_path=tmp_path / "store", lockchain_path=tmp_path / "chain", git_anchoring=False
    ) as engine:
        for i in range(5):
            engine.apply(Delta.from_text(f'<urn:ex:s{i}> <urn:ex:p> "v{i}" .\n'))
    journal = tmp_path / "chain" / "journal.jsonl"

    assert _index(journal, after=5) == ({}, {})
    receipts, intents = _index(journal, after=3)
    assert sorted(receipts) == [4, 5] and sorted(intents) == [4, 5]

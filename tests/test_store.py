"""The embedded pyoxigraph store, in memory and on disk."""

from __future__ import annotations

import gc
from pathlib import Path

import pyoxigraph as ox
import pytest

from kgc import Delta, Hook, KnowledgeEngine, OxigraphStore, SparqlAsk, Store, StoreError

S, P = ox.NamedNode("urn:s"), ox.NamedNode("urn:p")
ONE, TWO = ox.Quad(S, P, ox.Literal("1")), ox.Quad(S, P, ox.Literal("2"), ox.NamedNode("urn:g"))


def test_memory_store_is_a_store() -> None:
    store = OxigraphStore()

    assert isinstance(store, Store)
    assert store.path is None
    assert isinstance(store.raw, ox.Store)


def test_add_contains_iterate_match_remove() -> None:
    store = OxigraphStore()

    store.add_all([ONE, TWO])

    assert ONE in store and TWO in store and len(store) == 2
    assert set(store) == {ONE, TWO}
    assert list(store.quads_for_pattern(None, None, None, ox.NamedNode("urn:g"))) == [TWO]
    assert bool(store.query("ASK { <urn:s> <urn:p> '1' }")) is True
    store.remove_all([ONE])
    assert set(store) == {TWO}
    store.flush()


def test_on_disk_store_survives_reopening_with_the_same_digest(tmp_path: Path) -> None:
    path = tmp_path / "store"
    engine = KnowledgeEngine(store_path=path)
    engine.apply(Delta([ONE, TWO]))
    receipt = engine.apply(Delta([ox.Quad(S, P, ox.Literal("3"))], [ONE]))
    del engine  # the last reference: pyoxigraph releases the store's lock when it is dropped
    gc.collect()

    reopened = KnowledgeEngine(store_path=path)

    assert len(reopened) == 2
    assert reopened.state_digest == receipt.state_after
    assert reopened.transactions.recompute_state_digest() == receipt.state_after


def test_on_disk_vetoed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "store"
    engine = KnowledgeEngine(store_path=path)
    engine.apply(Delta([ONE]))
    engine.hooks.register(Hook("freeze", SparqlAsk("ASK {}")))
    assert engine.apply(Delta([TWO], [ONE])).status == "vetoed"
    digest = engine.state_digest
    del engine  # the last reference: pyoxigraph releases the store's lock when it is dropped
    gc.collect()

    reopened = KnowledgeEngine(store_path=path)

    assert set(reopened.store) == {ONE}
    assert reopened.state_digest == digest


def test_store_in_use_by_another_engine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store"
    first = KnowledgeEngine(store_path=path)

    with pytest.raises(StoreError, match=rf"^cannot open store at {path}: "):
        KnowledgeEngine(store_path=path)

    assert len(first) == 0


def test_store_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain-file"
    path.write_text("not a store", encoding="utf-8")

    with pytest.raises(StoreError, match=r"^cannot open store at "):
        OxigraphStore(path)


def test_closed_engine_releases_its_on_disk_store_for_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "store"  # parent directories are created
    engine = KnowledgeEngine(store_path=path)
    engine.apply(Delta.from_text('<urn:a> <urn:b> "c" .'))
    digest = engine.state_digest
    engine.close()
    engine.close()  # closing twice is harmless

    again = KnowledgeEngine(store_path=path)

    assert (len(again), again.state_digest) == (1, digest)

"""The embedded pyoxigraph store: in memory by default, on disk (RocksDB) when given a path."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kgc.errors import StoreError


class OxigraphStore:
    """kgc's default ``Store``.

    Guarantee: ``add_all`` is atomic (one pyoxigraph transaction). ``remove_all`` removes quad by
    quad; kgc calls it only under its writer lock, so no kgc reader sees it half done.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        try:
            if self.path is not None:
                self.path.mkdir(parents=True, exist_ok=True)
            self._store = ox.Store(str(self.path)) if self.path is not None else ox.Store()
        except OSError as exc:
            raise StoreError(f"cannot open store at {self.path}: {exc}") from exc

    @property
    def raw(self) -> ox.Store:
        """The pyoxigraph store. Writing to it directly bypasses governance and digests."""
        return self._store

    def __contains__(self, quad: ox.Quad) -> bool:
        return quad in self._store

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self) -> Iterator[ox.Quad]:
        return iter(self._store)

    def add_all(self, quads: Iterable[ox.Quad]) -> None:
        try:
            self._store.extend(quads)
        except OSError as exc:
            raise StoreError(f"store write failed: {exc}") from exc

    def bulk_add(self, quads: Iterable[ox.Quad]) -> None:
        """Fast, non-transactional load for large initial imports."""
        try:
            self._store.bulk_extend(quads)
        except OSError as exc:
            raise StoreError(f"store bulk write failed: {exc}") from exc

    def remove_all(self, quads: Iterable[ox.Quad]) -> None:
        graphs: set[ox.NamedNode | ox.BlankNode] = set()
        try:
            for quad in quads:
                self._store.remove(quad)
                if not isinstance(quad.graph_name, ox.DefaultGraph):
                    graphs.add(quad.graph_name)
            for graph in graphs:  # pyoxigraph keeps a graph's name after its last quad goes
                if next(iter(self._store.quads_for_pattern(None, None, None, graph)), None) is None:
                    self._store.remove_graph(graph)
        except OSError as exc:
            raise StoreError(f"store write failed: {exc}") from exc

    def quads_for_pattern(
        self, subject: Any = None, predicate: Any = None, obj: Any = None, graph: Any = None
    ) -> Iterator[ox.Quad]:
        return self._store.quads_for_pattern(subject, predicate, obj, graph)

    def query(self, sparql: str, **options: Any) -> Any:
        return self._store.query(sparql, **options)

    def flush(self) -> None:
        if self.path is not None:
            self._store.flush()

    def close(self) -> None:
        """Flush and release the on-disk store (its RocksDB lock), so it can be reopened.

        pyoxigraph has no close: the store is released when its last reference goes, so any
        use of this object afterwards fails, and a caller holding ``raw`` keeps it open.
        """
        if isinstance(self._store, _Closed):
            return
        self.flush()
        # A stand-in that raises StoreError on any use, instead of AttributeError.
        self._store = _Closed(self.path)  # type: ignore[assignment]


class _Closed:
    """Stands in for the pyoxigraph store after ``close``: every use is a clear error."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def _fail(self, *_: object, **__: object) -> Any:
        raise StoreError(f"the store at {self.path} is closed (KnowledgeEngine.close was called)")

    __contains__ = __len__ = __iter__ = _fail

    def __getattr__(self, name: str) -> Any:
        return self._fail

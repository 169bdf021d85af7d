"""The ``Store`` protocol: the little kgc needs from a quad store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import pyoxigraph as ox


@runtime_checkable
class Store(Protocol):
    """A quad store. Writes are made only by the ``TransactionManager``, under its lock."""

    def __contains__(self, quad: ox.Quad) -> bool: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[ox.Quad]: ...

    def add_all(self, quads: Iterable[ox.Quad]) -> None:
        """Add quads atomically: all are written or none."""

    def remove_all(self, quads: Iterable[ox.Quad]) -> None:
        """Remove quads; a named graph left holding none ceases to exist.

        A kgc dataset is its quads: N-Quads, state digests and lockchain replay cannot carry an
        empty named graph, so none may linger for a ``GRAPH ?g {}`` to find.
        """

    def quads_for_pattern(
        self, subject: Any = None, predicate: Any = None, obj: Any = None, graph: Any = None
    ) -> Iterator[ox.Quad]:
        """Quads matching a pattern; ``None`` matches anything."""

    def query(self, sparql: str, **options: Any) -> Any:
        """Evaluate a SPARQL 1.1 query; result types are pyoxigraph's."""

    def flush(self) -> None:
        """Make every write so far durable (a no-op in memory)."""

"""``ChangeStream``: a seeded, deterministic stream of changes derived from the loaded graph.

The stream surveys the engine's graph once, when it is created, then draws each change from its
own picture of the graph (``World``). Whoever applies the changes reports each outcome with
``settle(committed)``; a change left unsettled when the next one is drawn is taken to have had
its expected outcome. The same graph, seed and outcomes give the same stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from kgc.demo.edits import EDIT_KINDS, Edit
from kgc.demo.survey import survey, triples_around
from kgc.demo.world import World
from kgc.engine import KnowledgeEngine
from kgc.rdf.delta import Delta

_KINDS = list(EDIT_KINDS)
_WEIGHTS = [weight for _, _, weight in EDIT_KINDS.values()]
_MIN_POOL = 64


@dataclass(frozen=True)
class Change:
    """One change of the stream: what it is, its delta, and which hook must veto it (if any)."""

    index: int
    kind: str
    delta: Delta
    expect: str | None
    note: str
    edit: Edit = field(repr=False, compare=False)

    @property
    def valid(self) -> bool:
        return self.expect is None


class ChangeStream:
    """``count`` changes for ``engine``'s graph, drawn with ``random.Random(seed)``."""

    def __init__(self, engine: KnowledgeEngine, *, count: int = 1000, seed: int = 0) -> None:
        if count < 0:
            raise ValueError(f"count must be zero or more, got {count}")
        rng = random.Random(seed)
        found = survey(engine)
        pool_size = min(len(found.points), max(count, _MIN_POOL))
        pool = rng.sample(sorted(found.points, key=str), pool_size)
        self.world = World.from_survey(found, triples_around(engine, pool))
        self.count = count
        self.seed = seed
        self._engine = engine
        self._rng = rng
        self._pending: Change | None = None

    def __iter__(self) -> Iterator[Change]:
        for index in range(self.count):
            self._settle_pending()
            change = self._draw(index)
            self._pending = change
            yield change
        self._settle_pending()

    def settle(self, committed: bool) -> None:
        """Report whether the change drawn last committed; the world follows only commits."""
        change, self._pending = self._pending, None
        if change is not None and committed and change.edit.on_commit is not None:
            change.edit.on_commit()

    def _settle_pending(self) -> None:
        if self._pending is not None:
            self.settle(self._pending.valid)

    def _draw(self, index: int) -> Change:
        while True:
            kind = self._rng.choices(_KINDS, _WEIGHTS)[0]
            builder, expect, _ = EDIT_KINDS[kind]
            edit = builder(self.world, self._rng)
            if edit is not None and (edit.additions or edit.removals):
                delta = self._engine.delta(edit.additions, edit.removals)
                return Change(index, kind, delta, expect, edit.note, edit)

"""The ``window`` condition: a count over the recent transaction history, in a time window.

Each transaction is *measured* by the window's SELECT query, run on that transaction's delta alone:
a scratch store whose only triples are its additions in ``<urn:kgc:delta:additions>`` and its
removals in ``<urn:kgc:delta:removals>`` (the rest of the graph is not visible). ``measure="rows"``
adds up the rows each transaction's query returns; ``measure="transactions"`` counts the
transactions that return at least one row. With ``per_actor`` only transactions by the governed
transaction's actor count. The total compares with ``value`` by ``op``; the condition fires when
the comparison is true.

The transaction being governed always counts, at the time ``now`` its governance began. The others
come from the manager's history of committed transactions, timed when they committed (vetoed and
failed transactions never enter it). The window, for ``seconds`` = S, is:

- ``sliding``: the half-open interval (now - S, now]: a transaction that committed exactly S
  seconds ago has left the window;
- ``tumbling``: the interval [k*S, (k+1)*S) that contains ``now``, with k counted from the clock's
  zero (the Unix epoch for ``time.time``): a transaction at exactly k*S opens window k, and one at
  exactly (k+1)*S belongs to the next window.

The history is bounded (``TransactionManager(history_size=...)``, 1,024 by default); older
transactions are forgotten, so a window can only count what the history still holds. It is held in
memory only, and starts empty when the process starts. A transaction's delta is kept in it only
while some registered hook reads the history (``reads_history``): transactions committed while
no ``window`` hook was registered measure 0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pyoxigraph as ox

from kgc.errors import HookDefinitionError
from kgc.hooks.aggregate import OPS, check_op, params_digest
from kgc.hooks.conditions import (
    ADDITIONS_GRAPH,
    REMOVALS_GRAPH,
    ConditionResult,
    EvalContext,
    HistoryEntry,
    _check_query,
    _sha256,
)

MODES = ("sliding", "tumbling")
MEASURES = ("rows", "transactions")


@dataclass(frozen=True)
class Window:
    """Fires when the measure of the transactions in the window compares true with ``value``."""

    text: str
    seconds: float
    op: str
    value: float
    mode: str = "sliding"
    measure: str = "rows"
    per_actor: bool = False
    source: str = "<inline>"
    kind: str = field(default="window", init=False)
    reads_history: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_op(self.op, self.source)
        for name, value, allowed in (
            ("mode", self.mode, MODES),
            ("measure", self.measure, MEASURES),
        ):
            if value not in allowed:
                raise HookDefinitionError(
                    f"{self.source}: field '{name}' must be one of {', '.join(allowed)}; "
                    f"got {value!r}"
                )
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise HookDefinitionError(
                f"{self.source}: field 'seconds' must be a positive number; got {self.seconds}"
            )
        _check_query(self.text, ox.QuerySolutions, "sparql-select", self.source)

    @functools.cached_property
    def digest(self) -> str:
        return params_digest(
            {
                "kind": self.kind,
                "mode": self.mode,
                "seconds": self.seconds,
                "measure": self.measure,
                "per_actor": self.per_actor,
                "op": self.op,
                "value": self.value,
                "query": _sha256(self.text),
            }
        )

    def bounds(self, now: float) -> tuple[float, float]:
        """The window around ``now``: (start, end), open or closed at each end as documented."""
        if self.mode == "sliding":
            return now - self.seconds, now
        start = math.floor(now / self.seconds) * self.seconds
        return start, start + self.seconds

    def contains(self, now: float, moment: float) -> bool:
        start, end = self.bounds(now)
        if self.mode == "sliding":
            return start < moment <= end
        return start <= moment < end

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        entries = [e for e in ctx.history if self._counts(ctx, e)]
        total = sum(self._measure(self._entry_rows(e, ctx.graphs)) for e in entries)
        total += self._measure(_rows(self.text, ctx.additions, ctx.removals))
        fired = OPS[self.op](total, self.value)
        if not fired:
            return ConditionResult(False, "", total)
        who = f" by {ctx.actor}" if self.per_actor else ""
        detail = (
            f"{total} {self.measure}{who} in the {self.mode} {self.seconds:g} s window "
            f"{self.op} {self.value:g}"
        )
        return ConditionResult(True, detail, total)

    def _counts(self, ctx: EvalContext, entry: HistoryEntry) -> bool:
        if self.per_actor and entry.actor != ctx.actor:
            return False
        return self.contains(ctx.now, entry.finished)

    def _measure(self, rows: int) -> int:
        return rows if self.measure == "rows" else int(rows > 0)

    def _entry_rows(
        self, entry: HistoryEntry, graphs: tuple[ox.NamedNode | ox.DefaultGraph, ...] | None
    ) -> int:
        """The entry's measure; with a channel's ``graphs``, of its changes inside them only.

        An entry's delta never changes once committed, so each measure is computed once.
        """
        key = self.digest if graphs is None else f"{self.digest}|{graphs}"
        rows = entry.matches.get(key)
        if rows is None:
            adds, rems = entry.additions, entry.removals
            if graphs is not None:
                adds = tuple(q for q in adds if q.graph_name in graphs)
                rems = tuple(q for q in rems if q.graph_name in graphs)
            rows = entry.matches[key] = _rows(self.text, adds, rems)
        return rows


def _rows(text: str, additions: Sequence[ox.Quad], removals: Sequence[ox.Quad]) -> int:
    scratch = ox.Store()
    quads = [
        ox.Quad(q.subject, q.predicate, q.object, graph)
        for graph, part in ((ADDITIONS_GRAPH, additions), (REMOVALS_GRAPH, removals))
        for q in part
    ]
    scratch.extend(quads)
    solutions = scratch.query(text)
    assert isinstance(solutions, ox.QuerySolutions)  # checked at construction
    return len(list(solutions))


__all__ = ["MEASURES", "MODES", "Window"]

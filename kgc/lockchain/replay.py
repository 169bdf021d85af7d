"""Replay: re-apply every committed delta from the empty graph and check each state digest.

The graph is rebuilt in a fresh in-memory pyoxigraph store, in sequence order: the additions of a
committed receipt are added and its removals removed, exactly as recorded (blank node labels
kept). Before each receipt the running LtHash digest must equal its ``state_before``, after it
its ``state_after`` (equal to ``state_before`` when it did not commit). An honest chain only
records effective deltas, so an addition the graph already holds, or a removal it lacks, is a
fault too: it would make the digest arithmetic and the graph part ways.

Replay assumes the chain starts from the empty graph: an engine that held data before its
first receipt fails at receipt 1, which is what such a chain proves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox

from kgc.errors import RDFSyntaxError
from kgc.lockchain.report import Problem
from kgc.rdf.digest import StateDigest
from kgc.rdf.parse import parse_text
from kgc.rdf.terms import RESERVED_GRAPH_PREFIX, quad_line


@dataclass
class ReplayResult:
    replayed: int
    state: str
    store: ox.Store


def replay(
    records: Iterable[tuple[int, dict[str, Any]]],
    problems: list[Problem],
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay ``(seq, record)`` pairs in order; append state mismatches to ``problems``."""
    store = ox.Store()
    digest = StateDigest()
    count = 0
    for seq, record in records:
        body = record["receipt"]
        _expect(seq, "state_before", body.get("state_before"), digest, problems)
        if body.get("committed") is True:
            _apply(seq, record["delta"], store, digest, problems)
        _expect(seq, "state_after", body.get("state_after"), digest, problems)
        count += 1
        if progress is not None:
            progress(count)
    return ReplayResult(count, digest.hexdigest(), store)


def _expect(
    seq: int, name: str, recorded: object, digest: StateDigest, problems: list[Problem]
) -> None:
    actual = digest.hexdigest()
    if recorded != actual:
        problems.append(
            Problem(
                seq,
                "replay",
                f"{name} is {str(recorded)[:16]}..., but replaying "
                f"the deltas up to here gives {actual[:16]}... (state digest "
                "mismatch)",
            )
        )


def _apply(
    seq: int, delta: dict[str, Any], store: ox.Store, digest: StateDigest, problems: list[Problem]
) -> None:
    try:
        additions = _quads(delta["additions"], seq)
        removals = _quads(delta["removals"], seq)
    except (KeyError, TypeError) as exc:
        problems.append(Problem(seq, "replay", f"the delta is malformed ({exc!r})"))
        return
    except RDFSyntaxError as exc:
        problems.append(Problem(seq, "replay", f"a delta line does not parse: {exc}"))
        return
    for quad in additions:
        if quad in store:
            problems.append(
                Problem(seq, "replay", f"adds a quad the graph already holds: {quad_line(quad)}")
            )
        store.add(quad)
    for quad in removals:
        if quad not in store:
            problems.append(
                Problem(seq, "replay", f"removes a quad the graph does not hold: {quad_line(quad)}")
            )
        store.remove(quad)
    digest.update(added=[quad_line(q) for q in additions], removed=[quad_line(q) for q in removals])


def _quads(lines: list[str], seq: int) -> list[ox.Quad]:
    if not lines:
        return []
    return parse_text(
        "\n".join(lines), "nquads", source=f"<delta of receipt {seq}>", rename_blank_nodes=False
    )


def user_lines(quads: Iterable[ox.Quad]) -> Iterator[str]:
    """Canonical lines of the quads outside kgc's reserved graphs: what the state digest covers."""
    for quad in quads:
        graph = quad.graph_name
        if isinstance(graph, ox.NamedNode) and graph.value.startswith(RESERVED_GRAPH_PREFIX):
            continue
        yield quad_line(quad)

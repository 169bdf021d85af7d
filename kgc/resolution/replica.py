"""``CrdtReplica``: the crdt strategy as a state-based replicated set of proposals.

A replica holds a grow-only set of proposals; ``receive`` adds one, ``merge`` takes the union with
another replica. Its ``value`` is ``resolve(proposals, strategy="crdt")``, a function of the set
alone, so replicas that have received the same proposals, in any order and any number of times,
hold the same value (strong eventual consistency). A removal observes the additions of the
proposals it depends on: that is what makes the set observed-remove rather than last-writer-wins.
"""

from __future__ import annotations

from collections.abc import Iterable

from kgc.resolution.outcome import Outcome
from kgc.resolution.proposal import Proposal
from kgc.resolution.resolve import resolve


class CrdtReplica:
    def __init__(self, proposals: Iterable[Proposal] = (), *, crdt_bias: str = "add-wins") -> None:
        self.crdt_bias = crdt_bias
        self._proposals: dict[str, Proposal] = {}
        for proposal in proposals:
            self.receive(proposal)

    def receive(self, proposal: Proposal) -> None:
        self._proposals.setdefault(proposal.digest, proposal)

    def merge(self, other: CrdtReplica) -> None:
        for proposal in other._proposals.values():
            self.receive(proposal)

    def digests(self) -> frozenset[str]:
        return frozenset(self._proposals)

    def value(self) -> Outcome:
        return resolve(self._proposals.values(), strategy="crdt", crdt_bias=self.crdt_bias)

"""The resolution layer: many agents propose, one governed change commits (docs/resolution.md).

``Proposal`` (an agent's delta with confidence and priority), ``resolve`` (proposals to one
``Outcome`` by a strategy: voting, merging, crdt, priority, consensus), ``Resolver`` (rounds on an
engine: collect, resolve, apply through the pipeline), ``CrdtReplica`` (the crdt strategy as a
replicated set that converges whatever order it receives proposals in).
"""

from kgc.resolution.outcome import Conflict, Outcome, ProposalReport, Rejection
from kgc.resolution.proposal import Proposal
from kgc.resolution.record import ResolutionRecord
from kgc.resolution.replica import CrdtReplica
from kgc.resolution.resolve import resolve
from kgc.resolution.resolver import Resolver
from kgc.resolution.strategies import STRATEGIES

__all__ = [
    "STRATEGIES",
    "Conflict",
    "CrdtReplica",
    "Outcome",
    "Proposal",
    "ProposalReport",
    "Rejection",
    "ResolutionRecord",
    "Resolver",
    "resolve",
]

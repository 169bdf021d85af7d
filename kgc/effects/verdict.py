"""``EffectVerdict``: a post-commit hook's outcome in ``Receipt.effects`` (see docs/effects.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kgc.hooks.model import HookVerdict

Trust = Literal["trusted", "sandboxed"]


@dataclass(frozen=True)
class EffectVerdict(HookVerdict):
    """A post-commit hook's outcome in ``Receipt.effects``.

    ``trust``: ``trusted`` (an in-process callable) or ``sandboxed`` (confined effect code).
    ``error_kind`` types a failure: ``failed``, ``timeout``, ``memory``, ``cpu``, ``output``,
    ``protocol``, ``crashed``, ``sandbox_unavailable``, ``sandbox_disabled``, ``proposal``
    (the proposed delta was refused), ``cascade`` (too many generations, or the change's budget
    of runs or time is spent) or ``internal`` (kgc failed handling it; the commit stands).
    ``layers``: the confinement the worker reported before the effect's code ran.
    ``proposal``: the receipt id of the transaction the effect's proposed delta became, and
    ``proposal_status`` that transaction's status.
    """

    trust: Trust = "trusted"
    error_kind: str | None = None
    effect_sha256: str | None = None
    layers: dict[str, Any] | None = None
    events: tuple[Any, ...] = ()
    logs: tuple[str, ...] = ()
    proposal: str | None = None
    proposal_status: str | None = None

    @classmethod
    def trusted(cls, verdict: HookVerdict) -> EffectVerdict:
        return cls(**vars(verdict), trust="trusted")

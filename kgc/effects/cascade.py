"""Running a committed transaction's effects, and applying what they propose.

Effects of fired post-commit hooks run after the lock is released, in the thread that called
``apply``. Each sandboxed effect's proposed delta is applied as a transaction of its own, whose
sealed provenance cites the hook, the receipt and the generation. Effects may propose changes whose
effects propose changes: ``MAX_EFFECT_GENERATIONS`` deep at most, and one change and everything it
causes share a budget of ``MAX_EFFECT_RUNS`` sandboxed runs and ``EFFECT_BUDGET_S`` of wall time
(the writer waits for them). Nothing here raises: every outcome is a verdict.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kgc.effects.runner import not_run
from kgc.effects.verdict import EffectVerdict
from kgc.hooks.model import HookVerdict
from kgc.hooks.runner import Outcome, finish, no_lend
from kgc.rdf.delta import Delta
from kgc.receipt import Receipt

if TYPE_CHECKING:
    from kgc.transaction import TransactionManager

logger = logging.getLogger(__name__)
MAX_EFFECT_GENERATIONS = 8
MAX_EFFECT_RUNS = 64
EFFECT_BUDGET_S = 60.0
_budget: ContextVar[Budget | None] = ContextVar("kgc_effect_budget", default=None)


@dataclass
class Budget:
    """What one change and everything its effects cause may still spend on sandboxed runs."""

    runs: int = field(default_factory=lambda: MAX_EFFECT_RUNS)
    deadline: float = field(default_factory=lambda: time.monotonic() + EFFECT_BUDGET_S)

    def refusal(self) -> str | None:
        if self.runs <= 0:
            return f"the change that caused it has used its {MAX_EFFECT_RUNS} sandboxed effect runs"
        if time.monotonic() >= self.deadline:
            return f"the change that caused it has used its {EFFECT_BUDGET_S:.0f} s for effects"
        return None


def run_effects(
    manager: TransactionManager,
    fired: Sequence[Outcome],
    receipt: Receipt,
    lines: tuple[Sequence[str], Sequence[str]],
) -> list[HookVerdict]:
    """The effect verdicts of ``receipt``'s fired post-commit hooks, proposals applied."""
    token = _budget.set(Budget()) if _budget.get() is None else None
    try:
        return _effects(manager, fired, receipt, lines, _budget.get() or Budget(runs=0))
    finally:
        if token is not None:
            _budget.reset(token)


def _effects(
    manager: TransactionManager,
    fired: Sequence[Outcome],
    receipt: Receipt,
    lines: tuple[Sequence[str], Sequence[str]],
    budget: Budget,
) -> list[HookVerdict]:
    effects: list[HookVerdict] = []
    proposed: list[tuple[int, Delta]] = []
    for outcome in fired:
        box: list[Delta] = []

        def sandboxed(o: Outcome, box: list[Delta] = box) -> HookVerdict:
            refusal = budget.refusal()
            if refusal is not None:
                return not_run(o.hook, "cascade", f"not run: {refusal}")
            budget.runs -= 1
            left_ms = (budget.deadline - time.monotonic()) * 1000.0
            verdict, delta = manager.effects.run(o, receipt, lines, within_ms=left_ms)
            box.extend([delta] if delta is not None else [])
            return verdict

        # The lock is released: lending it would let this callable read another writer's
        # staged (maybe vetoed) change.
        verdict = finish(outcome, no_lend, sandboxed).verdict
        if not isinstance(verdict, EffectVerdict):
            verdict = EffectVerdict.trusted(verdict)
        proposed.extend((len(effects), delta) for delta in box)
        effects.append(verdict)
    for index, delta in proposed:
        effects[index] = _propose(manager, effects[index], delta, receipt)  # type: ignore[arg-type]
    return effects


def _propose(
    manager: TransactionManager, verdict: EffectVerdict, delta: Delta, receipt: Receipt
) -> EffectVerdict:
    """Apply an effect's proposed delta as a transaction citing the hook and the receipt."""
    cause = (receipt.provenance or {}).get("caused_by", {})
    previous = cause.get("generation", 0) if isinstance(cause, dict) else 0
    # A caller's own provenance may say anything: only an effect's count is an int here.
    generation = (previous if type(previous) is int and previous >= 0 else 0) + 1
    if generation > MAX_EFFECT_GENERATIONS:
        reason = (
            f"proposal not applied: it would be generation {generation} of changes caused "
            f"by effects; the limit is {MAX_EFFECT_GENERATIONS}"
        )
        logger.warning("Hook execution failed: %s: %s", verdict.hook, reason)
        return replace(verdict, verdict="error", error_kind="cascade", reason=reason)
    provenance = {
        "caused_by": {
            "hook": verdict.hook,
            "receipt": receipt.id,
            "seq": receipt.seq,
            "effect_sha256": verdict.effect_sha256,
            "generation": generation,
        }
    }
    try:
        caused = manager.apply(delta, actor=f"effect:{verdict.hook}", provenance=provenance)
    except Exception as exc:  # the triggering change is committed: record, never raise
        reason = f"proposal not applied: {exc}"
        return replace(verdict, verdict="error", error_kind="proposal", reason=reason)
    return replace(verdict, proposal=caused.id, proposal_status=caused.status)

"""Combinators over nested conditions: ``all``, ``any``, ``not`` and ``at-least-k``.

- ``all`` fires when every child fires; ``any`` when at least one does;
- ``not`` fires when its one child does not;
- ``at-least-k`` fires when at least ``k`` of its children fire (1 <= k <= number of children).

Children are evaluated in order, and evaluation stops as soon as the outcome is decided, so a
child after the deciding one is not evaluated (and its errors are not raised). A child that raises
makes the whole condition raise: the hook's verdict is ``error``.

A combinator's ``text`` is canonical JSON naming its kind, ``k`` and its children's kinds and
digests; its digest is the SHA-256 of that text, so it changes when any nested condition changes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from kgc.errors import HookDefinitionError
from kgc.hooks.conditions import Condition, ConditionResult, EvalContext, _sha256
from kgc.hooks.footprint import Anchor, Footprint, anchor_of, footprint_of, union

COMBINATORS = ("all", "any", "not", "at-least-k")


@dataclass(frozen=True)
class Combinator:
    """``kind`` is one of ``COMBINATORS``; ``k`` is used by ``at-least-k`` only."""

    kind: str
    conditions: tuple[Condition, ...]
    k: int = 0
    source: str = "<inline>"
    _need: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in COMBINATORS:
            raise HookDefinitionError(
                f"{self.source}: field 'kind' must be one of {', '.join(COMBINATORS)}; "
                f"got {self.kind!r}"
            )
        count = len(self.conditions)
        if self.kind == "not" and count != 1:
            raise HookDefinitionError(
                f"{self.source}: field 'conditions': 'not' takes exactly one condition, got {count}"
            )
        if count == 0:
            raise HookDefinitionError(
                f"{self.source}: field 'conditions': '{self.kind}' needs at least one condition"
            )
        if self.kind == "at-least-k" and not 1 <= self.k <= count:
            raise HookDefinitionError(
                f"{self.source}: field 'k' must be between 1 and the number of conditions "
                f"({count}); got {self.k}"
            )
        if self.kind != "at-least-k" and self.k:
            raise HookDefinitionError(f"{self.source}: field 'k' is used only by 'at-least-k'")
        need = {"all": count, "any": 1, "not": 1, "at-least-k": self.k}[self.kind]
        object.__setattr__(self, "_need", need)

    @property
    def reads_history(self) -> bool:
        """Whether some nested condition reads the transaction history."""
        return any(getattr(c, "reads_history", False) for c in self.conditions)

    @property
    def text(self) -> str:
        children = [{"kind": c.kind, "sha256": c.digest} for c in self.conditions]
        body = {"kind": self.kind, "k": self.k, "conditions": children}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def digest(self) -> str:
        return _sha256(self.text)

    def footprint(self) -> Footprint | None:
        return union(footprint_of(c) for c in self.conditions)

    def anchor(self) -> Anchor | None:
        """The union of the children's anchors when each child has one, else none.

        Each child is quiet, and raises nothing, unless the delta matches its anchor, so with no
        match the combination is quiet too (``all`` could do with one child's anchor for firing,
        but another child may still raise, which a skip would hide). ``not`` has none.
        """
        anchors = [anchor_of(c) for c in self.conditions]
        if self.kind == "not" or any(a is None for a in anchors):
            return None
        return frozenset().union(*(a for a in anchors if a is not None))

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        fired: list[ConditionResult] = []
        left = len(self.conditions)
        for condition in self.conditions:
            result = condition.evaluate(ctx)
            left -= 1
            if result.fired:
                fired.append(result)
            if len(fired) >= self._need or len(fired) + left < self._need:
                break
        reached = len(fired) >= self._need
        if self.kind == "not":
            return ConditionResult(not reached, "" if reached else "its condition did not fire")
        detail = "; ".join(r.detail for r in fired if r.detail) if reached else ""
        return ConditionResult(reached, detail, len(fired))


__all__ = ["COMBINATORS", "Combinator"]

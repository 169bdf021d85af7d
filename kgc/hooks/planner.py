"""The planner: which hooks a transaction must evaluate.

A hook whose condition has a footprint (``kgc.hooks.footprint``) can change its result only when
a quad of the delta touches that footprint, inside the hook's channel. If none does, its result on
the proposed state equals its result on the current state with no change, its *resting* result.
When that resting result is known to be quiet (not fired, no error), evaluating the hook again
would give the same quiet verdict, so the planner skips it.

The planner keeps, for the current committed state, the set of rest keys known quiet. It learns
them from evaluations: an untouched hook evaluated on this state gives its resting result. A commit
that touches a hook's footprint makes its resting result unknown again; a vetoed transaction
changes nothing. So the skip is exact, not a heuristic, and tests compare it with full evaluation.

Always evaluated: hooks whose conditions have no footprint (``window``, queries with a variable
predicate, ...), hooks with a ``before`` or ``after`` callable (they are called on every
evaluation), hooks never evaluated yet on this state, and hooks whose resting result fired.

Cost per transaction: one dictionary lookup per quad and predicate, plus the selected hooks; the
skipped ones are not visited at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyoxigraph as ox

from kgc.hooks.footprint import RDF_TYPE_IRI, Anchor, Footprint, anchor_of, footprint_of, matches
from kgc.hooks.model import Channel, Hook, HookVerdict


@dataclass(frozen=True)
class Plan:
    """The index of one hook snapshot: hooks by predicate, by ``rdf:type`` class, by channel."""

    hooks: tuple[Hook, ...]
    by_predicate: dict[str, tuple[int, ...]]
    by_class: dict[str, tuple[int, ...]]
    always: frozenset[int]
    by_key: dict[str, tuple[int, ...]]
    index: dict[str, int] = field(default_factory=dict)
    # Anchored hooks (``kgc.hooks.footprint.sparql_anchor``): evaluated only when the delta holds
    # a quad matching their anchor, and otherwise quiet whatever the graph holds.
    anchored: dict[str, tuple[tuple[int, Anchor], ...]] = field(default_factory=dict)
    anchored_ids: frozenset[int] = frozenset()
    # Every channel with graphs, once: each gets its own delta-graph copies on every transaction.
    channels: tuple[Channel, ...] = ()

    @classmethod
    def build(cls, hooks: Sequence[Hook]) -> Plan:
        by_predicate: dict[str, list[int]] = {}
        by_class: dict[str, list[int]] = {}
        always: set[int] = set()
        by_key: dict[str, list[int]] = {}
        anchored: dict[str, list[tuple[int, Anchor]]] = {}
        for i, hook in enumerate(hooks):
            by_key.setdefault(hook.rest_key, []).append(i)
            fp = _footprint(hook)
            if fp is None:
                always.add(i)
                continue
            anchor = anchor_of(hook.when)
            if anchor is not None:
                for predicate in {p for _, p, _ in anchor}:
                    anchored.setdefault(predicate, []).append((i, anchor))
                continue
            for predicate in fp.predicates:
                by_predicate.setdefault(predicate, []).append(i)
            for klass in fp.classes:
                by_class.setdefault(klass, []).append(i)
        return cls(
            tuple(hooks),
            {k: tuple(v) for k, v in by_predicate.items()},
            {k: tuple(v) for k, v in by_class.items()},
            frozenset(always),
            {k: tuple(v) for k, v in by_key.items()},
            {hook.name: i for i, hook in enumerate(hooks)},
            {k: tuple(v) for k, v in anchored.items()},
            frozenset(i for pairs in anchored.values() for i, _ in pairs),
            tuple(dict.fromkeys(h.channel for h in hooks if h.channel.graphs)),
        )

    def touched(self, additions: Sequence[ox.Quad], removals: Sequence[ox.Quad]) -> set[int]:
        """The hooks whose footprint or anchor, within their channel, some quad touches."""
        found: set[int] = set()
        for side, quads in (("add", additions), ("rem", removals)):
            for quad in quads:
                for i, anchor in self.anchored.get(quad.predicate.value, ()):
                    hit = i not in found and matches(anchor, quad, side)
                    if hit and self.hooks[i].channel.admits(quad):
                        found.add(i)
        for quad in (*additions, *removals):
            candidates = self.by_predicate.get(quad.predicate.value, ())
            if quad.predicate.value == RDF_TYPE_IRI and isinstance(quad.object, ox.NamedNode):
                candidates = (*candidates, *self.by_class.get(quad.object.value, ()))
            for i in candidates:
                if i not in found and self.hooks[i].channel.admits(quad):
                    found.add(i)
        return found


def _footprint(hook: Hook) -> Footprint | None:
    if hook.before is not None or hook.after is not None:
        return None
    return footprint_of(hook.when)


@dataclass
class Selection:
    """The hooks one transaction evaluates, in snapshot order, and those its delta touches."""

    plan: Plan
    evaluate: list[int]
    touched: set[int]
    skipped: int

    def hooks(self, phase: str) -> list[Hook]:
        return [self.plan.hooks[i] for i in self.evaluate if self.plan.hooks[i].phase == phase]


@dataclass
class Planner:
    """Selects hooks for each transaction and learns resting results from their verdicts."""

    enabled: bool = True
    _quiet: set[str] = field(default_factory=set)
    _plan: Plan | None = None
    _pending: set[int] = field(default_factory=set)
    # Per rest key: the state digest after the last commit that touched its footprint. The
    # footprint's data has not changed since, so a resting result found now is the result on
    # that state: a version any process can compute, for the condition cache.
    _since: dict[str, str] = field(default_factory=dict)

    def select(
        self,
        plan: Plan,
        additions: Sequence[ox.Quad],
        removals: Sequence[ox.Quad],
        state: str = "",
    ) -> Selection:
        if plan is not self._plan:
            self._adopt(plan, state)
        if not self.enabled:
            everything = list(range(len(plan.hooks)))
            return Selection(plan, everything, set(everything), 0)
        touched = plan.touched(additions, removals)
        chosen = sorted(touched | self._pending)
        return Selection(plan, chosen, touched, len(plan.hooks) - len(chosen))

    def version(self, selection: Selection, hook: Hook, transition: str) -> str:
        """The graph version ``hook``'s condition reads in this transaction, for the cache:
        the transition (states before and after) when the delta can affect it, else the state
        its footprint last changed in."""
        i = selection.plan.index[hook.name]
        if i in selection.touched or i in selection.plan.always or not self.enabled:
            return transition
        return f"rest@{self._since.get(hook.rest_key, transition)}"

    def learn(
        self,
        selection: Selection,
        verdicts: dict[str, HookVerdict],
        *,
        committed: bool,
        state: str = "",
    ) -> None:
        """Record what this transaction's evaluations say about the resting results.

        ``verdicts`` maps hook names to the verdicts of hooks whose condition was evaluated.
        """
        if selection.plan is not self._plan or not self.enabled:
            return
        plan = selection.plan
        for i in selection.evaluate:
            if i in plan.always or i in selection.touched or i in plan.anchored_ids:
                continue
            hook = plan.hooks[i]
            verdict = verdicts.get(hook.name)
            if verdict is None:
                continue
            quiet = verdict.verdict == "pass" and not verdict.fired
            self._mark(plan, hook.rest_key, quiet)
        if committed:
            for i in selection.touched - plan.anchored_ids:
                self._mark(plan, plan.hooks[i].rest_key, False)
                self._since[plan.hooks[i].rest_key] = state

    def forget(self) -> None:
        """The store changed outside the pipeline: no resting result is known any more."""
        self._quiet.clear()
        self._since.clear()
        self._plan = None  # adopted again, at the then current state, by the next select

    def _mark(self, plan: Plan, key: str, quiet: bool) -> None:
        skip = plan.always | plan.anchored_ids
        indices = [i for i in plan.by_key.get(key, ()) if i not in skip]
        if quiet:
            self._quiet.add(key)
            self._pending.difference_update(indices)
        else:
            self._quiet.discard(key)
            self._pending.update(indices)

    def _adopt(self, plan: Plan, state: str) -> None:
        # Keys of hooks no longer registered would not be invalidated by later commits: drop them.
        self._quiet &= set(plan.by_key)
        self._since = {k: self._since.get(k, state) for k in plan.by_key}
        self._pending = set(plan.always) | {
            i
            for i, hook in enumerate(plan.hooks)
            if hook.rest_key not in self._quiet and i not in plan.anchored_ids
        }
        self._plan = plan


__all__ = ["Plan", "Planner", "Selection"]

"""The ``Hook``: a named condition with a phase, a priority, a channel, a timeout and callables.

Lifecycle, for each transaction in which the planner selects the hook (docs/hooks.md):

1. ``before(BeforeEvent)``, if given, may return ``Cancel(reason)``: a pre-commit hook then vetoes
   the transaction with that reason; a post-commit hook skips its ``run``. Verdict ``cancelled``.
2. The condition is evaluated on the channel's view (``before``, ``after`` or ``delta``).
3. If it fired: a pre-commit hook vetoes with ``message``, or calls ``run``, which decides by
   returning ``Veto``; a post-commit hook calls ``run`` after the commit.
4. ``after(AfterEvent)``, if given, is called with the hook's verdict.

Each of ``before``, the condition, ``run`` and ``after`` is called at most once per transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pyoxigraph as ox

from kgc.effects.code import SandboxedEffect
from kgc.errors import HookDefinitionError
from kgc.hooks.conditions import Condition, ConditionResult, EvalContext

Phase = Literal["pre", "post"]
VerdictKind = Literal["pass", "veto", "ran", "error", "timeout", "cancelled"]
View = Literal["before", "after", "delta"]
VIEWS = ("before", "after", "delta")
DEFAULT_GRAPH = "default"


@dataclass(frozen=True)
class Veto:
    """Returned by a pre-commit ``run`` callable to refuse the transaction."""

    reason: str


@dataclass(frozen=True)
class HookEvent:
    """What a ``run`` callable receives: the hook, its condition's result and the context."""

    hook: Hook
    result: ConditionResult
    context: EvalContext


@dataclass(frozen=True)
class Cancel:
    """Returned by a ``before`` callable to stop the hook (and veto, for a pre-commit hook)."""

    reason: str


@dataclass(frozen=True)
class BeforeEvent:
    """What a ``before`` callable receives: the hook and the context it is about to read."""

    hook: Hook
    context: EvalContext


@dataclass(frozen=True)
class AfterEvent:
    """What an ``after`` callable receives: the hook, its condition's result and its verdict."""

    hook: Hook
    result: ConditionResult | None
    verdict: HookVerdict


RunCallable = Callable[[HookEvent], "Veto | None"]
BeforeCallable = Callable[[BeforeEvent], "Cancel | None"]
AfterCallable = Callable[[AfterEvent], None]


@dataclass(frozen=True)
class Channel:
    """Which named graphs a hook watches and which state its condition reads.

    ``graphs``: IRIs (``"default"`` for the default graph); empty means every graph. With graphs,
    the condition sees only changes in them, and a SPARQL condition's default graph is their
    union. ``view``: ``after`` (the state the transaction would produce; the default),
    ``before`` (the state before it) or ``delta`` (only the changed quads).
    """

    graphs: tuple[str, ...] = ()
    view: View = "after"

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise HookDefinitionError(
                f"channel 'view' must be one of {', '.join(VIEWS)}, got {self.view!r}"
            )
        for graph in self.graphs:
            if graph != DEFAULT_GRAPH:
                try:
                    ox.NamedNode(graph)
                except (TypeError, ValueError) as exc:
                    raise HookDefinitionError(
                        f"channel 'graphs': {graph!r} is not an IRI or {DEFAULT_GRAPH!r}: {exc}"
                    ) from None

    @property
    def terms(self) -> tuple[ox.NamedNode | ox.DefaultGraph, ...] | None:
        if not self.graphs:
            return None
        return tuple(
            ox.DefaultGraph() if g == DEFAULT_GRAPH else ox.NamedNode(g) for g in self.graphs
        )

    def admits(self, quad: ox.Quad) -> bool:
        if not self.graphs:
            return True
        graph = quad.graph_name
        name = graph.value if isinstance(graph, ox.NamedNode) else DEFAULT_GRAPH
        return name in self.graphs

    @property
    def key(self) -> str:
        return f"{self.view}|{','.join(sorted(self.graphs))}"


@dataclass(frozen=True)
class Hook:
    """A knowledge hook.

    ``phase="pre"``: evaluated on the state the transaction would produce. When its condition
    fires it vetoes with ``message`` (and the condition's detail), unless a ``run`` callable is
    given; then ``run`` decides by returning a ``Veto`` or ``None``.

    ``phase="post"``: evaluated on the committed state; when it fires, its effect runs after the
    commit, which it cannot undo; the outcome is recorded in the receipt's ``effects``. The effect
    is exactly one of:

    - ``run``: a **trusted** callable, run in this process with all of its privileges
      (``trust="trusted"`` in the receipt). Register only code you would run yourself.
    - ``effect``: **untrusted** source code (``SandboxedEffect``), run in a confined single-use
      worker (``trust="sandboxed"``); it can only propose a delta, which becomes a transaction of
      its own citing this hook and receipt (docs/effects.md).
    """

    name: str
    when: Condition
    phase: Phase = "pre"
    message: str = ""
    description: str = ""
    priority: int = 0
    timeout_ms: float = 2000.0
    run: RunCallable | None = field(default=None, compare=False)
    before: BeforeCallable | None = field(default=None, compare=False)
    after: AfterCallable | None = field(default=None, compare=False)
    channel: Channel = field(default_factory=Channel)
    effect: SandboxedEffect | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise HookDefinitionError("hook 'name' must be a non-empty string")
        if self.phase not in ("pre", "post"):
            raise HookDefinitionError(
                f"hook {self.name!r}: 'phase' must be 'pre' or 'post', got {self.phase!r}"
            )
        if not self.timeout_ms > 0:
            raise HookDefinitionError(
                f"hook {self.name!r}: 'timeout_ms' must be positive, got {self.timeout_ms}"
            )
        if self.phase == "post" and (self.run is None) == (self.effect is None):
            raise HookDefinitionError(
                f"hook {self.name!r}: a post-commit hook needs exactly one of a 'run' callable "
                "(trusted, in process) and an 'effect' (sandboxed code)"
            )
        if self.phase == "pre" and self.effect is not None:
            raise HookDefinitionError(
                f"hook {self.name!r}: only post-commit hooks have effects; a pre-commit hook "
                "decides with its condition or a 'run' callable"
            )

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 over the hook's definition and its condition's digest."""
        body = {
            "name": self.name,
            "phase": self.phase,
            "priority": self.priority,
            "timeout_ms": self.timeout_ms,
            "message": self.message,
            "condition": {"kind": self.when.kind, "sha256": self.when.digest},
            "run": _callable_name(self.run),
            "before": _callable_name(self.before),
            "after": _callable_name(self.after),
            "channel": {"graphs": sorted(self.channel.graphs), "view": self.channel.view},
        }
        if (
            self.effect is not None
        ):  # absent otherwise: digests of effect-free hooks stay as they were
            body["effect"] = {"sha256": self.effect.digest, "entry": self.effect.entry}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @functools.cached_property
    def rest_key(self) -> str:
        """What the planner remembers a quiet result under: the condition and the channel."""
        return f"{self.when.digest}|{self.channel.key}"


def _callable_name(func: Callable[..., object] | None) -> str | None:
    if func is None:
        return None
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


@dataclass(frozen=True)
class HookVerdict:
    """One hook's outcome in a receipt."""

    hook: str
    phase: Phase
    verdict: VerdictKind
    fired: bool
    duration_ms: float
    reason: str = ""

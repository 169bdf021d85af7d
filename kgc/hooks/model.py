"""The ``Hook``: a named condition with a phase, a priority, a timeout and an action."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from kgc.errors import HookDefinitionError
from kgc.hooks.conditions import Condition, ConditionResult, EvalContext

Phase = Literal["pre", "post"]
VerdictKind = Literal["pass", "veto", "ran", "error", "timeout"]


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


RunCallable = Callable[[HookEvent], "Veto | None"]


@dataclass(frozen=True)
class Hook:
    """A knowledge hook.

    ``phase="pre"``: evaluated on the state the transaction would produce. When its condition
    fires it vetoes with ``message`` (and the condition's detail), unless a ``run`` callable is
    given; then ``run`` decides by returning a ``Veto`` or ``None``.

    ``phase="post"``: evaluated on the committed state; when it fires, ``run`` (a trusted,
    in-process callable) is called. It cannot undo the commit; its outcome is recorded in the
    receipt.
    """

    name: str
    when: Condition
    phase: Phase = "pre"
    message: str = ""
    description: str = ""
    priority: int = 0
    timeout_ms: float = 2000.0
    run: RunCallable | None = field(default=None, compare=False)

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
        if self.phase == "post" and self.run is None:
            raise HookDefinitionError(
                f"hook {self.name!r}: a post-commit hook needs a 'run' callable"
            )

    @property
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
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _callable_name(func: RunCallable | None) -> str | None:
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

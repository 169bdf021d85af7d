"""``EffectRunner``: turns a fired post-commit hook with a ``SandboxedEffect`` into a verdict and,
when the effect proposes one, a ``Delta``.

The event an effect receives is a read-only JSON snapshot of what its hook saw::

    {"hook": "pack/notify", "effect_sha256": "...",
     "receipt": {"id", "seq", "actor", "state_before", "state_after", "finished_at", "provenance"},
     "delta": {"additions": ["<s> <p> <o> <g> .", ...], "removals": [...]},
     "result": {"fired": true, "detail": "...", "rows": 2, "bindings": [{"x": "<urn:a>"}, ...]}}

Its entry function returns ``None`` (nothing to propose) or a proposal::

    {"add": ["<s> <p> <o> ."], "remove": [...], "events": [{...}, ...]}

``add``/``remove`` are N-Quads (one string per quad, or one string of lines); ``events`` are
JSON objects recorded in the receipt. Anything else is the effect's error, named.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

from kgc.config import Settings
from kgc.effects.code import SandboxedEffect
from kgc.effects.pool import SandboxConfig, SandboxPool, SandboxResult
from kgc.effects.verdict import EffectVerdict
from kgc.errors import InputError, SandboxUnavailable
from kgc.hooks.model import Hook
from kgc.hooks.runner import Outcome
from kgc.rdf.delta import Delta
from kgc.receipt import Receipt

logger = logging.getLogger(__name__)
MAX_EVENTS = 100
# The event carries the first quads of each side of the delta (and the totals): a transaction of
# any size fits the sandbox's call limit, as the condition's bindings are cut at 100 rows.
EVENT_QUADS_KEPT = 1000
EVENT_SIDE_BYTES = 1024 * 1024  # per side of the delta, and for the bindings
MAX_EVENTS_BYTES = 64 * 1024  # all of one effect's events together, as JSON
MAX_EVENT_BYTES = 16 * 1024
PROPOSAL_KEYS = frozenset({"add", "remove", "events"})
_VERDICTS = {"timeout": "timeout"}


class EffectRunner:
    """Runs sandboxed effects; the pool starts on first use (or ``start()``)."""

    def __init__(self, config: SandboxConfig | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.pool = SandboxPool(config)
        self._start_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> EffectRunner:
        config = SandboxConfig(
            timeout_ms=float(settings.sandbox_timeout_ms),
            memory_bytes=settings.sandbox_memory_limit_bytes,
            strict=settings.strict_mode,
            pool_size=settings.sandbox_pool_size,
            uid=settings.sandbox_uid,
            gid=settings.sandbox_uid,
        )
        return cls(config, enabled=settings.enable_sandboxing)

    def start(self) -> None:
        if self.enabled:
            with self._start_lock:
                self.pool.start()

    def probe(self) -> dict[str, Any]:
        """Start the sandbox and confirm a worker confines itself; ``SandboxUnavailable`` if not."""
        self.start()
        return self.pool.probe()

    def close(self) -> None:
        self.pool.close()

    def status(self) -> dict[str, Any]:
        if not self.enabled:
            return {"state": "disabled", "problem": "ENABLE_SANDBOXING is false"}
        return self.pool.status()

    def run(
        self,
        outcome: Outcome,
        receipt: Receipt,
        lines: tuple[Sequence[str], Sequence[str]],
        *,
        within_ms: float | None = None,
    ) -> tuple[EffectVerdict, Delta | None]:
        """Run ``outcome.hook``'s effect on the event; never raises for the effect's faults.
        ``within_ms`` lowers its wall-time limit (what is left of its change's budget)."""
        hook = outcome.hook
        effect = hook.effect
        assert effect is not None
        if not self.enabled:
            reason = "ENABLE_SANDBOXING is false: untrusted effect code never runs in process"
            return _failed(hook, effect, "sandbox_disabled", reason), None
        event = _event(hook, effect, outcome, receipt, lines)
        try:
            self.start()
            limits = [t for t in (effect.timeout_ms, within_ms) if t is not None]
            timeout_ms = min(limits) if limits else None
            result = self.pool.call(
                hook.name, effect.source, event, entry=effect.entry, timeout_ms=timeout_ms
            )
            return _judge(hook, effect, result)
        except SandboxUnavailable as exc:
            logger.warning("Hook execution failed: %s: %s", hook.name, exc)
            return _failed(hook, effect, "sandbox_unavailable", str(exc)), None
        except Exception as exc:  # the commit stands: whatever broke becomes this verdict
            logger.error("Hook execution failed: %s: %s: %s", hook.name, type(exc).__name__, exc)
            return _failed(hook, effect, "internal", f"{type(exc).__name__}: {exc}"), None


def _event(
    hook: Hook,
    effect: SandboxedEffect,
    outcome: Outcome,
    receipt: Receipt,
    lines: tuple[Sequence[str], Sequence[str]],
) -> dict[str, Any]:
    result = outcome.result
    return {
        "hook": hook.name,
        "effect_sha256": effect.digest,
        "receipt": {
            "id": receipt.id,
            "seq": receipt.seq,
            "actor": receipt.actor,
            "state_before": receipt.state_before,
            "state_after": receipt.state_after,
            "finished_at": receipt.finished_at,
            "provenance": receipt.provenance,
        },
        "delta": {
            "additions": _first(lines[0], EVENT_QUADS_KEPT, EVENT_SIDE_BYTES),
            "removals": _first(lines[1], EVENT_QUADS_KEPT, EVENT_SIDE_BYTES),
            "additions_total": len(lines[0]),
            "removals_total": len(lines[1]),
        },
        "result": {
            "fired": bool(result and result.fired),
            "detail": result.detail if result else "",
            "rows": result.rows if result else 0,
            "bindings": _rows(result.bindings) if result else [],
        },
    }


def _first(lines: Sequence[str], count: int, budget: int) -> list[str]:
    """The first ``count`` lines that fit in ``budget`` characters (a huge literal is left out:
    the totals say how many there were)."""
    kept: list[str] = []
    for line in lines[:count]:
        budget -= len(line)
        if budget < 0:
            break
        kept.append(line)
    return kept


def _rows(bindings: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    kept, budget = [], EVENT_SIDE_BYTES
    for row in bindings:
        budget -= sum(len(k) + len(v) for k, v in row.items())
        if budget < 0:
            break
        kept.append(dict(row))
    return kept


def _judge(
    hook: Hook, effect: SandboxedEffect, result: SandboxResult
) -> tuple[EffectVerdict, Delta | None]:
    if result.status != "ok":
        kind = "failed" if result.status == "error" else result.status
        if kind != "timeout":  # kgc.hooks.runner logs every timeout verdict itself
            logger.warning("Hook execution failed: %s: %s: %s", hook.name, kind, result.message)
        return _verdict(hook, effect, result, kind, result.message), None
    try:
        delta, events = read_proposal(result.value)
    except InputError as exc:
        logger.warning("Hook execution failed: %s: proposal: %s", hook.name, exc)
        return _verdict(hook, effect, result, "proposal", str(exc)), None
    return _verdict(hook, effect, result, None, "", events), delta


def read_proposal(value: Any) -> tuple[Delta | None, tuple[Any, ...]]:
    """The delta and events an effect's return value proposes; ``InputError`` names the fault."""
    if value is None:
        return None, ()
    if not isinstance(value, dict):
        raise InputError(f"the effect returned {type(value).__name__}; expected None or a dict")
    unknown = sorted(set(value) - PROPOSAL_KEYS)
    if unknown:
        raise InputError(
            f"the effect's proposal has unknown key(s) {unknown}; allowed: add, remove, events"
        )
    add, remove = _nquads(value.get("add"), "add"), _nquads(value.get("remove"), "remove")
    events = _events(value.get("events"))
    if not add and not remove:
        return None, events
    return Delta.from_text(add, remove), events


def _nquads(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    raise InputError(f"the effect's proposal: {key!r} must be N-Quads text or a list of lines")


def _events(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise InputError("the effect's proposal: 'events' must be a list of objects")
    if len(value) > MAX_EVENTS:
        raise InputError(
            f"the effect's proposal has {len(value)} events; the limit is {MAX_EVENTS}"
        )
    total = 0
    for i, event in enumerate(value):
        size = len(json.dumps(event, ensure_ascii=False))
        if size > MAX_EVENT_BYTES:
            raise InputError(f"event {i} is {size} bytes of JSON; the limit is {MAX_EVENT_BYTES}")
        total += size
    if total > MAX_EVENTS_BYTES:
        raise InputError(
            f"the events are {total} bytes of JSON together; the limit is {MAX_EVENTS_BYTES}"
        )
    return tuple(value)


def _verdict(
    hook: Hook,
    effect: SandboxedEffect,
    result: SandboxResult,
    kind: str | None,
    reason: str,
    events: tuple[Any, ...] = (),
) -> EffectVerdict:
    verdict = "ran" if kind is None else _VERDICTS.get(kind, "error")
    return EffectVerdict(
        hook.name,
        hook.phase,
        verdict,  # type: ignore[arg-type]
        True,
        result.duration_ms,
        reason,
        trust="sandboxed",
        error_kind=kind,
        effect_sha256=effect.digest,
        layers=result.layers,
        events=events,
        logs=result.logs,
    )


def not_run(hook: Hook, kind: str, reason: str) -> EffectVerdict:
    """The verdict of a sandboxed effect the pipeline did not run (``cascade``: out of budget)."""
    assert hook.effect is not None
    logger.warning("Hook execution failed: %s: %s", hook.name, reason)
    return _failed(hook, hook.effect, kind, reason)


def _failed(hook: Hook, effect: SandboxedEffect, kind: str, reason: str) -> EffectVerdict:
    return EffectVerdict(
        hook.name,
        hook.phase,
        "error",
        True,
        0.0,
        reason,
        trust="sandboxed",
        error_kind=kind,
        effect_sha256=effect.digest,
    )

"""Running one hook's lifecycle: ``before``, its condition, ``run``, ``after``.

Nothing a hook does escapes as an exception: every outcome becomes a ``HookVerdict`` (``pass``,
``veto``, ``ran``, ``error``, ``timeout``, ``cancelled``). The pipeline decides what a verdict
means for the transaction (strict mode, vetoes).

Timeouts. A hook with no callables is evaluated inline and its ``timeout_ms`` is measured: a
SPARQL query inside pyoxigraph cannot be interrupted, so an overrun is recorded when it returns.
A hook with callables runs on a watchdog thread: if ``before``, the condition and ``run`` together
overrun the limit, the hook is recorded as ``timeout`` at the limit and the engine goes on; the
thread is abandoned, not killed (Python cannot kill a thread), so a callable stuck for ever keeps
its thread. While the writer waits on that thread the thread may read through the engine (it sees
the proposed state); once abandoned, its reads wait for the lock like anyone's.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from kgc.errors import HookTimeout
from kgc.hooks.conditions import ConditionResult, EvalContext
from kgc.hooks.model import (
    AfterEvent,
    BeforeEvent,
    Cancel,
    Hook,
    HookEvent,
    HookVerdict,
    VerdictKind,
    Veto,
)
from kgc.telemetry import tracing

logger = logging.getLogger(__name__)
Lend = Callable[[threading.Thread], AbstractContextManager[None]]


def no_lend(_: threading.Thread) -> AbstractContextManager[None]:
    """For callables that run after the writer let go of the lock (post-commit): their reads
    take the read lock like anyone's, so they never see another writer's staged change."""
    return nullcontext()
Evaluate = Callable[[Hook, EvalContext], ConditionResult]
Sandboxed = Callable[["Outcome"], HookVerdict]


@dataclass
class Outcome:
    """One hook's verdict and, when its condition was evaluated, the condition's result."""

    hook: Hook
    verdict: HookVerdict
    result: ConditionResult | None = None
    context: EvalContext | None = None


def plain_evaluate(hook: Hook, ctx: EvalContext) -> ConditionResult:
    return hook.when.evaluate(ctx)


def judge(hook: Hook, ctx: EvalContext, evaluate: Evaluate, lend: Lend) -> Outcome:
    """Call ``before`` and evaluate the condition; for a pre-commit hook, decide (``run``) and
    call ``after`` too. A post-commit hook's ``run`` and ``after`` wait for ``finish``."""
    with tracing.span("kgc.hook", {"kgc.hook": hook.name, "kgc.phase": hook.phase}) as span:
        outcome = _judge_outcome(hook, ctx, evaluate, lend)
        tracing.verdict_reached(span, outcome.verdict)
        _log_timeout(outcome.verdict)
        return outcome


def _judge_outcome(hook: Hook, ctx: EvalContext, evaluate: Evaluate, lend: Lend) -> Outcome:
    t = time.perf_counter()
    if hook.before is None and hook.after is None and (hook.run is None or hook.phase == "post"):
        verdict, result, reason = _inline(hook, ctx, evaluate)
        return _done(hook, verdict, result, reason, t, ctx)
    budget = hook.timeout_ms / 1000.0
    try:
        verdict, result, reason = _bounded(lambda: _judge(hook, ctx, evaluate), budget, lend)
    except HookTimeout as exc:
        verdict, result, reason = "timeout", None, str(exc)
    except Exception as exc:
        logger.warning("Hook execution failed: %s: %s", hook.name, exc)
        verdict, result, reason = "error", None, f"{type(exc).__name__}: {exc}"
    outcome = _done(hook, verdict, result, reason, t, ctx)
    if hook.phase == "pre":
        outcome = _call_after(outcome, lend)
    return outcome


def finish(outcome: Outcome, lend: Lend, sandboxed: Sandboxed | None = None) -> Outcome:
    """After the commit: a fired post-commit hook's ``run`` (or, through ``sandboxed``, its
    sandboxed ``effect``), then its ``after``."""
    with tracing.span("kgc.effect", {"kgc.hook": outcome.hook.name}) as span:
        outcome = _finish(outcome, lend, sandboxed)
        tracing.verdict_reached(span, outcome.verdict)
        _log_timeout(outcome.verdict)
        return outcome


def _finish(outcome: Outcome, lend: Lend, sandboxed: Sandboxed | None) -> Outcome:
    hook, t = outcome.hook, time.perf_counter()
    fired = outcome.result is not None and outcome.result.fired
    if fired and outcome.verdict.verdict == "pass" and hook.effect is not None:
        if sandboxed is not None:  # the sandbox bounds the time itself, and kills on expiry
            outcome = Outcome(hook, sandboxed(outcome), outcome.result, outcome.context)
    elif fired and outcome.verdict.verdict == "pass" and hook.run is not None:
        event = HookEvent(hook, outcome.result, outcome.context)  # type: ignore[arg-type]
        run = hook.run
        try:
            _bounded(lambda: run(event), hook.timeout_ms / 1000.0, lend)
            verdict, reason = "ran", ""
        except HookTimeout as exc:
            verdict, reason = "timeout", str(exc)
        except Exception as exc:
            logger.warning("Hook execution failed: %s: %s", hook.name, exc)
            verdict, reason = "error", f"{type(exc).__name__}: {exc}"
        outcome = _done(hook, verdict, outcome.result, reason, t, outcome.context)
    return _call_after(outcome, lend)


def _log_timeout(verdict: HookVerdict) -> None:
    # Errors are logged where they are caught; a timeout is known only from the verdict.
    if verdict.verdict == "timeout":
        logger.warning(
            "Hook execution failed: %s: timeout: %s",
            verdict.hook,
            verdict.reason,
            extra={"hook": verdict.hook, "phase": verdict.phase},
        )


def _inline(hook: Hook, ctx: EvalContext, evaluate: Evaluate) -> tuple[str, Any, str]:
    try:
        return _judge(hook, ctx, evaluate)
    except Exception as exc:
        logger.warning("Hook execution failed: %s: %s", hook.name, exc)
        return "error", None, f"{type(exc).__name__}: {exc}"


def _judge(hook: Hook, ctx: EvalContext, evaluate: Evaluate) -> tuple[str, Any, str]:
    if hook.before is not None:
        answer = hook.before(BeforeEvent(hook, ctx))
        if isinstance(answer, Cancel):
            return "cancelled", None, answer.reason or f"hook {hook.name!r} cancelled"
    with tracing.span("kgc.condition", {"kgc.hook": hook.name, "kgc.kind": hook.when.kind}) as span:
        result = evaluate(hook, ctx)
        if span is not None:
            span.set_attribute("kgc.fired", bool(result.fired))
    if not result.fired or hook.phase == "post":
        return "pass", result, ""
    if hook.run is None:
        message = hook.message or f"condition of hook {hook.name!r} fired"
        return "veto", result, f"{message} ({result.detail})" if result.detail else message
    decision = hook.run(HookEvent(hook, result, ctx))
    if isinstance(decision, Veto):
        return "veto", result, decision.reason
    return "pass", result, ""


def _call_after(outcome: Outcome, lend: Lend) -> Outcome:
    hook = outcome.hook
    if hook.after is None:
        return outcome
    after, event = hook.after, AfterEvent(hook, outcome.result, outcome.verdict)
    try:
        _bounded(lambda: after(event), hook.timeout_ms / 1000.0, lend)
        return outcome
    except HookTimeout as exc:
        kind: VerdictKind = "timeout"
        reason = f"after: {exc}"
    except Exception as exc:
        logger.warning("Hook execution failed: %s: %s", hook.name, exc)
        kind = "error"
        reason = f"after: {type(exc).__name__}: {exc}"
    verdict = replace(
        outcome.verdict, verdict=kind, reason=reason
    )  # keeps an EffectVerdict's fields
    return Outcome(hook, verdict, outcome.result, outcome.context)


def _bounded(func: Callable[[], Any], budget_s: float, lend: Lend) -> Any:
    """``func()`` on a watchdog thread, waiting at most ``budget_s``; its exception is re-raised."""
    box: dict[str, Any] = {}
    ready = threading.Event()
    run = contextvars.copy_context().run  # the caller's current span, on the watchdog thread

    def target() -> None:
        ready.wait()
        try:
            box["value"] = run(func)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="kgc-hook", daemon=True)
    thread.start()
    with lend(thread):
        ready.set()
        thread.join(budget_s)
    if thread.is_alive():
        raise HookTimeout(f"did not return within {budget_s * 1000:.0f} ms; abandoned")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _done(
    hook: Hook,
    verdict: Any,
    result: ConditionResult | None,
    reason: str,
    t: float,
    ctx: EvalContext | None,
) -> Outcome:
    duration = (time.perf_counter() - t) * 1000.0
    if duration > hook.timeout_ms and verdict in ("pass", "ran"):
        # A veto or an error found late still stands; only a clean result is overturned.
        verdict, reason = "timeout", f"took {duration:.1f} ms; limit {hook.timeout_ms} ms"
    fired = bool(result and result.fired)
    return Outcome(
        hook,
        HookVerdict(hook.name, hook.phase, verdict, fired, round(duration, 4), reason),
        result,
        ctx,
    )


__all__ = ["Outcome", "finish", "judge", "plain_evaluate"]

"""Knowledge hooks: the model, condition kinds, content-addressed refs and the manager."""

from kgc.hooks.conditions import (
    ADDITIONS_GRAPH,
    REMOVALS_GRAPH,
    Condition,
    ConditionResult,
    EvalContext,
    SparqlAsk,
    SparqlSelect,
)
from kgc.hooks.loader import load_hook_file
from kgc.hooks.manager import HookManager, HookSnapshot
from kgc.hooks.model import Hook, HookEvent, HookVerdict, Veto
from kgc.hooks.refs import ConditionRef
from kgc.hooks.shacl import Shacl

__all__ = [
    "ADDITIONS_GRAPH",
    "REMOVALS_GRAPH",
    "Condition",
    "ConditionRef",
    "ConditionResult",
    "EvalContext",
    "Hook",
    "HookEvent",
    "HookManager",
    "HookSnapshot",
    "HookVerdict",
    "Shacl",
    "SparqlAsk",
    "SparqlSelect",
    "Veto",
    "load_hook_file",
]

"""Knowledge hooks: the model, condition kinds, content-addressed refs and the manager."""

from kgc.hooks.aggregate import Count, Threshold
from kgc.hooks.change import DeltaChange
from kgc.hooks.combinators import Combinator
from kgc.hooks.conditions import (
    ADDITIONS_GRAPH,
    REMOVALS_GRAPH,
    Condition,
    ConditionResult,
    EvalContext,
    HistoryEntry,
    SparqlAsk,
    SparqlSelect,
)
from kgc.hooks.loader import load_hook_file
from kgc.hooks.manager import HookManager, HookSnapshot
from kgc.hooks.model import (
    AfterEvent,
    BeforeEvent,
    Cancel,
    Channel,
    Hook,
    HookEvent,
    HookVerdict,
    Veto,
)
from kgc.hooks.refs import ConditionRef
from kgc.hooks.shacl import Shacl
from kgc.hooks.window import Window

__all__ = [
    "ADDITIONS_GRAPH",
    "REMOVALS_GRAPH",
    "AfterEvent",
    "BeforeEvent",
    "Cancel",
    "Channel",
    "Combinator",
    "Condition",
    "ConditionRef",
    "ConditionResult",
    "Count",
    "DeltaChange",
    "EvalContext",
    "HistoryEntry",
    "Hook",
    "HookEvent",
    "HookManager",
    "HookSnapshot",
    "HookVerdict",
    "Shacl",
    "SparqlAsk",
    "SparqlSelect",
    "Threshold",
    "Veto",
    "Window",
    "load_hook_file",
]

"""kgc: Knowledge Graph Control. A knowledge graph that changes only through governed,
audited transactions."""

from kgc.config import Settings
from kgc.effects.code import SandboxedEffect
from kgc.effects.verdict import EffectVerdict
from kgc.engine import KnowledgeEngine
from kgc.errors import (
    ConditionHashMismatch,
    ConfigError,
    DeltaConflict,
    EffectError,
    HookDefinitionError,
    HookError,
    InputError,
    KGCError,
    NonCanonicalLiteral,
    ProposalError,
    RDFSyntaxError,
    ReservedGraphError,
    ResolutionError,
    SandboxUnavailable,
    StoreError,
    TermError,
    TransactionError,
)
from kgc.hooks import (
    AfterEvent,
    BeforeEvent,
    Cancel,
    Channel,
    ConditionRef,
    Hook,
    HookEvent,
    HookManager,
    HookVerdict,
    Shacl,
    SparqlAsk,
    SparqlSelect,
    Veto,
    load_hook_file,
)
from kgc.lockchain import Lockchain, SigningKey
from kgc.rdf.delta import Delta
from kgc.receipt import Receipt
from kgc.resolution import Outcome, Proposal, Resolver, resolve
from kgc.store import OxigraphStore, Store
from kgc.transaction import TransactionManager

__version__ = "0.1.0"

__all__ = [
    "AfterEvent",
    "BeforeEvent",
    "Cancel",
    "Channel",
    "ConditionHashMismatch",
    "ConditionRef",
    "ConfigError",
    "Delta",
    "DeltaConflict",
    "EffectError",
    "EffectVerdict",
    "Hook",
    "HookDefinitionError",
    "HookError",
    "HookEvent",
    "HookManager",
    "HookVerdict",
    "InputError",
    "KGCError",
    "KnowledgeEngine",
    "Lockchain",
    "NonCanonicalLiteral",
    "Outcome",
    "OxigraphStore",
    "Proposal",
    "ProposalError",
    "RDFSyntaxError",
    "Receipt",
    "ReservedGraphError",
    "ResolutionError",
    "Resolver",
    "SandboxUnavailable",
    "SandboxedEffect",
    "Settings",
    "Shacl",
    "SigningKey",
    "SparqlAsk",
    "SparqlSelect",
    "Store",
    "StoreError",
    "TermError",
    "TransactionError",
    "TransactionManager",
    "Veto",
    "__version__",
    "load_hook_file",
    "resolve",
]

"""The public API: what ``import kgc`` offers is pinned here, so a change to it is deliberate."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import kgc

EXPECTED = [
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


def test_all_is_pinned() -> None:
    assert kgc.__all__ == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(kgc, name) is not None


def test_version_matches_the_installed_distribution() -> None:
    assert kgc.__version__ == version("kgc-governance")


def test_every_public_error_is_a_kgc_error() -> None:
    errors = [getattr(kgc, n) for n in EXPECTED if n.endswith("Error") or n.endswith("Mismatch")]

    assert errors and all(issubclass(e, kgc.KGCError) for e in errors)
    assert all(
        issubclass(e, kgc.InputError)
        for e in (kgc.RDFSyntaxError, kgc.TermError, kgc.DeltaConflict)
    )
    assert issubclass(kgc.ConditionHashMismatch, kgc.HookError)
    assert issubclass(kgc.HookDefinitionError, kgc.HookError)

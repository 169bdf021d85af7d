"""``KnowledgeEngine``: one object that wires store, hooks and transactions from settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyoxigraph as ox

from kgc.config import Settings, load_settings
from kgc.effects.runner import EffectRunner
from kgc.errors import LockchainError, NonCanonicalLiteral
from kgc.hooks.cache import ConditionCache
from kgc.hooks.manager import HookManager
from kgc.rdf.canon import DEFAULT_BUDGET_S, CanonicalHash, canonical_hash
from kgc.rdf.delta import Delta
from kgc.rdf.parse import iter_file
from kgc.receipt import Receipt
from kgc.store.oxigraph import OxigraphStore
from kgc.transaction import QueryResult, TransactionManager

if TYPE_CHECKING:
    from kgc.lockchain.anchor import Anchorer
    from kgc.lockchain.checkpoint import Checkpoint
    from kgc.lockchain.journal import Journal
    from kgc.lockchain.signing import SigningKey
    from kgc.policy import PolicyRegistry

ProgressCallback = Callable[[int], None]
_PROGRESS_EVERY = 10_000
LOAD_BUDGET_MS_PER_QUAD = 0.1


class KnowledgeEngine:
    """What applications hold: ``apply`` deltas, ``query`` the graph, manage ``hooks``."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        signing_key: SigningKey | None = None,
        **overrides: Any,
    ) -> None:
        """Build from ``settings`` (or ``KGC_*`` variables and ``overrides``).

        ``signing_key`` signs receipts when a lockchain is configured; it takes precedence over
        ``signing_key_file`` and ``signing_key_env``.
        """
        if settings is None:
            settings = load_settings(**overrides)
        elif overrides:
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        self.store = OxigraphStore(settings.store_path)
        self.hooks = HookManager(max_hooks=settings.max_hooks)
        if settings.hooks_path is not None:
            self.hooks.load(settings.hooks_path)
        self.policy = _policy(settings, self.hooks)
        self.journal, self.anchorer = _lockchain(settings, signing_key)
        self.transactions = TransactionManager(
            self.store,
            self.hooks,
            strict=settings.strict_mode,
            timeout_ms=settings.transaction_timeout_ms,
            journal=self.journal,
            cache=ConditionCache.from_settings(settings),
            effects=EffectRunner.from_settings(settings),
        )
        if self.anchorer is not None:
            anchorer = self.anchorer
            self.transactions.on_receipt.append(lambda receipt: anchorer.notify(receipt.seq))
            anchorer.notify()

    def close(self) -> None:
        """Anchor what is pending, release the lockchain's writer lock and flush the store."""
        if self.anchorer is not None:
            self.anchorer.close()
        if self.journal is not None:
            self.journal.close()
        self.transactions.effects.close()
        self.store.close()

    def __enter__(self) -> KnowledgeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply(
        self,
        delta: Delta,
        actor: str = "anonymous",
        *,
        timeout_ms: float | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> Receipt:
        """Apply ``delta`` (see ``TransactionManager.apply``) under this engine's literal policy."""
        if self.settings.literal_policy == "refuse" and isinstance(delta, Delta) and delta.rewrites:
            written, stored = delta.rewrites[0]
            raise NonCanonicalLiteral(
                f"literal {written} would be stored as {stored}; literal policy 'refuse' does not "
                f"allow that ({len(delta.rewrites)} such literal(s) in this delta)"
            )
        return self.transactions.apply(
            delta, actor=actor, timeout_ms=timeout_ms, provenance=provenance
        )

    def query(self, sparql: str) -> QueryResult:
        return self.transactions.query(sparql)

    def delta(self, additions: Any = (), removals: Any = ()) -> Delta:
        """A ``Delta`` under this engine's literal policy."""
        return Delta(additions, removals, literal_policy=self.settings.literal_policy)

    def load(
        self,
        path: str | os.PathLike[str],
        *,
        actor: str = "loader",
        lenient: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Receipt:
        """Load an RDF file as one governed transaction (hooks in force judge it).

        The pre-commit budget grows with the file: the configured transaction timeout plus
        ``LOAD_BUDGET_MS_PER_QUAD`` per quad, so a large load is not refused for its size alone.
        """
        quads: list[ox.Quad] = []
        for quad in iter_file(Path(path), lenient=lenient):
            quads.append(quad)
            if progress is not None and len(quads) % _PROGRESS_EVERY == 0:
                progress(len(quads))
        if progress is not None:
            progress(len(quads))
        budget = self.settings.transaction_timeout_ms + LOAD_BUDGET_MS_PER_QUAD * len(quads)
        return self.apply(self.delta(quads), actor=actor, timeout_ms=budget)

    @property
    def state_digest(self) -> str:
        return self.transactions.state_digest

    def canonical_hash(self, budget_s: float = DEFAULT_BUDGET_S) -> CanonicalHash:
        """RDFC-1.0 hash of the committed graph, kgc's reserved graphs left out.

        The quads are copied under the transaction lock's shared side, so the hash is of one
        committed state; canonicalization then runs outside the lock, in a worker process killed
        past ``budget_s`` seconds (``CanonicalizationBudgetExceeded``). See ``kgc.rdf.canon``.
        """
        quads, _, _ = self.transactions.snapshot()
        return canonical_hash(quads, budget=budget_s)

    def checkpoint(self, budget_s: float = DEFAULT_BUDGET_S) -> Checkpoint:
        """Record the canonical hash of the committed graph at the last receipt in the lockchain.

        Needs a lockchain. Signed with the engine's signing key when it has one.
        """
        from kgc.lockchain.checkpoint import record_checkpoint, require_lockchain

        directory = require_lockchain(self.settings.active_lockchain_path)
        quads, seq, state = self.transactions.snapshot()
        key = self.journal.key if self.journal is not None else None
        return record_checkpoint(
            directory, quads, seq=seq or 0, state_digest=state, key=key, budget_s=budget_s
        )

    def __len__(self) -> int:
        return len(self.store)


def _policy(settings: Settings, hooks: HookManager) -> PolicyRegistry:
    """The policy pack registry; with ``policy_path``, its recorded active packs are in force."""
    from kgc.policy import PolicyRegistry, TrustedKeys

    trusted = None
    if settings.policy_trusted_keys is not None:
        trusted = TrustedKeys.from_files(settings.policy_trusted_keys)
    registry = PolicyRegistry(
        hooks,
        settings.policy_path,
        trusted=trusted,
        require_signatures=settings.policy_require_signatures,
    )
    registry.restore()
    return registry


def _lockchain(
    settings: Settings, key: SigningKey | None
) -> tuple[Journal | None, Anchorer | None]:
    """The journal and anchorer for ``settings.active_lockchain_path``, or none without one."""
    directory = settings.active_lockchain_path
    if directory is None:
        return None, None
    from kgc.lockchain.anchor import Anchorer
    from kgc.lockchain.journal import Journal
    from kgc.lockchain.signing import SigningKey

    if key is not None:
        pass
    elif settings.signing_key_file is not None:
        key = SigningKey.from_file(settings.signing_key_file)
    elif settings.signing_key_env is not None:
        key = SigningKey.from_env(settings.signing_key_env)
    journal = Journal(directory, key=key, fsync=settings.journal_fsync)
    if key is None and journal.signed_by is not None:
        journal.close()
        raise LockchainError(
            f"{journal.path}: its receipts are signed with key {journal.signed_by[:16]}...; "
            "configure that signing key (signing_key_file or signing_key_env) to write to it"
        )
    anchorer = None
    if settings.git_anchoring:
        batch = settings.effective_anchor_batch_size
        anchorer = Anchorer(directory, key=key, batch_size=batch)
    return journal, anchorer

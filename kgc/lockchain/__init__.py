"""The lockchain: journal, sealed receipts, git anchoring, verification, proofs, checkpoints.

``Lockchain`` is the entry point for reading a lockchain directory; writing happens through a
``KnowledgeEngine`` configured with ``lockchain_path``. See ``docs/lockchain.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgc.lockchain.signing import SigningKey

if TYPE_CHECKING:
    from kgc.lockchain.checkpoint import Checkpoint
    from kgc.lockchain.report import VerifyReport


class Lockchain:
    """A lockchain directory, for the checks anyone can run on it."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def verify(self, *, replay: bool = False, store: Any = None) -> VerifyReport:
        """Check git objects, hashes, signatures, links, batch roots and tree heads (``--replay``:
        re-apply every delta and compare state digests, and ``store``'s when given)."""
        from kgc.lockchain.verify import verify_lockchain

        return verify_lockchain(self.directory, replay=replay, store=store)

    def prove_inclusion(self, seq: int) -> dict[str, Any]:
        from kgc.lockchain.proofs import prove_inclusion

        return prove_inclusion(self.directory, seq)

    def prove_consistency(self, first: int, second: int) -> dict[str, Any]:
        from kgc.lockchain.proofs import prove_consistency

        return prove_consistency(self.directory, first, second)

    def checkpoint(self, *, key: SigningKey | None = None) -> Checkpoint:
        """Record the RDFC-1.0 canonical hash of the state after the journal's last receipt."""
        from kgc.lockchain.checkpoint import checkpoint_from_journal

        return checkpoint_from_journal(self.directory, key=key)


__all__ = ["Lockchain", "SigningKey"]

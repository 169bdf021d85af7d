"""``Receipt``: what one transaction did, specified in ``docs/receipts.md``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from kgc.hooks.manager import PackRef
from kgc.hooks.model import HookVerdict
from kgc.rdf.digest import DELTA_ALGORITHMS, STATE_ALGORITHM

FORMAT_VERSION = "kgc-receipt/1"
UNSEALED = ("hash", "signature", "effects")
Status = Literal["committed", "vetoed", "error", "timeout"]
ALGORITHMS = {
    "delta_digest": list(DELTA_ALGORITHMS),
    "state_digest": STATE_ALGORITHM,
    "canonical_form": "N-Quads lines as printed by pyoxigraph 0.5, literals in stored form",
}


@dataclass(frozen=True)
class Receipt:
    id: str
    actor: str
    status: Status
    committed: bool
    started_at: str
    finished_at: str
    additions: int
    removals: int
    ignored_additions: int
    ignored_removals: int
    literal_rewrites: tuple[tuple[str, str], ...]
    delta_digest: dict[str, str]
    state_before: str
    state_after: str
    policy_digest: str
    hooks: tuple[HookVerdict, ...]
    timings_ms: dict[str, float]
    error: str | None = None
    # Registered hooks the planner proved the delta cannot affect: not evaluated, all quiet.
    hooks_skipped: int = 0
    format_version: str = FORMAT_VERSION
    algorithms: dict[str, Any] = field(default_factory=lambda: dict(ALGORITHMS))
    # Set when a lockchain journal sealed the receipt (see docs/lockchain.md).
    seq: int | None = None
    prev: str | None = None
    key_id: str | None = None
    hash: str | None = None
    signature: str | None = None
    # Post-commit effects run after the lock is released: recorded, never part of the chain.
    effects: tuple[HookVerdict, ...] = ()
    # The policy packs in force (name, version, digest); sealed, omitted from the body when none.
    policy_packs: tuple[PackRef, ...] = ()
    # Why this transaction exists when a caller says so: an effect's hook and triggering
    # receipt, a resolution round's proposals. JSON values; sealed, omitted from the body when None.
    provenance: dict[str, Any] | None = None

    @property
    def vetoed_by(self) -> list[str]:
        """Hooks that refused the transaction: a veto, or a ``before`` that cancelled it."""
        return [v.hook for v in self.hooks if v.verdict in ("veto", "cancelled")]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["literal_rewrites"] = [{"written": w, "stored": s} for w, s in self.literal_rewrites]
        data["policy_packs"] = [dict(vars(p)) for p in self.policy_packs]
        return data

    def body(self) -> dict[str, Any]:
        """The fields a lockchain seals: everything but ``hash``, ``signature`` and ``effects``.

        Built field by field rather than with ``asdict`` (a deep copy: 40 µs of every apply).
        """
        data = {name: getattr(self, name) for name in _SEALED}
        data["literal_rewrites"] = [{"written": w, "stored": s} for w, s in self.literal_rewrites]
        data["hooks"] = [dict(vars(v)) for v in self.hooks]
        data["delta_digest"] = dict(self.delta_digest)
        data["timings_ms"] = dict(self.timings_ms)
        data["algorithms"] = {
            k: list(v) if isinstance(v, list) else v for k, v in self.algorithms.items()
        }
        if self.key_id is None:
            del data["key_id"]
        if self.policy_packs:
            data["policy_packs"] = [dict(vars(p)) for p in self.policy_packs]
        else:
            del data["policy_packs"]
        if self.provenance is None:
            del data["provenance"]
        return data

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)


_SEALED = tuple(f.name for f in fields(Receipt) if f.name not in UNSEALED)

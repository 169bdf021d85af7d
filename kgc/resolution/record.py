"""``ResolutionRecord``: what a round is doing or did: its proposals, outcome and receipt.

Status: ``open`` (collecting), ``resolving`` (closed, being resolved and applied), then one of
``committed``, ``vetoed``, ``error``, ``timeout`` (the receipt's status: the resolved delta went
through the pipeline), ``empty`` (nothing to apply: every quad was rejected or no consensus, so no
transaction ran) or ``failed`` (the transaction was refused before it started; ``error`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kgc.receipt import Receipt
from kgc.resolution.outcome import Outcome

RoundStatus = Literal[
    "open", "resolving", "committed", "vetoed", "error", "timeout", "empty", "failed"
]
ClosedBy = Literal["count", "timeout", "close"]


@dataclass(frozen=True)
class ResolutionRecord:
    id: str
    topic: str
    strategy: str
    threshold: float
    crdt_bias: str
    status: RoundStatus
    expected: int | None
    timeout_ms: float
    opened_at: str
    proposals: tuple[str, ...]
    closed_at: str | None = None
    closed_by: ClosedBy | None = None
    outcome: Outcome | None = None
    receipt: Receipt | None = None
    error: str | None = None
    # (digest, principal): who sent each proposal over HTTP (an authenticated API key's name);
    # ``agent`` is free text, so this is what says which key a vote came from.
    submitted_by: tuple[tuple[str, str], ...] = ()

    @property
    def done(self) -> bool:
        return self.status not in ("open", "resolving")

    def provenance(self) -> dict[str, Any]:
        """What the receipt seals: ``{"resolution": {...}}`` (docs/resolution.md)."""
        body: dict[str, Any] = {
            "round": self.id,
            "topic": self.topic,
            "closed_by": self.closed_by,
        }
        if self.outcome is not None:
            body.update(self.outcome.to_json())
            del body["resolved"]  # the receipt's own delta digest covers it
            self._add_submitters(body["proposals"])
        return {"resolution": body}

    def _add_submitters(self, proposals: list[dict[str, Any]]) -> None:
        """Give each proposal entry ``submitted_by`` (sorted principals) when any are known."""
        if not self.submitted_by:
            return
        by: dict[str, list[str]] = {}
        for digest, principal in self.submitted_by:
            by.setdefault(digest, []).append(principal)
        for entry in proposals:
            if entry["digest"] in by:
                entry["submitted_by"] = by[entry["digest"]]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "topic": self.topic,
            "status": self.status,
            "strategy": self.strategy,
            "threshold": self.threshold,
            "expected": self.expected,
            "timeout_ms": self.timeout_ms,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "proposals": [{"digest": digest} for digest in self.proposals],
            "receipt": _receipt(self.receipt),
            "error": self.error,
        }
        if self.strategy == "crdt":
            data["crdt_bias"] = self.crdt_bias
        if self.outcome is not None:
            outcome = self.outcome.to_json()
            data["proposals"] = outcome.pop("proposals")
            data["outcome"] = outcome
        self._add_submitters(data["proposals"])
        return data


def _receipt(receipt: Receipt | None) -> dict[str, Any] | None:
    if receipt is None:
        return None
    return {
        "id": receipt.id,
        "status": receipt.status,
        "committed": receipt.committed,
        "vetoed_by": receipt.vetoed_by,
        "error": receipt.error,
        "hooks": [
            {"hook": v.hook, "verdict": v.verdict, "reason": v.reason} for v in receipt.hooks
        ],
    }

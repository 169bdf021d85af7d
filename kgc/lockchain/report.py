"""What verification found: ``Problem`` (one fault, at one sequence number) and ``VerifyReport``.

Problems are ordered by sequence number, then by the kind of check, in the order of ``KINDS``;
the report's ``first`` is the earliest. Kinds, from the most basic check to the most derived:

==============  ==============================================================================
``git-object``  a git object of the anchored history is missing, unreadable or does not hash to
                its id
``shape``       a file or record that is not what the format says (missing field, not JSON)
``sequence``    a receipt or batch missing, duplicated, out of order, or outside its batch
``hash``        a receipt body that does not hash to its recorded hash (edited)
``link``        a receipt whose ``prev`` is not the previous receipt's hash
``delta``       a delta whose lines do not match the receipt's ``delta_digest``
``key``         a signing key not listed in ``keys.json``, not trusted, or listed wrongly
``signature``   a receipt signature that is missing or does not verify
``batch``       a batch root, leaf hash or chain head that does not match the receipts
``tree-head``   a tree head whose size, root or signature does not check
``journal``     the journal disagrees with git, or is damaged, truncated or reordered
``witness``     the ref no longer agrees with the tree heads ``anchors.jsonl`` witnessed
``replay``      a state digest that replaying the deltas does not reproduce
==============  ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kgc.errors import ChainBroken

KINDS = (
    "git-object",
    "shape",
    "sequence",
    "hash",
    "link",
    "delta",
    "key",
    "signature",
    "batch",
    "tree-head",
    "journal",
    "witness",
    "replay",
)
_RANK = {kind: rank for rank, kind in enumerate(KINDS)}


@dataclass(frozen=True, order=False)
class Problem:
    """One fault: the first sequence number it makes untrustworthy, its kind, and what is wrong."""

    seq: int
    kind: str
    message: str

    def sort_key(self) -> tuple[int, int]:
        return (self.seq, _RANK[self.kind])

    def __str__(self) -> str:
        return f"receipt {self.seq}: {self.message}"


@dataclass
class VerifyReport:
    """The outcome of ``verify_lockchain``. ``ok`` is true when no problem was found."""

    directory: str
    receipts: int = 0
    anchored_seq: int = 0
    journal_seq: int = 0
    batches: int = 0
    signatures: int = 0
    replayed: int | None = None
    final_state: str | None = None
    torn_tail: bool = False
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def lag(self) -> int:
        """Receipts in the journal that git does not anchor yet (checked all the same)."""
        return max(0, self.journal_seq - self.anchored_seq)

    @property
    def first(self) -> Problem | None:
        """The problem at the lowest sequence number (the most basic kind among equals)."""
        return min(self.problems, key=Problem.sort_key, default=None)

    @property
    def rate(self) -> float:
        """Receipts verified per second."""
        return self.receipts / self.seconds if self.seconds > 0 else 0.0

    def raise_for_problems(self) -> None:
        """Raise ``ChainBroken`` for the first problem, if there is one."""
        first = self.first
        if first is not None:
            more = len(self.problems) - 1
            extra = f" ({more} more problem{'s' if more != 1 else ''} after it)" if more else ""
            raise ChainBroken(
                f"{self.directory}: first bad receipt is {first.seq} [{first.kind}]: "
                f"{first.message}{extra}",
                seq=first.seq,
                kind=first.kind,
            )

    def summary(self) -> str:
        """A few lines for people: what was checked and the outcome."""
        lines = [
            f"lockchain {self.directory}",
            f"  receipts checked:  {self.receipts:,} ({self.signatures:,} signatures) in "
            f"{self.seconds:.2f} s ({self.rate:,.0f}/s)",
            f"  anchored in git:   up to receipt {self.anchored_seq:,} in {self.batches:,} batches",
            f"  journal:           up to receipt {self.journal_seq:,} (lag {self.lag:,})",
        ]
        if self.replayed is not None:
            lines.append(f"  replayed:          {self.replayed:,} deltas; state {self.final_state}")
        lines += [f"  note: {note}" for note in self.notes]
        first = self.first
        if first is None:
            lines.append("  OK")
        else:
            lines.append(f"  FAILED: first bad receipt {first.seq} [{first.kind}]: {first.message}")
            lines.append(f"  ({len(self.problems)} problem(s) in all)")
        return "\n".join(lines)

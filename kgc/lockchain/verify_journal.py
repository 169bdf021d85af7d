"""The journal side of verification: index its receipt lines, then check the unanchored tail.

Anchored receipts are compared with git line by line in ``verify_git`` (the worker already holds
the git record); here the journal is read once, every receipt line indexed by its sequence number,
and its own order checked: each receipt once, in order, none skipped. A last line without its
newline is a torn tail (a writer killed mid-append, never acknowledged): noted, not a problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kgc.errors import LockchainError
from kgc.lockchain.checks import Checked, check_record
from kgc.lockchain.fastjson import parse
from kgc.lockchain.report import Problem

_RECEIPT_PREFIX = b'{"type":"receipt","seq":'


@dataclass
class JournalScan:
    """Receipt lines by sequence number (the first occurrence) and what is wrong with the order."""

    lines: dict[int, bytes] = field(default_factory=dict)
    line_numbers: dict[int, int] = field(default_factory=dict)
    last_seq: int = 0
    torn_tail: bool = False
    problems: list[Problem] = field(default_factory=list)


def scan_journal(path: Path) -> JournalScan:
    """Index the receipt lines of the journal at ``path`` (an absent journal is empty)."""
    scan = JournalScan()
    try:
        data = path.read_bytes() if path.exists() else b""
    except OSError as exc:
        raise LockchainError(f"{path}: cannot be read ({exc.strerror})") from exc
    lines = data.split(b"\n")
    scan.torn_tail = lines[-1] != b""
    highest = 0
    for number, raw in enumerate(lines[:-1], start=1):
        seq = _receipt_seq(raw, number, highest, scan)
        if seq is None:
            continue
        if seq in scan.lines:
            scan.problems.append(
                Problem(
                    seq,
                    "journal",
                    f"the journal holds receipt {seq} twice "
                    f"(lines {scan.line_numbers[seq]} and {number})",
                )
            )
            continue
        if seq < highest:
            scan.problems.append(
                Problem(
                    seq,
                    "journal",
                    f"the journal is out of order: receipt "
                    f"{seq} (line {number}) comes after receipt {highest}",
                )
            )
        scan.lines[seq], scan.line_numbers[seq] = raw, number
        highest = max(highest, seq)
    scan.last_seq = highest
    _check_gaps(scan)
    return scan


def _receipt_seq(raw: bytes, number: int, highest: int, scan: JournalScan) -> int | None:
    """The seq of a receipt line; ``None`` for other records (a problem if unreadable)."""
    if raw.startswith(_RECEIPT_PREFIX):
        end = raw.find(b",", len(_RECEIPT_PREFIX))
        digits = raw[len(_RECEIPT_PREFIX) : end]
        if end > 0 and digits.isdigit():
            return int(digits)
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if isinstance(record, dict) and record.get("type") in ("intent", "after"):
        return None
    if isinstance(record, dict) and record.get("type") == "receipt":
        seq = record.get("seq")
        if isinstance(seq, int) and seq > 0:
            return seq
    scan.problems.append(
        Problem(
            highest + 1,
            "journal",
            f"journal line {number} is not a readable journal record (damaged or truncated)",
        )
    )
    return None


def _check_gaps(scan: JournalScan) -> None:
    for seq in range(1, scan.last_seq + 1):
        if seq not in scan.lines:
            scan.problems.append(
                Problem(
                    seq,
                    "journal",
                    f"receipt {seq} is missing from the "
                    "journal, which holds later receipts (dropped)",
                )
            )
            return


def check_tail(
    scan: JournalScan,
    anchored: int,
    head: str,
    keys: Mapping[str, str],
    problems: list[Problem],
) -> list[Checked]:
    """Check the journal's receipts after ``anchored`` (hash, delta, signature, links)."""
    checked: list[Checked] = []
    for seq in range(anchored + 1, scan.last_seq + 1):
        raw = scan.lines.get(seq)
        if raw is None:
            break
        where = f"journal line {scan.line_numbers[seq]} (not anchored yet)"
        try:
            record, fast = parse(raw)
        except ValueError as exc:
            problems.append(Problem(seq, "journal", f"{where}: not JSON ({exc})"))
            break
        result = check_record(record, fast, seq, keys, where, problems)
        if result is None:
            break
        if result.prev != head:
            problems.append(
                Problem(
                    seq,
                    "link",
                    f"{where}: prev {result.prev[:16]}... is not "
                    f"receipt {seq - 1}'s hash {head[:16]}... (chain broken)",
                )
            )
        checked.append(result)
        head = result.hash
    return checked

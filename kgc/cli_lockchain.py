"""``kgc lockchain``: verify a lockchain directory, emit proofs, check a proof.

::

    kgc lockchain verify DIR [--replay] [--store PATH] [--public-key HEX ...] [--workers N]
    kgc lockchain prove DIR --seq N
    kgc lockchain prove DIR --from M --to N
    kgc lockchain check-proof FILE --public-key HEX
    kgc lockchain checkpoint DIR [--key-file FILE] [--budget SECONDS]

``verify`` shows progress on stderr, prints a summary on stdout and exits 0 when the lockchain
checks, 1 naming the first bad receipt and what is wrong. Proofs are JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kgc import cli_backup
from kgc.cli_progress import StatusLine
from kgc.errors import KGCError, ProofInvalid, StoreError


def add_commands(commands: Any) -> None:
    """Add ``lockchain`` and its actions to the ``kgc`` command's subparsers."""
    lockchain = commands.add_parser(
        "lockchain",
        help="verify a lockchain, emit and check proofs",
        description="Verify a lockchain directory (journal and git anchor), emit inclusion and "
        "consistency proofs, and check a proof with a public key alone.",
    )
    actions = lockchain.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser("verify", help="check every receipt, batch and tree head")
    verify.add_argument("directory", type=Path, metavar="DIR")
    verify.add_argument("--replay", action="store_true", help="re-apply every delta from genesis")
    verify.add_argument(
        "--store", type=Path, metavar="PATH", help="on-disk store whose digest must match (replays)"
    )
    verify.add_argument(
        "--public-key",
        action="append",
        metavar="HEX",
        help="trust only these public keys (repeatable); default: the keys the lockchain lists",
    )
    verify.add_argument("--workers", type=int, metavar="N", help="processes (default: automatic)")

    prove = actions.add_parser("prove", help="inclusion (--seq) or consistency (--from/--to) proof")
    prove.add_argument("directory", type=Path, metavar="DIR")
    prove.add_argument("--seq", type=int, metavar="N", help="prove that receipt N is in the log")
    prove.add_argument("--from", dest="first", type=int, metavar="M", help="earlier tree size")
    prove.add_argument("--to", dest="second", type=int, metavar="N", help="later tree size")

    check = actions.add_parser("check-proof", help="check a proof file with one public key")
    check.add_argument("file", type=Path, metavar="FILE", help="the proof (JSON), - for stdin")
    check.add_argument("--public-key", required=True, metavar="HEX", help="the signer's key")
    point = actions.add_parser(
        "checkpoint", help="record the graph's RDFC-1.0 canonical hash at the last receipt"
    )
    point.add_argument("directory", type=Path, metavar="DIR")
    point.add_argument("--key-file", type=Path, metavar="FILE", help="Ed25519 key that signs it")
    point.add_argument("--budget", type=float, default=10.0, metavar="S", help="default: 10 s")
    cli_backup.add_lockchain_actions(actions)


def run(args: argparse.Namespace) -> int:
    if args.action == "rebuild":
        return cli_backup.rebuild(args)
    if args.action == "verify":
        return _verify(args)
    if args.action == "prove":
        return _prove(args)
    if args.action == "checkpoint":
        return _checkpoint(args)
    return _check(args)


def _checkpoint(args: argparse.Namespace) -> int:
    from kgc.lockchain.checkpoint import checkpoint_from_journal
    from kgc.lockchain.signing import SigningKey

    key = SigningKey.from_file(args.key_file) if args.key_file is not None else None
    point = checkpoint_from_journal(args.directory, key=key, budget_s=args.budget)
    print(
        f"checkpoint at receipt {point.seq}: RDFC-1.0 SHA-256 {point.canonical_hash} over "
        f"{point.quads:,} quads; state digest {point.state_digest}; commit {point.commit}"
        f"{'' if point.signed else ' (unsigned)'}"
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from kgc.lockchain.verify import verify_lockchain

    if not args.directory.is_dir():
        raise KGCError(f"{args.directory}: not a lockchain directory")
    progress = _Progress(sys.stderr)
    report = verify_lockchain(
        args.directory,
        replay=args.replay,
        store=_open_store(args.store) if args.store is not None else None,
        progress=progress,
        trusted_keys=args.public_key,
        workers=args.workers,
    )
    progress.close()
    print(report.summary())
    first = report.first
    if first is not None:
        print(
            f"kgc lockchain verify: first bad receipt {first.seq} [{first.kind}]: {first.message}",
            file=sys.stderr,
        )
        return 1
    return _verify_checkpoints(args)


def _verify_checkpoints(args: argparse.Namespace) -> int:
    from kgc.lockchain.checkpoint import lockchain_keys, read_checkpoints, verify_checkpoints

    count = len(read_checkpoints(args.directory))
    if not count:
        return 0
    keys = lockchain_keys(args.directory, args.public_key)
    problems = verify_checkpoints(args.directory, keys, recompute=args.replay)
    for problem in problems:
        print(f"kgc lockchain verify: {problem}", file=sys.stderr)
    how = (
        "signatures, state digests and canonical hashes"
        if args.replay
        else "signatures and state digests"
    )
    print(f"checkpoints: {count} checked ({how}), {len(problems)} bad")
    return 1 if problems else 0


def _open_store(path: Path) -> Any:
    import pyoxigraph as ox

    try:
        return ox.Store.read_only(str(path))
    except OSError as exc:
        raise StoreError(f"cannot open the store at {path} read-only: {exc}") from exc


def _prove(args: argparse.Namespace) -> int:
    from kgc.lockchain.proofs import prove_consistency, prove_inclusion

    ranged = args.first is not None or args.second is not None
    if (args.seq is None) == (not ranged) or (ranged and None in (args.first, args.second)):
        raise KGCError("give either --seq N, or both --from M and --to N")
    if args.seq is not None:
        proof = prove_inclusion(args.directory, args.seq)
    else:
        proof = prove_consistency(args.directory, args.first, args.second)
    print(json.dumps(proof, indent=2, ensure_ascii=False))
    return 0


def _check(args: argparse.Namespace) -> int:
    from kgc.lockchain.proofs import check_consistency_proof, check_inclusion_proof

    try:
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text("utf-8")
        proof = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ProofInvalid(f"{args.file}: cannot read a JSON proof ({exc})") from exc
    kind = proof.get("proof") if isinstance(proof, dict) else None
    if kind == "consistency":
        result = check_consistency_proof(proof, args.public_key)
        print(
            f"OK: the tree of size {result['second_size']} extends the tree of size "
            f"{result['first_size']} (both tree heads signed by the given key)"
        )
    else:
        result = check_inclusion_proof(proof, args.public_key)
        print(
            f"OK: receipt {result['seq']} (hash {result['receipt_hash']}) is in the tree of "
            f"size {result['tree_size']} (root {result['root']}), signed by the given key"
        )
    return 0


class _Progress(StatusLine):
    """Progress of a verification on stderr: a rewritten line on a terminal, else every 10%."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self.shown: tuple[str, int] = ("", -1)

    def __call__(self, phase: str, done: int, total: int) -> None:
        tenth = done * 10 // total if total else 10
        if not self.tty and self.shown == (phase, tenth):
            return
        self.shown = (phase, tenth)
        self.show(f"{phase}: {done:,}/{total:,} receipts")

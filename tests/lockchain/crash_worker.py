"""The writer that ``test_crash.py`` kills, and the change stream it writes.

::

    python crash_worker.py run STORE LOCKCHAIN [--anchor BATCH] [--key FILE] [--spin-ms MS]
                               [--ack-pause-ms MS] [--max-ops N]
    python crash_worker.py serve

``run`` opens a ``KnowledgeEngine`` on an on-disk store and a lockchain directory (which recovers
whatever a killed predecessor left), then applies the deterministic stream of ``operations()`` from
the sequence number after the journal's last receipt onwards. It writes one line per event to
stdout, each with a single ``write`` so that lines from several processes never interleave:

    READY <last_seq> <state_digest>           the engine is built (recovery is done)
    STAGE <seq>                               inside the pre-commit hook: the delta is staged
    HOOKED <seq>                              the hook is about to return (then revert or commit)
    ACK <seq> <state_after> <committed 0|1>   apply() returned this receipt (the writer then
                                              idles up to ``--ack-pause-ms`` before the next)
    BAD <text>                                the receipt is not what the stream predicts

``serve`` is a fork server for speed (a fresh interpreter costs ~0.5 s of imports): it imports kgc
once, then for each ``run ...`` line on stdin forks a child that does exactly what ``run`` does,
writes ``PID <pid>``, waits for the child and writes ``EXIT <pid> <wait status>``. The child is a
separate process with its own store handle, journal lock and file descriptors; the test kills it
with SIGKILL. The server itself never opens a store.

The stream (``operations``) is a pure function of the sequence number: each operation adds one to
four quads (some with blank nodes, some in a named graph, some already present), removes up to five
live quads, and about one in five carries a forbidden marker that the hook vetoes. Because a veto is
decided by content only, the state after every sequence number is known in advance.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from kgc.rdf.digest import StateDigest
from kgc.rdf.terms import quad_line

EX = "urn:ex:"
STATUS = ox.NamedNode(f"{EX}status")
FORBIDDEN = ox.Literal("forbidden")
GRAPH = ox.NamedNode(f"{EX}g")
TARGET_SIZE = 150
VETO_RATE = 0.2

# Fires on every non-empty delta, so that the hook's callable runs (and can widen the window
# in which the delta is staged); the callable vetoes by a second ASK over the staged additions.
ANY_CHANGE = (
    "ASK { { GRAPH <urn:kgc:delta:additions> { ?s ?p ?o } }"
    " UNION { GRAPH <urn:kgc:delta:removals> { ?s ?p ?o } } }"
)
HAS_FORBIDDEN = f'ASK {{ GRAPH <urn:kgc:delta:additions> {{ ?s <{STATUS.value}> "forbidden" }} }}'


@dataclass(frozen=True)
class Operation:
    """One step of the stream and what the graph must be after it."""

    seq: int
    additions: tuple[ox.Quad, ...]
    removals: tuple[ox.Quad, ...]
    vetoed: bool
    state_after: str


def operations() -> Iterator[Operation]:
    """The stream from sequence number 1 on; seeded per step, so it never changes."""
    live: list[ox.Quad] = []
    index: dict[ox.Quad, int] = {}
    digest = StateDigest()
    seq = 0
    while True:
        seq += 1
        rng = random.Random(seq * 1_000_003)
        vetoed = rng.random() < VETO_RATE
        removals = _removals(rng, live)
        additions = _additions(seq, rng, live, vetoed, set(removals))
        if not vetoed:
            _apply(live, index, digest, additions, removals)
        yield Operation(seq, tuple(additions), tuple(removals), vetoed, digest.hexdigest())


def _additions(
    seq: int, rng: random.Random, live: list[ox.Quad], vetoed: bool, removed: set[ox.Quad]
) -> list[ox.Quad]:
    subject = ox.NamedNode(f"{EX}n{seq}")
    quads = []
    for j in range(rng.randint(1, 4)):
        obj: ox.NamedNode | ox.BlankNode | ox.Literal = ox.Literal(f"v{seq}.{j}")
        if rng.random() < 0.3:
            obj = ox.BlankNode(f"s{seq}b{j}")
        elif rng.random() < 0.3:
            obj = ox.NamedNode(f"{EX}n{rng.randint(1, seq)}")
        graph = GRAPH if rng.random() < 0.3 else ox.DefaultGraph()
        if isinstance(obj, ox.BlankNode) and rng.random() < 0.5:
            # A blank node as subject too: _:sNbJ <p> <o>.
            quads.append(ox.Quad(obj, ox.NamedNode(f"{EX}about"), subject, graph))
        quads.append(ox.Quad(subject, ox.NamedNode(f"{EX}p{j % 3}"), obj, graph))
    if live and rng.random() < 0.1:
        present = live[rng.randrange(len(live))]
        if present not in removed:
            quads.append(present)  # already in the graph: ignored, not an error
    if vetoed:
        quads.append(ox.Quad(subject, STATUS, FORBIDDEN))
    return quads


def _removals(rng: random.Random, live: list[ox.Quad]) -> list[ox.Quad]:
    count = rng.randint(2, 5) if len(live) > TARGET_SIZE else rng.randint(0, 2)
    picked = {live[rng.randrange(len(live))] for _ in range(count)} if live else set()
    return sorted(picked, key=quad_line)


def _apply(
    live: list[ox.Quad],
    index: dict[ox.Quad, int],
    digest: StateDigest,
    additions: list[ox.Quad],
    removals: list[ox.Quad],
) -> None:
    added = [q for q in dict.fromkeys(additions) if q not in index]
    removed = [q for q in removals if q in index]
    for quad in added:
        index[quad] = len(live)
        live.append(quad)
    for quad in removed:
        at = index.pop(quad)
        last = live.pop()
        if at < len(live):
            live[at] = last
            index[last] = at
    digest.update(added=[quad_line(q) for q in added], removed=[quad_line(q) for q in removed])


def op_quad(n: int) -> ox.Quad:
    """A quad of its own for small tests."""
    return ox.Quad(ox.NamedNode(f"{EX}t{n}"), STATUS, ox.Literal(str(n)))


# The writer ---------------------------------------------------------------------------------


def emit(line: str) -> None:
    os.write(1, (line + "\n").encode())


def run(
    store: Path,
    lockchain: Path,
    *,
    batch: int | None,
    key: Path | None,
    spin_ms: float,
    max_ops: int,
    ack_pause_ms: float = 0.0,
) -> int:
    from kgc import Hook, KnowledgeEngine, SparqlAsk

    engine = KnowledgeEngine(
        store_path=store,
        lockchain_path=lockchain,
        git_anchoring=batch is not None,
        anchor_batch_size=batch or 1,
        signing_key_file=key,
        journal_fsync=True,
        transaction_timeout_ms=60_000.0,
    )
    assert engine.journal is not None
    journal = engine.journal
    spin = random.Random(os.getpid())

    def guard(event: object) -> object:
        from kgc import Veto

        seq = journal.next_seq()
        emit(f"STAGE {seq}")
        time.sleep(spin.uniform(0, spin_ms) / 1000.0)
        ctx = event.context  # type: ignore[attr-defined]
        forbidden = ctx.store.query(ctx.bind(HAS_FORBIDDEN))
        emit(f"HOOKED {seq}")
        return Veto("forbidden marker") if forbidden else None

    engine.hooks.register(Hook("crash-guard", SparqlAsk(ANY_CHANGE), run=guard, timeout_ms=60_000))
    emit(f"READY {journal.last_seq} {engine.state_digest}")
    return _write(engine, journal.last_seq, max_ops, lambda: spin.uniform(0, ack_pause_ms) / 1e3)


def _write(engine: object, last_seq: int, max_ops: int, pause_s: Callable[[], float]) -> int:
    from kgc import Delta

    done = 0
    for op in operations():
        if op.seq <= last_seq:
            continue
        if done == max_ops:
            break
        receipt = engine.apply(Delta(op.additions, op.removals), actor="crash-worker")  # type: ignore[attr-defined]
        if receipt.seq != op.seq or receipt.committed == op.vetoed:
            emit(f"BAD seq {receipt.seq} committed={receipt.committed}, expected {op}")
            return 3
        emit(f"ACK {receipt.seq} {receipt.state_after} {int(receipt.committed)}")
        time.sleep(pause_s())  # widens the window between transactions, as spin does the hook
        done += 1
    engine.close()  # type: ignore[attr-defined]
    return 0


def serve() -> int:
    import kgc  # noqa: F401  (import once, before forking)

    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(_child(words))
        emit(f"PID {pid}")
        _, status = os.waitpid(pid, 0)
        emit(f"EXIT {pid} {status}")
    return 0


def _child(argv: list[str]) -> int:
    try:
        return main(argv)
    except BaseException:
        emit("BAD " + traceback.format_exc().replace("\n", " | "))
        return 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crash_worker")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve")
    one = commands.add_parser("run")
    one.add_argument("store", type=Path)
    one.add_argument("lockchain", type=Path)
    one.add_argument("--anchor", type=int, metavar="BATCH", help="anchor in git, BATCH at a time")
    one.add_argument("--key", type=Path, metavar="FILE", help="Ed25519 key that signs receipts")
    one.add_argument("--spin-ms", type=float, default=0.0)
    one.add_argument("--ack-pause-ms", type=float, default=0.0)
    one.add_argument("--max-ops", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    return run(
        args.store,
        args.lockchain,
        batch=args.anchor,
        key=args.key,
        spin_ms=args.spin_ms,
        max_ops=args.max_ops,
        ack_pause_ms=args.ack_pause_ms,
    )


if __name__ == "__main__":
    sys.exit(main())

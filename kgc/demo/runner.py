"""Run the demo: load a building graph, put the policy packs in force, replay a change stream.

The graph is loaded *before* the packs are activated, so the import itself is not judged:
real building models break some of the policy's rules already, and the policy governs what
changes from then on. The packs are activated through the engine's ``PolicyRegistry``, so every
receipt of the replay names them by digest.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kgc.demo.assets import BUILDING_TTL, PACK_DIRS
from kgc.demo.stream import Change, ChangeStream
from kgc.engine import KnowledgeEngine
from kgc.errors import InputError
from kgc.receipt import Receipt

ProgressCallback = Callable[[int], None]
ReplayProgress = Callable[[int, int], None]


@dataclass
class Outcome:
    """What became of one change, when that was not what the stream expected."""

    index: int
    kind: str
    expected: str
    got: str
    note: str

    def __str__(self) -> str:
        return f"#{self.index} {self.kind}: expected {self.expected}, got {self.got} ({self.note})"


@dataclass
class Replay:
    """Counts and timings of a replayed stream."""

    committed: int = 0
    vetoed: int = 0
    failed: int = 0
    vetoes_by_hook: Counter[str] = field(default_factory=Counter)
    outcomes_by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)
    unexpected: list[Outcome] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    hooks_evaluated: int = 0
    hooks_skipped: int = 0

    @property
    def transactions(self) -> int:
        return len(self.latencies_ms)


@dataclass
class DemoReport:
    source: str
    triples_loaded: int
    load_seconds: float
    hooks: list[str]
    policy_digest: str
    packs: list[str]
    seed: int
    replay: Replay
    triples_final: int
    state_digest: str
    recomputed_digest: str
    lockchain: str | None = None
    receipts_sealed: int = 0
    anchor_lag: int | None = None
    cache_hits: int = 0
    cache_lookups: int = 0

    @property
    def digest_matches(self) -> bool:
        return self.state_digest == self.recomputed_digest


def run_demo(
    data: str | os.PathLike[str] | None = None,
    *,
    lenient: bool = False,
    changes: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    replay_progress: ReplayProgress | None = None,
    packs: Sequence[str | os.PathLike[str]] = PACK_DIRS,
    lockchain: str | os.PathLike[str] | None = None,
) -> DemoReport:
    """Load ``data`` (the shipped building by default), activate ``packs``, replay the stream.

    ``progress`` receives the number of triples read so far, ``replay_progress`` the number of
    changes applied and the total. With ``lockchain``, every receipt is sealed, signed with a key
    made for this run, journaled there and anchored in git; the directory must be new or empty.
    """
    source = Path(data) if data is not None else BUILDING_TTL
    engine = _engine(lockchain)
    t = time.perf_counter()
    engine.load(source, actor="demo:loader", lenient=lenient, progress=progress)
    load_seconds = time.perf_counter() - t
    loaded = len(engine)

    active = engine.policy.activate(*packs)
    hooks = [hook for pack in engine.policy.active() for hook in pack.hooks]
    stream = ChangeStream(engine, count=changes, seed=seed)
    replay = replay_stream(engine, stream, replay_progress)
    if engine.anchorer is not None:
        engine.anchorer.flush()
    report = DemoReport(
        source=str(source),
        triples_loaded=loaded,
        load_seconds=load_seconds,
        hooks=[hook.name for hook in hooks],
        policy_digest=engine.hooks.snapshot().digest,
        packs=[f"{ref.name}@{ref.version} {ref.digest}" for ref in active],
        seed=seed,
        replay=replay,
        triples_final=len(engine),
        state_digest=engine.state_digest,
        recomputed_digest=engine.transactions.recompute_state_digest(),
        lockchain=str(lockchain) if lockchain is not None else None,
        receipts_sealed=engine.journal.last_seq if engine.journal is not None else 0,
        anchor_lag=engine.anchorer.lag if engine.anchorer is not None else None,
    )
    if engine.transactions.cache is not None:
        stats = engine.transactions.cache.stats()
        report.cache_hits, report.cache_lookups = stats.l1_hits + stats.l2_hits, stats.lookups
    engine.close()
    return report


def _engine(lockchain: str | os.PathLike[str] | None) -> KnowledgeEngine:
    if lockchain is None:
        return KnowledgeEngine()
    from kgc.lockchain.signing import SigningKey

    directory = Path(lockchain)
    if directory.exists() and any(directory.iterdir()):
        raise InputError(f"{directory}: --lockchain needs a new or empty directory")
    return KnowledgeEngine(lockchain_path=directory, signing_key=SigningKey.generate())


def replay_stream(
    engine: KnowledgeEngine, stream: ChangeStream, progress: ReplayProgress | None = None
) -> Replay:
    """Apply every change of ``stream`` to ``engine``, telling the stream each outcome."""
    replay = Replay()
    started = time.perf_counter()
    for change in stream:
        t = time.perf_counter()
        receipt = engine.apply(change.delta, actor=f"demo:{change.kind}")
        replay.latencies_ms.append((time.perf_counter() - t) * 1000.0)
        stream.settle(receipt.committed)
        _record(replay, change, receipt)
        if progress is not None:
            progress(replay.transactions, stream.count)
    replay.seconds = time.perf_counter() - started
    return replay


def _record(replay: Replay, change: Change, receipt: Receipt) -> None:
    vetoers = sorted(receipt.vetoed_by)
    replay.vetoes_by_hook.update(vetoers)
    replay.outcomes_by_kind[(change.kind, receipt.status)] += 1
    replay.hooks_evaluated += len(receipt.hooks) + len(receipt.effects)
    replay.hooks_skipped += receipt.hooks_skipped
    if receipt.committed:
        replay.committed += 1
    elif receipt.status == "vetoed":
        replay.vetoed += 1
    else:
        replay.failed += 1

    expected = "commit" if change.valid else f"veto by {change.expect}"
    got = "commit" if receipt.committed else _describe_refusal(receipt, vetoers)
    # Hooks of another pack may refuse the same change as well; the expected one must be there.
    also = receipt.status == "vetoed" and change.expect in vetoers
    if got != expected and not also:
        replay.unexpected.append(Outcome(change.index, change.kind, expected, got, change.note))


def _describe_refusal(receipt: Receipt, vetoers: list[str]) -> str:
    if receipt.status == "vetoed":
        return "veto by " + ", ".join(vetoers)
    return f"{receipt.status} ({receipt.error})"

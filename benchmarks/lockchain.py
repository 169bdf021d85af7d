"""What the lockchain costs: apply latency with a journal and git anchoring, and verification speed.

    python benchmarks/lockchain.py            # the full table (a few minutes)
    python benchmarks/lockchain.py --quick    # fewer calls and a short chain (smoke test)

Apply rows. Every row runs in a process of its own, forked before any store exists, on a fresh
10k-triple Brick graph from ``benchmarks/transactions.py`` (``build_graph``), with that script's
workload (``make_steps``: each timed call adds a point of 4 triples, an untimed governed ``apply``
takes it out again) and its "1 ASK hook" hook (``hooks_for("ask")``). The graph is loaded through
the engine as one governed transaction, so that the lockchain holds it and replays to it; the
hook is registered afterwards and must veto a policy-breaking delta before timing starts.

- (a) on-disk store (RocksDB), no lockchain: the baseline of rows (b) to (d);
- (b) journal with fsync, anchoring in git at batch size 1;
- (c) journal with fsync, anchoring at batch size 100: the row the target judges;
- (d) journal without fsync, anchoring at batch size 100: (c) less the cost of fsync;
- (e0) in-memory store, no lockchain: the baseline of row (e);
- (e) in-memory store, journal with fsync, anchoring at batch size 100.

Lockchain rows sign every receipt with a fresh Ed25519 key; the store and the lockchain live in a
temporary directory on the checkout's filesystem (``--tmpdir`` to choose another). Times are
``time.perf_counter_ns`` around the one ``KnowledgeEngine.apply`` call, garbage collector on; an
untimed, unjournaled sample of the anchoring lag (receipts in the journal that git does not hold
yet) follows each call and its undo: ``max lag`` is the largest, ``end lag`` the last, which must
stay within two batches (at least 10 receipts) for the anchorer to count as keeping up. After the
timed loop the anchorer is flushed (``flush ms``: anchoring what was left), the engine closed, and
``verify_lockchain`` with replay must pass.

Verification rows. A chain of ``--receipts`` signed receipts is built fast (in-memory store, one
added triple per receipt, no hooks, journal without fsync, anchoring off), then anchored in git at
batch size 100 in one ``Anchorer.flush`` (``flush ms``); ``verify_lockchain`` is timed without
replay (target: at least 20,000 receipts/s) and with replay (reported only). It uses worker
processes of its own for large chains.

Target (from the issue): at batch size 100, the lockchain adds at most 10% to the p50 of apply.
The machine is not isolated: the load average is printed at the start and end, and the disk's own
fsync latency (median of 200 ``os.write`` + ``os.fsync`` of 500 bytes in the temporary directory)
is printed so that rows with fsync can be read against it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pygit2
import pyoxigraph as ox

import kgc
from kgc import Delta, KnowledgeEngine
from kgc.lockchain.anchor import Anchorer
from kgc.lockchain.signing import SigningKey
from kgc.lockchain.verify import verify_lockchain

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transactions import (
    Result,
    Step,
    bad_delta,
    build_graph,
    hooks_for,
    make_steps,
    time_series,
)

T = TypeVar("T")
SIZE = 10_000
OVERHEAD_TARGET = 0.10
VERIFY_TARGET = 20_000.0
VERIFY_BATCH = 100
FSYNC_SAMPLES = 200
FSYNC_BYTES = 500


@dataclass(frozen=True)
class Config:
    """One apply row."""

    row: str
    label: str
    disk: bool
    lockchain: bool
    fsync: bool = True
    batch: int = 100
    base: str = "a"


CONFIGS = [
    Config("a", "disk, no lockchain (baseline)", disk=True, lockchain=False),
    Config("b", "disk, journal fsync, anchor batch 1", True, True, batch=1),
    Config("c", "disk, journal fsync, anchor batch 100", True, True),
    Config("d", "disk, journal no fsync, anchor batch 100", True, True, fsync=False),
    Config("e0", "memory, no lockchain (baseline)", disk=False, lockchain=False, base="e0"),
    Config("e", "memory, journal fsync, anchor batch 100", False, True, base="e0"),
]
JUDGED = "c"


@dataclass(frozen=True)
class ApplyRow:
    config: Config
    result: Result
    receipts: int = 0
    batches: int = 0
    max_lag: int = 0
    end_lag: int = 0
    flush_ms: float = 0.0
    verified: bool | None = None
    verify_s: float = 0.0


@dataclass(frozen=True)
class VerifyRow:
    receipts: int
    batches: int
    build_s: float
    flush_ms: float
    plain_s: float
    plain_ok: bool
    replay_s: float
    replay_ok: bool


def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Apply rows ---------------------------------------------------------------------------------


def run_apply(config: Config, args: argparse.Namespace) -> ApplyRow:
    """One apply row, from graph building to verification, in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="kgc-lockchain-bench-", dir=args.tmpdir) as tmp:
        return _apply_in(Path(tmp), config, args)


def _apply_in(tmp: Path, config: Config, args: argparse.Namespace) -> ApplyRow:
    label = f"({config.row}) {config.label}"
    t = time.perf_counter()
    graph, campus = build_graph(SIZE, args.seed)
    quads = list(graph.raw)
    del graph
    settings: dict[str, Any] = {"store_path": tmp / "store" if config.disk else None}
    lockchain = tmp / "lockchain"
    if config.lockchain:
        settings.update(
            lockchain_path=lockchain,
            journal_fsync=config.fsync,
            anchor_batch_size=config.batch,
            signing_key=SigningKey.generate(),
        )
    engine = KnowledgeEngine(**settings)
    try:
        if not engine.apply(Delta(quads), actor="loader").committed or len(engine) < SIZE:
            raise RuntimeError(f"{label}: loading the graph was refused")
        del quads
        for hook in hooks_for("ask"):
            engine.hooks.register(hook)
        if engine.apply(bad_delta(campus, "ask"), actor="bench").status != "vetoed":
            raise RuntimeError(f"{label}: a policy-breaking delta was not vetoed")
        steps = make_steps(campus, args.warmup + args.iterations, args.seed + 1, "bench")
        _log(args.quiet, f"{label}: graph loaded in {time.perf_counter() - t:.1f} s")
        start_digest = engine.state_digest
        t = time.perf_counter()
        samples, max_lag, end_lag = _timed_loop(engine, steps, args.warmup)
        if engine.state_digest != start_digest:
            raise RuntimeError(f"{label}: the graph did not return to its starting state")
        _log(args.quiet, f"{label}: {len(steps)} steps in {time.perf_counter() - t:.1f} s")
        result = Result(SIZE, config.row, samples)
        if engine.anchorer is None or engine.journal is None:
            return ApplyRow(config, result)
        t = time.perf_counter()
        engine.anchorer.flush()
        flush_ms = (time.perf_counter() - t) * 1000.0
        receipts = engine.journal.last_seq
        if engine.anchorer.anchored_seq != receipts:
            raise RuntimeError(f"{label}: flush left receipts unanchored")
    finally:
        engine.close()
    report = verify_lockchain(lockchain, replay=True)
    if not report.ok:
        print(report.summary(), file=sys.stderr)
    _log(args.quiet, f"{label}: verified with replay in {report.seconds:.1f} s")
    return ApplyRow(
        config,
        result,
        receipts=receipts,
        batches=report.batches,
        max_lag=max_lag,
        end_lag=end_lag,
        flush_ms=flush_ms,
        verified=report.ok,
        verify_s=report.seconds,
    )


def _timed_loop(
    engine: KnowledgeEngine, steps: list[Step], warmup: int
) -> tuple[list[int], int, int]:
    """Time each step's ``apply``; return the samples, the largest and the last anchoring lag."""
    journal, anchorer = engine.journal, engine.anchorer
    lags = [0]

    def sample_lag() -> None:
        # Two attribute reads: ``Anchorer.lag`` would re-read the journal and the ref.
        if journal is not None and anchorer is not None:
            lags.append(journal.last_seq - anchorer.anchored_seq)

    def run(i: int, step: Step) -> None:
        if not engine.apply(step.add, actor="bench").committed:
            raise RuntimeError("a benchmark transaction was refused")

    def undo(i: int, step: Step) -> None:
        sample_lag()
        if not engine.apply(step.undo, actor="bench").committed:
            raise RuntimeError("a benchmark undo was refused")
        sample_lag()

    samples = time_series(steps, warmup, run, undo)
    return samples, max(lags), lags[-1]


# Verification rows --------------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> VerifyRow:
    with tempfile.TemporaryDirectory(prefix="kgc-lockchain-bench-", dir=args.tmpdir) as tmp:
        return _verify_in(Path(tmp) / "lockchain", args)


def _verify_in(lockchain: Path, args: argparse.Namespace) -> VerifyRow:
    key = SigningKey.generate()
    t = time.perf_counter()
    predicate = ox.NamedNode("urn:kgc:bench:value")
    with KnowledgeEngine(
        lockchain_path=lockchain, journal_fsync=False, git_anchoring=False, signing_key=key
    ) as engine:
        for i in range(args.receipts):
            quad = ox.Quad(ox.NamedNode(f"urn:kgc:bench:s{i}"), predicate, ox.Literal(str(i)))
            if not engine.apply(Delta([quad]), actor="bench").committed:
                raise RuntimeError("a chain-building transaction was refused")
    build_s = time.perf_counter() - t
    _log(args.quiet, f"verify: {args.receipts:,} receipts sealed in {build_s:.1f} s")
    t = time.perf_counter()
    with Anchorer(lockchain, key=key, batch_size=VERIFY_BATCH) as anchorer:
        anchorer.flush(timeout=600.0)
    flush_ms = (time.perf_counter() - t) * 1000.0
    _log(args.quiet, f"verify: anchored in {flush_ms / 1000:.1f} s")
    plain_s, plain_ok, batches = _time_verify(lockchain, args.receipts, replay=False)
    replay_s, replay_ok, _ = _time_verify(lockchain, args.receipts, replay=True)
    _log(args.quiet, f"verify: {plain_s:.2f} s without replay, {replay_s:.2f} s with")
    return VerifyRow(
        args.receipts, batches, build_s, flush_ms, plain_s, plain_ok, replay_s, replay_ok
    )


def _time_verify(lockchain: Path, receipts: int, *, replay: bool) -> tuple[float, bool, int]:
    """Seconds ``verify_lockchain`` took, whether it passed on every receipt, and the batches."""
    t = time.perf_counter()
    report = verify_lockchain(lockchain, replay=replay)
    seconds = time.perf_counter() - t
    ok = report.ok and report.receipts == receipts and report.lag == 0
    if not ok:
        print(report.summary(), file=sys.stderr)
    return seconds, ok, report.batches


# Environment --------------------------------------------------------------------------------


def fsync_latency_us(directory: str) -> float:
    """Median of ``FSYNC_SAMPLES`` appends of ``FSYNC_BYTES`` bytes, each followed by fsync."""
    data = b"x" * (FSYNC_BYTES - 1) + b"\n"
    samples = []
    with tempfile.TemporaryDirectory(prefix="kgc-fsync-", dir=directory) as tmp:
        fd = os.open(os.path.join(tmp, "probe"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for _ in range(FSYNC_SAMPLES):
                t = time.perf_counter_ns()
                os.write(fd, data)
                os.fsync(fd)
                samples.append(time.perf_counter_ns() - t)
        finally:
            os.close(fd)
    return statistics.median(samples) / 1000.0


def filesystem(path: str) -> str:
    """Mount point and type of the filesystem holding ``path`` (from /proc/mounts, if any)."""
    real = os.path.realpath(path)
    best = ("?", "?", "?")
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                device, point, kind = line.split()[:3]
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best[1]):
                    best = (device, point, kind)
    except OSError:
        pass
    return f"{best[2]} on {best[0]} mounted at {best[1]}"


def default_tmpdir() -> str:
    """The system temporary directory if it shares the checkout's filesystem, else the checkout."""
    checkout = Path(__file__).resolve().parents[1]
    system = tempfile.gettempdir()
    return system if os.stat(system).st_dev == os.stat(checkout).st_dev else str(checkout)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return "{:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg())


def in_child(args: argparse.Namespace, task: Callable[..., T], *params: Any) -> T:
    """Run ``task(*params, args)`` in a forked process of its own (or here, with --in-process)."""
    if args.in_process:
        return task(*params, args)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(task, *params, args).result()


# Report -------------------------------------------------------------------------------------


def _overhead(row: ApplyRow, bases: dict[str, ApplyRow]) -> float | None:
    base = bases.get(row.config.base)
    if base is None or row.config.row == row.config.base:
        return None
    return row.result.p50 / base.result.p50 - 1.0


def render(rows: list[ApplyRow], verify: VerifyRow | None) -> tuple[str, list[str], bool]:
    """The table, the target lines under it, and whether every judged figure passed."""
    bases = {r.config.row: r for r in rows}
    head = (
        f"{'row':<4}  {'configuration':<42}  {'n':>6}  {'p50 us':>8}  {'p99 us':>8}  "
        f"{'p50 +%':>7}  {'p50 +% target':<13}  {'receipts/s':>10}  {'rate target':<16}  "
        f"{'max lag':>7}  {'end lag':>7}  {'flush ms':>8}  {'verify':<6}"
    )
    lines = [head, "-" * len(head)]
    targets: list[str] = []
    ok = True
    for r in rows:
        over = _overhead(r, bases)
        cell = "-"
        if r.config.row == JUDGED and over is not None:
            passed = over <= OVERHEAD_TARGET
            ok &= passed
            verdict = "PASS" if passed else "FAIL"
            cell = f"<={OVERHEAD_TARGET:.0%} {verdict}"
            targets.append(
                f"  {verdict}  ({r.config.row}) at batch {r.config.batch} the lockchain adds "
                f"{over:+.1%} to the p50 of apply (target <= +{OVERHEAD_TARGET:.0%}; "
                f"{r.result.p50:,.1f} us vs {bases[r.config.base].result.p50:,.1f} us)"
            )
        lockchain = r.config.lockchain
        verified = "-" if r.verified is None else ("ok" if r.verified else "FAILED")
        ok &= r.verified is not False
        lines.append(
            f"{'(' + r.config.row + ')':<4}  {r.config.label:<42}  {len(r.result.samples_ns):>6}  "
            f"{r.result.p50:>8.1f}  {r.result.p99:>8.1f}  "
            f"{'-' if over is None else f'{over:+.1%}':>7}  {cell:<13}  {'-':>10}  {'-':<16}  "
            f"{r.max_lag if lockchain else '-':>7}  {r.end_lag if lockchain else '-':>7}  "
            f"{f'{r.flush_ms:.1f}' if lockchain else '-':>8}  {verified:<6}"
        )
    if verify is not None:
        lines.append("-" * len(head))
        for replay, seconds, good in (
            (False, verify.plain_s, verify.plain_ok),
            (True, verify.replay_s, verify.replay_ok),
        ):
            rate = verify.receipts / seconds
            label = f"verify_lockchain, {'with' if replay else 'no'} replay"
            cell = "-"
            if not replay:
                passed = rate >= VERIFY_TARGET
                ok &= passed
                verdict = "PASS" if passed else "FAIL"
                cell = f">={VERIFY_TARGET:,.0f} {verdict}"
                targets.append(
                    f"  {verdict}  verify_lockchain without replay: {rate:,.0f} receipts/s "
                    f"(target >= {VERIFY_TARGET:,.0f}/s; {verify.receipts:,} receipts in "
                    f"{seconds:.2f} s)"
                )
            ok &= good
            lines.append(
                f"{'(v' + ('r)' if replay else ')'):<4}  {label:<42}  {verify.receipts:>6}  "
                f"{'-':>8}  {'-':>8}  {'-':>7}  {'-':<13}  {rate:>10,.0f}  {cell:<16}  "
                f"{'-':>7}  {'-':>7}  {verify.flush_ms:>8.1f}  {'ok' if good else 'FAILED':<6}"
            )
    return "\n".join(line.rstrip() for line in lines), targets, ok


def keep_up_limit(batch: int) -> int:
    """The largest lag at the end of the timed loop that still counts as keeping up.

    Two batches: the one being committed and the one filling meanwhile (and at least 10 receipts,
    so that batch size 1 may have a few in flight).
    """
    return max(2 * batch, 10)


def notes(rows: list[ApplyRow], verify: VerifyRow | None) -> list[str]:
    out = []
    for r in rows:
        if r.config.lockchain:
            kept_up = r.end_lag <= keep_up_limit(r.config.batch)
            out.append(
                f"  ({r.config.row}) {r.receipts:,} receipts in {r.batches:,} batches; anchoring "
                f"lag max {r.max_lag}, {r.end_lag} at the end of the timed loop "
                f"({'kept up' if kept_up else 'FELL BEHIND'}: limit "
                f"{keep_up_limit(r.config.batch)}), then flushed in {r.flush_ms:.1f} ms; "
                f"verify_lockchain with replay {'passed' if r.verified else 'FAILED'} in "
                f"{r.verify_s:.2f} s"
            )
    if verify is not None:
        out.append(
            f"  (v) chain of {verify.receipts:,} receipts sealed in {verify.build_s:.1f} s "
            f"({verify.receipts / verify.build_s:,.0f}/s, no fsync, no anchoring), anchored in "
            f"{verify.batches} batches of {VERIFY_BATCH} in {verify.flush_ms / 1000:.2f} s"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, a short chain")
    parser.add_argument("--iterations", type=int, help="timed applies per row (default 2000)")
    parser.add_argument("--warmup", type=int, help="untimed applies first (default 200)")
    parser.add_argument("--receipts", type=int, help="receipts in the verified chain (20000)")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--tmpdir", help="where the stores and lockchains go (default: see doc)")
    parser.add_argument(
        "--in-process", action="store_true", help="run every row in this process (for profiling)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    defaults = {
        "iterations": 100 if args.quick else 2000,
        "warmup": 10 if args.quick else 200,
        "receipts": 1000 if args.quick else 20_000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.tmpdir is None:
        args.tmpdir = default_tmpdir()

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print("kgc lockchain benchmark")
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"pyoxigraph {ox.__version__}, kgc {kgc.__version__}, pygit2 {_version('pygit2')} "
        f"(libgit2 {pygit2.LIBGIT2_VERSION}), cryptography {_version('cryptography')}"
    )
    print(
        f"machine: {platform.machine()}, {cores} cores ({usable} usable), "
        f"{platform.system()} {platform.release()}"
    )
    print(f"load average at start: {_load()}")
    print(f"temporary directory: {args.tmpdir} ({filesystem(args.tmpdir)})")
    fsync_us = fsync_latency_us(args.tmpdir)
    print(
        f"disk fsync latency: {fsync_us:,.1f} us (median of {FSYNC_SAMPLES} os.write + os.fsync "
        f"of {FSYNC_BYTES} bytes)"
    )
    print(
        f"graph: {SIZE:,} Brick triples, 1 ASK hook; seed {args.seed}; {args.iterations} timed "
        f"applies per row after {args.warmup} warm-up; Ed25519-signed receipts; times in "
        "microseconds"
    )
    print(flush=True)

    started = time.perf_counter()
    rows = [in_child(args, run_apply, config) for config in CONFIGS]
    verify = in_child(args, run_verify)
    table, targets, ok = render(rows, verify)
    print(table)
    print()
    print("targets:")
    print("\n".join(targets))
    print()
    print("anchoring and verification:")
    print("\n".join(notes(rows, verify)))
    print()
    print(f"load average at end: {_load()}")
    print(f"total run time {time.perf_counter() - started:.0f} s")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())

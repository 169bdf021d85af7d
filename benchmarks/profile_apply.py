"""Where ``apply`` spends its time, on the benchmark's workload (1 ASK hook, 10k triples).

    python benchmarks/profile_apply.py                  # median time of each pipeline step
    python benchmarks/profile_apply.py --cprofile       # cProfile, top functions by own time
    python benchmarks/profile_apply.py --pyinstrument   # call tree (needs pyinstrument)

The step breakdown wraps the TransactionManager's internal steps and the store's calls with
``perf_counter_ns`` (about 0.3 us of overhead each), so the medians add up to slightly more than an
unwrapped ``apply``. Only the timed ``apply`` calls count; the untimed undo transactions do not.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import transactions as bench

import kgc.hooks.conditions
import kgc.rdf.digest
import kgc.transaction
from kgc import HookManager, TransactionManager

# (owner, attribute, label): what the step breakdown times. Missing attributes are skipped, so the
# script keeps working while the pipeline's internals change.
STEPS: list[tuple[Any, str, str]] = [
    (TransactionManager, "apply", "apply (total)"),
    (TransactionManager, "_effective", "effective delta (membership tests)"),
    (TransactionManager, "_govern_and_commit", "stage + hooks + commit"),
    (kgc.hooks.conditions.EvalContext, "staged_quads", "  build delta-graph copies"),
    (kgc.hooks.conditions.EvalContext, "bind", "  bind delta graph names in query"),
    (TransactionManager, "_pre_hooks", "  pre-commit hooks"),
    (TransactionManager, "_commit", "  commit (unstage, flush, state digest)"),
    (kgc.rdf.digest.StateDigest, "update", "    LtHash update"),
    (kgc.rdf.digest.StateDigest, "hexdigest", "    LtHash hexdigest"),
    (TransactionManager, "_receipt", "receipt"),
    (kgc.transaction, "delta_digests", "  delta digests (SHA3-256, BLAKE3)"),
]
STORE_CALLS = [
    ("add_all", "store.add_all (stage)"),
    ("remove_all", "store.remove_all"),
    ("query", "store.query (pyoxigraph SPARQL)"),
]


def _wrap(owner: Any, name: str, label: str, record: dict[str, list[int]]) -> None:
    func = getattr(owner, name, None)
    if func is None:
        print(f"(no {getattr(owner, '__name__', owner)}.{name}: not timed)", file=sys.stderr)
        return
    clock = time.perf_counter_ns

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return func(*args, **kwargs)
        finally:
            record[label].append(clock() - t0)

    setattr(owner, name, timed)


def _setup(args: argparse.Namespace) -> tuple[TransactionManager, list[bench.Step]]:
    store, campus = bench.build_graph(args.size, 1)
    hooks = HookManager()
    tm = TransactionManager(store, hooks)
    bench.install(hooks, args.config)
    steps = bench.make_steps(campus, args.iterations + 200, 2, "prof")
    for step in steps[:200]:
        tm.apply(step.add)
        tm.apply(step.undo)
    return tm, steps[200:]


def _run(tm: TransactionManager, steps: list[bench.Step], around: Callable[[bool], None]) -> None:
    for step in steps:
        around(True)
        tm.apply(step.add)
        around(False)
        tm.apply(step.undo)


def breakdown(args: argparse.Namespace) -> None:
    tm, steps = _setup(args)
    record: dict[str, list[int]] = defaultdict(list)
    scratch: dict[str, list[int]] = defaultdict(list)
    for owner, name, label in STEPS:
        _wrap(owner, name, label, scratch)
    for name, label in STORE_CALLS:
        _wrap(tm.store, name, label, scratch)

    def around(starting: bool) -> None:
        if not starting:  # keep what the timed apply recorded, drop what the undo will
            for label, samples in scratch.items():
                record[label].extend(samples)
        scratch.clear()

    _run(tm, steps, around)
    n = len(steps)
    print(f"apply with {args.config!r} hooks at {args.size:,} triples, {n} timed calls")
    print(f"{'step':<42} {'calls/apply':>11} {'median us':>10} {'mean us/apply':>14}")
    labels = [label for _, _, label in STEPS] + [label for _, label in STORE_CALLS]
    for label in labels:
        samples = record.get(label)
        if not samples:
            continue
        print(
            f"{label:<42} {len(samples) / n:>11.1f} {statistics.median(samples) / 1000:>10.1f} "
            f"{sum(samples) / n / 1000:>14.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--config", default="ask", choices=["none", "ask", "ten", "shacl"])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cprofile", action="store_true")
    mode.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)

    if not (args.cprofile or args.pyinstrument):
        breakdown(args)
        return 0
    tm, steps = _setup(args)
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.00005)

        def around(starting: bool) -> None:
            if starting:
                profiler.start()
            else:
                profiler.stop()

        _run(tm, steps, around)
        print(profiler.output_text(unicode=False, color=False))
        return 0
    profile = cProfile.Profile()
    _run(tm, steps, lambda starting: profile.enable() if starting else profile.disable())
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())

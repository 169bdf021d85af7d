"""Hook scale: ``apply`` latency with 1 to 10,000 registered hooks, and condition throughput.

    python benchmarks/hooks.py                # hook scale, evaluations per minute, SHACL rows
    python benchmarks/hooks.py --quick        # small sizes, few iterations (the smoke test)
    python benchmarks/hooks.py --no-shacl     # leave out the SHACL rows

The graph is the synthetic Brick campus of ``benchmarks/transactions.py`` (its generator is
imported), plus one integer value per value property (``campus:prop/<quantity>_<k>``) on the
VAVs, so that value rules have data to guard; the TransactionManager is constructed afterwards.

The hooks are pre-commit hooks generated from templates, each with a condition text of its own
(so no two share a planner rest key). Hook ``i`` takes its template from ``i % 100``:

* 0-39, value range: an added ``prop/<q>_k`` value must lie in 0..100+k (delta condition);
* 40-64, no silent removal: a removed ``prop/<q>_k`` value must be replaced in the same change;
* 65-88, class threshold: at most 500 instances of the site class ``class/<C>_k`` (whole graph);
* 89-98, point needs equipment: an added point of site class ``class/<C>_k`` must have
  ``brick:isPointOf``; its footprint holds ``brick:isPointOf``, so every added point touches it;
* 99, unanalysable: a variable predicate over the added quads, so the planner always evaluates it.

The per-template counts actually registered are printed for each N (with N=1 only the first).

Per N (1, 100, 1,000, 10,000), in a process of its own on a freshly built graph: hook objects
are built, then registered and the first snapshot (with the planner's index) built, timed as
"register". The first transaction is timed alone as "cold": the planner knows no resting result
yet, so it evaluates every hook once. Then a delta that sets ``prop/<q>_0`` out of range must be
vetoed by hook 0, proving the hooks are live. Two workloads follow, each transaction touching
one entity and required to commit: *add point* adds a point to a VAV (type, label,
``brick:isPointOf``, the VAV's ``brick:hasPoint``; removed again afterwards, untimed, through a
governed ``apply``) and *set value* replaces one value property of one VAV by an in-range value.
Above 1,000 hooks a fifth of the calls are timed (each evaluates ten times as many hooks), so
the p99 there rests on few samples. Times are ``perf_counter_ns`` around the one ``apply``;
evaluated and skipped hooks per transaction come from the timed calls' receipts (``len(hooks)``,
``hooks_skipped``).
The same is timed with ``plan=False`` (every hook evaluated every time) for comparison.

Evaluations per minute: 100 cheap ASK conditions over the added quads that every add-point
transaction touches, plan on; (evaluated hooks summed over all receipts, the untimed undo's
included) / wall time x 60. The raw cost per evaluation is the mean of the receipts'
``duration_ms`` per hook verdict.

SHACL rows come from ``benchmarks/shacl_scale.py`` (``measure``) when that module is present.

Targets (from the issue): with 1,000 hooks p99 <= 2 ms; >= 1,000,000 condition evaluations per
minute; incremental SHACL at 1M triples within 2x of its time at 10k.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

sys.path.insert(0, str(Path(__file__).resolve().parent))

import transactions as campus_bench

from kgc import Delta, Hook, HookManager, OxigraphStore, Receipt, SparqlAsk, TransactionManager

SITE = campus_bench.SITE
BRICK = campus_bench.BRICK
XSD_INTEGER = ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")
ADDED = campus_bench.ADDED
REMOVED = campus_bench.REMOVED
PREFIXES = campus_bench.PREFIXES
QUANTITIES = ["maxFlow", "minFlow", "coolingSetpoint", "heatingSetpoint", "deadband", "fanSpeed"]
POINT_CLASSES = [child for child, _ in campus_bench.ONTOLOGY[:36]]
RESTING_VALUE = 50
P99_TARGET_MS = 2.0
EVALS_TARGET = 1_000_000.0
SHACL_GROWTH = 2.0


def prop(k: int) -> ox.NamedNode:
    return ox.NamedNode(f"{SITE}prop/{QUANTITIES[k % len(QUANTITIES)]}_{k}")


def site_class(k: int) -> str:
    return f"{SITE}class/{POINT_CLASSES[k % len(POINT_CLASSES)]}_{k}"


def _integer(value: int) -> ox.Literal:
    return ox.Literal(str(value), datatype=XSD_INTEGER)


# Hooks ------------------------------------------------------------------------------------------

TEMPLATES = [
    (40, "value range"),
    (25, "no silent removal"),
    (24, "class threshold"),
    (10, "point needs equipment"),
    (1, "unanalysable"),
]


def template_of(i: int) -> str:
    slot = i % 100
    for share, name in TEMPLATES:
        if slot < share:
            return name
        slot -= share
    raise AssertionError(i)


def condition_text(template: str, k: int) -> str:
    """The condition of the ``k``-th hook made from ``template``."""
    p = f"<{prop(k).value}>"
    if template == "value range":
        body = f"{ADDED} {{ ?s {p} ?v }} FILTER(?v < 0 || ?v > {100 + k})"
    elif template == "no silent removal":
        body = f"{REMOVED} {{ ?s {p} ?old }} FILTER NOT EXISTS {{ ?s {p} ?new }}"
    elif template == "class threshold":
        inner = f"SELECT (COUNT(?x) AS ?n) WHERE {{ ?x a <{site_class(k)}> }}"
        body = f"{{ {inner} }} FILTER(?n > 500)"
    elif template == "point needs equipment":
        body = (
            f"{ADDED} {{ ?point a <{site_class(k)}> }} "
            "FILTER NOT EXISTS { ?point brick:isPointOf ?equipment }"
        )
    else:
        body = f"{ADDED} {{ ?s ?p ?o }} FILTER(?p = {p} && isLiteral(?o) && ?o > {1000 + k})"
    return f"{PREFIXES}ASK {{ {body} }}"


def make_hooks(n: int) -> tuple[list[Hook], dict[str, int]]:
    """``n`` hooks from the templates, and how many of each template were made."""
    counts: dict[str, int] = {name: 0 for _, name in TEMPLATES}
    hooks = []
    for i in range(n):
        template = template_of(i)
        k = counts[template]
        counts[template] += 1
        text = condition_text(template, k)
        hooks.append(Hook(f"{template.replace(' ', '-')}-{k}", SparqlAsk(text), message=template))
    return hooks, counts


def throughput_hooks(n: int) -> list[Hook]:
    """Cheap ASKs over the changed labels, which every add-point transaction and every undo
    touch (a UNION of both delta graphs, so no anchor lets the planner skip the undo)."""
    return [
        Hook(
            f"label-length-{k}",
            SparqlAsk(
                f"{PREFIXES}ASK {{ {{ {ADDED} {{ ?s rdfs:label ?l }} }} UNION "
                f"{{ {REMOVED} {{ ?s rdfs:label ?l }} }} FILTER(STRLEN(?l) > {500 + k}) }}"
            ),
        )
        for k in range(n)
    ]


# Graph and workloads ----------------------------------------------------------------------------


@dataclass
class World:
    store: OxigraphStore
    campus: campus_bench.Campus
    values: list[tuple[ox.NamedNode, int]]  # (VAV, k) of each prop/<q>_k value in the graph


def build_world(base: int, value_props: int, seed: int) -> World:
    """The campus graph of ``base`` triples plus one value for each of ``value_props`` props."""
    store, campus = campus_bench.build_graph(base, seed)
    vavs = [ox.NamedNode(iri) for iri, _ in campus.vavs]
    values = [(vavs[k % len(vavs)], k) for k in range(value_props)]
    store.raw.extend(
        [ox.Quad(vav, prop(k), _integer(RESTING_VALUE), ox.DefaultGraph()) for vav, k in values]
    )
    return World(store, campus, values)


@dataclass(frozen=True)
class Step:
    """One timed delta and, when it must be taken out again afterwards, the untimed undo."""

    delta: Delta
    undo: Delta | None


def add_point_steps(world: World, count: int, seed: int) -> list[Step]:
    return [Step(s.add, s.undo) for s in campus_bench.make_steps(world.campus, count, seed, "h")]


def set_value_steps(world: World, count: int, seed: int) -> list[Step]:
    """Replace one VAV's value of one prop by a different in-range one; the graph keeps its size."""
    rng = random.Random(seed)
    current = {k: RESTING_VALUE for _, k in world.values}
    steps = []
    for _ in range(count):
        vav, k = rng.choice(world.values)
        new = rng.choice([v for v in range(1, 100) if v != current[k]])
        old_quad = ox.Quad(vav, prop(k), _integer(current[k]), ox.DefaultGraph())
        new_quad = ox.Quad(vav, prop(k), _integer(new), ox.DefaultGraph())
        steps.append(Step(Delta([new_quad], [old_quad]), None))
        current[k] = new
    return steps


def bad_value(world: World) -> Delta:
    """Sets ``prop/<q>_0`` out of range: hook 0 (value range, k=0) must veto it."""
    vav, k = next((vav, k) for vav, k in world.values if k == 0)
    old = ox.Quad(vav, prop(k), _integer(RESTING_VALUE), ox.DefaultGraph())
    return Delta([ox.Quad(vav, prop(k), _integer(-5), ox.DefaultGraph())], [old])


# Measurement ------------------------------------------------------------------------------------


@dataclass
class Series:
    """Timed applies of one workload, with what the receipts say about the hooks."""

    samples_ns: list[int] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ns) / 1e6

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ns)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] / 1e6

    def mean(self, values: list[int]) -> float:
        return statistics.fmean(values) if values else 0.0


def _commit(tm: TransactionManager, delta: Delta, what: str) -> Receipt:
    receipt = tm.apply(delta, actor="bench")
    if not receipt.committed:
        raise RuntimeError(
            f"{what} was refused ({receipt.status}): {receipt.error or receipt.vetoed_by}"
        )
    return receipt


def time_steps(tm: TransactionManager, steps: list[Step], warmup: int) -> Series:
    clock, out = time.perf_counter_ns, Series()
    for i, step in enumerate(steps):
        if i == warmup:
            gc.collect()
        t0 = clock()
        receipt = tm.apply(step.delta, actor="bench")
        t1 = clock()
        if not receipt.committed:
            raise RuntimeError(f"a benchmark transaction was refused: {receipt.vetoed_by}")
        if step.undo is not None:
            _commit(tm, step.undo, "a benchmark undo")
        if i >= warmup:
            out.samples_ns.append(t1 - t0)
            out.evaluated.append(len(receipt.hooks))
            out.skipped.append(receipt.hooks_skipped)
    return out


@dataclass
class ScaleResult:
    n: int
    plan: bool
    mix: dict[str, int]
    build_s: float = 0.0
    register_s: float = 0.0
    cold_ms: float = 0.0
    cold_evaluated: int = 0
    series: dict[str, Series] = field(default_factory=dict)


def run_scale(n: int, plan: bool, args: argparse.Namespace) -> ScaleResult:
    """One N, planned or not, on a freshly built graph (``isolated`` runs it in a fresh process)."""
    world = build_world(args.base, args.value_props, args.seed)
    t = time.perf_counter()
    hooks, mix = make_hooks(n)
    result = ScaleResult(n, plan, mix, build_s=time.perf_counter() - t)

    t = time.perf_counter()
    manager = HookManager(max_hooks=max(n, 1))
    for hook in hooks:
        manager.register(hook)
    manager.snapshot()
    result.register_s = time.perf_counter() - t
    tm = TransactionManager(world.store, manager, plan=plan)

    iters = args.iterations if plan else args.full_iterations
    if n > 1000:  # 10x the evaluations per call: a fifth of the calls keeps the run short
        iters = max(20, iters // 5)
    warm = max(1, min(args.warmup, iters // 10))
    adds = add_point_steps(world, 1 + warm + iters, args.seed + 1)
    t0 = time.perf_counter_ns()
    cold = _commit(tm, adds[0].delta, "the cold transaction")
    result.cold_ms = (time.perf_counter_ns() - t0) / 1e6
    result.cold_evaluated = len(cold.hooks)
    _commit(tm, adds[0].undo or Delta(), "the cold undo")

    if "value-range-0" not in tm.apply(bad_value(world), actor="bench").vetoed_by:
        raise RuntimeError(f"{n} hooks: an out-of-range value was not vetoed by value-range-0")
    result.series["add point"] = time_steps(tm, adds[1:], warm)
    values = set_value_steps(world, warm + iters, args.seed + 2)
    result.series["set value"] = time_steps(tm, values, warm)
    _log(args, f"{n} hooks, plan={plan}: done")
    return result


@dataclass
class Throughput:
    hooks: int
    transactions: int
    evaluations: int
    wall_s: float
    hook_ms: float

    @property
    def per_minute(self) -> float:
        return self.evaluations / self.wall_s * 60.0


def run_throughput(args: argparse.Namespace) -> Throughput:
    """Every hook touched by every transaction; counts the undo transactions' evaluations too."""
    world = build_world(args.base, args.value_props, args.seed)
    manager = HookManager()
    for hook in throughput_hooks(args.throughput_hooks):
        manager.register(hook)
    tm = TransactionManager(world.store, manager)
    steps = campus_bench.make_steps(world.campus, args.throughput_tx, args.seed + 3, "t")
    receipts: list[Receipt] = []
    gc.collect()
    t = time.perf_counter()
    for step in steps:
        receipts.append(_commit(tm, step.add, "a throughput transaction"))
        receipts.append(_commit(tm, step.undo, "a throughput undo"))
    wall = time.perf_counter() - t
    verdicts = [v for r in receipts for v in r.hooks]
    if any(r.hooks_skipped for r in receipts):
        raise RuntimeError("the planner skipped a hook the throughput workload must evaluate")
    hook_ms = statistics.fmean(v.duration_ms for v in verdicts)
    return Throughput(args.throughput_hooks, len(receipts), len(verdicts), wall, hook_ms)


def isolated(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` in a process forked from this still small one (see transactions.py)."""
    if args[-1].in_process:
        return func(*args)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(func, *args).result()


def _log(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# SHACL rows (benchmarks/shacl_scale.py) ---------------------------------------------------------


@dataclass(frozen=True)
class ShaclRow:
    label: str
    size: int
    kind: str
    p50_ms: float | None
    p99_ms: float | None


def shacl_rows(quick: bool) -> list[ShaclRow] | None:
    """The rows of ``benchmarks/shacl_scale.py``'s ``measure``, or None when it is not there."""
    if importlib.util.find_spec("shacl_scale") is None:
        return None
    from shacl_scale import measure  # type: ignore[import-not-found]

    sizes = (10_000,) if quick else (10_000, 1_000_000)
    rows = []
    for row in measure(sizes):
        done = bool(getattr(row, "samples_ms", ()))
        kind = str(getattr(row, "kind", "?"))
        rows.append(
            ShaclRow(
                f"SHACL {kind}, {_size(row.size)}",
                row.size,
                kind,
                row.p50 if done else None,
                row.p99 if done else None,
            )
        )
    return rows


# Report -----------------------------------------------------------------------------------------


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    unit: str
    at_least: bool = False

    @property
    def ok(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def cell(self) -> str:
        return f"{'>=' if self.at_least else '<='}{self.limit:,.4g} {'PASS' if self.ok else 'FAIL'}"


SCALE_HEAD = (
    f"{'hooks':>6}  {'workload':<10}  {'planner':<7}  {'n':>5}  {'p50 ms':>8}  {'p99 ms':>8}  "
    f"{'p99 target':<14}  {'eval/tx':>8}  {'skip/tx':>8}"
)


def scale_table(results: list[ScaleResult]) -> tuple[list[str], list[Check]]:
    lines, checks = [SCALE_HEAD, "-" * len(SCALE_HEAD)], []
    for r in results:
        for workload, s in r.series.items():
            check = None
            if r.n == 1000 and r.plan:
                check = Check(f"1,000 hooks, {workload}: p99", s.p99, P99_TARGET_MS, "ms")
                checks.append(check)
            lines.append(
                f"{r.n:>6}  {workload:<10}  {'on' if r.plan else 'off':<7}  "
                f"{len(s.samples_ns):>5}  {s.p50:>8.3f}  {s.p99:>8.3f}  "
                f"{check.cell() if check else '-':<14}  {s.mean(s.evaluated):>8.1f}  "
                f"{s.mean(s.skipped):>8.1f}"
            )
    return lines, checks


SETUP_HEAD = (
    f"{'hooks':>6}  {'planner':<7}  {'build hooks s':>13}  {'register s':>10}  "
    f"{'cold ms':>9}  {'cold eval':>9}"
)


def setup_table(results: list[ScaleResult]) -> list[str]:
    lines = [SETUP_HEAD, "-" * len(SETUP_HEAD)]
    for r in results:
        lines.append(
            f"{r.n:>6}  {'on' if r.plan else 'off':<7}  {r.build_s:>13.3f}  "
            f"{r.register_s:>10.3f}  {r.cold_ms:>9.2f}  {r.cold_evaluated:>9}"
        )
    return lines


def throughput_lines(t: Throughput) -> tuple[list[str], Check]:
    check = Check("condition evaluations per minute", t.per_minute, EVALS_TARGET, "/min", True)
    per_eval_us = t.wall_s / t.evaluations * 1e6
    return [
        f"evaluations per minute: {t.per_minute:,.0f}  target {check.cell()}",
        f"  {t.evaluations:,} evaluations ({t.hooks} hooks, all touched) in {t.transactions:,} "
        f"transactions, {t.wall_s:.2f} s wall",
        f"  wall time per evaluation {per_eval_us:.1f} us (pipeline included); "
        f"condition alone, mean of receipts' duration_ms: {t.hook_ms * 1000:.1f} us",
    ], check


def shacl_lines(rows: list[ShaclRow]) -> tuple[list[str], list[Check]]:
    head = f"{'measurement':<32}  {'p50 ms':>10}  {'p99 ms':>10}  {'p50 target':<16}"
    lines, checks = [head, "-" * len(head)], []
    base = next((r for r in rows if r.kind == "incremental" and r.size == 10_000), None)
    for r in rows:
        check = None
        if base and base.p50_ms and r.kind == "incremental" and r.size == 1_000_000 and r.p50_ms:
            name = f"incremental SHACL, 1M: p50 within {SHACL_GROWTH}x of 10k"
            check = Check(name, r.p50_ms, SHACL_GROWTH * base.p50_ms, "ms")
            checks.append(check)
        if r.p50_ms is None or r.p99_ms is None:
            lines.append(f"{r.label:<32}  not finished: no figure")
            continue
        cell = check.cell() if check else "-"
        lines.append(f"{r.label:<32}  {r.p50_ms:>10.2f}  {r.p99_ms:>10.2f}  {cell:<16}")
    return lines, checks


def _load(when: str) -> None:
    if hasattr(os, "getloadavg"):
        print(
            "load average at {}: {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(when, *os.getloadavg())
        )


def _header(args: argparse.Namespace) -> None:
    campus_bench.print_machine("kgc hook scale benchmark")
    print(
        f"graph: campus of {args.base:,} triples + {args.value_props:,} values; seed {args.seed}; "
        f"{args.iterations} timed calls per workload ({args.full_iterations} with the planner "
        "off; a fifth, at least 20, above 1,000 hooks), after a tenth as many untimed (at most "
        f"{args.warmup}); times in milliseconds"
    )
    print(flush=True)


def _mix(results: list[ScaleResult]) -> Iterator[str]:
    seen = set()
    for r in results:
        if r.n not in seen:
            seen.add(r.n)
            parts = ", ".join(f"{name} {count}" for name, count in r.mix.items() if count)
            yield f"  {r.n:>6} hooks: {parts}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few iterations")
    parser.add_argument("--no-shacl", action="store_true", help="leave out the SHACL rows")
    parser.add_argument("--hooks", help="comma-separated hook counts (default 1,100,1000,10000)")
    parser.add_argument("--full-up-to", type=int, help="largest N timed with plan=False")
    parser.add_argument("--iterations", type=int, help="timed applies per workload")
    parser.add_argument("--warmup", type=int, help="untimed applies first")
    parser.add_argument("--full-iterations", type=int, help="timed applies with plan=False")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--in-process", action="store_true", help="no fork per row (profiling)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults: dict[str, Any] = {
        "hooks": "1,100,1000,10000",
        "full_up_to": 1000 if quick else 10_000,
        "iterations": 30 if quick else 1000,
        "warmup": 5 if quick else 100,
        "full_iterations": 5 if quick else 100,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.counts = [int(n) for n in str(args.hooks).split(",")]
    # Graph: the campus plus one value per value property the largest N's value rules guard.
    args.value_props = max(40, (max(args.counts) * 40 + 99) // 100)
    args.base = max(2_000, (5_000 if quick else 10_000) - args.value_props)
    args.throughput_hooks = 100
    args.throughput_tx = 50 if quick else 1000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _header(args)
    started = time.perf_counter()

    results = [isolated(run_scale, n, True, args) for n in args.counts]
    results += [isolated(run_scale, n, False, args) for n in args.counts if n <= args.full_up_to]
    throughput: Throughput = isolated(run_throughput, args)
    shacl = None if args.no_shacl else shacl_rows(args.quick)

    print("hook mix (pre-commit ASK hooks, one condition text each):")
    print("\n".join(_mix(results)))
    print()
    print("\n".join(setup_table(results)))
    print()
    lines, checks = scale_table(results)
    print("\n".join(lines))
    skipped_full = [n for n in args.counts if n > args.full_up_to]
    if skipped_full:
        print(
            f"  plan=False not timed for {', '.join(map(str, skipped_full))} hooks (--full-up-to)"
        )
    print()
    lines, check = throughput_lines(throughput)
    print("\n".join(lines))
    checks.append(check)
    print()
    if args.no_shacl:
        print("SHACL rows: left out (--no-shacl)")
    elif shacl is None:
        print("SHACL rows come from benchmarks/shacl_scale.py, which is not in this tree: skipped")
    else:
        lines, more = shacl_lines(shacl)
        print("\n".join(lines))
        checks += more

    print()
    print("targets:")
    for c in checks:
        print(
            f"  {'PASS' if c.ok else 'FAIL'}  {c.name}: {c.value:,.3f} {c.unit} "
            f"(target {c.cell()[:-5]} {c.unit})"
        )
    if 1000 not in args.counts:
        print("  n/a   1,000 hooks: p99: not measured (--hooks)")
    print()
    _load("end")
    print(f"total run time {time.perf_counter() - started:.0f} s")
    return 1 if args.strict and not all(c.ok for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())

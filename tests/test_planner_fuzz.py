"""Differential fuzzing of the planner: planned and cached evaluation equals full evaluation.

Random hooks (SPARQL from ``sparql_grammar``, count, threshold, delta and their combinations,
pre and post, on channels and views) govern random deltas over the grammar's vocabulary through
two managers: one planning with a condition cache, one evaluating every hook every time. After
every transaction the statuses, ``vetoed_by``, verdicts, post-commit effects and state digests
must agree. ``KGC_FUZZ_EXAMPLES=5000 pytest tests/test_planner_fuzz.py`` runs longer, on fresh
random examples each time.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import pyoxigraph as ox
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sparql_grammar import (
    CLASSES,
    GRAPHS,
    NODES,
    PREDICATES,
    RDF_TYPE,
    Draw,
    Query,
    query,
)

from kgc import Channel, Delta, Hook, HookEvent, HookManager, OxigraphStore, SparqlAsk
from kgc.errors import HookDefinitionError
from kgc.hooks import Combinator, Condition, Count, DeltaChange, SparqlSelect, Threshold
from kgc.hooks.cache import ConditionCache
from kgc.hooks.model import Phase
from kgc.receipt import Receipt
from kgc.store.base import Store
from kgc.transaction import TransactionManager

EXAMPLES = int(os.environ.get("KGC_FUZZ_EXAMPLES", "400"))
# CI replays the same examples; a longer local run explores new ones each time.
DERANDOMIZE = "KGC_FUZZ_EXAMPLES" not in os.environ
PARSED: Counter[str] = Counter()  # "ok" / "rejected": how often the grammar's queries parse
_EMPTY = ox.Store()
_OPS = ("<", "<=", "==", "!=", ">=", ">")
_CHANNELS = (
    Channel(),
    Channel(),
    Channel(),
    Channel(("default",)),
    Channel((GRAPHS[0],)),
    Channel(("default", GRAPHS[1])),
    Channel(view="before"),
    Channel(view="delta"),
    Channel((GRAPHS[1],), view="delta"),
)


# Conditions ----------------------------------------------------------------------------------


def _parses(text: str) -> bool:
    try:
        _EMPTY.query(text)
    except SyntaxError:
        PARSED["rejected"] += 1
        return False
    PARSED["ok"] += 1
    return True


@st.composite
def sparql(draw: Draw, form: str) -> Query:
    q: Query = draw(query(form))
    assume(_parses(q.text))
    return q


@st.composite
def leaf(draw: Draw) -> Condition:
    kind = draw(st.sampled_from(("ask", "ask", "select", "count", "count", "threshold", "delta")))
    if kind == "delta":
        return DeltaChange(
            tuple(draw(st.lists(st.sampled_from(PREDICATES), min_size=1, max_size=2))),
            str(draw(st.sampled_from(("any", "modify", "increase", "decrease")))),
            types=tuple(draw(st.lists(st.sampled_from(CLASSES), max_size=1))),
        )
    q: Query = draw(sparql("ASK" if kind == "ask" else "SELECT"))
    if kind == "ask":
        return SparqlAsk(q.text)
    if kind == "select":
        return SparqlSelect(q.text)
    value = float(draw(st.integers(0, 3)))
    op = str(draw(st.sampled_from(_OPS)))
    if kind == "count" or not q.projected:
        return Count(q.text, op, value)
    aggregate = str(draw(st.sampled_from(("sum", "avg", "min", "max", "count"))))
    variable = str(draw(st.sampled_from(q.projected)))
    try:
        return Threshold(q.text, aggregate, variable, op, value)
    except HookDefinitionError:  # the variable is not projected after all (SELECT DISTINCT *)
        assume(False)
        raise


@st.composite
def condition(draw: Draw, depth: int = 2) -> Condition:
    if not depth or draw(st.integers(0, 3)):
        return draw(leaf())
    kind = str(draw(st.sampled_from(("all", "any", "not", "at-least-k"))))
    size = 1 if kind == "not" else draw(st.integers(1, 3))
    children = tuple(draw(condition(depth - 1)) for _ in range(size))
    k = draw(st.integers(1, len(children))) if kind == "at-least-k" else 0
    return Combinator(kind, children, k)


@dataclass(frozen=True)
class Spec:
    """A hook to register on both managers: each gets its own ``run`` recorder."""

    name: str
    when: Condition
    phase: Phase
    channel: Channel
    accepts: bool  # a pre hook with a run callable that lets the transaction through

    def build(self, calls: list[str]) -> Hook:
        def record(event: HookEvent) -> None:
            calls.append(f"{self.name}:{event.result.rows}")

        run = record if self.phase == "post" or self.accepts else None
        return Hook(self.name, self.when, self.phase, run=run, channel=self.channel)

    def describe(self) -> str:
        where = f" channel={self.channel.graphs or 'all'}/{self.channel.view}"
        return f"{self.name} ({self.phase}{where}{' run' if self.accepts else ''}):\n" + _text(
            self.when, "    "
        )


def _text(c: Condition, indent: str) -> str:
    if isinstance(c, Combinator):
        head = f"{indent}{c.kind}{f' k={c.k}' if c.k else ''}"
        return "\n".join([head, *(_text(child, indent + "  ") for child in c.conditions)])
    if isinstance(c, Count | Threshold):
        extra = f" {c.aggregate}(?{c.variable})" if isinstance(c, Threshold) else ""
        return f"{indent}{c.kind}{extra} {c.op} {c.value}: {c.text!r}"
    return f"{indent}{c.kind}: {c.text!r}"


@st.composite
def spec(draw: Draw, name: str) -> Spec:
    phase: Phase = "post" if draw(st.integers(0, 4)) < 2 else "pre"
    accepts = phase == "pre" and draw(st.integers(0, 7)) == 0
    return Spec(name, draw(condition()), phase, draw(st.sampled_from(_CHANNELS)), accepts)


# Deltas --------------------------------------------------------------------------------------

_GRAPH_NAMES = (None, *GRAPHS)


@st.composite
def quad(draw: Draw) -> ox.Quad:
    predicate = draw(st.sampled_from((*PREDICATES, RDF_TYPE, RDF_TYPE)))
    objects = CLASSES if predicate == RDF_TYPE else (*NODES, *CLASSES, "1", "2", "a")
    obj = str(draw(st.sampled_from(objects)))
    graph = draw(st.sampled_from(_GRAPH_NAMES))
    return ox.Quad(
        ox.NamedNode(str(draw(st.sampled_from(NODES)))),
        ox.NamedNode(str(predicate)),
        ox.NamedNode(obj) if ":" in obj else _literal(obj),
        ox.NamedNode(graph) if graph else ox.DefaultGraph(),
    )


def _literal(text: str) -> ox.Literal:
    if text.isdigit():
        return ox.Literal(text, datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))
    return ox.Literal(text)


@dataclass
class Step:
    """One step of a run: a delta built from the current store, or a hook registered."""

    adds: list[ox.Quad] = field(default_factory=list)
    removes: list[ox.Quad] = field(default_factory=list)
    drop_graph: str | None = None  # remove every quad of this graph (its last quad, so)
    drop_some: int = 0  # remove this many quads present in the store
    readd: bool = False  # add back what the previous step removed
    register: Spec | None = None
    # "undo" the last commit, or apply it "again" after an undo: a state, and a transition,
    # seen before (what the condition cache keys on)
    replay: str = ""

    def delta(self, store: Store, previous: list[ox.Quad]) -> Delta:
        present = sorted((q for q in store if "urn:kgc:" not in str(q.graph_name)), key=str)
        removes = list(self.removes) + present[: self.drop_some]
        if self.drop_graph is not None:
            removes += [q for q in present if str(q.graph_name) == f"<{self.drop_graph}>"]
        adds = list(self.adds) + (previous if self.readd else [])
        removes = list(dict.fromkeys(removes))
        return Delta(
            additions=[q for q in dict.fromkeys(adds) if q not in removes], removals=removes
        )


@st.composite
def step(draw: Draw, index: int) -> Step:
    if draw(st.integers(0, 9)) == 0:
        return Step(register=draw(spec(f"late{index}")))
    if draw(st.integers(0, 4)) == 0:
        return Step(replay=draw(st.sampled_from(("undo", "again"))))
    return Step(
        adds=draw(st.lists(quad(), max_size=3)),
        removes=draw(st.lists(quad(), max_size=2)),
        drop_graph=draw(st.sampled_from((None, None, None, *GRAPHS))),
        drop_some=draw(st.integers(0, 2)),
        readd=draw(st.integers(0, 4)) == 0,
    )


@dataclass(frozen=True)
class Scenario:
    specs: tuple[Spec, ...]
    initial: tuple[ox.Quad, ...]
    steps: tuple[Step, ...]


@st.composite
def scenario(draw: Draw) -> Scenario:
    specs = tuple(draw(spec(f"h{i}")) for i in range(draw(st.integers(1, 4))))
    initial = tuple(draw(st.lists(quad(), max_size=8)))
    count = draw(st.integers(1, 7))
    return Scenario(specs, initial, tuple(draw(step(i)) for i in range(count)))


# The comparison ------------------------------------------------------------------------------


@dataclass
class Side:
    manager: TransactionManager
    hooks: HookManager
    calls: list[str]


def _side(s: Scenario, plan: bool) -> Side:
    store = OxigraphStore()
    store.add_all(list(s.initial))
    hooks, calls = HookManager(), list[str]()
    for one in s.specs:
        hooks.register(one.build(calls))
    cache = ConditionCache(1000) if plan else None
    return Side(TransactionManager(store, hooks, plan=plan, cache=cache), hooks, calls)


def _differences(planned: Receipt, full: Receipt) -> list[str]:
    out = []
    if (planned.status, planned.vetoed_by) != (full.status, full.vetoed_by):
        out.append(f"status {planned.status} {planned.vetoed_by} != {full.status} {full.vetoed_by}")
    if planned.state_after != full.state_after:
        out.append("state digests differ")
    by_hook = {v.hook: v for v in full.hooks}
    for verdict in planned.hooks:
        other = by_hook.pop(verdict.hook, None)
        if other is None or (verdict.verdict, verdict.fired) != (other.verdict, other.fired):
            out.append(f"{verdict.hook}: planned {verdict.verdict}/{verdict.fired}, full {other}")
    for skipped in by_hook.values():
        if (skipped.verdict, skipped.fired) != ("pass", False) and skipped.verdict != "timeout":
            out.append(f"{skipped.hook}: skipped, but full gave {skipped.verdict}/{skipped.fired}")
    effects = [[(e.hook, e.verdict) for e in r.effects] for r in (planned, full)]
    if effects[0] != effects[1]:
        out.append(f"effects {effects[0]} != {effects[1]}")
    return out


def _report(s: Scenario, history: list[str], problems: list[str]) -> str:
    hooks = "\n".join(one.describe() for one in s.specs)
    initial = "\n".join(f"  {q}" for q in s.initial) or "  (empty)"
    return (
        "planned+cached evaluation disagrees with full evaluation:\n  "
        + "\n  ".join(problems)
        + f"\nhooks:\n{hooks}\ninitial store:\n{initial}\nsteps:\n"
        + "\n".join(history)
    )


def run_scenario(s: Scenario) -> None:
    planned, full = _side(s, True), _side(s, False)
    history: list[str] = []
    previous: list[ox.Quad] = []
    commits: list[Delta] = []  # committed deltas, and those taken back by an undo
    undone: list[Delta] = []
    for step_ in s.steps:
        if step_.register is not None:
            planned.hooks.register(step_.register.build(planned.calls))
            full.hooks.register(step_.register.build(full.calls))
            history.append("register " + step_.register.describe())
            continue
        delta = step_.delta(full.manager.store, previous)
        if step_.replay == "undo" and commits:
            delta = Delta(additions=commits[-1].removals, removals=commits[-1].additions)
        elif step_.replay == "again" and undone:
            delta = undone[-1]
        history.append(
            "apply +"
            + " +".join(map(str, delta.additions))
            + " -"
            + " -".join(map(str, delta.removals))
        )
        a, b = planned.manager.apply(delta, "fuzz"), full.manager.apply(delta, "fuzz")
        history[-1] += f"  => {b.status} {b.vetoed_by}"
        problems = _differences(a, b)
        if planned.calls != full.calls:
            problems.append(f"run calls {planned.calls} != {full.calls}")
        assert not problems, _report(s, history, problems)
        previous = list(delta.removals) if b.committed else []
        if not b.committed:
            continue
        if step_.replay == "undo" and commits:
            undone.append(commits.pop())
        elif step_.replay == "again" and undone:
            commits.append(undone.pop())
        else:
            commits.append(delta)


def test_planned_and_cached_equals_full_evaluation() -> None:
    before = PARSED.copy()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(scenario())
    def check(s: Scenario) -> None:
        run_scenario(s)

    check()
    drawn = PARSED - before
    total = drawn["ok"] + drawn["rejected"]
    # The grammar should mostly write valid SPARQL, or the fuzzer spends its time discarding.
    assert total and drawn["rejected"] / total < 0.25, drawn

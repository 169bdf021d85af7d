"""Transaction latency: raw pyoxigraph inserts beside governed kgc ``apply``.

    python benchmarks/transactions.py            # 10k and 1M triples (a few minutes)
    python benchmarks/transactions.py --quick    # 10k only, fewer iterations

The graph is synthetic Brick building data (buildings, floors, rooms, HVAC zones, AHUs feeding
VAVs, points with types, labels, units and ``brick:isPointOf``/``brick:hasPoint``), generated from
a seed and bulk loaded; the TransactionManager is constructed afterwards, so it computes the
initial LtHash state digest over the loaded graph.

Every timed transaction adds one new point to an existing VAV (4 triples: type, label,
``brick:isPointOf``, and the VAV's ``brick:hasPoint``). After each timed call the point is removed
again, untimed (for kgc through a governed ``apply`` of the removal delta), so the graph keeps its
size throughout and the state digest returns to its starting value, which the script checks.

Rows, each on a freshly built graph in a process of its own (forked before any store exists), so
that none inherits another's graph, history or heap: raw
``Store.extend`` of the same 4 quads on a plain pyoxigraph store; raw ``Store.query`` of the ASK
hook's query with the delta staged by hand (what pyoxigraph alone spends on that hook); then kgc
``TransactionManager.apply`` with no hooks, one ASK hook, ten hooks (ASK and SELECT) and one SHACL
hook. Before a configuration is timed, a delta that breaks its policy is applied once and must be
vetoed, so the hooks are known to be live. Times are ``time.perf_counter_ns`` around the one call;
the garbage collector stays on. The machine is not isolated: the load average is printed at the
start and end, and another busy process shows up mostly in p99. ``drift`` is the p50 of the last
tenth of the timed calls over that of the first: above 1, cost grows with transactions applied.

Targets (from the issue): with one ASK hook at 10k triples, p50 <= 100 us and p99 <= 1 ms; at 1M
triples both within 1.5x of the 10k figures.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import pyoxigraph as ox

import kgc
from kgc import (
    Delta,
    Hook,
    HookManager,
    OxigraphStore,
    Shacl,
    SparqlAsk,
    SparqlSelect,
    TransactionManager,
)

BRICK = "https://brickschema.org/schema/Brick#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
UNIT = "http://qudt.org/vocab/unit/"
SITE = "http://example.org/campus/"

A = ox.NamedNode(RDF + "type")
LABEL = ox.NamedNode(RDFS + "label")
IS_POINT_OF = ox.NamedNode(BRICK + "isPointOf")
HAS_POINT = ox.NamedNode(BRICK + "hasPoint")
DEFAULT = ox.DefaultGraph()


def brick(name: str) -> ox.NamedNode:
    return ox.NamedNode(BRICK + name)


def _q(s: ox.NamedNode, p: ox.NamedNode, o: ox.NamedNode | ox.Literal) -> ox.Quad:
    return ox.Quad(s, p, o, DEFAULT)


# A slice of the Brick class hierarchy (child, parent), loaded with the data so that queries can
# follow rdfs:subClassOf as they do on real Brick models.
ONTOLOGY = [
    ("Sensor", "Point"), ("Setpoint", "Point"), ("Command", "Point"), ("Status", "Point"),
    ("Alarm", "Point"),
    ("Temperature_Sensor", "Sensor"), ("Air_Temperature_Sensor", "Temperature_Sensor"),
    ("Supply_Air_Temperature_Sensor", "Air_Temperature_Sensor"),
    ("Return_Air_Temperature_Sensor", "Air_Temperature_Sensor"),
    ("Mixed_Air_Temperature_Sensor", "Air_Temperature_Sensor"),
    ("Outside_Air_Temperature_Sensor", "Air_Temperature_Sensor"),
    ("Zone_Air_Temperature_Sensor", "Air_Temperature_Sensor"),
    ("Discharge_Air_Temperature_Sensor", "Air_Temperature_Sensor"),
    ("Flow_Sensor", "Sensor"), ("Air_Flow_Sensor", "Flow_Sensor"),
    ("Supply_Air_Flow_Sensor", "Air_Flow_Sensor"), ("Discharge_Air_Flow_Sensor", "Air_Flow_Sensor"),
    ("Pressure_Sensor", "Sensor"), ("Static_Pressure_Sensor", "Pressure_Sensor"),
    ("Supply_Air_Static_Pressure_Sensor", "Static_Pressure_Sensor"),
    ("Humidity_Sensor", "Sensor"), ("Zone_Air_Humidity_Sensor", "Humidity_Sensor"),
    ("CO2_Sensor", "Sensor"),
    ("Temperature_Setpoint", "Setpoint"), ("Zone_Air_Temperature_Setpoint", "Temperature_Setpoint"),
    ("Supply_Air_Temperature_Setpoint", "Temperature_Setpoint"),
    ("Flow_Setpoint", "Setpoint"), ("Air_Flow_Setpoint", "Flow_Setpoint"),
    ("Static_Pressure_Setpoint", "Setpoint"),
    ("Damper_Position_Command", "Command"), ("Valve_Position_Command", "Command"),
    ("Fan_Speed_Command", "Command"),
    ("Fan_Status", "Status"), ("Filter_Alarm", "Alarm"), ("High_Temperature_Alarm", "Alarm"),
    ("HVAC_Equipment", "Equipment"), ("AHU", "HVAC_Equipment"),
    ("Terminal_Unit", "HVAC_Equipment"), ("VAV", "Terminal_Unit"),
    ("Building", "Location"), ("Floor", "Location"), ("Space", "Location"), ("Room", "Space"),
    ("Zone", "Location"), ("HVAC_Zone", "Zone"),
]  # fmt: skip

# Point templates: (name suffix, Brick class, unit or None).
AHU_POINTS = [
    ("SAT", "Supply_Air_Temperature_Sensor", "DEG_C"),
    ("SATSP", "Supply_Air_Temperature_Setpoint", "DEG_C"),
    ("RAT", "Return_Air_Temperature_Sensor", "DEG_C"),
    ("MAT", "Mixed_Air_Temperature_Sensor", "DEG_C"),
    ("OAT", "Outside_Air_Temperature_Sensor", "DEG_C"),
    ("SAF", "Supply_Air_Flow_Sensor", "L-PER-SEC"),
    ("SSP", "Supply_Air_Static_Pressure_Sensor", "PA"),
    ("SSPSP", "Static_Pressure_Setpoint", "PA"),
    ("SF-S", "Fan_Status", None),
    ("SF-C", "Fan_Speed_Command", "PERCENT"),
    ("OAD-C", "Damper_Position_Command", "PERCENT"),
    ("HWV-C", "Valve_Position_Command", "PERCENT"),
    ("CHWV-C", "Valve_Position_Command", "PERCENT"),
    ("FLT-A", "Filter_Alarm", None),
]
VAV_POINTS = [
    ("ZNT", "Zone_Air_Temperature_Sensor", "DEG_C"),
    ("ZNTSP", "Zone_Air_Temperature_Setpoint", "DEG_C"),
    ("DAT", "Discharge_Air_Temperature_Sensor", "DEG_C"),
    ("DAF", "Discharge_Air_Flow_Sensor", "L-PER-SEC"),
    ("DAFSP", "Air_Flow_Setpoint", "L-PER-SEC"),
    ("DPR-C", "Damper_Position_Command", "PERCENT"),
]
VAV_EXTRA_POINTS = [
    ("ZNH", "Zone_Air_Humidity_Sensor", "PERCENT_RH"),
    ("CO2", "CO2_Sensor", "PPM"),
    ("HTA", "High_Temperature_Alarm", None),
]
FLOORS_PER_BUILDING = 12
VAVS_PER_FLOOR = 24
FLOORS_PER_AHU = 4


@dataclass
class Campus:
    """What the generator leaves behind for building deltas: every VAV it emitted, with a name."""

    vavs: list[tuple[str, str]] = field(default_factory=list)


# The generator writes N-Triples lines; terms are written out once, as strings.
_A, _LABEL, _SUB = f"<{RDF}type>", f"<{RDFS}label>", f"<{RDFS}subClassOf>"
_IS_POINT_OF, _HAS_POINT = f"<{BRICK}isPointOf>", f"<{BRICK}hasPoint>"
_HAS_UNIT = f"<{BRICK}hasUnit>"
_HAS_PART, _IS_PART_OF = f"<{BRICK}hasPart>", f"<{BRICK}isPartOf>"
_HAS_LOCATION, _FEEDS = f"<{BRICK}hasLocation>", f"<{BRICK}feeds>"


def _c(name: str) -> str:
    return f"<{BRICK}{name}>"


def _points(equip: str, name: str, templates: list[tuple[str, str, str | None]]) -> Iterator[str]:
    for suffix, cls, unit in templates:
        point = f"<{equip}/{suffix}>"
        yield f"{point} {_A} {_c(cls)} .\n"
        yield f'{point} {_LABEL} "{name} {suffix}" .\n'
        yield f"{point} {_IS_POINT_OF} <{equip}> .\n"
        yield f"<{equip}> {_HAS_POINT} {point} .\n"
        if unit is not None:
            yield f"{point} {_HAS_UNIT} <{UNIT}{unit}> .\n"


def campus_lines(rng: random.Random, campus: Campus) -> Iterator[str]:
    """An endless campus, as N-Triples lines: the class hierarchy, then building after building."""
    for child, parent in ONTOLOGY:
        yield f"{_c(child)} {_SUB} {_c(parent)} .\n"
    for b in itertools.count():
        bname = f"B{b:03d}"
        bldg = f"{SITE}{bname}"
        yield f"<{bldg}> {_A} {_c('Building')} .\n"
        yield f'<{bldg}> {_LABEL} "Building {bname}" .\n'
        ahu = ""
        for f in range(FLOORS_PER_BUILDING):
            floor = f"{bldg}/F{f:02d}"
            yield f"<{floor}> {_A} {_c('Floor')} .\n"
            yield f'<{floor}> {_LABEL} "{bname} F{f:02d}" .\n'
            yield f"<{floor}> {_IS_PART_OF} <{bldg}> .\n"
            yield f"<{bldg}> {_HAS_PART} <{floor}> .\n"
            if f % FLOORS_PER_AHU == 0:
                aname = f"{bname} AHU-{f // FLOORS_PER_AHU + 1}"
                ahu = f"{bldg}/AHU-{f // FLOORS_PER_AHU + 1}"
                yield f"<{ahu}> {_A} {_c('AHU')} .\n"
                yield f'<{ahu}> {_LABEL} "{aname}" .\n'
                yield f"<{ahu}> {_HAS_LOCATION} <{bldg}> .\n"
                yield from _points(ahu, aname, AHU_POINTS)
            for v in range(VAVS_PER_FLOOR):
                tag = f"{f:02d}-{v + 1:02d}"
                room, zone, vav = (f"{floor}/{kind}{tag}" for kind in ("R", "Z", "VAV-"))
                vname = f"{bname} VAV-{tag}"
                yield f"<{room}> {_A} {_c('Room')} .\n"
                yield f'<{room}> {_LABEL} "{bname} Room {tag}" .\n'
                yield f"<{room}> {_IS_PART_OF} <{floor}> .\n"
                yield f"<{zone}> {_A} {_c('HVAC_Zone')} .\n"
                yield f'<{zone}> {_LABEL} "{bname} Zone {tag}" .\n'
                yield f"<{zone}> {_HAS_PART} <{room}> .\n"
                yield f"<{zone}> {_IS_PART_OF} <{floor}> .\n"
                yield f"<{vav}> {_A} {_c('VAV')} .\n"
                campus.vavs.append((vav, vname))
                yield f'<{vav}> {_LABEL} "{vname}" .\n'
                yield f"<{vav}> {_FEEDS} <{zone}> .\n"
                yield f"<{ahu}> {_FEEDS} <{vav}> .\n"
                yield f"<{vav}> {_HAS_LOCATION} <{room}> .\n"
                extra = [p for p in VAV_EXTRA_POINTS if rng.random() < 0.3]
                yield from _points(vav, vname, VAV_POINTS + extra)


def build_graph(size: int, seed: int, load: str = "text") -> tuple[OxigraphStore, Campus]:
    """A fresh in-memory store holding exactly ``size`` triples of campus data.

    ``load="text"``: pyoxigraph parses the generated N-Triples with its bulk loader, as when a
    building model is imported from a file. ``load="python"``: the text is parsed into Python
    ``Quad`` objects that go through ``OxigraphStore.bulk_add``. The second allocates millions of
    short-lived term objects alongside the store; in a fresh process at 1M triples that left
    pyoxigraph's fixed cost per query (an empty ``ASK {}``) near 44 us instead of 22 us, because
    glibc's malloc takes its slow path more often on the fragmented heap.
    """
    campus = Campus()
    lines = itertools.islice(campus_lines(random.Random(seed), campus), size)
    store = OxigraphStore()
    if load == "text":
        data = "".join(lines).encode()
        store.raw.bulk_load(data, format=ox.RdfFormat.N_TRIPLES)
        del data
    else:
        data = "".join(lines).encode()
        store.bulk_add(ox.parse(data, format=ox.RdfFormat.N_TRIPLES))
        del data
    if len(store) != size:
        raise RuntimeError(f"generated {len(store)} distinct triples, wanted {size}")
    return store, campus


# Workload -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One timed transaction (add a point) and the untimed one that takes it out again."""

    add: Delta
    undo: Delta
    quads: tuple[ox.Quad, ...]


def make_steps(campus: Campus, count: int, seed: int, tag: str) -> list[Step]:
    rng = random.Random(seed)
    steps = []
    for i in range(count):
        iri, vname = rng.choice(campus.vavs)
        vav = ox.NamedNode(iri)
        suffix, cls, _ = rng.choice(VAV_EXTRA_POINTS)
        point = ox.NamedNode(f"{iri}/{suffix}-{tag}{i}")
        quads = (
            _q(point, A, brick(cls)),
            _q(point, LABEL, ox.Literal(f"{vname} {suffix} {tag}{i}")),
            _q(point, IS_POINT_OF, vav),
            _q(vav, HAS_POINT, point),
        )
        steps.append(Step(Delta(quads), Delta(removals=quads), quads))
    return steps


def bad_delta(campus: Campus, kind: str) -> Delta:
    """A transaction that breaks the policy of the configuration ``kind``."""
    iri, vname = campus.vavs[0]
    vav, point = ox.NamedNode(iri), ox.NamedNode(f"{iri}/ORPHAN")
    if kind == "shacl":  # an empty label
        return Delta(
            [
                _q(point, A, brick("CO2_Sensor")),
                _q(point, LABEL, ox.Literal("")),
                _q(point, IS_POINT_OF, vav),
                _q(vav, HAS_POINT, point),
            ]
        )
    # a point attached to no equipment
    return Delta([_q(point, A, brick("CO2_Sensor")), _q(point, LABEL, ox.Literal(f"{vname} CO2"))])


# Hooks --------------------------------------------------------------------------------------

PREFIXES = f"""PREFIX rdf: <{RDF}>
PREFIX rdfs: <{RDFS}>
PREFIX brick: <{BRICK}>
"""
ADDED = "GRAPH <urn:kgc:delta:additions>"
REMOVED = "GRAPH <urn:kgc:delta:removals>"

ASK_POINT_HAS_EQUIPMENT = f"""{PREFIXES}
ASK {{
  {ADDED} {{ ?point a ?class }}
  ?class rdfs:subClassOf* brick:Point .
  FILTER NOT EXISTS {{ ?point brick:isPointOf ?equipment }}
}}"""

TEN_HOOKS: list[tuple[str, str, str]] = [
    ("point-has-equipment", "ask", ASK_POINT_HAS_EQUIPMENT),
    (
        "point-of-equipment",
        "ask",
        f"""{PREFIXES}
ASK {{
  {ADDED} {{ ?point brick:isPointOf ?equipment }}
  FILTER NOT EXISTS {{ ?equipment a ?class . ?class rdfs:subClassOf* brick:Equipment }}
}}""",
    ),
    (
        "typed-has-label",
        "ask",
        f"""{PREFIXES}
ASK {{ {ADDED} {{ ?entity a ?class }} FILTER NOT EXISTS {{ ?entity rdfs:label ?label }} }}""",
    ),
    (
        "label-is-text",
        "ask",
        f"""{PREFIXES}
ASK {{ {ADDED} {{ ?entity rdfs:label ?label }}
      FILTER(!isLiteral(?label) || STRLEN(STR(?label)) = 0) }}""",
    ),
    (
        "one-equipment-per-point",
        "select",
        f"""{PREFIXES}
SELECT ?point ?e1 ?e2 WHERE {{
  {ADDED} {{ ?point brick:isPointOf ?e1 }}
  ?point brick:isPointOf ?e2 .
  FILTER(?e1 != ?e2)
}}""",
    ),
    (
        "has-point-inverse",
        "ask",
        f"""{PREFIXES}
ASK {{
  {{ {ADDED} {{ ?p brick:isPointOf ?e }} FILTER NOT EXISTS {{ ?e brick:hasPoint ?p }} }}
  UNION
  {{ {ADDED} {{ ?e brick:hasPoint ?p }} FILTER NOT EXISTS {{ ?p brick:isPointOf ?e }} }}
}}""",
    ),
    (
        "brick-classes-only",
        "ask",
        f"""{PREFIXES}
ASK {{ {ADDED} {{ ?entity a ?class }} FILTER(!STRSTARTS(STR(?class), STR(brick:))) }}""",
    ),
    (
        "known-predicates",
        "select",
        f"""{PREFIXES}
SELECT ?s ?p WHERE {{
  {ADDED} {{ ?s ?p ?o }}
  FILTER(?p NOT IN (rdf:type, rdfs:label, brick:isPointOf, brick:hasPoint, brick:hasUnit,
                    brick:hasPart, brick:isPartOf, brick:hasLocation, brick:feeds))
}}""",
    ),
    (
        "no-orphaned-points",
        "select",
        f"""{PREFIXES}
SELECT ?equipment ?point WHERE {{
  {REMOVED} {{ ?equipment a ?class }}
  ?class rdfs:subClassOf* brick:Equipment .
  ?point brick:isPointOf ?equipment .
}}""",
    ),
    (
        "unique-label-per-equipment",
        "ask",
        f"""{PREFIXES}
ASK {{
  {ADDED} {{ ?point rdfs:label ?label }}
  ?point brick:isPointOf ?equipment .
  ?equipment brick:hasPoint ?other .
  ?other rdfs:label ?label .
  FILTER(?other != ?point)
}}""",
    ),
]

# Both shapes target the subjects of a property and check only that node's own statements. kgc's
# delta scope gives SHACL the touched nodes' statements plus only the rdf:type of their neighbours,
# so a shape that checked, say, the label of every point would also see the VAV's other points,
# without their labels, and veto a valid transaction.
SHAPES = f"""@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdf: <{RDF}> .
@prefix rdfs: <{RDFS}> .
@prefix brick: <{BRICK}> .
@prefix : <urn:example:shapes#> .

:PointShape a sh:NodeShape ;
  sh:targetSubjectsOf brick:isPointOf ;
  sh:property [ sh:path brick:isPointOf ; sh:minCount 1 ; sh:maxCount 1 ; sh:nodeKind sh:IRI ] ;
  sh:property [ sh:path rdf:type ; sh:minCount 1 ; sh:nodeKind sh:IRI ] .

:LabelShape a sh:NodeShape ;
  sh:targetSubjectsOf rdfs:label ;
  sh:property [ sh:path rdfs:label ; sh:maxCount 1 ; sh:datatype xsd:string ; sh:minLength 1 ] .
"""


def hooks_for(config: str) -> list[Hook]:
    if config == "none":
        return []
    if config == "ask":
        return [Hook("point-has-equipment", SparqlAsk(ASK_POINT_HAS_EQUIPMENT))]
    if config == "ten":
        return [
            Hook(name, SparqlAsk(text) if kind == "ask" else SparqlSelect(text))
            for name, kind, text in TEN_HOOKS
        ]
    if config == "shacl":
        return [Hook("point-shapes", Shacl(SHAPES))]
    raise ValueError(config)


# Measurement --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    size: int
    config: str
    samples_ns: list[int]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ns) / 1000.0

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ns)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] / 1000.0

    @property
    def drift(self) -> float:
        """p50 of the last tenth of the timed applies over p50 of the first tenth."""
        tenth = max(1, len(self.samples_ns) // 10)
        first = statistics.median(self.samples_ns[:tenth])
        return statistics.median(self.samples_ns[-tenth:]) / first


def time_series(
    steps: list[Step],
    warmup: int,
    run: Callable[[int, Step], object],
    undo: Callable[[int, Step], None],
    prepare: Callable[[int, Step], None] | None = None,
) -> list[int]:
    """Time ``run`` on each step after the first ``warmup``; ``prepare``, ``undo`` are untimed."""
    clock = time.perf_counter_ns
    samples = []
    for i, step in enumerate(steps):
        if i == warmup:
            gc.collect()
        if prepare is not None:
            prepare(i, step)
        t0 = clock()
        run(i, step)
        t1 = clock()
        undo(i, step)
        if i >= warmup:
            samples.append(t1 - t0)
    return samples


def bench_raw(store: ox.Store, steps: list[Step], warmup: int) -> list[int]:
    def undo(i: int, step: Step) -> None:
        for quad in step.quads:
            store.remove(quad)

    return time_series(steps, warmup, lambda i, s: store.extend(s.quads), undo)


def bench_raw_ask(store: ox.Store, steps: list[Step], warmup: int) -> list[int]:
    """The ASK hook's query alone, with the delta staged by hand, untimed, as kgc stages it.

    Each step stages under its own graph name, as kgc does: pyoxigraph keeps removed quads as dead
    index entries, so a reused graph name would make every later scan of it slower.
    """
    documented = "urn:kgc:delta:additions"
    staged: list[ox.Quad] = []
    query = [""]

    def prepare(i: int, step: Step) -> None:
        graph = ox.NamedNode(f"{documented}:{i}")
        staged[:] = [
            *step.quads,
            *(ox.Quad(q.subject, q.predicate, q.object, graph) for q in step.quads),
        ]
        store.extend(staged)
        query[0] = ASK_POINT_HAS_EQUIPMENT.replace(f"<{documented}>", f"<{graph.value}>")

    def run(i: int, step: Step) -> None:
        if bool(store.query(query[0])):
            raise RuntimeError("the ASK hook's query fired on a valid delta")

    def undo(i: int, step: Step) -> None:
        for quad in staged:
            store.remove(quad)

    return time_series(steps, warmup, run, undo, prepare)


def bench_kgc(tm: TransactionManager, steps: list[Step], warmup: int) -> list[int]:
    def run(i: int, step: Step) -> None:
        if not tm.apply(step.add, actor="bench").committed:
            raise RuntimeError("a benchmark transaction was refused")

    def undo(i: int, step: Step) -> None:
        if not tm.apply(step.undo, actor="bench").committed:
            raise RuntimeError("a benchmark undo was refused")

    return time_series(steps, warmup, run, undo)


def install(hooks: HookManager, config: str) -> None:
    for hook in hooks.list():
        hooks.remove(hook.name)
    for hook in hooks_for(config):
        hooks.register(hook)


CONFIGS = [
    ("none", "kgc apply, no hooks"),
    ("ask", "kgc apply, 1 ASK hook"),
    ("ten", "kgc apply, 10 hooks"),
    ("shacl", "kgc apply, 1 SHACL hook"),
]
LABELS = {
    "raw": "raw pyoxigraph extend",
    "raw-ask": "raw pyoxigraph ASK query",
    **dict(CONFIGS),
}
ROWS = ["raw", "raw-ask", *(config for config, _ in CONFIGS)]


def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_row(size: int, config: str, args: argparse.Namespace) -> Result:
    """One row, on a freshly built graph (``run_size`` calls it in a fresh process)."""
    label, where = LABELS[config], _size(size)
    t = time.perf_counter()
    store, campus = build_graph(size, args.seed, args.load)
    built = time.perf_counter() - t
    shacl = config == "shacl"
    iters = args.shacl_iterations if shacl else args.iterations
    warm = args.shacl_warmup if shacl else args.warmup
    steps = make_steps(campus, warm + iters, args.seed + 1, "bench")
    if config in ("raw", "raw-ask"):
        _log(args.quiet, f"{where}: {label}: graph built in {built:.1f} s")
        bench = bench_raw if config == "raw" else bench_raw_ask
        t = time.perf_counter()
        result = Result(size, config, bench(store.raw, steps, warm))
        if len(store) != size:
            raise RuntimeError(f"{label}: the graph did not return to its starting size")
    else:
        t = time.perf_counter()
        hooks = HookManager()
        tm = TransactionManager(store, hooks)
        digest = time.perf_counter() - t
        _log(
            args.quiet, f"{where}: {label}: graph built in {built:.1f} s, digest in {digest:.1f} s"
        )
        install(hooks, config)
        start_digest = tm.state_digest
        if config != "none" and tm.apply(bad_delta(campus, config)).status != "vetoed":
            raise RuntimeError(f"{label}: a policy-breaking delta was not vetoed")
        t = time.perf_counter()
        result = Result(size, config, bench_kgc(tm, steps, warm))
        if tm.state_digest != start_digest or len(store) != size:
            raise RuntimeError(f"{label}: the graph did not return to its starting state")
    _log(args.quiet, f"{where}: {label}: {warm} + {iters} calls in {time.perf_counter() - t:.1f} s")
    return result


def run_size(size: int, args: argparse.Namespace) -> list[Result]:
    """Every row in a process of its own, forked from this still small one: no row inherits
    another's graph, history or heap (a heap that held a 1M-triple store makes pyoxigraph's later
    allocations, and so its queries, slower)."""
    if args.in_process:
        return [run_row(size, config, args) for config in args.rows]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    results = []
    for config in args.rows:
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            results.append(pool.submit(run_row, size, config, args).result())
    return results


# Report -------------------------------------------------------------------------------------

P50_TARGET_US = 100.0
P99_TARGET_US = 1000.0
GROWTH = 1.5


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    def cell(self) -> str:
        return f"<={self.limit:,.0f} {'PASS' if self.ok else 'FAIL'}"


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def checks_for(results: list[Result]) -> dict[tuple[int, str], tuple[Check | None, Check | None]]:
    out: dict[tuple[int, str], tuple[Check | None, Check | None]] = {}
    asks = {r.size: r for r in results if r.config == "ask"}
    for size, r in asks.items():
        if size == 10_000:
            out[(size, "ask")] = (
                Check("1 ASK hook, 10k: p50", r.p50, P50_TARGET_US),
                Check("1 ASK hook, 10k: p99", r.p99, P99_TARGET_US),
            )
        elif 10_000 in asks:
            base = asks[10_000]
            out[(size, "ask")] = (
                Check(
                    f"1 ASK hook, {_size(size)}: p50 within {GROWTH}x of 10k",
                    r.p50,
                    GROWTH * base.p50,
                ),
                Check(
                    f"1 ASK hook, {_size(size)}: p99 within {GROWTH}x of 10k",
                    r.p99,
                    GROWTH * base.p99,
                ),
            )
    return out


def render(results: list[Result]) -> tuple[str, list[Check]]:
    checks = checks_for(results)
    raw = {r.size: r for r in results if r.config == "raw"}
    head = (
        f"{'size':>5}  {'configuration':<24}  {'n':>5}  "
        f"{'p50 us':>9}  {'p50 target':<14}  {'p99 us':>9}  {'p99 target':<14}  "
        f"{'p50/raw':>8}  {'p99/raw':>8}  {'drift':>6}"
    )
    lines = [head, "-" * len(head)]
    flat: list[Check] = []
    for r in results:
        c50, c99 = checks.get((r.size, r.config), (None, None))
        flat += [c for c in (c50, c99) if c is not None]
        base = raw.get(r.size, r)
        lines.append(
            f"{_size(r.size):>5}  {LABELS[r.config]:<24}  {len(r.samples_ns):>5}  "
            f"{r.p50:>9.1f}  {c50.cell() if c50 else '-':<14}  "
            f"{r.p99:>9.1f}  {c99.cell() if c99 else '-':<14}  "
            f"{r.p50 / base.p50:>7.1f}x  {r.p99 / base.p99:>7.1f}x  {r.drift:>5.2f}x"
        )
    return "\n".join(lines), flat


def print_machine(title: str) -> None:
    """The title, versions, machine and load average lines every benchmark starts with."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print(title)
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"pyoxigraph {ox.__version__}, kgc {kgc.__version__}"
    )
    print(
        f"machine: {platform.machine()}, {cores} cores ({usable} usable), "
        f"{platform.system()} {platform.release()}"
    )
    if hasattr(os, "getloadavg"):
        print("load average at start: {:.2f} {:.2f} {:.2f} (1, 5, 15 min)".format(*os.getloadavg()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k triples only, fewer iterations")
    parser.add_argument("--sizes", help="comma-separated graph sizes (default 10000,1000000)")
    parser.add_argument("--iterations", type=int, help="timed applies per row (default 2000)")
    parser.add_argument("--warmup", type=int, help="untimed applies first (default 200)")
    parser.add_argument("--shacl-iterations", type=int, help="timed SHACL applies (default 200)")
    parser.add_argument("--shacl-warmup", type=int, help="untimed SHACL applies (default 20)")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument(
        "--load",
        choices=["text", "python"],
        default="text",
        help="bulk load generated N-Triples text (default) or Python Quad objects",
    )
    parser.add_argument(
        "--rows",
        type=lambda text: text.split(","),
        default=ROWS,
        help=f"comma-separated rows to run, of {','.join(ROWS)} (default: all)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run every row in this process (for profiling)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown row(s): {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")
    quick = args.quick
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000] if quick else [10_000, 1_000_000])
    )
    defaults = {
        "iterations": 500 if quick else 2000,
        "warmup": 50 if quick else 200,
        "shacl_iterations": 50 if quick else 200,
        "shacl_warmup": 5 if quick else 20,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    print_machine("kgc transaction benchmark")
    print(
        f"store: pyoxigraph in memory, bulk loaded from {args.load}; seed {args.seed}; "
        f"{args.iterations} timed calls per row after {args.warmup} warm-up "
        f"({args.shacl_iterations} after {args.shacl_warmup} for SHACL); times in microseconds"
    )
    print(flush=True)

    started = time.perf_counter()
    results: list[Result] = []
    for size in sizes:
        results += run_size(size, args)
    table, checks = render(results)
    print(table)
    print()
    print("targets:")
    for check in checks:
        verdict = "PASS" if check.ok else "FAIL"
        print(f"  {verdict}  {check.name}: {check.value:,.1f} us (target <= {check.limit:,.1f} us)")
    if 10_000 not in sizes:
        print("  n/a   1 ASK hook, 10k: not measured, and the 1M targets are relative to it")
    elif 1_000_000 not in sizes:
        print("  n/a   1 ASK hook, 1M: not measured (--quick or --sizes)")
    if hasattr(os, "getloadavg"):
        print("\nload average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"total run time {time.perf_counter() - started:.0f} s")
    return 1 if args.strict and not all(c.ok for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Condition kinds count, threshold, delta, window and the combinators, on their edges.

Every test runs through a real ``KnowledgeEngine`` (in-memory store, strict mode unless it says
otherwise); window tests inject the transaction manager's clock.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kgc import (
    Delta,
    Hook,
    HookDefinitionError,
    InputError,
    KnowledgeEngine,
    Receipt,
    TransactionManager,
    load_hook_file,
)
from kgc.hooks import (
    Combinator,
    Condition,
    ConditionResult,
    Count,
    DeltaChange,
    EvalContext,
    SparqlAsk,
    Threshold,
    Window,
)

BRICK = "https://brickschema.org/schema/Brick#"
PREFIX = f"@prefix brick: <{BRICK}> .\n@prefix ex: <urn:ex:> .\n"
VALUE = f"{BRICK}value"
ADDED_POINTS = "SELECT ?p WHERE { GRAPH <urn:kgc:delta:additions> { ?p a ?class } }"
ADDED_VALUES = "SELECT ?v WHERE { GRAPH <urn:kgc:delta:additions> { ?s <urn:ex:flow> ?v } }"
RETIRED = 'SELECT ?e WHERE { GRAPH <urn:kgc:delta:additions> { ?e <urn:ex:status> "retired" } }'
NO_BAD = "ASK { GRAPH <urn:kgc:delta:additions> { <urn:ex:bad> ?p ?o } }"
TRUE = SparqlAsk("ASK {}")
FALSE = SparqlAsk("ASK { FILTER(false) }")


def _apply(
    engine: KnowledgeEngine, additions: str = "", removals: str = "", actor: str = "a"
) -> Receipt:
    delta = Delta.from_text(PREFIX + additions, PREFIX + removals, format="turtle")
    return engine.apply(delta, actor)


def _reason(receipt: Receipt, hook: str) -> str:
    return next(v.reason for v in receipt.hooks if v.hook == hook)


def _points(n: int, start: int = 0) -> str:
    return "".join(f"ex:p{start + i} a brick:Temperature_Sensor .\n" for i in range(n))


# count ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "rows", "fires"),
    [
        (">", 3, 4, True),
        (">", 3, 3, False),
        (">=", 3, 3, True),
        ("<", 1, 0, True),
        ("<=", 0, 1, False),
        ("==", 2, 2, True),
        ("!=", 2, 2, False),
    ],
)
def test_count_compares_the_number_of_rows(
    engine: KnowledgeEngine, op: str, value: float, rows: int, fires: bool
) -> None:
    engine.hooks.register(Hook("too-many", Count(ADDED_POINTS, op, value)))

    receipt = _apply(engine, _points(rows) + "ex:x ex:label 'x' .")

    assert receipt.committed is not fires
    if fires:
        assert (
            receipt.hooks[0].reason
            == f"condition of hook 'too-many' fired ({rows} rows {op} {value})"
        )


def test_count_of_an_empty_result_is_zero(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("needs-a-point", Count(ADDED_POINTS, "==", 0)))

    assert _apply(engine, "ex:x ex:label 'x' .").vetoed_by == ["needs-a-point"]
    assert _apply(engine, _points(1)).committed


def test_count_refuses_an_unknown_operator_naming_the_field() -> None:
    with pytest.raises(
        HookDefinitionError, match=r"field 'op' must be one of <, <=, ==, !=, >=, >; got '=>'"
    ):
        Count(ADDED_POINTS, "=>", 1)


def test_count_refuses_an_ask_query() -> None:
    with pytest.raises(HookDefinitionError, match="needs a SELECT query"):
        Count("ASK {}", ">", 1)


# threshold --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aggregate", "op", "value", "fires"),
    [
        ("sum", ">", 59, True),
        ("sum", ">", 60, False),
        ("avg", "==", 20, True),
        ("min", "<", 10.5, True),
        ("min", "<", 10, False),
        ("max", ">=", 30, True),
        ("count", "==", 3, True),
    ],
)
def test_threshold_aggregates_one_variable(
    engine: KnowledgeEngine, aggregate: str, op: str, value: float, fires: bool
) -> None:
    engine.hooks.register(Hook("flow", Threshold(ADDED_VALUES, aggregate, "v", op, value)))

    receipt = _apply(engine, "ex:a ex:flow 10 . ex:b ex:flow 20.0 . ex:c ex:flow 3.0e1 .")

    assert receipt.committed is not fires


def test_threshold_on_an_empty_result_sum_is_zero_and_avg_does_not_fire(
    engine: KnowledgeEngine,
) -> None:
    engine.hooks.register(Hook("sum-zero", Threshold(ADDED_VALUES, "sum", "v", "==", 0)))
    engine.hooks.register(Hook("avg-low", Threshold(ADDED_VALUES, "avg", "v", "<", 100)))
    engine.hooks.register(Hook("max-low", Threshold(ADDED_VALUES, "max", "v", "<", 100)))

    receipt = _apply(engine, "ex:x ex:label 'x' .")

    assert receipt.vetoed_by == ["sum-zero"]
    assert {v.hook: v.verdict for v in receipt.hooks} == {
        "sum-zero": "veto",
        "avg-low": "pass",
        "max-low": "pass",
    }


def test_threshold_refuses_a_non_numeric_value_naming_variable_and_value(
    engine: KnowledgeEngine,
) -> None:
    engine.hooks.register(Hook("flow", Threshold(ADDED_VALUES, "sum", "v", ">", 100)))

    receipt = _apply(engine, "ex:a ex:flow 10 . ex:b ex:flow 'high' .")

    assert receipt.status == "error"
    assert receipt.hooks[0].verdict == "error"
    assert '?v has the non-numeric value "high"' in receipt.hooks[0].reason
    assert len(engine) == 0


def test_threshold_error_does_not_refuse_outside_strict_mode() -> None:
    engine = KnowledgeEngine(strict_mode=False)
    engine.hooks.register(Hook("flow", Threshold(ADDED_VALUES, "sum", "v", ">", 100)))

    receipt = _apply(engine, "ex:b ex:flow 'high' .")

    assert receipt.committed
    assert receipt.hooks[0].verdict == "error"


def test_threshold_skips_unbound_rows(engine: KnowledgeEngine) -> None:
    query = (
        "SELECT ?s ?v WHERE { GRAPH <urn:kgc:delta:additions> { ?s a ?c } "
        "OPTIONAL { ?s <urn:ex:flow> ?v } }"
    )
    engine.hooks.register(Hook("flow", Threshold(query, "count", "v", "==", 1)))

    assert not _apply(engine, "ex:a a ex:Meter ; ex:flow 5 . ex:b a ex:Meter .").committed


def test_threshold_refuses_a_variable_the_query_does_not_select() -> None:
    with pytest.raises(HookDefinitionError, match=r"field 'variable': \?w is not selected"):
        Threshold(ADDED_VALUES, "sum", "w", ">", 1)


def test_threshold_refuses_an_unknown_aggregate() -> None:
    with pytest.raises(HookDefinitionError, match="field 'aggregate' must be one of"):
        Threshold(ADDED_VALUES, "median", "v", ">", 1)


# delta ------------------------------------------------------------------------------------------

SETPOINT = "ex:sp1 a brick:Zone_Air_Temperature_Setpoint ; brick:value {} .\n"


def _setpoint(engine: KnowledgeEngine, old: str, new: str) -> Receipt:
    return _apply(engine, f"ex:sp1 brick:value {new} .", f"ex:sp1 brick:value {old} .")


@pytest.mark.parametrize(
    ("change", "by", "new", "fires"),
    [
        ("increase", 5, "26", True),
        ("increase", 5, "25", False),
        ("increase", 0, "20.5", True),
        ("increase", 0, "15", False),
        ("decrease", 0, "15", True),
        ("decrease", 4, "16", False),
        ("modify", 0, "21", True),
        ("any", 0, "21", True),
    ],
)
def test_delta_compares_the_baseline_with_the_proposed_value(
    engine: KnowledgeEngine, change: str, by: float, new: str, fires: bool
) -> None:
    _apply(engine, SETPOINT.format(20))
    engine.hooks.register(Hook("sp", DeltaChange((VALUE,), change, by)))

    receipt = _setpoint(engine, "20", new)

    assert receipt.committed is not fires
    if fires:
        assert f"<urn:ex:sp1> <{VALUE}>: " in receipt.hooks[0].reason


def test_delta_first_value_is_a_change_but_not_a_modification(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("modified", DeltaChange((VALUE,), "modify")))
    engine.hooks.register(Hook("increased", DeltaChange((VALUE,), "increase")))
    engine.hooks.register(Hook("changed", DeltaChange((VALUE,), "any")))

    receipt = _apply(engine, SETPOINT.format(20))

    assert receipt.vetoed_by == ["changed"]
    assert "(none) -> " in _reason(receipt, "changed")


def test_delta_removing_a_value_is_any_change_only(engine: KnowledgeEngine) -> None:
    _apply(engine, SETPOINT.format(20))
    for change in ("any", "modify", "decrease"):
        engine.hooks.register(Hook(change, DeltaChange((VALUE,), change)))

    receipt = _apply(engine, removals="ex:sp1 brick:value 20 .")

    assert receipt.vetoed_by == ["any"]


def test_delta_baseline_is_the_committed_state_not_the_delta_alone(engine: KnowledgeEngine) -> None:
    """Adding a second value without removing the first leaves two values: not comparable."""
    _apply(engine, SETPOINT.format(20))
    engine.hooks.register(Hook("up", DeltaChange((VALUE,), "increase")))
    engine.hooks.register(Hook("modified", DeltaChange((VALUE,), "modify")))

    receipt = _apply(engine, "ex:sp1 brick:value 30 .")

    assert receipt.vetoed_by == ["modified"]
    integer = "^^<http://www.w3.org/2001/XMLSchema#integer>"
    assert f'"20"{integer} -> "20"{integer}, "30"{integer}' in _reason(receipt, "modified")


def test_delta_types_select_the_subjects(engine: KnowledgeEngine) -> None:
    _apply(engine, SETPOINT.format(20) + "ex:t1 a brick:Temperature_Sensor ; brick:value 20 .")
    setpoints = (f"{BRICK}Zone_Air_Temperature_Setpoint",)
    engine.hooks.register(Hook("sp", DeltaChange((VALUE,), "increase", 0, setpoints)))

    sensor = _apply(engine, "ex:t1 brick:value 40 .", "ex:t1 brick:value 20 .")
    setpoint = _setpoint(engine, "20", "40")

    assert sensor.committed
    assert setpoint.vetoed_by == ["sp"]


def test_delta_refuses_a_non_numeric_value_naming_the_key(engine: KnowledgeEngine) -> None:
    _apply(engine, SETPOINT.format(20))
    engine.hooks.register(Hook("sp", DeltaChange((VALUE,), "increase")))

    receipt = _setpoint(engine, "20", '"warm"')

    assert receipt.status == "error"
    assert f'<urn:ex:sp1> <{VALUE}> has the non-numeric value "warm"' in receipt.hooks[0].reason


def test_delta_ignores_other_predicates(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("sp", DeltaChange((VALUE,), "any")))

    assert _apply(engine, "ex:sp1 ex:label 'x' .").committed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predicates": ()}, "field 'predicates' must name a predicate"),
        ({"change": "grow"}, "field 'change' must be one of any, increase, decrease, modify"),
        ({"by": -1.0}, "field 'by' must be >= 0"),
        ({"types": ("not an iri",)}, "field 'types': 'not an iri' is not an IRI"),
    ],
)
def test_delta_refuses_bad_definitions(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"predicates": (VALUE,), **kwargs}
    with pytest.raises(HookDefinitionError, match=message):
        DeltaChange(**args)  # type: ignore[arg-type]


# window -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _clocked(engine: KnowledgeEngine, now: float = 1000.0) -> Clock:
    clock = Clock(now)
    engine.transactions.clock = clock
    return clock


def _retire(engine: KnowledgeEngine, n: int = 1, actor: str = "a", start: int = 0) -> Receipt:
    body = "".join(f'ex:e{start + i} ex:status "retired" .\n' for i in range(n))
    return _apply(engine, body, actor=actor)


def test_sliding_window_excludes_an_event_exactly_at_its_start(engine: KnowledgeEngine) -> None:
    clock = _clocked(engine, 1000.0)
    engine.hooks.register(Hook("burst", Window(RETIRED, 600, ">", 2, "sliding")))
    assert _retire(engine, 2).committed  # two rows at t=1000

    clock.now = 1599.999
    assert _retire(engine, 1, start=10).vetoed_by == ["burst"]  # 2 + 1 > 2
    clock.now = 1600.0
    assert _retire(engine, 1, start=20).committed  # t=1000 is exactly now - 600: out


def test_sliding_window_includes_an_event_exactly_at_its_end(engine: KnowledgeEngine) -> None:
    clock = _clocked(engine, 1000.0)
    window = Window(RETIRED, 600, ">", 2, "sliding")
    engine.hooks.register(Hook("burst", window))
    _retire(engine, 2)

    receipt = _retire(engine, 1, start=5)  # same instant as the previous commit

    assert receipt.vetoed_by == ["burst"]
    assert "3 rows in the sliding 600 s window > 2" in receipt.hooks[0].reason
    assert window.contains(clock.now, clock.now)
    assert not window.contains(clock.now, clock.now - 600)


def test_tumbling_window_starts_at_a_multiple_of_its_length(engine: KnowledgeEngine) -> None:
    clock = _clocked(engine, 1199.999)
    engine.hooks.register(Hook("burst", Window(RETIRED, 600, ">=", 3, "tumbling")))
    _retire(engine, 1)  # window [600, 1200)
    clock.now = 1200.0
    _retire(engine, 1, start=1)  # opens window [1200, 1800)

    clock.now = 1799.999
    assert _retire(engine, 1, start=2).committed  # 1200 and now: 2 rows; 1199.999 is out
    assert _retire(engine, 1, start=3).vetoed_by == ["burst"]  # 3 rows
    clock.now = 1800.0
    assert _retire(engine, 2, start=4).committed  # a new window: only this transaction


def test_window_bounds_are_documented_intervals() -> None:
    sliding = Window(RETIRED, 600, ">", 1, "sliding")
    tumbling = Window(RETIRED, 600, ">", 1, "tumbling")

    assert sliding.bounds(1000.0) == (400.0, 1000.0)
    assert tumbling.bounds(1000.0) == (600.0, 1200.0)
    assert tumbling.contains(1000.0, 600.0) and not tumbling.contains(1000.0, 1200.0)


def test_window_per_actor_counts_only_that_actors_transactions(engine: KnowledgeEngine) -> None:
    _clocked(engine)
    engine.hooks.register(Hook("burst", Window(RETIRED, 600, ">", 2, "sliding", per_actor=True)))
    _retire(engine, 2, actor="alice")

    assert _retire(engine, 1, actor="bob", start=5).committed
    assert _retire(engine, 1, actor="alice", start=6).vetoed_by == ["burst"]


def test_window_measure_transactions_counts_matching_transactions(
    engine: KnowledgeEngine,
) -> None:
    _clocked(engine)
    window = Window(RETIRED, 600, ">", 2, "sliding", measure="transactions")
    engine.hooks.register(Hook("burst", window))
    _retire(engine, 5)
    _apply(engine, "ex:x ex:label 'not a retirement' .")

    assert _retire(engine, 1, start=10).committed  # 2 matching transactions, not 6 rows
    assert _retire(engine, 1, start=20).vetoed_by == ["burst"]


def test_window_forgets_what_the_bounded_history_dropped(engine: KnowledgeEngine) -> None:
    engine.transactions = TransactionManager(
        engine.store, engine.hooks, clock=Clock(), history_size=2
    )
    engine.hooks.register(Hook("burst", Window(RETIRED, 600, ">", 3, "sliding")))

    receipts = [_retire(engine, 1, start=start) for start in range(4)]

    assert all(r.committed for r in receipts)  # the fourth saw 2 remembered + itself = 3
    assert [e.seq for e in engine.transactions.history] == [3, 4]


def test_window_does_not_count_vetoed_transactions(engine: KnowledgeEngine) -> None:
    _clocked(engine)
    engine.hooks.register(Hook("burst", Window(RETIRED, 600, ">", 2, "sliding")))
    engine.hooks.register(Hook("no-bad", SparqlAsk(NO_BAD)))
    for start in range(3):
        assert not _apply(engine, f'ex:e{start} ex:status "retired" . ex:bad ex:p 1 .').committed

    assert _retire(engine, 2).committed
    assert len(engine.transactions.history) == 1


def test_history_keeps_deltas_only_while_a_hook_reads_them(engine: KnowledgeEngine) -> None:
    _clocked(engine)
    _retire(engine, 3)  # no window hook yet: remembered without its delta
    window = Window(RETIRED, 600, ">", 3, "sliding")
    engine.hooks.register(Hook("burst", Combinator("any", (FALSE, window))))

    assert _retire(engine, 3, start=10).committed  # the first three measure 0
    first, second = engine.transactions.history
    assert (first.additions, first.matches) == ((), {window.digest: 0})
    assert len(second.additions) == 3
    assert _retire(engine, 1, start=20).vetoed_by == ["burst"]  # 3 + 1 > 3
    assert second.matches == {window.digest: 3}


def test_history_size_zero_keeps_nothing(engine: KnowledgeEngine) -> None:
    engine.transactions = TransactionManager(engine.store, engine.hooks, history_size=0)
    _retire(engine)

    assert list(engine.transactions.history) == []


def test_negative_history_size_is_refused(engine: KnowledgeEngine) -> None:
    with pytest.raises(InputError, match="history_size must be >= 0, got -1"):
        TransactionManager(engine.store, history_size=-1)


def test_window_refuses_bad_definitions() -> None:
    with pytest.raises(HookDefinitionError, match="field 'seconds' must be a positive number"):
        Window(RETIRED, 0, ">", 1)
    with pytest.raises(HookDefinitionError, match="field 'mode' must be one of sliding, tumbling"):
        Window(RETIRED, 60, ">", 1, "hopping")
    with pytest.raises(HookDefinitionError, match="field 'measure' must be one of rows"):
        Window(RETIRED, 60, ">", 1, measure="sum")


# combinators ------------------------------------------------------------------------------------


class Boom:
    """A condition that raises: evaluating it means short-circuiting failed."""

    kind = "test-boom"
    text = "boom"
    digest = hashlib.sha256(b"boom").hexdigest()

    def evaluate(self, ctx: EvalContext) -> ConditionResult:
        raise RuntimeError("evaluated")


def _fires(engine: KnowledgeEngine, condition: Condition) -> bool:
    ctx = EvalContext(engine.store)
    return condition.evaluate(ctx).fired


@pytest.mark.parametrize(
    ("kind", "children", "k", "fires"),
    [
        ("all", (TRUE, TRUE), 0, True),
        ("all", (TRUE, FALSE), 0, False),
        ("any", (FALSE, TRUE), 0, True),
        ("any", (FALSE, FALSE), 0, False),
        ("not", (FALSE,), 0, True),
        ("not", (TRUE,), 0, False),
        ("at-least-k", (TRUE, FALSE, TRUE), 2, True),
        ("at-least-k", (TRUE, FALSE, FALSE), 2, False),
        ("at-least-k", (TRUE, TRUE, TRUE), 3, True),
    ],
)
def test_combinators(
    engine: KnowledgeEngine, kind: str, children: tuple[Condition, ...], k: int, fires: bool
) -> None:
    assert _fires(engine, Combinator(kind, children, k)) is fires


def test_nested_combinators(engine: KnowledgeEngine) -> None:
    inner = Combinator("all", (TRUE, FALSE))
    nested = Combinator("any", (inner, Combinator("not", (inner,))))

    assert _fires(engine, nested)
    assert not _fires(engine, Combinator("not", (nested,)))


def test_combinators_stop_once_decided(engine: KnowledgeEngine) -> None:
    assert _fires(engine, Combinator("any", (TRUE, Boom())))
    assert not _fires(engine, Combinator("all", (FALSE, Boom())))
    assert _fires(engine, Combinator("at-least-k", (TRUE, TRUE, Boom()), 2))
    assert not _fires(engine, Combinator("at-least-k", (FALSE, FALSE, Boom()), 2))
    with pytest.raises(RuntimeError, match="evaluated"):
        _fires(engine, Combinator("any", (FALSE, Boom())))


def test_combinator_digest_follows_nested_children() -> None:
    one = Combinator("any", (Combinator("all", (TRUE, FALSE)),))
    same = Combinator("any", (Combinator("all", (TRUE, FALSE)),))
    other = Combinator("any", (Combinator("all", (TRUE, TRUE)),))

    assert one.digest == same.digest
    assert one.digest != other.digest
    assert TRUE.digest in Combinator("all", (TRUE,)).text


@pytest.mark.parametrize(
    ("kind", "children", "k", "message"),
    [
        ("not", (TRUE, FALSE), 0, "'not' takes exactly one condition, got 2"),
        ("any", (), 0, "'any' needs at least one condition"),
        (
            "at-least-k",
            (TRUE,),
            2,
            r"field 'k' must be between 1 and the number of conditions \(1\)",
        ),
        ("all", (TRUE,), 1, "field 'k' is used only by 'at-least-k'"),
        ("some", (TRUE,), 0, "field 'kind' must be one of all, any, not, at-least-k"),
    ],
)
def test_combinators_refuse_bad_definitions(
    kind: str, children: tuple[Condition, ...], k: int, message: str
) -> None:
    with pytest.raises(HookDefinitionError, match=message):
        Combinator(kind, children, k)


# hook files -------------------------------------------------------------------------------------


def _ref(folder: Path, name: str, query: str) -> str:
    (folder / name).write_text(query, encoding="utf-8")
    digest = hashlib.sha256(query.encode("utf-8")).hexdigest()
    return (
        f'{{ uri = "file:{name}", sha256 = "{digest}", media_type = "application/sparql-query" }}'
    )


def _hook_file(folder: Path, name: str, when: str) -> Path:
    path = folder / f"{name}.hook.toml"
    path.write_text(f'name = "{name}"\nmessage = "refused by {name}"\n{when}', encoding="utf-8")
    return path


def test_count_hook_file(tmp_path: Path, engine: KnowledgeEngine) -> None:
    ref = _ref(tmp_path, "points.rq", ADDED_POINTS)
    engine.hooks.load(
        _hook_file(
            tmp_path, "few-points", f'[when]\nkind = "count"\nop = ">"\nvalue = 2\nref = {ref}\n'
        )
    )

    assert _apply(engine, _points(2)).committed
    assert _apply(engine, _points(3, start=10)).vetoed_by == ["few-points"]


def test_threshold_hook_file(tmp_path: Path, engine: KnowledgeEngine) -> None:
    ref = _ref(tmp_path, "flow.rq", ADDED_VALUES)
    when = (
        '[when]\nkind = "threshold"\naggregate = "max"\nvariable = "v"\nop = ">"\n'
        f"value = 100.5\nref = {ref}\n"
    )
    hook = load_hook_file(_hook_file(tmp_path, "flow", when))
    engine.hooks.register(hook)

    assert isinstance(hook.when, Threshold)
    assert _apply(engine, "ex:a ex:flow 100.5 .").committed
    assert _apply(engine, "ex:b ex:flow 101 .").vetoed_by == ["flow"]


def test_delta_hook_file(tmp_path: Path, engine: KnowledgeEngine) -> None:
    when = (
        f'[when]\nkind = "delta"\nchange = "increase"\nby = 2\npredicates = ["{VALUE}"]\n'
        f'types = ["{BRICK}Zone_Air_Temperature_Setpoint"]\n'
    )
    _apply(engine, SETPOINT.format(20))
    engine.hooks.load(_hook_file(tmp_path, "setpoint-jump", when))

    assert _setpoint(engine, "20", "22").committed
    assert _setpoint(engine, "22", "24.5").vetoed_by == ["setpoint-jump"]


def test_window_hook_file(tmp_path: Path, engine: KnowledgeEngine) -> None:
    ref = _ref(tmp_path, "retired.rq", RETIRED)
    when = (
        '[when]\nkind = "window"\nmode = "sliding"\nseconds = 600\nop = ">"\nvalue = 2\n'
        f'per_actor = true\nmeasure = "rows"\nref = {ref}\n'
    )
    clock = _clocked(engine)
    engine.hooks.load(_hook_file(tmp_path, "retirement-burst", when))
    _retire(engine, 2)

    assert _retire(engine, 1, start=5).vetoed_by == ["retirement-burst"]
    clock.now += 600
    assert _retire(engine, 1, start=6).committed


def test_nested_combinator_hook_file(tmp_path: Path, engine: KnowledgeEngine) -> None:
    points, flow = (
        _ref(tmp_path, "points.rq", ADDED_POINTS),
        _ref(tmp_path, "flow.rq", ADDED_VALUES),
    )
    when = f"""
[when]
kind = "at-least-k"
k = 2

[[when.conditions]]
kind = "count"
op = ">="
value = 1
ref = {points}

[[when.conditions]]
kind = "not"
[[when.conditions.conditions]]
kind = "threshold"
aggregate = "count"
variable = "v"
op = ">"
value = 0
ref = {flow}

[[when.conditions]]
kind = "delta"
change = "any"
predicates = ["{VALUE}"]
"""
    hook = load_hook_file(_hook_file(tmp_path, "two-of-three", when))
    engine.hooks.register(hook)

    assert isinstance(hook.when, Combinator)
    assert _apply(engine, "ex:m ex:flow 5 . ex:x brick:value 1 .").committed  # 1 of 3
    assert _apply(engine, _points(1) + "ex:n ex:flow 5 .").committed  # 1 of 3
    assert _apply(engine, _points(1, start=5)).vetoed_by == ["two-of-three"]  # point, no flow


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ('kind = "count"\nop = ">"\nREF', r"field 'when\.value': Field required"),
        ('kind = "count"\nop = "=>"\nvalue = 1\nREF', r"field 'when\.op': Input should be '<'"),
        (
            'kind = "count"\nop = ">"\nvalue = 1\nk = 2\nREF',
            r"field 'when\.k': not used by a 'count'",
        ),
        (
            'kind = "threshold"\naggregate = "median"\nvariable = "v"\nop = ">"\nvalue = 1\nREF',
            r"field 'when\.aggregate'",
        ),
        (
            'kind = "threshold"\naggregate = "sum"\nop = ">"\nvalue = 1\nREF',
            r"field 'when\.variable': Field required",
        ),
        ('kind = "delta"\nchange = "any"', r"field 'when\.predicates': Field required"),
        (
            'kind = "delta"\nchange = "any"\npredicates = []',
            r"field 'when\.predicates': List should have at least 1 item",
        ),
        (
            'kind = "delta"\nchange = "any"\npredicates = ["urn:p"]\nREF',
            r"field 'when\.ref': not used by a 'delta'",
        ),
        (
            'kind = "window"\nseconds = 60\nop = ">"\nvalue = 1\nREF',
            r"field 'when\.mode': Field required",
        ),
        (
            'kind = "window"\nmode = "sliding"\nseconds = -1\nop = ">"\nvalue = 1\nREF',
            r"field 'when\.seconds': Input should be greater than 0",
        ),
        ('kind = "not"', r"field 'when\.conditions': Field required"),
        (
            'kind = "count"\nop = ">"\nvalue = "5"\nREF',
            r"field 'when\.value\.int': Input should be a valid integer",
        ),
        (
            'kind = "count"\nop = ">"\nvalue = true\nREF',
            r"field 'when\.value\.int': Input should be a valid integer",
        ),
        (
            'kind = "at-least-k"\nk = 3\n[[when.conditions]]\nkind = "count"\nREF',
            r"field 'when\.conditions\.0\.op': Field required",
        ),
        (
            'kind = "at-least-k"\nk = 3\n[[when.conditions]]\nkind = "count"\nop = ">"\n'
            "value = 0\nREF",
            r"field 'k' must be between 1 and the number of conditions \(1\)",
        ),
        (
            'kind = "any"\n[[when.conditions]]\nkind = "count"\nop = ">"\nvalue = 0\n'
            'scope = "graph"\nREF',
            r"field 'when\.conditions\.0\.scope': not used by a 'count'",
        ),
    ],
)
def test_bad_condition_definitions_are_refused_naming_the_field(
    tmp_path: Path, when: str, message: str
) -> None:
    text = "[when]\n" + when.replace("REF", "ref = " + _ref(tmp_path, "points.rq", ADDED_POINTS))
    path = _hook_file(tmp_path, "bad", text + "\n")

    with pytest.raises(HookDefinitionError, match=message):
        load_hook_file(path)


def test_json_hook_file_with_a_combinator(tmp_path: Path, engine: KnowledgeEngine) -> None:
    when = {
        "kind": "not",
        "conditions": [{"kind": "delta", "change": "any", "predicates": [f"{BRICK}hasUnit"]}],
    }
    path = tmp_path / "unit-required.hook.json"
    path.write_text(json.dumps({"name": "unit-required", "when": when}), encoding="utf-8")
    engine.hooks.load(path)

    assert _apply(engine, "ex:t1 brick:hasUnit ex:DEG_C .").committed
    assert _apply(engine, "ex:t2 a brick:Temperature_Sensor .").vetoed_by == ["unit-required"]

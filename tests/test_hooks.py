"""Hooks: files with content-addressed conditions, the manager, and SHACL conditions."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import pytest

from kgc import (
    ConditionHashMismatch,
    Delta,
    Hook,
    HookDefinitionError,
    HookError,
    HookManager,
    KnowledgeEngine,
    Shacl,
    SparqlAsk,
    SparqlSelect,
    load_hook_file,
)
from kgc.errors import ConditionRefError, DuplicateHook, UnknownHook
from kgc.hooks.conditions import EvalContext
from kgc.store.oxigraph import OxigraphStore

NO_BAD = "ASK { GRAPH <urn:kgc:delta:additions> { <urn:bad> ?p ?o } }\n"
SHAPES = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <urn:ex:> .
ex:PointShape a sh:NodeShape ;
    sh:targetClass ex:Point ;
    sh:property [
        sh:path ex:isPointOf ; sh:minCount 1 ; sh:message "a point needs its equipment"
    ] .
"""
PREFIX = "@prefix ex: <urn:ex:> .\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _toml_hook(
    folder: Path,
    name: str,
    condition: str = NO_BAD,
    *,
    kind: str = "sparql-ask",
    uri: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Write ``name.rq`` (or ``.ttl``) and ``name.hook.toml`` referring to it; return the hook."""
    suffix = ".ttl" if kind == "shacl" else ".rq"
    (folder / f"{name}{suffix}").write_text(condition, encoding="utf-8")
    media = "text/turtle" if kind == "shacl" else "application/sparql-query"
    ref = (
        f'{{ uri = "{uri or f"file:{name}{suffix}"}", sha256 = "{sha256 or _sha256(condition)}", '
        f'media_type = "{media}" }}'
    )
    hook = folder / f"{name}.hook.toml"
    hook.write_text(
        f'name = "{name}"\npriority = 5\ntimeout_ms = 500\nmessage = "refused by {name}"\n'
        f'[when]\nkind = "{kind}"\nref = {ref}\n',
        encoding="utf-8",
    )
    return hook


def _json_hook(folder: Path, name: str, body: dict[str, object]) -> Path:
    hook = folder / f"{name}.hook.json"
    hook.write_text(json.dumps(body), encoding="utf-8")
    return hook


def _ask_body(name: str, uri: str, sha256: str) -> dict[str, object]:
    ref = {"uri": uri, "sha256": sha256, "media_type": "application/sparql-query"}
    return {"name": name, "when": {"kind": "sparql-ask", "ref": ref}}


# Loading hook files -------------------------------------------------------------------------------


def test_toml_hook_file_loads_with_its_fields(tmp_path: Path) -> None:
    hook = load_hook_file(_toml_hook(tmp_path, "no-bad"))

    assert (hook.name, hook.phase, hook.priority, hook.timeout_ms) == ("no-bad", "pre", 5, 500)
    assert hook.message == "refused by no-bad"
    assert isinstance(hook.when, SparqlAsk)
    assert hook.when.text == NO_BAD
    assert hook.when.digest == _sha256(NO_BAD)


def test_json_hook_file_loads(tmp_path: Path) -> None:
    (tmp_path / "rows.rq").write_text("SELECT ?s WHERE { ?s ?p ?o }", encoding="utf-8")
    body = _ask_body("rows", "file:rows.rq", _sha256("SELECT ?s WHERE { ?s ?p ?o }"))
    body["when"]["kind"] = "sparql-select"  # type: ignore[index]

    hook = load_hook_file(_json_hook(tmp_path, "rows", body))

    assert isinstance(hook.when, SparqlSelect)


def test_loaded_hook_governs_the_engine(tmp_path: Path, engine: KnowledgeEngine) -> None:
    engine.hooks.load(_toml_hook(tmp_path, "no-bad"))

    receipt = engine.apply(Delta.from_text('<urn:bad> <urn:p> "1" .'))

    assert receipt.vetoed_by == ["no-bad"]
    assert receipt.hooks[0].reason == "refused by no-bad (ASK is true)"


def test_relative_ref_resolves_against_the_hook_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy"
    (policy / "queries").mkdir(parents=True)
    (policy / "queries" / "q.rq").write_text(NO_BAD, encoding="utf-8")
    hook = _json_hook(policy, "nested", _ask_body("nested", "file:queries/q.rq", _sha256(NO_BAD)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert load_hook_file(hook).when.text == NO_BAD


def test_absolute_file_ref_is_used_as_it_is(tmp_path: Path) -> None:
    condition = tmp_path / "shared" / "q.rq"
    condition.parent.mkdir()
    condition.write_text(NO_BAD, encoding="utf-8")
    folder = tmp_path / "hooks"
    folder.mkdir()

    hook = _json_hook(folder, "abs", _ask_body("abs", condition.as_uri(), _sha256(NO_BAD).upper()))

    assert load_hook_file(hook).when.text == NO_BAD


def test_sha256_mismatch_refuses_to_load_naming_the_file(tmp_path: Path) -> None:
    hook = _toml_hook(tmp_path, "tampered", sha256="0" * 64)
    manager = HookManager()

    condition = re.escape(str(tmp_path / "tampered.rq"))
    with pytest.raises(ConditionHashMismatch, match=rf"^condition file {condition}: sha256 is "):
        manager.load(hook)

    assert len(manager) == 0


def test_condition_changed_after_hashing_is_refused(tmp_path: Path) -> None:
    hook = _toml_hook(tmp_path, "edited")
    (tmp_path / "edited.rq").write_text("ASK { FILTER(false) }", encoding="utf-8")

    with pytest.raises(
        ConditionHashMismatch, match=rf"but the hook's ref expects {_sha256(NO_BAD)}"
    ):
        load_hook_file(hook)


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        ("https://example.org/q.rq", ConditionRefError, r"only file: URIs are supported"),
        ("file://policy-host/q.rq", ConditionRefError, r"remote file hosts are not allowed"),
        ("file:missing.rq", ConditionRefError, r"'file:missing.rq': cannot read .*missing.rq"),
    ],
)
def test_refs_that_cannot_be_read_are_refused(
    tmp_path: Path, uri: str, error: type[HookError], message: str
) -> None:
    hook = _toml_hook(tmp_path, "remote", uri=uri)

    with pytest.raises(error, match=message):
        load_hook_file(hook)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": ...}, r"field 'name': Field required"),
        ({"name": ""}, r"field 'name': String should have at least 1 character"),
        ({"phase": "during"}, r"field 'phase': Input should be 'pre' or 'post'"),
        ({"timeout_ms": 0}, r"field 'timeout_ms': Input should be greater than 0"),
        ({"colour": "red"}, r"field 'colour': Extra inputs are not permitted"),
        ({"when": {"kind": "sparql-ask"}}, r"field 'when.ref': Field required"),
    ],
)
def test_malformed_hook_file_names_the_field(
    tmp_path: Path, body: dict[str, object], message: str
) -> None:
    merged = {**_ask_body("broken", "file:q.rq", _sha256(NO_BAD)), **body}
    full = {key: value for key, value in merged.items() if value is not ...}
    path = _json_hook(tmp_path, "broken", full)

    with pytest.raises(HookDefinitionError, match=rf"^{re.escape(str(path))}: {message}"):
        load_hook_file(path)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"kind": "sparql-construct"}, r"field 'when.kind': Input should be 'sparql-ask'"),
        ({"ref": {"sha256": "abc"}}, r"field 'when.ref.sha256': String should match pattern"),
        ({"scope": "world"}, r"field 'when.scope': Input should be 'delta' or 'graph'"),
    ],
)
def test_malformed_condition_names_the_nested_field(
    tmp_path: Path, when: dict[str, object], message: str
) -> None:
    body = _ask_body("broken", "file:q.rq", _sha256(NO_BAD))
    merged = dict(body["when"])  # type: ignore[call-overload]
    for key, value in when.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    path = _json_hook(tmp_path, "broken", {**body, "when": merged})

    with pytest.raises(HookDefinitionError, match=message):
        load_hook_file(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.hook.toml", 'name = "x"\n[when\n', r"not valid TOML"),
        ("bad.hook.json", '{"name": ', r"not valid JSON"),
        ("bad.hook.json", '["a", "list"]', r"a hook file must hold one object"),
    ],
)
def test_hook_file_that_does_not_parse_is_refused(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    with pytest.raises(HookDefinitionError, match=rf"^{re.escape(str(path))}: {message}"):
        load_hook_file(path)


def test_missing_hook_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HookDefinitionError, match=r"absent.hook.toml: cannot read hook file"):
        load_hook_file(tmp_path / "absent.hook.toml")


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("sparql-ask", "ASK { ?s ?p }", r"sparql-ask query does not parse"),
        ("sparql-ask", "INSERT DATA { <urn:s> <urn:p> <urn:o> }", r"query does not parse"),
        ("sparql-ask", "SELECT * WHERE { ?s ?p ?o }", r"a sparql-ask condition needs a ASK query"),
        ("sparql-select", "ASK {}", r"a sparql-select condition needs a SELECT query"),
        ("shacl", "ex:S a sh:NodeShape", r"shapes graph does not parse"),
    ],
)
def test_bad_condition_text_is_refused_at_load(
    tmp_path: Path, kind: str, text: str, message: str
) -> None:
    hook = _toml_hook(tmp_path, "bad", text, kind=kind)

    with pytest.raises(HookDefinitionError, match=rf"{re.escape(str(hook))} -> file:bad\.\w+: "):
        load_hook_file(hook)
    with pytest.raises(HookDefinitionError, match=message):
        load_hook_file(hook)


# Hooks in Python --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " "}, r"hook 'name' must be a non-empty string"),
        ({"phase": "during"}, r"hook 'h': 'phase' must be 'pre' or 'post', got 'during'"),
        ({"timeout_ms": 0}, r"hook 'h': 'timeout_ms' must be positive, got 0"),
        ({"phase": "post"}, r"hook 'h': a post-commit hook needs exactly one of a 'run' callable"),
    ],
)
def test_invalid_hook_is_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"name": "h", "when": SparqlAsk("ASK {}"), **kwargs}

    with pytest.raises(HookDefinitionError, match=message):
        Hook(**fields)  # type: ignore[arg-type]


def test_bad_inline_sparql_is_refused() -> None:
    with pytest.raises(HookDefinitionError, match=r"^<inline>: sparql-ask query does not parse"):
        SparqlAsk("ASK {")


def test_shacl_scope_must_be_delta_or_graph() -> None:
    with pytest.raises(HookDefinitionError, match=r"scope must be 'delta' or 'graph', got 'all'"):
        Shacl(SHAPES, scope="all")  # type: ignore[arg-type]


# The manager ------------------------------------------------------------------------------------


def _hook(name: str, priority: int = 0, *, post: bool = False) -> Hook:
    condition = SparqlAsk("ASK { FILTER(false) }")
    if post:
        return Hook(name, condition, phase="post", priority=priority, run=lambda event: None)
    return Hook(name, condition, priority=priority)


def test_manager_registers_lists_gets_and_removes() -> None:
    manager = HookManager()
    for hook in (
        _hook("b"),
        _hook("a"),
        _hook("urgent", priority=9),
        _hook("after", 99, post=True),
    ):
        manager.register(hook)

    assert [h.name for h in manager.list()] == ["urgent", "a", "b", "after"]
    assert manager.get("a").name == "a"
    assert "a" in manager and len(manager) == 4

    assert manager.remove("a").name == "a"
    assert "a" not in manager and len(manager) == 3


def test_manager_refuses_duplicates_and_unknown_names() -> None:
    manager = HookManager()
    manager.register(_hook("a"))

    with pytest.raises(DuplicateHook, match=r"a hook named 'a' is already registered"):
        manager.register(_hook("a"))
    with pytest.raises(UnknownHook, match=r"no hook named 'z' is registered"):
        manager.remove("z")
    with pytest.raises(UnknownHook, match=r"no hook named 'z' is registered"):
        manager.get("z")


def test_manager_refuses_past_its_limit() -> None:
    manager = HookManager(max_hooks=1)
    manager.register(_hook("a"))

    with pytest.raises(HookError, match=r"cannot register 'b': the limit of 1 hooks is reached"):
        manager.register(_hook("b"))


def test_policy_digest_follows_the_registered_hooks() -> None:
    manager = HookManager()
    empty = manager.snapshot().digest
    manager.register(_hook("a"))
    with_a = manager.snapshot().digest

    assert with_a != empty
    assert manager.snapshot().digest == with_a
    manager.remove("a")
    assert manager.snapshot().digest == empty


def test_manager_loads_every_hook_file_in_a_directory(tmp_path: Path) -> None:
    _toml_hook(tmp_path, "one")
    _toml_hook(tmp_path, "two")
    (tmp_path / "notes.txt").write_text("not a hook", encoding="utf-8")
    manager = HookManager()

    loaded = manager.load(tmp_path)

    assert sorted(h.name for h in loaded) == ["one", "two"]
    assert len(manager) == 2


def test_directory_with_one_bad_file_registers_nothing(tmp_path: Path) -> None:
    _toml_hook(tmp_path, "good")
    _toml_hook(tmp_path, "tampered", sha256="f" * 64)
    manager = HookManager()

    with pytest.raises(ConditionHashMismatch, match=r"tampered.rq"):
        manager.load(tmp_path)

    assert len(manager) == 0


def test_directory_with_duplicate_names_registers_nothing(tmp_path: Path) -> None:
    _toml_hook(tmp_path, "same")
    (tmp_path / "same.rq").write_text(NO_BAD, encoding="utf-8")
    _json_hook(tmp_path, "copy", _ask_body("same", "file:same.rq", _sha256(NO_BAD)))
    manager = HookManager()

    with pytest.raises(DuplicateHook, match=r"hook name\(s\) already in use: same"):
        manager.load(tmp_path)

    assert len(manager) == 0


def test_engine_registers_the_hooks_of_its_hooks_path(tmp_path: Path) -> None:
    _toml_hook(tmp_path, "no-bad")

    engine = KnowledgeEngine(hooks_path=tmp_path)

    assert [h.name for h in engine.hooks.list()] == ["no-bad"]


# SHACL ------------------------------------------------------------------------------------------

POINT_ALONE = PREFIX + "ex:p1 a ex:Point .\n"
POINT_OF_AHU = PREFIX + "ex:p1 a ex:Point ; ex:isPointOf ex:ahu1 .\n"


def test_shacl_delta_scope_vetoes_a_violating_delta(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("points", Shacl(SHAPES), message="invalid point"))

    receipt = engine.apply(Delta.from_text(POINT_ALONE, format="turtle"))

    assert receipt.status == "vetoed"
    assert receipt.hooks[0].reason == (
        "invalid point (<urn:ex:p1> <urn:ex:isPointOf>: a point needs its equipment)"
    )
    assert len(engine) == 0


def test_shacl_delta_scope_passes_a_conforming_delta(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("points", Shacl(SHAPES)))

    receipt = engine.apply(Delta.from_text(POINT_OF_AHU, format="turtle"))

    assert receipt.committed
    assert receipt.hooks[0].verdict == "pass"


def test_shacl_delta_scope_judges_a_removal_that_breaks_a_node(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("points", Shacl(SHAPES)))
    engine.apply(Delta.from_text(POINT_OF_AHU, format="turtle"))

    receipt = engine.apply(
        Delta.from_text(removals=PREFIX + "ex:p1 ex:isPointOf ex:ahu1 .", format="turtle")
    )

    assert receipt.status == "vetoed"
    assert len(engine) == 2


def test_shacl_hook_file_with_graph_scope(tmp_path: Path, engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text(POINT_ALONE, format="turtle"))
    engine.hooks.load(_toml_hook(tmp_path, "points", SHAPES, kind="shacl"))
    graph_hook = tmp_path / "whole.hook.toml"
    graph_hook.write_text(
        (tmp_path / "points.hook.toml")
        .read_text(encoding="utf-8")
        .replace('name = "points"', 'name = "whole"')
        .replace('kind = "shacl"', 'kind = "shacl"\nscope = "graph"'),
        encoding="utf-8",
    )
    engine.hooks.load(graph_hook)

    receipt = engine.apply(Delta.from_text('<urn:ex:other> <urn:ex:label> "x" .'))

    # The delta-scoped hook judges nothing (ex:label is no predicate its shapes read), so the
    # planner skips it; the graph-scoped one sees the point already in the graph.
    assert {(v.hook, v.verdict) for v in receipt.hooks} == {("whole", "veto")}
    assert receipt.hooks_skipped == 1


LABELLED_POINTS = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <urn:ex:> .
ex:Labelled a sh:NodeShape ;
    sh:targetSubjectsOf ex:isPointOf ;
    sh:property [ sh:path ex:label ; sh:minCount 1 ; sh:message "a point needs a label" ] .
"""


def test_shacl_delta_scope_does_not_judge_a_neighbour_on_its_partial_description(
    engine: KnowledgeEngine,
) -> None:
    # p1 breaks the shape already; the delta only adds a labelled p2 to the same VAV. Only the
    # nodes the delta touches are judged: p1 came into the data graph as a neighbour.
    engine.apply(Delta.from_text(PREFIX + "ex:p1 ex:isPointOf ex:vav1 .", format="turtle"))
    engine.hooks.register(Hook("labelled", Shacl(LABELLED_POINTS)))

    good = engine.apply(
        Delta.from_text(PREFIX + 'ex:p2 ex:isPointOf ex:vav1 ; ex:label "P2" .', format="turtle")
    )
    bad = engine.apply(Delta.from_text(PREFIX + "ex:p3 ex:isPointOf ex:vav1 .", format="turtle"))

    assert good.committed, good.hooks
    assert bad.status == "vetoed"
    assert "<urn:ex:p3>" in bad.hooks[0].reason
    assert "<urn:ex:p1>" not in bad.hooks[0].reason


def test_shacl_nested_not_shape_judges_values_correctly(engine: KnowledgeEngine) -> None:
    # Regression: pySHACL's focus_nodes option mis-evaluates nested shapes (sh:not here).
    shapes = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <urn:ex:> .
ex:OneLine a sh:NodeShape ; sh:targetSubjectsOf ex:label ;
    sh:property [ sh:path ex:label ; sh:not [ sh:pattern "[\\\\t\\\\n]" ] ] .
"""
    engine.hooks.register(Hook("one-line", Shacl(shapes)))

    good = engine.apply(Delta.from_text('<urn:ex:a> <urn:ex:label> "VAV 1" .'))
    bad = engine.apply(Delta.from_text('<urn:ex:b> <urn:ex:label> "VAV\\t2" .'))

    assert good.committed, good.hooks
    assert bad.status == "vetoed"


def test_shacl_inverse_path_on_a_changed_object_is_judged(engine: KnowledgeEngine) -> None:
    shapes = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <urn:ex:> .
ex:VavHasPoint a sh:NodeShape ; sh:targetClass ex:VAV ;
    sh:property [ sh:path [ sh:inversePath ex:isPointOf ] ; sh:minCount 1 ] .
"""
    engine.apply(
        Delta.from_text(PREFIX + "ex:vav1 a ex:VAV . ex:p1 ex:isPointOf ex:vav1 .", format="turtle")
    )
    engine.hooks.register(Hook("vav-has-point", Shacl(shapes)))

    receipt = engine.apply(
        Delta.from_text(removals=PREFIX + "ex:p1 ex:isPointOf ex:vav1 .", format="turtle")
    )

    assert receipt.status == "vetoed"
    assert "<urn:ex:vav1>" in receipt.hooks[0].reason


@pytest.mark.parametrize("written", ['"male"', '"male"^^xsd:string'])
@pytest.mark.parametrize("scope", ["delta", "graph"])
def test_shacl_string_value_matches_has_value_and_in(
    engine: KnowledgeEngine, written: str, scope: Literal["delta", "graph"]
) -> None:
    # Regression (W3C SHACL core property/hasValue-001, in-001): the store gives "male" the
    # datatype xsd:string, which rdflib held distinct from the shapes' plain "male".
    shapes = f"""\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <urn:ex:> .
ex:Male a sh:NodeShape ; sh:targetClass ex:Person ;
    sh:property [ sh:path ex:gender ; sh:hasValue {written} ; sh:in ( {written} "female" ) ] .
"""
    engine.hooks.register(Hook("male", Shacl(shapes, scope=scope)))

    good = engine.apply(
        Delta.from_text(PREFIX + 'ex:bob a ex:Person ; ex:gender "male" .', format="turtle")
    )
    bad = engine.apply(
        Delta.from_text(PREFIX + 'ex:al a ex:Person ; ex:gender "man" .', format="turtle")
    )

    assert good.committed, good.hooks
    assert bad.status == "vetoed"


HIERARCHY = (
    PREFIX
    + """@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:VAV rdfs:subClassOf ex:TerminalUnit . ex:TerminalUnit rdfs:subClassOf ex:Equipment .
ex:ZoneTempSensor rdfs:subClassOf ex:Sensor . ex:Sensor rdfs:subClassOf ex:Point .
"""
)
EQUIPMENT_SHAPES = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <urn:ex:> .
ex:PointOwned a sh:NodeShape ; sh:targetClass ex:Point ;
    sh:property [ sh:path [ sh:inversePath ex:hasPoint ] ; sh:minCount 1 ;
                  sh:class ex:Equipment ] .
ex:UnitServed a sh:NodeShape ; sh:targetClass ex:TerminalUnit ;
    sh:property [ sh:path ex:hasPoint ; sh:minCount 1 ] .
"""


@pytest.mark.parametrize("scope", ["delta", "graph"])
def test_shacl_follows_subclass_statements_in_the_data_graph(
    engine: KnowledgeEngine, scope: Literal["delta", "graph"]
) -> None:
    # Regression (found by tests/test_shacl_incremental.py): SHACL's sh:targetClass and sh:class
    # follow rdfs:subClassOf in the data graph. The delta scope left those statements out, so a
    # sensor added without equipment passed, a sensor of a VAV was refused (a VAV was no
    # Equipment), and a VAV that lost its last point was not judged as a terminal unit.
    engine.apply(Delta.from_text(HIERARCHY, format="turtle"))
    engine.apply(Delta.from_text(PREFIX + "ex:vav1 a ex:VAV .", format="turtle"))
    engine.hooks.register(Hook("equipment", Shacl(EQUIPMENT_SHAPES, scope=scope)))

    owned = engine.apply(
        Delta.from_text(
            PREFIX + "ex:s1 a ex:ZoneTempSensor . ex:vav1 ex:hasPoint ex:s1 .", format="turtle"
        )
    )
    orphan = engine.apply(Delta.from_text(PREFIX + "ex:s2 a ex:ZoneTempSensor .", format="turtle"))
    last_point = engine.apply(
        Delta.from_text(removals=PREFIX + "ex:vav1 ex:hasPoint ex:s1 .", format="turtle")
    )

    assert owned.committed, owned.hooks
    assert orphan.status == "vetoed"
    assert "<urn:ex:s2>" in orphan.hooks[0].reason
    assert last_point.status == "vetoed"
    assert "<urn:ex:vav1>" in last_point.hooks[0].reason


def test_shacl_counts_a_nested_node_shape_failure_once() -> None:
    # Regression (W3C SHACL core property/node-002): pySHACL attaches the nested shape's result as
    # an sh:detail, also typed sh:ValidationResult; only the report's own sh:result rows count.
    shapes = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <urn:ex:> .
ex:Named a sh:NodeShape ; sh:property [ sh:path ex:name ; sh:minCount 1 ] .
ex:Owned a sh:NodeShape ; sh:targetNode ex:ahu1 ;
    sh:property [ sh:path ex:owner ; sh:node ex:Named ] .
"""
    store = OxigraphStore()
    store.add_all(Delta.from_text(PREFIX + "ex:ahu1 ex:owner ex:acme .", format="turtle").additions)

    result = Shacl(shapes, scope="graph").evaluate(EvalContext(store))

    assert result.fired
    assert result.rows == 1
    assert result.detail.startswith("<urn:ex:ahu1> <urn:ex:owner>: ")


@pytest.mark.parametrize(
    "query",
    [
        "PREFIX d: <urn:kgc:delta:> ASK { GRAPH d:additions { ?s ?p ?o } }",
        "BASE <urn:kgc:delta:> ASK { GRAPH <additions> { ?s ?p ?o } }",
        "ASK { GRAPH <\\u0075rn:kgc:delta:additions> { ?s ?p ?o } }",
        "ASK { GRAPH <urn:kgc:delta:additions:0123> { ?s ?p ?o } }",
        "ASK { GRAPH <urn:kgc:meta> { ?s ?p ?o } }",
    ],
)
def test_delta_graph_named_other_than_in_full_is_refused_at_load(query: str) -> None:
    # A hook that names the delta graphs in a way kgc does not rewrite would never fire.
    with pytest.raises(HookDefinitionError, match="only as the full IRIs <urn:kgc:delta:addi"):
        SparqlAsk(query)

"""Inputs from public bug reports (``shared/cases/README.md``): L1-L8 and L10, on the Python API.

L2 and L3 (RDFC-1.0 canonical hashing) and L9 (anchoring) belong to the lockchain and are not
tested here.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib

from kgc import (
    Delta,
    Hook,
    KnowledgeEngine,
    RDFSyntaxError,
    SparqlAsk,
    TermError,
)
from kgc.errors import NonCanonicalLiteral
from kgc.hooks import EvalContext
from kgc.store import OxigraphStore

XSD = "http://www.w3.org/2001/XMLSchema#"


def _state(engine: KnowledgeEngine) -> tuple[int, str]:
    return len(engine), engine.state_digest


def _holds_its_digest(engine: KnowledgeEngine) -> bool:
    return engine.state_digest == engine.transactions.recompute_state_digest()


# L1: literal fidelity (oxigraph #526) --------------------------------------------------------

L1_TEXT = f"""\
<urn:s> <urn:p> "+1"^^<{XSD}int> .
<urn:s> <urn:p> "01"^^<{XSD}integer> .
<urn:s> <urn:p> "1.0"^^<{XSD}decimal> .
<urn:s> <urn:p> "1"^^<{XSD}boolean> .
<urn:s> <urn:p> "true"^^<{XSD}boolean> .
<urn:s> <urn:p> "2020-01-01T00:00:00+00:00"^^<{XSD}dateTime> .
"""
L1_REWRITES = (
    (f'"+1"^^<{XSD}int>', f'"1"^^<{XSD}integer>'),
    (f'"01"^^<{XSD}integer>', f'"1"^^<{XSD}integer>'),
    (f'"1.0"^^<{XSD}decimal>', f'"1"^^<{XSD}decimal>'),
    (f'"1"^^<{XSD}boolean>', f'"true"^^<{XSD}boolean>'),
    (f'"2020-01-01T00:00:00+00:00"^^<{XSD}dateTime>', f'"2020-01-01T00:00:00Z"^^<{XSD}dateTime>'),
)
L1_STORED = {stored for _, stored in L1_REWRITES}


def test_l1_every_store_rewrite_is_listed_in_the_receipt(engine: KnowledgeEngine) -> None:
    receipt = engine.apply(Delta.from_text(L1_TEXT))

    assert receipt.committed
    assert receipt.literal_rewrites == L1_REWRITES
    assert receipt.to_dict()["literal_rewrites"][0] == {
        "written": f'"+1"^^<{XSD}int>',
        "stored": f'"1"^^<{XSD}integer>',
    }
    assert {str(q.object) for q in engine.store.raw} == L1_STORED


def test_l1_receipt_digests_match_what_the_graph_holds(engine: KnowledgeEngine) -> None:
    receipt = engine.apply(Delta.from_text(L1_TEXT))

    assert receipt.state_after == engine.transactions.recompute_state_digest()
    assert receipt.additions == len(engine) == 4


def test_l1_two_booleans_merge_and_the_receipt_shows_it(engine: KnowledgeEngine) -> None:
    text = f'<urn:s> <urn:p> "1"^^<{XSD}boolean> .\n<urn:s> <urn:p> "true"^^<{XSD}boolean> .\n'

    receipt = engine.apply(Delta.from_text(text))

    assert receipt.additions == 1
    assert receipt.literal_rewrites == ((f'"1"^^<{XSD}boolean>', f'"true"^^<{XSD}boolean>'),)
    assert len(engine) == 1


def test_l1_removing_quads_exactly_as_added_removes_them(engine: KnowledgeEngine) -> None:
    empty = engine.state_digest
    engine.apply(Delta.from_text(L1_TEXT))

    receipt = engine.apply(Delta.from_text(removals=L1_TEXT))

    assert (receipt.removals, receipt.ignored_removals) == (4, 0)
    assert len(engine) == 0
    assert receipt.state_after == empty == engine.transactions.recompute_state_digest()


def test_l1_refuse_policy_refuses_a_literal_the_store_would_rewrite() -> None:
    expected = re.escape(f'literal "+1"^^<{XSD}int> would be stored as "1"^^<{XSD}integer>')

    with pytest.raises(NonCanonicalLiteral, match=expected):
        Delta.from_text(L1_TEXT, literal_policy="refuse")


def test_l1_refuse_policy_on_the_engine_changes_nothing() -> None:
    engine = KnowledgeEngine(literal_policy="refuse")
    before = _state(engine)
    quads = Delta.from_text(L1_TEXT).additions  # already in stored form: accepted
    boolean = ox.Literal("1", datatype=ox.NamedNode(XSD + "boolean"))
    written = ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), boolean)

    with pytest.raises(NonCanonicalLiteral, match=r"literal policy 'refuse' does not allow"):
        engine.apply(engine.delta([*quads, written]))

    assert _state(engine) == before
    assert engine.apply(engine.delta(quads)).additions == 4


# L4: ASK edge cases (rdflib #3381) ---------------------------------------------------------


def test_l4_ask_filter_false_never_fires(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("never", SparqlAsk("ASK { FILTER(false) }")))

    receipts = [
        engine.apply(Delta.from_text(f'<urn:s> <urn:p> "{n}" .'), actor="t") for n in range(3)
    ]

    assert all(r.committed for r in receipts)
    assert {(v.verdict, v.fired) for r in receipts for v in r.hooks} == {("pass", False)}


def test_l4_ask_empty_group_is_true_so_it_vetoes_everything(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("always", SparqlAsk("ASK {}"), message="nothing may change"))
    before = _state(engine)

    receipt = engine.apply(Delta.from_text('<urn:s> <urn:p> "v" .'))

    assert receipt.status == "vetoed"
    assert receipt.vetoed_by == ["always"]
    assert receipt.hooks[0].reason == "nothing may change (ASK is true)"
    assert _state(engine) == before


def test_l4_ask_any_triple_on_an_empty_graph_is_false(engine: KnowledgeEngine) -> None:
    condition = SparqlAsk("ASK { ?s ?p ?o }")

    assert engine.query("ASK { ?s ?p ?o }") is False
    assert not condition.evaluate(EvalContext(OxigraphStore())).fired


def test_l4_ask_any_triple_judges_the_proposed_default_graph(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("default-graph-stays-empty", SparqlAsk("ASK { ?s ?p ?o }")))

    named = engine.apply(Delta.from_text('<urn:s> <urn:p> "v" <urn:g> .'))
    default = engine.apply(Delta.from_text('<urn:s> <urn:p> "v" .'))

    assert named.status == "committed"
    assert default.status == "vetoed"


# L5: a failing step applies nothing (QuitStore #290) ------------------------------------------

L5_TEXT = '<urn:s> <urn:p> "1" .\n<urn:s> <urn:p> "2" .\n<urn:s> <urn:p> "3 .\n'


def test_l5_unparsable_quad_after_valid_ones_applies_nothing(engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text('<urn:s> <urn:p> "0" .'))
    before = _state(engine)

    with pytest.raises(RDFSyntaxError, match=r"^<additions>, line 3, column \d+: "):
        engine.apply(Delta.from_text(L5_TEXT))

    assert _state(engine) == before
    assert _holds_its_digest(engine)
    assert engine.query('ASK { <urn:s> <urn:p> "1" }') is False


def test_l5_unparsable_file_loads_nothing(engine: KnowledgeEngine, tmp_path: Path) -> None:
    path = tmp_path / "batch.nq"
    path.write_text(L5_TEXT, encoding="utf-8")

    with pytest.raises(RDFSyntaxError, match=rf"^{re.escape(str(path))}, line 3, column \d+: "):
        engine.load(path)

    assert _state(engine) == (0, KnowledgeEngine().state_digest)


def test_l5_pre_hook_that_raises_commits_nothing(engine: KnowledgeEngine) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("policy service unreachable")

    engine.apply(Delta.from_text('<urn:s> <urn:p> "0" .'))
    engine.hooks.register(Hook("broken", SparqlAsk("ASK {}"), run=broken))
    before = _state(engine)

    receipt = engine.apply(Delta.from_text(L5_TEXT.replace('"3 .', '"3" .')))

    assert (receipt.status, receipt.committed) == ("error", False)
    assert receipt.error == (
        "pre-commit hook 'broken' failed (error): RuntimeError: policy service unreachable"
    )
    assert receipt.state_after == receipt.state_before == before[1]
    assert _state(engine) == before


def test_l5_reader_never_sees_a_vetoed_quad(engine: KnowledgeEngine) -> None:
    engine.hooks.register(Hook("no-bad", SparqlAsk("ASK { <urn:bad> ?p ?o }")))
    seen: list[object] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(engine.query("ASK { <urn:bad> ?p ?o }"))
            seen.append(engine.query("ASK { GRAPH ?g { ?s ?p ?o } }"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        receipts = [
            engine.apply(Delta.from_text(f'<urn:bad> <urn:p> "{n}" .\n<urn:ok> <urn:p> "{n}" .'))
            for n in range(200)
        ]
    finally:
        stop.set()
        thread.join(timeout=10)

    assert {r.status for r in receipts} == {"vetoed"}
    assert seen and not any(seen)
    assert len(engine) == 0


# L6: blank-node labels are scoped to one delta (QuitStore #219) --------------------------------


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('_:b1 <urn:p> "x" .', "nquads"),
        ('_:b1 <urn:p> "x" .', "turtle"),
        ('{ _:b1 <urn:p> "x" }', "trig"),
    ],
)
def test_l6_same_label_in_two_transactions_is_two_nodes(
    engine: KnowledgeEngine, text: str, fmt: str
) -> None:
    first = engine.apply(Delta.from_text(text, format=fmt))
    second = engine.apply(Delta.from_text(text, format=fmt))

    assert (first.additions, second.additions) == (1, 1)
    rows = engine.query('SELECT DISTINCT ?b WHERE { ?b <urn:p> "x" }')
    assert isinstance(rows, list)
    assert len(rows) == 2


def test_l6_same_label_in_two_json_deltas_is_two_nodes(engine: KnowledgeEngine) -> None:
    data = {"additions": ['_:b1 <urn:p> "x" .']}

    engine.apply(Delta.from_json(data))
    engine.apply(Delta.from_json(data))

    assert len(engine) == 2


# L7: removing a blank node parsed afresh is never a silent claimed removal -----------------------


def test_l7_removal_of_fresh_blank_node_removes_nothing_and_says_so(
    engine: KnowledgeEngine,
) -> None:
    engine.apply(Delta.from_text('<urn:doc> <urn:has> _:v .\n_:v <urn:val> "v" .'))
    before = _state(engine)

    receipt = engine.apply(Delta.from_text(removals='[] <urn:val> "v" .', format="turtle"))

    assert (receipt.removals, receipt.ignored_removals) == (0, 1)
    assert receipt.state_after == receipt.state_before
    assert _state(engine) == before


def test_l7_blank_node_from_a_query_result_does_remove(engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text('<urn:doc> <urn:has> _:v .\n_:v <urn:val> "v" .'))
    rows = engine.query("SELECT ?v WHERE { <urn:doc> <urn:has> ?v }")
    assert isinstance(rows, list)
    node = rows[0]["v"]

    receipt = engine.apply(Delta([], [(node, ox.NamedNode("urn:val"), ox.Literal("v"))]))

    assert (receipt.removals, receipt.ignored_removals) == (1, 0)
    assert len(engine) == 1


# L8: escaped surrogates and code points past U+10FFFF (N3.js #589, #658) -------------------------


@pytest.mark.parametrize(
    ("escape", "code"),
    [("\\uD800", "D800"), ("\\uD83D\\uDE00", "D83D"), ("\\U00110000", "110000")],
)
def test_l8_invalid_escape_is_refused_naming_the_line(escape: str, code: str) -> None:
    text = f'<urn:s> <urn:p> "ok" .\n<urn:s> <urn:p> "{escape}" .\n'

    message = rf"^<additions>, line 2, column 18: .* is encoding {code} that is not a valid unicode"
    with pytest.raises(RDFSyntaxError, match=message):
        Delta.from_text(text)
    with pytest.raises(RDFSyntaxError, match=r"^additions\[1\], line 1, column 18: "):
        Delta.from_json({"additions": text.splitlines()})


def test_l8_invalid_escape_in_a_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.nt"
    path.write_text('<urn:s> <urn:p> "ok" .\n<urn:s> <urn:p> "\\uD800" .\n', encoding="utf-8")

    with pytest.raises(RDFSyntaxError, match=rf"^{re.escape(str(path))}, line 2, column 18: "):
        Delta.from_files(path)


def test_l8_lone_surrogate_decoded_from_json_is_refused_naming_the_entry() -> None:
    # Regression: JSON's own "\ud800" escape yields a lone surrogate in a Python str, which
    # pyoxigraph could not take: it raised AttributeError instead of refusing the entry.
    text = '{"additions": ["<urn:s> <urn:p> \\"ok\\" .", "<urn:s> <urn:p> \\"\\ud800\\" ."]}'

    with pytest.raises(RDFSyntaxError, match=r"^additions\[1\], line 1, column 18: U\+D800"):
        Delta.from_json(text)


def test_l8_lone_surrogate_in_an_rdflib_literal_is_refused_naming_the_item() -> None:
    quad = (rdflib.URIRef("urn:s"), rdflib.URIRef("urn:p"), rdflib.Literal("\ud800"))

    with pytest.raises(TermError, match=r"^additions\[0\]: invalid RDF term"):
        Delta([quad])


GRINNING = "\U0001f600"


def _grinning_deltas() -> dict[str, Delta]:
    s, p = "<urn:s>", "<urn:p>"
    ox_quad = ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.Literal(GRINNING))
    rdflib_triple = (rdflib.URIRef("urn:s"), rdflib.URIRef("urn:p"), rdflib.Literal(GRINNING))
    return {
        "escaped N-Quads": Delta.from_text(f'{s} {p} "\\U0001F600" .'),
        "raw N-Quads": Delta.from_text(f'{s} {p} "{GRINNING}" .'),
        "raw N-Quads bytes": Delta.from_text(f'{s} {p} "{GRINNING}" .'.encode()),
        "escaped Turtle": Delta.from_text(f'{s} {p} "\\U0001F600" .', format="turtle"),
        "pyoxigraph terms": Delta([ox_quad]),
        "rdflib terms": Delta([rdflib_triple]),
        "JSON string": Delta.from_json(json.dumps({"additions": [f'{s} {p} "\\U0001F600" .']})),
        "JSON object": Delta.from_json(
            {"additions": [{"subject": s, "predicate": p, "object": f'"{GRINNING}"'}]}
        ),
    }


def test_l8_astral_escape_is_accepted_and_hashes_identically_on_every_path() -> None:
    outcomes = {}
    for path, delta in _grinning_deltas().items():
        engine = KnowledgeEngine()
        receipt = engine.apply(delta)
        assert receipt.committed, path
        outcomes[path] = (receipt.delta_digest["sha3-256"], receipt.state_after)

    assert len(set(outcomes.values())) == 1, outcomes
    assert engine.query(f'ASK {{ <urn:s> <urn:p> "{GRINNING}" }}') is True


# L10: a real building graph with a bare '%' in an IRI ---------------------------------------------


def test_l10_strict_load_is_refused_with_file_line_and_column(
    engine: KnowledgeEngine, shared: Path
) -> None:
    path = shared / "data/brick/ghc_brick.ttl"

    with pytest.raises(RDFSyntaxError, match=rf"^{re.escape(str(path))}, line 364, column \d+: "):
        engine.load(path)

    assert len(engine) == 0


def test_l10_lenient_load_holds_all_55733_triples(engine: KnowledgeEngine, shared: Path) -> None:
    receipt = engine.load(shared / "data/brick/ghc_brick.ttl", lenient=True)

    assert receipt.committed
    assert receipt.additions == len(engine) == 55733
    assert receipt.state_after == engine.transactions.recompute_state_digest()

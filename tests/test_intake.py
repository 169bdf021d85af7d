"""Delta intake from every form, and every refusal naming where the fault is."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib

from kgc import (
    Delta,
    DeltaConflict,
    InputError,
    KnowledgeEngine,
    RDFSyntaxError,
    TermError,
)
from kgc.errors import ReservedGraphError
from kgc.rdf.delta import QuadLike

S, P, G = ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.NamedNode("urn:g")
V = ox.Literal("v")
W_EN = ox.Literal("w", language="en")

# The same two quads, one in the default graph and one in <urn:g>, in every text form.
NQUADS = '<urn:s> <urn:p> "v" .\n<urn:s> <urn:p> "w"@en <urn:g> .\n'
TRIG = '@prefix : <urn:> .\n:s :p "v" .\n<urn:g> { :s :p "w"@en }\n'
EXPECTED = Delta([ox.Quad(S, P, V), ox.Quad(S, P, W_EN, G)])
DEFAULT_ONLY = Delta([ox.Quad(S, P, V)])


# Forms ----------------------------------------------------------------------------------------


def test_pyoxigraph_quads_triples_and_tuples_are_one_delta() -> None:
    forms: list[list[QuadLike]] = [
        [ox.Quad(S, P, V), ox.Quad(S, P, W_EN, G)],
        [ox.Triple(S, P, V), (S, P, W_EN, G)],
        [(S, P, V, ox.DefaultGraph()), ox.Quad(S, P, W_EN, G)],
    ]

    assert all(Delta(form) == EXPECTED for form in forms)


def test_rdflib_terms_in_tuples_are_converted() -> None:
    s, p = rdflib.URIRef("urn:s"), rdflib.URIRef("urn:p")

    delta = Delta([(s, p, rdflib.Literal("v")), (s, p, rdflib.Literal("w", lang="en"), G)])

    assert delta == EXPECTED


def test_rdflib_typed_literal_and_blank_node_are_converted() -> None:
    s, p = rdflib.URIRef("urn:s"), rdflib.URIRef("urn:p")
    xsd_date = rdflib.URIRef("http://www.w3.org/2001/XMLSchema#date")

    delta = Delta([(s, p, rdflib.Literal("2024-05-01", datatype=xsd_date)), (s, p, rdflib.BNode())])

    objects = {type(q.object) for q in delta.additions}
    assert objects == {ox.Literal, ox.BlankNode}
    assert ox.Literal("2024-05-01", datatype=ox.NamedNode(str(xsd_date))) in {
        q.object for q in delta.additions
    }


def test_rdflib_graph_becomes_default_graph_quads() -> None:
    graph = rdflib.Graph()
    graph.parse(data='<urn:s> <urn:p> "v" .', format="nt")

    assert Delta.from_rdflib(graph) == DEFAULT_ONLY


def test_rdflib_dataset_keeps_default_and_named_graphs() -> None:
    s, p = rdflib.URIRef("urn:s"), rdflib.URIRef("urn:p")
    dataset = rdflib.Dataset()
    dataset.default_graph.add((s, p, rdflib.Literal("v")))
    dataset.graph(rdflib.URIRef("urn:g")).add((s, p, rdflib.Literal("w", lang="en")))

    assert Delta.from_rdflib(dataset) == EXPECTED


def test_rdflib_graphs_as_additions_and_removals() -> None:
    added, removed = rdflib.Graph(), rdflib.Graph()
    added.parse(data='<urn:s> <urn:p> "new" .', format="nt")
    removed.parse(data='<urn:s> <urn:p> "old" .', format="nt")

    delta = Delta.from_rdflib(added, removed)

    assert delta.additions == (ox.Quad(S, P, ox.Literal("new")),)
    assert delta.removals == (ox.Quad(S, P, ox.Literal("old")),)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (NQUADS, "nquads"),
        (NQUADS, "application/n-quads"),
        (TRIG, "trig"),
        (TRIG, "application/trig"),
    ],
)
def test_quad_text_forms(text: str, fmt: str) -> None:
    assert Delta.from_text(text, format=fmt) == EXPECTED


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('<urn:s> <urn:p> "v" .\n', "ntriples"),
        ('<urn:s> <urn:p> "v" .\n', "nt"),
        ('@prefix : <urn:> .\n:s :p "v" .\n', "turtle"),
        ('@prefix : <urn:> .\n:s :p "v" .\n', "text/turtle"),
        ('@prefix : <urn:> .\n:s :p "v" .\n', "ttl"),
    ],
)
def test_triple_text_forms(text: str, fmt: str) -> None:
    assert Delta.from_text(text, format=fmt) == DEFAULT_ONLY


def test_text_accepts_bytes_and_a_base_iri() -> None:
    delta = Delta.from_text(b'<s> <p> "v" .', format="turtle", base_iri="http://example.org/")

    s, p = ox.NamedNode("http://example.org/s"), ox.NamedNode("http://example.org/p")
    assert delta.additions == (ox.Quad(s, p, V),)


def test_text_additions_and_removals() -> None:
    delta = Delta.from_text('<urn:s> <urn:p> "new" .', '<urn:s> <urn:p> "old" .')

    assert delta.additions == (ox.Quad(S, P, ox.Literal("new")),)
    assert delta.removals == (ox.Quad(S, P, ox.Literal("old")),)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("add.nq", NQUADS),
        ("add.trig", TRIG),
    ],
)
def test_quad_files_take_their_format_from_the_extension(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    assert Delta.from_files(path) == EXPECTED


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("add.nt", '<urn:s> <urn:p> "v" .\n'),
        ("add.ttl", '@prefix : <urn:> .\n:s :p "v" .\n'),
    ],
)
def test_triple_files_take_their_format_from_the_extension(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    assert Delta.from_files(path) == DEFAULT_ONLY


def test_files_for_additions_and_removals_with_explicit_format(tmp_path: Path) -> None:
    (tmp_path / "plus.txt").write_text('<urn:s> <urn:p> "new" .\n', encoding="utf-8")
    (tmp_path / "minus.txt").write_text('<urn:s> <urn:p> "old" .\n', encoding="utf-8")

    delta = Delta.from_files(tmp_path / "plus.txt", tmp_path / "minus.txt", format="nquads")

    assert delta.additions == (ox.Quad(S, P, ox.Literal("new")),)
    assert delta.removals == (ox.Quad(S, P, ox.Literal("old")),)


def test_json_strings_and_objects() -> None:
    data = {
        "additions": [
            '<urn:s> <urn:p> "v" .',
            {"subject": "<urn:s>", "predicate": "<urn:p>", "object": '"w"@en', "graph": "<urn:g>"},
        ],
        "removals": [{"subject": "<urn:s>", "predicate": "<urn:p>", "object": '"old"'}],
    }

    from_mapping = Delta.from_json(data)
    from_text = Delta.from_json(json.dumps(data))

    assert from_mapping == from_text
    assert set(from_mapping.additions) == set(EXPECTED.additions)
    assert from_mapping.removals == (ox.Quad(S, P, ox.Literal("old")),)


def test_json_graph_may_be_null_or_empty_for_the_default_graph() -> None:
    entries = [
        {"subject": "<urn:s>", "predicate": "<urn:p>", "object": '"v"', "graph": None},
        {"subject": "<urn:s>", "predicate": "<urn:p>", "object": '"v"', "graph": ""},
    ]

    assert Delta.from_json({"additions": entries}) == DEFAULT_ONLY


def test_json_form_round_trips() -> None:
    assert Delta.from_json(EXPECTED.to_json()) == EXPECTED


def test_blank_node_label_means_one_node_within_a_json_delta() -> None:
    delta = Delta.from_json({"additions": ['_:b <urn:p> "1" .', '_:b <urn:p> "2" .']})

    assert len({q.subject for q in delta.additions}) == 1


def test_engine_delta_applies_the_engines_literal_policy() -> None:
    xsd_int = ox.NamedNode("http://www.w3.org/2001/XMLSchema#int")
    quad = ox.Quad(S, P, ox.Literal("+1", datatype=xsd_int))

    assert KnowledgeEngine().delta([quad]).rewrites
    with pytest.raises(InputError, match=r"literal policy 'refuse'"):
        KnowledgeEngine(literal_policy="refuse").delta([quad])


# Refusals naming the position ------------------------------------------------------------------


def test_wrong_item_names_its_position() -> None:
    items = [ox.Quad(S, P, V), ox.Triple(S, P, V), (S, P)]

    with pytest.raises(TermError, match=r"^additions\[2\]: expected a Quad, Triple or 3/4-tuple"):
        Delta(items)  # type: ignore[arg-type]


def test_wrong_item_in_removals_names_its_side() -> None:
    with pytest.raises(TermError, match=r"^removals\[1\]: expected a Quad"):
        Delta([], [ox.Quad(S, P, V), "not a quad"])  # type: ignore[list-item]


def test_literal_in_predicate_position_is_refused() -> None:
    with pytest.raises(TermError, match=r"^additions\[0\]: not a valid quad"):
        Delta([(S, rdflib.Literal("p"), V)])


def test_plain_string_term_is_refused() -> None:
    with pytest.raises(TermError, match=r"^additions\[0\]: cannot convert str 'urn:p'"):
        Delta([(rdflib.URIRef("urn:s"), "urn:p", rdflib.Literal("v"))])


def test_invalid_rdflib_iri_is_refused() -> None:
    with pytest.raises(TermError, match=r"^additions\[0\]: invalid RDF term .*not an iri"):
        Delta([(rdflib.URIRef("urn:s"), rdflib.URIRef("urn:p"), rdflib.URIRef("not an iri"))])


def test_text_syntax_error_names_side_line_and_column() -> None:
    good = '<urn:s> <urn:p> "v" .\n'

    with pytest.raises(RDFSyntaxError, match=r"^<removals>, line 2, column \d+: ") as caught:
        Delta.from_text(good, good + "<urn:s> <urn:p> .\n")

    assert caught.value.source == "<removals>"
    assert caught.value.line == 2


def test_turtle_syntax_error_names_line_and_column() -> None:
    text = '@prefix : <urn:> .\n:s :p "v" .\n:s :p "w" :q .\n'

    with pytest.raises(RDFSyntaxError, match=r"^<additions>, line 3, column \d+: "):
        Delta.from_text(text, format="turtle")


def test_file_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.ttl"
    path.write_text('@prefix : <urn:> .\n:s :p "v" .\n:s :p <no scheme> .\n', encoding="utf-8")

    with pytest.raises(RDFSyntaxError, match=rf"^{re.escape(str(path))}, line 3, column \d+: "):
        Delta.from_files(path)


def test_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.nq"

    with pytest.raises(RDFSyntaxError, match=rf"^{re.escape(str(path))}: cannot read file"):
        Delta.from_files(path)


def test_unknown_extension_is_refused_naming_the_file(tmp_path: Path) -> None:
    # Regression: the message named only ".rdf", not which file had it.
    path = tmp_path / "data.rdf"
    path.write_text("", encoding="utf-8")

    with pytest.raises(RDFSyntaxError, match=rf"^{re.escape(str(path))}: unknown RDF format"):
        Delta.from_files(path)


def test_unknown_format_name_lists_the_known_ones() -> None:
    with pytest.raises(RDFSyntaxError, match=r"unknown RDF format 'rdfxml'; expected one of "):
        Delta.from_text('<urn:s> <urn:p> "v" .', format="rdfxml")


def test_lone_surrogate_in_a_python_string_is_refused_naming_the_line() -> None:
    # Regression: a str holding a lone surrogate made pyoxigraph raise AttributeError.
    text = '<urn:s> <urn:p> "v" .\n<urn:s> <urn:p> "\ud800" .\n'

    with pytest.raises(RDFSyntaxError, match=r"^<additions>, line 2, column 18: U\+D800 is a lone"):
        Delta.from_text(text)


def test_invalid_utf8_bytes_are_refused_naming_the_line() -> None:
    with pytest.raises(RDFSyntaxError, match=r"^<additions>, line 2, column \d+: Invalid UTF-8"):
        Delta.from_text(b'<urn:s> <urn:p> "v" .\n<urn:s> <urn:p> "\xff" .\n')


def test_lenient_mode_accepts_an_iri_strict_mode_refuses() -> None:
    text = "<urn:s> <urn:p> <http://example.org/valve_%> .\n"

    with pytest.raises(RDFSyntaxError, match=r"^<additions>, line 1, column \d+: Invalid IRI"):
        Delta.from_text(text)
    assert len(Delta.from_text(text, lenient=True)) == 1


# JSON refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"additions": [}', r"^<json>, line 1, column 16: invalid JSON"),
        ("[]", r"must be an object with 'additions' and/or 'removals'"),
        ({"additions": [], "adds": []}, r"unknown key\(s\) in JSON delta: adds"),
        ({"removals": "<urn:s> <urn:p> <urn:o> ."}, r"'removals' must be a list, got str"),
        ({"additions": ['<urn:s> <urn:p> "v" .', 7]}, r"^additions\[1\]: expected an N-Quads"),
        (
            {"additions": ['<urn:s> <urn:p> "1" .\n<urn:s> <urn:p> "2" .']},
            r"^additions\[0\]: expected exactly one statement, found 2",
        ),
        ({"additions": ["# only a comment"]}, r"^additions\[0\]: expected exactly one statement"),
        (
            {"additions": [{"subject": "<urn:s>", "object": '"v"'}]},
            r"^additions\[0\]: 'predicate' is required and must be a string",
        ),
        (
            {"additions": [{"subject": "<urn:s>", "predicate": "<urn:p>", "object": 1}]},
            r"^additions\[0\]: 'object' is required and must be a string",
        ),
        (
            {"additions": [{"s": "<urn:s>", "subject": "<urn:s>"}]},
            r"^additions\[0\]: unknown key\(s\) s",
        ),
        (
            {"additions": [{"subject": "<urn:s>", "predicate": "<urn:p>", "object": '"a\nb"'}]},
            r"^additions\[0\]: a term must not contain a raw line break",
        ),
    ],
)
def test_json_refusals_name_the_fault(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Delta.from_json(data)  # type: ignore[arg-type]


def test_json_entry_syntax_error_names_the_entry() -> None:
    data = {"removals": ['<urn:s> <urn:p> "v" .', '<urn:s> <urn:p> "v" .', "<urn:s> <urn:p> ."]}

    with pytest.raises(RDFSyntaxError, match=r"^removals\[2\], line 1, column \d+: "):
        Delta.from_json(data)


def test_json_graph_that_is_not_a_string_is_refused() -> None:
    # Regression: a number as graph raised TypeError instead of a kgc InputError.
    entry = {"subject": "<urn:s>", "predicate": "<urn:p>", "object": '"v"', "graph": 5}

    with pytest.raises(InputError, match=r"^additions\[0\]: 'graph' must be a string"):
        Delta.from_json({"additions": [entry]})


@pytest.mark.parametrize(
    ("key", "term"),
    [
        ("object", '"v" . #'),
        ("subject", "<urn:s> <urn:x> <urn:y> . #"),
        ("predicate", '<urn:p> "x" . #'),
    ],
)
def test_json_field_that_is_not_one_term_is_refused(key: str, term: str) -> None:
    # Regression: {"object": "\"v\" . #", "graph": "<urn:g>"} parsed as one quad whose graph the
    # comment had silently swallowed: the quad landed in the default graph.
    entry = {"subject": "<urn:s>", "predicate": "<urn:p>", "object": '"v"', "graph": "<urn:g>"}
    entry[key] = term

    with pytest.raises(InputError, match=rf"^additions\[0\]: '{key}' must be exactly one term"):
        Delta.from_json({"additions": [entry]})


# Conflicts, reserved graphs, duplicates, no-ops ---------------------------------------------


def test_quad_both_added_and_removed_is_a_conflict() -> None:
    with pytest.raises(DeltaConflict, match=r'^1 quad\(s\) are both added and removed.*"v"'):
        Delta.from_text('<urn:s> <urn:p> "v" .', '<urn:s> <urn:p> "v" .')


def test_conflict_is_found_after_literal_normalization() -> None:
    with pytest.raises(DeltaConflict, match=r"both added and removed"):
        Delta.from_text(
            '<urn:s> <urn:p> "01"^^<http://www.w3.org/2001/XMLSchema#integer> .',
            '<urn:s> <urn:p> "1"^^<http://www.w3.org/2001/XMLSchema#integer> .',
        )


@pytest.mark.parametrize("side", ["additions", "removals"])
def test_reserved_graph_is_refused(side: str) -> None:
    text = '<urn:s> <urn:p> "v" <urn:kgc:delta:additions> .'
    with pytest.raises(ReservedGraphError, match=r"graph <urn:kgc:delta:additions> is reserved"):
        Delta.from_text(**{side: text})  # type: ignore[arg-type]


def test_reserved_graph_is_refused_from_terms() -> None:
    with pytest.raises(ReservedGraphError, match=r"graph <urn:kgc:mine> is reserved"):
        Delta([ox.Quad(S, P, V, ox.NamedNode("urn:kgc:mine"))])


def test_duplicates_within_a_side_are_dropped() -> None:
    delta = Delta([ox.Quad(S, P, V), ox.Triple(S, P, V), (S, P, V)])

    assert delta.additions == (ox.Quad(S, P, V),)
    assert len(delta) == 1


def test_delta_is_immutable() -> None:
    delta = Delta([ox.Quad(S, P, V)])

    with pytest.raises(AttributeError, match="Delta is immutable"):
        delta.additions = ()


def test_no_op_quads_are_dropped_and_counted(engine: KnowledgeEngine) -> None:
    engine.apply(Delta.from_text('<urn:s> <urn:p> "kept" .\n<urn:s> <urn:p> "gone" .'))

    receipt = engine.apply(
        Delta.from_text(
            '<urn:s> <urn:p> "kept" .\n<urn:s> <urn:p> "new" .',
            '<urn:s> <urn:p> "gone" .\n<urn:s> <urn:p> "never there" .',
        )
    )

    counts = (receipt.additions, receipt.ignored_additions)
    assert counts == (1, 1)
    assert (receipt.removals, receipt.ignored_removals) == (1, 1)
    assert {str(q.object) for q in engine.store} == {'"kept"', '"new"'}


def test_apply_refuses_what_is_not_a_delta(engine: KnowledgeEngine) -> None:
    with pytest.raises(InputError, match=r"apply\(\) takes a Delta, got list"):
        engine.apply([ox.Quad(S, P, V)])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"apply\(\) needs a non-empty actor"):
        engine.apply(DEFAULT_ONLY, actor="  ")


def test_unknown_format_is_refused_even_for_empty_text() -> None:
    with pytest.raises(RDFSyntaxError, match="unknown RDF format 'rdfxml'"):
        Delta.from_text("", format="rdfxml")

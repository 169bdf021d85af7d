"""The W3C RDF 1.1 N-Quads syntax suite, through kgc's intake.

Every positive test must be accepted by ``Delta.from_text`` and ``Delta.from_files``; every negative
test must be refused with kgc's ``RDFSyntaxError`` (an ``InputError``) naming where it failed.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pyoxigraph as ox
import pytest

from kgc import Delta, InputError, KnowledgeEngine, RDFSyntaxError

SUITE = Path(__file__).resolve().parents[2] / "shared/cases/w3c/n-quads/rdf/rdf11/rdf-n-quads"
MANIFEST = SUITE / "manifest.ttl"
MF = "http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#"
RDFT = "http://www.w3.org/ns/rdftest#"
RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")

pytestmark = pytest.mark.skipif(
    not MANIFEST.is_file(),
    reason=f"W3C N-Quads suite not found at {SUITE}: clone shared/ beside the checkout",
)


def _entries(kind: str) -> list[tuple[str, Path]]:
    """(test name, input file) of every manifest entry of type ``rdft:<kind>``, by name."""
    if not MANIFEST.is_file():
        return []
    store = ox.Store()
    store.load(path=str(MANIFEST), format=ox.RdfFormat.TURTLE, base_iri=MANIFEST.as_uri())
    action = ox.NamedNode(MF + "action")
    entries = []
    for typed in store.quads_for_pattern(None, RDF_TYPE, ox.NamedNode(RDFT + kind)):
        (link,) = store.quads_for_pattern(typed.subject, action, None)
        assert isinstance(link.object, ox.NamedNode)
        assert isinstance(typed.subject, ox.NamedNode)
        path = Path(url2pathname(urlparse(link.object.value).path))
        entries.append((typed.subject.value.rpartition("#")[2], path))
    return sorted(entries)


POSITIVE = _entries("TestNQuadsPositiveSyntax")
NEGATIVE = _entries("TestNQuadsNegativeSyntax")


def _params(entries: list[tuple[str, Path]]) -> list[object]:
    return [pytest.param(path, id=name) for name, path in entries]


def test_manifest_lists_53_positive_and_34_negative_tests() -> None:
    assert (len(POSITIVE), len(NEGATIVE)) == (53, 34)
    assert all(path.is_file() for _, path in POSITIVE + NEGATIVE)


@pytest.mark.parametrize("path", _params(POSITIVE))
def test_positive_syntax_is_accepted_from_text(path: Path) -> None:
    data = path.read_bytes()

    delta = Delta.from_text(data, format="nquads")

    expected = set(ox.parse(data, format=ox.RdfFormat.N_QUADS, rename_blank_nodes=True))
    assert len(delta.additions) == len(expected)
    assert delta.removals == ()


@pytest.mark.parametrize("path", _params(POSITIVE))
def test_positive_syntax_is_accepted_from_file_and_commits(path: Path) -> None:
    engine = KnowledgeEngine()

    receipt = engine.apply(Delta.from_files(path))

    assert receipt.committed
    assert len(engine) == receipt.additions
    assert receipt.state_after == engine.transactions.recompute_state_digest()


@pytest.mark.parametrize("path", _params(NEGATIVE))
def test_negative_syntax_is_refused_from_text(path: Path) -> None:
    with pytest.raises(RDFSyntaxError, match=r"^<additions>, line \d+, column \d+: ") as caught:
        Delta.from_text(path.read_bytes(), format="nquads")

    assert isinstance(caught.value, InputError)
    assert caught.value.line is not None


@pytest.mark.parametrize("path", _params(NEGATIVE))
def test_negative_syntax_is_refused_from_file_naming_it(path: Path) -> None:
    with pytest.raises(RDFSyntaxError, match=rf"^{re.escape(str(path))}, line \d+, column \d+: "):
        Delta.from_files(path)

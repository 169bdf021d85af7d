"""RDF 1.2 triple terms: written back in N-Quads syntax, and nesting bounded before parsing.

pyoxigraph's parser recurses on nested triple terms: 20,000 levels crash the process, and 12,000
parse but crash it whenever the stored quad is read again. kgc refuses nesting deeper than
``MAX_TRIPLE_TERM_DEPTH`` wherever RDF enters.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest

from kgc import Delta, KnowledgeEngine
from kgc.errors import RDFSyntaxError, TermError
from kgc.rdf.guard import MAX_TRIPLE_TERM_DEPTH
from kgc.rdf.terms import quad_line

ONE_LEVEL = "<urn:s> <urn:p> <<( <urn:a> <urn:b> <urn:x> )>> .\n"


def nested(levels: int) -> str:
    term = "<urn:x>"
    for _ in range(levels):
        term = f"<<( <urn:a> <urn:b> {term} )>>"
    return f"<urn:s> <urn:p> {term} .\n"


def test_a_triple_term_is_written_back_in_n_quads_syntax() -> None:
    (quad,) = Delta.from_text(ONE_LEVEL).additions
    line = quad_line(quad)

    assert line == ONE_LEVEL.strip()
    assert list(ox.parse(line.encode(), format=ox.RdfFormat.N_QUADS)) == [quad]


def test_an_engine_with_a_triple_term_in_its_journal_starts_again(tmp_path: Path) -> None:
    with KnowledgeEngine(lockchain_path=tmp_path / "chain", git_anchoring=False) as engine:
        assert engine.apply(Delta.from_text(ONE_LEVEL)).committed

    with KnowledgeEngine(lockchain_path=tmp_path / "chain", git_anchoring=False) as again:
        assert again.transactions.recovery is not None


def test_nesting_at_the_limit_is_accepted_and_one_deeper_is_refused() -> None:
    assert len(Delta.from_text(nested(MAX_TRIPLE_TERM_DEPTH)).additions) == 1
    with pytest.raises(RDFSyntaxError, match=f"nest {MAX_TRIPLE_TERM_DEPTH + 1} deep"):
        Delta.from_text(nested(MAX_TRIPLE_TERM_DEPTH + 1))


def test_literals_and_iris_full_of_angle_brackets_are_not_nesting() -> None:
    text = '<urn:s> <http://e.org/p#x> "' + "<<" * 100 + '" .\n'
    assert len(Delta.from_text(text).additions) == 1


def test_triple_term_objects_built_in_python_are_bounded_too() -> None:
    term: object = ox.NamedNode("urn:x")
    for _ in range(MAX_TRIPLE_TERM_DEPTH + 5):
        term = ox.Triple(ox.NamedNode("urn:a"), ox.NamedNode("urn:b"), term)  # type: ignore[arg-type]
    quad = ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), term)  # type: ignore[arg-type]
    with pytest.raises(TermError, match="additions\\[0\\]: triple terms nest"):
        Delta([quad])


def test_twenty_thousand_levels_are_refused_not_a_crash(tmp_path: Path) -> None:
    # In a child process: without the guard this kills the interpreter with SIGSEGV.
    (tmp_path / "deep.nq").write_text(nested(20_000))
    script = (
        "import sys\nfrom kgc import Delta\nfrom kgc.errors import RDFSyntaxError\n"
        "try:\n    Delta.from_files(sys.argv[1])\nexcept RDFSyntaxError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "deep.nq")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert "refused:" in done.stdout and "triple terms nest 20000 deep" in done.stdout

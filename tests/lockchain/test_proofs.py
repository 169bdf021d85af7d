"""Inclusion and consistency proofs from a real anchor, checked with the proof and a key alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from lockchain_forge import KEY, OTHER_KEY, build_chain

from kgc.cli import main
from kgc.errors import NotAnchored, ProofInvalid
from kgc.lockchain.proofs import (
    check_consistency_proof,
    check_inclusion_proof,
    prove_consistency,
    prove_inclusion,
)

PUBLIC = KEY.public_key_hex


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("proofs") / "chain"
    build_chain(directory, n=13, batch_size=4)  # tree heads at 4, 8, 12 and 13
    return directory


def roundtrip(proof: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(proof))
    return result


def test_every_receipt_has_an_inclusion_proof_that_checks(chain: Path) -> None:
    for seq in range(1, 14):
        proof = roundtrip(prove_inclusion(chain, seq))
        result = check_inclusion_proof(proof, PUBLIC)
        assert result["seq"] == seq and result["tree_size"] == 13
        assert json.loads(proof["leaf"])["seq"] == seq


def test_an_inclusion_proof_against_an_earlier_tree_head(chain: Path) -> None:
    proof = prove_inclusion(chain, 3, tree_size=8)
    assert check_inclusion_proof(roundtrip(proof), PUBLIC)["tree_size"] == 8


def _edit_leaf(proof: dict[str, Any]) -> None:
    proof["leaf"] = proof["leaf"].replace('"actor":"actor-', '"actor":"mallory-')


def _reformat_leaf(proof: dict[str, Any]) -> None:
    proof["leaf"] = json.dumps(json.loads(proof["leaf"]), indent=1)


def _edit_path(proof: dict[str, Any]) -> None:
    proof["audit_path"][0] = "0" * 64


def _edit_root(proof: dict[str, Any]) -> None:
    proof["tree_head"]["root"] = "1" * 64


def _move_index(proof: dict[str, Any]) -> None:
    proof["index"] += 1


def _drop_head_signature(proof: dict[str, Any]) -> None:
    proof["tree_head"]["signature"] = None


def _forge_receipt_signature(proof: dict[str, Any]) -> None:
    proof["receipt_signature"] = "ab" * 64


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_edit_leaf, "the leaf hashes to"),
        (_reformat_leaf, "not in RFC 8785 form"),
        (_edit_path, "audit path does not lead"),
        (_edit_root, "signature does not verify"),
        (_move_index, r"the proof says seq 6 at index 6 \(receipt N is leaf N - 1\)"),
        (_drop_head_signature, "is not signed"),
        (_forge_receipt_signature, "receipt's own signature does not verify"),
    ],
)
def test_a_tampered_inclusion_proof_is_refused(chain: Path, tamper: Any, message: str) -> None:
    proof = roundtrip(prove_inclusion(chain, 6))
    tamper(proof)
    with pytest.raises(ProofInvalid, match=message):
        check_inclusion_proof(proof, PUBLIC)


def test_an_inclusion_proof_checked_with_another_key_is_refused(chain: Path) -> None:
    with pytest.raises(ProofInvalid, match="not by the given key"):
        check_inclusion_proof(prove_inclusion(chain, 2), OTHER_KEY.public_key_hex)


@pytest.mark.parametrize(("m", "n"), [(4, 13), (8, 12), (12, 13), (4, 4), (13, 13)])
def test_consistency_proofs_between_tree_heads_check(chain: Path, m: int, n: int) -> None:
    result = check_consistency_proof(roundtrip(prove_consistency(chain, m, n)), PUBLIC)
    assert (result["first_size"], result["second_size"]) == (m, n)


def test_a_tampered_consistency_proof_is_refused(chain: Path) -> None:
    proof = roundtrip(prove_consistency(chain, 4, 13))
    bad_path = copy.deepcopy(proof)
    bad_path["consistency_path"][0] = "0" * 64
    with pytest.raises(ProofInvalid, match="is not an extension of the tree of size 4"):
        check_consistency_proof(bad_path, PUBLIC)
    swapped = dict(proof, first=proof["second"], second=proof["first"])
    with pytest.raises(ProofInvalid, match="proof does not check"):
        check_consistency_proof(swapped, PUBLIC)


def test_proofs_need_anchored_tree_heads(chain: Path, tmp_path: Path) -> None:
    with pytest.raises(NotAnchored, match=r"no signed tree head has size 6.*nearest: 4 and 8"):
        prove_consistency(chain, 6, 13)
    with pytest.raises(NotAnchored, match="receipt 14 is not in the anchored tree of size 13"):
        prove_inclusion(chain, 14)
    with pytest.raises(NotAnchored, match="nothing is anchored yet"):
        prove_inclusion(tmp_path, 1)


def test_an_unsigned_chain_gives_proofs_no_key_can_check(tmp_path: Path) -> None:
    build_chain(tmp_path, n=3, batch_size=2, key=None)
    with pytest.raises(ProofInvalid, match="tree_head is not signed"):
        check_inclusion_proof(prove_inclusion(tmp_path, 1), PUBLIC)


def test_cli_prove_and_check_proof(
    chain: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lockchain", "prove", str(chain), "--seq", "5"]) == 0
    inclusion = tmp_path / "inclusion.json"
    inclusion.write_text(capsys.readouterr().out)
    assert main(["lockchain", "check-proof", str(inclusion), "--public-key", PUBLIC]) == 0
    assert "OK: receipt 5" in capsys.readouterr().out

    assert main(["lockchain", "prove", str(chain), "--from", "4", "--to", "12"]) == 0
    consistency = tmp_path / "consistency.json"
    consistency.write_text(capsys.readouterr().out)
    assert main(["lockchain", "check-proof", str(consistency), "--public-key", PUBLIC]) == 0
    assert "extends the tree of size 4" in capsys.readouterr().out

    wrong = OTHER_KEY.public_key_hex
    assert main(["lockchain", "check-proof", str(inclusion), "--public-key", wrong]) == 1
    assert "proof does not check" in capsys.readouterr().err
    assert main(["lockchain", "prove", str(chain), "--seq", "1", "--from", "4"]) == 1

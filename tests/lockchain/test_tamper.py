"""The tamper suite: each attack on a real lockchain is detected, at the right receipt, by name.

The chain: 12 receipts by a real engine, signed with ``KEY``, anchored in batches of 4 (receipts
1-4, 5-8, 9-12). Most attacks aim at receipt 6, in the middle of batch 2. Each case names the
first bad receipt and the kind of check that must report it, and a piece of the message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from lockchain_forge import (
    KEY,
    OTHER_KEY,
    blob_path,
    build_chain,
    copy_chain,
    journal_from_batches,
    journal_lines,
    load_batches,
    quad,
    receipt_line_index,
    recompute,
    record_of,
    repo_of,
    reseal,
    rewitness,
    sign_head,
    write_batches,
    write_journal,
)

from kgc.errors import ChainBroken
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.layout import REF, WITNESS_FILE, receipt_name
from kgc.lockchain.records import key_id
from kgc.lockchain.verify import verify_lockchain
from kgc.store.oxigraph import OxigraphStore

Attack = Callable[[Path], None]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pristine") / "chain"
    build_chain(directory)
    assert verify_lockchain(directory, replay=True).ok
    return directory


# Attacks on git ---------------------------------------------------------------------------


def edit_git(d: Path, seq: int = 6, **fields: object) -> list:  # type: ignore[type-arg]
    batches = load_batches(d)
    record_of(batches, seq)["receipt"].update(fields or {"actor": "mallory"})
    return batches


def git_edit_field(d: Path) -> None:
    write_batches(d, edit_git(d))


def git_edit_rehash(d: Path) -> None:
    batches = edit_git(d)
    record = record_of(batches, 6)
    record["hash"] = _sha(record["receipt"])
    write_batches(d, batches)


def git_edit_resign_other_key(d: Path) -> None:
    batches = edit_git(d)
    record = record_of(batches, 6)
    record["receipt"]["key_id"] = key_id(OTHER_KEY)
    form = canonical_json(record["receipt"])
    record["hash"], record["signature"] = _sha(record["receipt"]), OTHER_KEY.sign(form).hex()
    write_batches(d, batches)


def git_drop_receipt(d: Path) -> None:
    batches = load_batches(d)
    batches[1].records = [r for r in batches[1].records if r["seq"] != 6]
    write_batches(d, batches)


def git_reorder(d: Path) -> None:
    batches = load_batches(d)
    six, seven = record_of(batches, 6), record_of(batches, 7)
    batches[1].records.remove(six)
    batches[1].records.remove(seven)
    batches[1].extra = {
        receipt_name(6): canonical_json(seven),
        receipt_name(7): canonical_json(six),
    }
    write_batches(d, batches)


def git_duplicate(d: Path) -> None:
    batches = load_batches(d)
    batches[2].extra = {receipt_name(8): canonical_json(record_of(batches, 8))}
    write_batches(d, batches)


def git_insert_forged(d: Path) -> None:
    _insert_forged(d, add_key=False)


def git_insert_forged_key_added(d: Path) -> None:
    _insert_forged(d, add_key=True)


def _insert_forged(d: Path, add_key: bool) -> None:
    batches = load_batches(d)
    forged = json.loads(json.dumps(record_of(batches, 12)))
    forged["seq"] = forged["receipt"]["seq"] = 13
    forged["receipt"]["actor"] = "mallory"
    batches.append(
        type(batches[0])(dict(batches[2].doc, batch=4), dict(batches[2].keys), [forged], {})
    )
    if add_key:
        batches[3].keys[key_id(OTHER_KEY)] = OTHER_KEY.public_key_hex
    reseal(batches, OTHER_KEY, from_seq=13)
    recompute(batches, KEY)
    batches[3].doc["tree_head"] = sign_head(13, batches[3].doc["tree_head"]["root"], OTHER_KEY)
    write_batches(d, batches)


def git_delta_line(d: Path) -> None:
    batches = load_batches(d)
    record_of(batches, 6)["delta"]["additions"][0] = quad(99).__str__() + " ."
    write_batches(d, batches)
    journal_from_batches(d, batches)


def git_forge_signature(d: Path) -> None:
    batches = load_batches(d)
    record_of(batches, 6)["signature"] = "ab" * 64
    write_batches(d, batches)


def git_strip_signature(d: Path) -> None:
    batches = load_batches(d)
    record_of(batches, 6)["signature"] = None
    write_batches(d, batches)


def git_resign_all_swap_keys(d: Path) -> None:
    batches = load_batches(d)
    reseal(batches, OTHER_KEY)
    for batch in batches:
        batch.keys = {key_id(OTHER_KEY): OTHER_KEY.public_key_hex}
    recompute(batches, OTHER_KEY)
    write_batches(d, batches)


def git_keys_swapped_under_same_id(d: Path) -> None:
    batches = load_batches(d)
    batches[1].keys = {key_id(KEY): OTHER_KEY.public_key_hex}
    write_batches(d, batches)


def git_key_removed(d: Path) -> None:
    batches = load_batches(d)
    for batch in batches:
        batch.keys = {}
    write_batches(d, batches)


def git_rewrite_history_stolen_key(d: Path) -> None:
    batches = edit_git(d)
    reseal(batches, KEY, from_seq=6)
    recompute(batches, KEY)
    write_batches(d, batches)


def git_prev_broken_stolen_key(d: Path) -> None:
    batches = load_batches(d)
    record_of(batches, 6)["receipt"]["prev"] = "f" * 64
    record = record_of(batches, 6)
    form = canonical_json(record["receipt"])
    record["hash"], record["signature"] = _sha(record["receipt"]), KEY.sign(form).hex()
    recompute(batches, KEY)
    write_batches(d, batches)
    journal_from_batches(d, batches)
    rewitness(d)


def git_swap_batches(d: Path) -> None:
    batches = load_batches(d)
    batches[1], batches[2] = batches[2], batches[1]
    write_batches(d, batches)


def git_rewind_ref(d: Path) -> None:
    repo = repo_of(d)
    head = repo.references[REF].peel()
    repo.references.create(REF, head.parent_ids[0], force=True)


def git_corrupt_object(d: Path) -> None:
    path = blob_path(d, 6)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def git_truncate_object(d: Path) -> None:
    """A cut zlib stream: libgit2 1.9 never returns from reading it; the verifier must."""
    path = blob_path(d, 6)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-12])


def git_delete_object(d: Path) -> None:
    blob_path(d, 6).unlink()


def git_batch_root(d: Path) -> None:
    batches = load_batches(d)
    batches[1].doc["batch_root"] = "0" * 64
    write_batches(d, batches)


def git_chain_head(d: Path) -> None:
    batches = load_batches(d)
    batches[1].doc["chain_head"] = record_of(batches, 7)["hash"]
    write_batches(d, batches)


def git_tree_head_root(d: Path) -> None:
    batches = load_batches(d)
    batches[1].doc["tree_head"]["root"] = batches[0].doc["tree_head"]["root"]
    write_batches(d, batches)


def git_tree_head_size(d: Path) -> None:
    batches = load_batches(d)
    batches[1].doc["tree_head"]["size"] = 7
    write_batches(d, batches)


def git_tree_head_signature(d: Path) -> None:
    batches = load_batches(d)
    batches[1].doc["tree_head"]["signature"] = "cd" * 64
    write_batches(d, batches)


def break_consistency_everywhere(d: Path) -> None:
    """A stolen key rewrites receipt 6 in git and journal alike; only the witness remembers."""
    batches = edit_git(d)
    reseal(batches, KEY, from_seq=6)
    recompute(batches, KEY)
    write_batches(d, batches)
    journal_from_batches(d, batches)


def forge_state_everywhere(d: Path) -> None:
    """A stolen key changes a delta line and its digest, re-seals git, journal and witness."""
    from kgc.rdf.digest import delta_digests

    batches = load_batches(d)
    record = record_of(batches, 6)
    record["delta"]["additions"] = [str(quad(99)).removesuffix(" .") + " ."]
    delta = record["delta"]
    record["receipt"]["delta_digest"] = delta_digests(delta["additions"], delta["removals"])
    reseal(batches, KEY, from_seq=6)
    recompute(batches, KEY)
    write_batches(d, batches)
    journal_from_batches(d, batches)
    rewitness(d)


# Attacks on the journal and the witness ---------------------------------------------------


def _edit_journal(d: Path, change: Callable[[list[bytes]], None]) -> None:
    lines = journal_lines(d)
    change(lines)
    write_journal(d, lines)


def journal_edit_field(d: Path) -> None:
    def change(lines: list[bytes]) -> None:
        i = receipt_line_index(lines, 6)
        lines[i] = lines[i].replace(b'"actor":"actor-2"', b'"actor":"mallory"')

    _edit_journal(d, change)


def journal_drop(d: Path) -> None:
    _edit_journal(d, lambda lines: lines.pop(receipt_line_index(lines, 6)))


def journal_reorder(d: Path) -> None:
    def change(lines: list[bytes]) -> None:
        i, j = receipt_line_index(lines, 6), receipt_line_index(lines, 7)
        lines[i], lines[j] = lines[j], lines[i]

    _edit_journal(d, change)


def journal_duplicate(d: Path) -> None:
    _edit_journal(d, lambda lines: lines.append(lines[receipt_line_index(lines, 6)]))


def journal_truncate_records(d: Path) -> None:
    _edit_journal(d, lambda lines: lines.__delitem__(slice(receipt_line_index(lines, 11), None)))


def journal_truncate_anchored_mid_record(d: Path) -> None:
    def change(lines: list[bytes]) -> None:
        i = receipt_line_index(lines, 12)
        lines[i:] = [lines[i][: len(lines[i]) // 2]]

    _edit_journal(d, change)


def journal_garbage_line(d: Path) -> None:
    _edit_journal(d, lambda lines: lines.insert(receipt_line_index(lines, 6), b"%%garbage%%\n"))


def witness_deleted(d: Path) -> None:
    (d / WITNESS_FILE).unlink()


def witness_edited(d: Path) -> None:
    lines = (d / WITNESS_FILE).read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["tree_head"]["root"] = "0" * 64
    lines[1] = (json.dumps(entry) + "\n").encode()
    (d / WITNESS_FILE).write_bytes(b"".join(lines))


def _sha(body: dict) -> str:  # type: ignore[type-arg]
    import hashlib

    return hashlib.sha256(canonical_json(body)).hexdigest()


# (attack, first bad seq, kind, message piece, replay)
CASES = [
    (git_edit_field, 6, "hash", "to its recorded hash", False),
    (git_edit_rehash, 6, "signature", "signature does not verify with key", False),
    (git_edit_resign_other_key, 6, "key", "which keys.json does not list (unknown key)", False),
    (git_drop_receipt, 6, "sequence", "receipt 6 is missing from receipts/", False),
    (git_reorder, 6, "sequence", "holds receipt 7, not 6 (receipts reordered)", False),
    (git_duplicate, 8, "sequence", "outside the batch's declared range", False),
    (git_insert_forged, 13, "key", "which keys.json does not list", False),
    (
        git_insert_forged_key_added,
        13,
        "journal",
        "anchored in git but missing from the journal",
        False,
    ),
    (git_delta_line, 6, "delta", "do not match the body's delta_digest", False),
    (git_forge_signature, 6, "signature", "signature does not verify", False),
    (git_strip_signature, 6, "signature", "carries no signature (signature stripped)", False),
    (
        git_resign_all_swap_keys,
        1,
        "journal",
        "git and the journal disagree: body field(s) key_id",
        False,
    ),
    (git_keys_swapped_under_same_id, 5, "key", "for a public key whose id is", False),
    (git_key_removed, 1, "key", "which keys.json does not list", False),
    (git_rewrite_history_stolen_key, 6, "journal", "disagree: body field(s) actor", False),
    (git_prev_broken_stolen_key, 6, "link", "is not receipt 5's hash", False),
    (git_swap_batches, 5, "sequence", "batches swapped", False),
    (git_rewind_ref, 9, "witness", "the ref was moved back", False),
    (git_corrupt_object, 6, "git-object", "is corrupt", False),
    (git_truncate_object, 6, "git-object", "its zlib stream ends early", False),
    (git_delete_object, 6, "git-object", "is missing", False),
    (git_batch_root, 5, "batch", "is not the Merkle root of its receipts", False),
    (git_chain_head, 8, "batch", "is not the hash of its last receipt 8", False),
    (git_tree_head_root, 5, "tree-head", "is not the Merkle root of receipts 1-8", False),
    (
        git_tree_head_size,
        5,
        "tree-head",
        "tree head size 7 is not the batch's last receipt 8",
        False,
    ),
    (git_tree_head_signature, 5, "tree-head", "tree head signature does not verify", False),
    (break_consistency_everywhere, 5, "witness", "not consistent with the tree head", False),
    (forge_state_everywhere, 6, "replay", "state_after is", True),
    (journal_edit_field, 6, "journal", "the journal's copy was edited", False),
    (journal_drop, 6, "journal", "receipt 6 is missing from the journal", False),
    (journal_reorder, 6, "journal", "the journal is out of order", False),
    (journal_duplicate, 6, "journal", "holds receipt 6 twice", False),
    (journal_truncate_records, 11, "journal", "which ends at receipt 10 (truncated)", False),
    (
        journal_truncate_anchored_mid_record,
        12,
        "journal",
        "which ends at receipt 11 (truncated)",
        False,
    ),
    (journal_garbage_line, 6, "journal", "is not a readable journal record", False),
    (witness_deleted, 1, "witness", "anchors.jsonl is missing or empty", False),
    (witness_edited, 5, "witness", "signature does not verify (witness edited)", False),
]


@pytest.mark.parametrize(
    ("attack", "seq", "kind", "message", "replay"), CASES, ids=[case[0].__name__ for case in CASES]
)
def test_attack_is_detected(
    pristine: Path,
    tmp_path: Path,
    attack: Attack,
    seq: int,
    kind: str,
    message: str,
    replay: bool,
) -> None:
    directory = copy_chain(pristine, tmp_path / "chain")
    attack(directory)

    report = verify_lockchain(directory, replay=replay)

    first = report.first
    assert first is not None, f"{attack.__name__} went undetected"
    assert (first.seq, first.kind) == (seq, kind), str(first)
    assert message in first.message
    with pytest.raises(ChainBroken, match=f"first bad receipt is {seq} ") as caught:
        report.raise_for_problems()
    assert caught.value.seq == seq


def test_forged_state_passes_without_replay_but_not_with_it(pristine: Path, tmp_path: Path) -> None:
    directory = copy_chain(pristine, tmp_path / "chain")
    forge_state_everywhere(directory)

    assert verify_lockchain(directory).ok
    assert not verify_lockchain(directory, replay=True).ok


def test_untrusted_key_is_refused_even_when_everything_is_resigned(
    pristine: Path, tmp_path: Path
) -> None:
    directory = copy_chain(pristine, tmp_path / "chain")
    git_resign_all_swap_keys(directory)
    journal_from_batches(directory, load_batches(directory))
    rewitness(directory)

    assert verify_lockchain(directory).ok
    report = verify_lockchain(directory, trusted_keys=[KEY.public_key_hex])
    assert report.first is not None
    assert "not one of the trusted keys" in report.first.message


def test_live_store_that_differs_is_reported(pristine: Path) -> None:
    store = OxigraphStore()
    store.add_all([quad(1234)])

    report = verify_lockchain(pristine, store=store)

    assert report.first is not None
    assert report.first.kind == "replay"
    assert "the live store's state digest" in report.first.message


def test_torn_journal_tail_is_not_an_attack(pristine: Path, tmp_path: Path) -> None:
    directory = copy_chain(pristine, tmp_path / "chain")
    lines = journal_lines(directory)
    write_journal(directory, [*lines, lines[receipt_line_index(lines, 12)][:40]])

    report = verify_lockchain(directory, replay=True)
    assert report.ok and report.torn_tail

    from kgc.lockchain.journal import Journal

    Journal(directory).close()  # recovery drops the torn tail
    report = verify_lockchain(directory, replay=True)
    assert report.ok and not report.torn_tail


def test_there_are_at_least_25_distinct_attacks() -> None:
    assert len({case[0].__name__ for case in CASES}) >= 25

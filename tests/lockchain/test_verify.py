"""``verify_lockchain`` and ``kgc lockchain verify`` on real chains: what passes, lag, sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lockchain_forge import (
    KEY,
    OTHER_KEY,
    build_chain,
    copy_chain,
    delta_for,
    journal_lines,
    quad,
    receipt_line_index,
    write_journal,
)

from kgc.cli import main
from kgc.errors import CanonicalJSONError
from kgc.lockchain import fastjson, verify
from kgc.lockchain.canonical import canonical_json
from kgc.lockchain.journal import Journal
from kgc.lockchain.layout import GIT_DIR, WITNESS_FILE
from kgc.lockchain.verify import verify_lockchain
from kgc.store.oxigraph import OxigraphStore
from kgc.transaction import TransactionManager


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, OxigraphStore]:
    directory = tmp_path_factory.mktemp("verify") / "chain"
    return directory, build_chain(directory, n=12, batch_size=4)


def test_a_real_chain_verifies_with_replay_and_its_live_store(
    chain: tuple[Path, OxigraphStore],
) -> None:
    directory, store = chain

    report = verify_lockchain(directory, store=store)

    assert report.ok, report.summary()
    assert (report.receipts, report.anchored_seq, report.batches) == (12, 12, 3)
    assert report.signatures == 12 and report.replayed == 12 and report.lag == 0
    assert report.final_state == TransactionManager(store).state_digest


def test_an_unsigned_chain_verifies(tmp_path: Path) -> None:
    build_chain(tmp_path, n=5, batch_size=2, key=None)

    report = verify_lockchain(tmp_path, replay=True)

    assert report.ok and report.signatures == 0 and report.anchored_seq == 5


def test_the_unanchored_tail_is_lag_and_is_checked(
    chain: tuple[Path, OxigraphStore], tmp_path: Path
) -> None:
    directory = copy_chain(chain[0], tmp_path / "chain")
    journal = Journal(directory, key=KEY, fsync=False)
    manager = TransactionManager(OxigraphStore(), journal=journal)
    for i in range(12, 15):
        manager.apply(delta_for(i), "late")
    journal.close()

    report = verify_lockchain(directory, replay=True)
    assert report.ok and report.lag == 3 and report.receipts == 15

    lines = journal_lines(directory)
    i = receipt_line_index(lines, 14)
    lines[i] = lines[i].replace(b'"actor":"late"', b'"actor":"mallory"')
    write_journal(directory, lines)
    first = verify_lockchain(directory).first
    assert first is not None and first.seq == 14 and "(not anchored yet)" in first.message


def test_a_journal_without_git_needs_the_public_key(tmp_path: Path) -> None:
    journal = Journal(tmp_path, key=KEY, fsync=False)
    manager = TransactionManager(OxigraphStore(), journal=journal)
    for i in range(3):
        manager.apply(delta_for(i), "alice")
    journal.close()

    first = verify_lockchain(tmp_path).first
    assert first is not None and first.seq == 1 and "unknown key" in first.message
    assert verify_lockchain(tmp_path, trusted_keys=[KEY.public_key_hex], replay=True).ok
    refused = verify_lockchain(tmp_path, trusted_keys=[OTHER_KEY.public_key_hex]).first
    assert refused is not None and refused.kind == "key"


def test_git_alone_verifies_when_there_is_no_journal(
    chain: tuple[Path, OxigraphStore], tmp_path: Path
) -> None:
    directory = copy_chain(chain[0], tmp_path / "chain")
    (directory / "journal.jsonl").unlink()

    report = verify_lockchain(directory, replay=True)

    assert report.ok and report.replayed == 12
    assert any("no journal" in note for note in report.notes)


def test_worker_processes_agree_with_one_process(
    chain: tuple[Path, OxigraphStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "CHUNK_RECEIPTS", 4)
    directory = copy_chain(chain[0], tmp_path / "chain")
    assert verify_lockchain(directory, workers=2).ok

    lines = journal_lines(directory)
    i = receipt_line_index(lines, 10)
    lines[i] = lines[i].replace(b'"actor":"actor-0"', b'"actor":"mallory"')
    write_journal(directory, lines)
    pooled, single = verify_lockchain(directory, workers=2), verify_lockchain(directory, workers=1)
    assert pooled.first == single.first and pooled.first is not None
    assert pooled.first.seq == 10


def test_progress_is_reported(chain: tuple[Path, OxigraphStore]) -> None:
    seen: list[tuple[str, int, int]] = []

    verify_lockchain(chain[0], replay=True, progress=lambda *step: seen.append(step))

    assert ("checking", 12, 12) in seen and ("replaying", 12, 12) in seen


def test_an_empty_directory_is_not_a_lockchain(tmp_path: Path) -> None:
    report = verify_lockchain(tmp_path)
    assert not report.ok
    assert report.first is not None and "not a lockchain" in report.first.message


def test_a_lockchain_with_no_receipt_yet_verifies_as_empty(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_bytes(b"")
    report = verify_lockchain(tmp_path)
    assert report.ok and report.receipts == 0


# The command ----------------------------------------------------------------------------------


def test_cli_verify_prints_a_summary_and_exits_0(
    chain: tuple[Path, OxigraphStore], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lockchain", "verify", str(chain[0]), "--replay"]) == 0
    out, err = capsys.readouterr()
    assert "OK" in out and "replayed:          12 deltas" in out
    assert "checking: 12/12 receipts" in err


def test_cli_verify_names_the_first_bad_receipt_and_exits_1(
    chain: tuple[Path, OxigraphStore], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = copy_chain(chain[0], tmp_path / "chain")
    (directory / WITNESS_FILE).unlink()

    assert main(["lockchain", "verify", str(directory)]) == 1
    out, err = capsys.readouterr()
    assert "FAILED: first bad receipt 1 [witness]" in out
    assert "kgc lockchain verify: first bad receipt 1 [witness]" in err


def test_cli_verify_compares_an_on_disk_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, store_path = tmp_path / "chain", tmp_path / "store"
    journal = Journal(directory, key=KEY, fsync=False)
    manager = TransactionManager(OxigraphStore(store_path), journal=journal)
    for i in range(4):
        manager.apply(delta_for(i), "alice")
    journal.close()
    manager.store.flush()
    del manager
    trust = ["--public-key", KEY.public_key_hex]

    assert main(["lockchain", "verify", str(directory), "--store", str(store_path), *trust]) == 0
    OxigraphStore(store_path).add_all([quad(1000)])
    assert main(["lockchain", "verify", str(directory), "--store", str(store_path), *trust]) == 1
    assert "the live store's state digest" in capsys.readouterr().out


def test_cli_verify_refuses_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lockchain", "verify", str(tmp_path / "nowhere")]) == 1
    assert "not a lockchain directory" in capsys.readouterr().err


def test_git_directory_removed_means_everything_is_lag(
    chain: tuple[Path, OxigraphStore], tmp_path: Path
) -> None:
    directory = copy_chain(chain[0], tmp_path / "chain")
    shutil.rmtree(directory / GIT_DIR)
    (directory / WITNESS_FILE).unlink()

    report = verify_lockchain(directory, trusted_keys=[KEY.public_key_hex])

    assert report.ok and report.lag == 12 and report.anchored_seq == 0


# The fast canonical form ------------------------------------------------------------------------

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, database=None)
@given(_VALUES)
def test_fast_canonical_form_is_rfc_8785(value: object) -> None:
    for raw in (
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    ):
        try:
            parsed, fast = fastjson.parse(raw)
        except ValueError:
            continue
        try:
            expected: bytes | None = canonical_json(json.loads(raw))
        except CanonicalJSONError:
            expected = None
        try:
            got: bytes | None = fastjson.dumps(parsed, fast)
        except (CanonicalJSONError, UnicodeEncodeError):
            got = None
        assert got == expected


def test_damaged_files_never_crash_or_hang_the_verifier(
    chain: tuple[Path, OxigraphStore], tmp_path: Path
) -> None:
    """Seeded bit flips, cuts and insertions in every file the verifier reads: it reports them
    (or finds the content unchanged, as for a deflate padding bit), never raises or hangs."""
    import random

    rng = random.Random(20261204)
    source = chain[0]
    files = sorted(
        p.relative_to(source)
        for p in source.rglob("*")
        if p.is_file() and ("objects" in p.parts or p.suffix == ".jsonl")
    )
    for trial in range(40):
        directory = copy_chain(source, tmp_path / f"trial{trial}")
        target = directory / rng.choice(files)
        data = bytearray(target.read_bytes())
        at = rng.randrange(len(data))
        match rng.choice(["flip", "cut", "insert"]):
            case "flip":
                data[at] ^= 1 << rng.randrange(8)
            case "cut":
                del data[at : at + rng.randrange(1, 40)]
            case _:
                data[at:at] = bytes([rng.randrange(32, 127)])
        target.chmod(0o644)
        target.write_bytes(bytes(data))

        verify_lockchain(directory, replay=True)
        shutil.rmtree(directory)

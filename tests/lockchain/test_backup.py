"""Backups (create, verify, restore, retention) and the rebuild from the lockchain alone."""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest

from kgc import Delta, Hook, KnowledgeEngine, SparqlAsk
from kgc.cli import main
from kgc.errors import BackupCorrupt, BackupError, RestoreRefused
from kgc.lockchain.backup import NAME_RE, create_backup, prune_backups
from kgc.lockchain.rebuild import EMPTY_STATE, rebuild_from_lockchain
from kgc.lockchain.restore import restore_backup, verify_backup

EX = "urn:ex:"
VETO_ADDING_BAD = f"ASK {{ GRAPH <urn:kgc:delta:additions> {{ ?s <{EX}status> 'bad' }} }}"
DAY = 86_400


def _quad(s: str, o: ox.NamedNode | ox.Literal | ox.BlankNode) -> ox.Quad:
    return ox.Quad(ox.NamedNode(EX + s), ox.NamedNode(EX + "p"), o)


def _fill(engine: KnowledgeEngine, n: int = 12) -> None:
    """Additions, removals, blank nodes and a vetoed change or two."""
    for i in range(n):
        adds = [_quad(f"s{i}", ox.Literal(f"v{i}")), _quad(f"s{i}", ox.BlankNode(f"b{i}"))]
        if i % 5 == 4:
            adds.append(
                ox.Quad(ox.NamedNode(f"{EX}s{i}"), ox.NamedNode(EX + "status"), ox.Literal("bad"))
            )
        removals = [_quad(f"s{i - 2}", ox.Literal(f"v{i - 2}"))] if i >= 2 and i % 2 else []
        engine.apply(Delta(adds, removals))


def _engine(root: Path) -> KnowledgeEngine:
    engine = KnowledgeEngine(
        store_path=root / "store",
        lockchain_path=root / "lockchain",
        git_anchoring=True,
        anchor_batch_size=3,
    )
    engine.hooks.register(Hook("no-bad", SparqlAsk(VETO_ADDING_BAD), message="bad"))
    return engine


@pytest.fixture
def live(tmp_path: Path) -> Iterator[KnowledgeEngine]:
    with _engine(tmp_path) as engine:
        _fill(engine)
        yield engine


@pytest.fixture
def stopped(tmp_path: Path) -> Path:
    """A deployment whose writer has stopped: store, lockchain and a config file in tmp_path."""
    engine = _engine(tmp_path)
    _fill(engine)
    engine.close()
    del engine
    gc.collect()  # the engine's store handle holds the RocksDB lock until it is collected
    (tmp_path / "kgc.toml").write_text('store_path = "store"\n')
    return tmp_path


def _backup(root: Path, **kwargs: object) -> Path:
    result = create_backup(
        root / "store", root / "lockchain", root / "backups", config=root / "kgc.toml", **kwargs
    )
    return result.path


# Round trip ----------------------------------------------------------------------------------


def test_round_trip_restores_the_state_of_the_last_receipt(stopped: Path, tmp_path: Path) -> None:
    state = json.loads((stopped / "lockchain" / "journal.jsonl").read_text().splitlines()[-1])
    archive = _backup(stopped)
    assert NAME_RE.fullmatch(archive.name)

    checked = verify_backup(archive)
    assert (
        checked.recovered.state == state["receipt"]["state_after"] == checked.manifest.state_digest
    )
    assert checked.receipts == checked.manifest.last_seq == 12
    assert checked.anchored == 12  # close() anchored the last partial batch

    target = tmp_path / "restored"
    done = restore_backup(
        archive, target / "store", target / "lockchain", config=target / "etc" / "kgc.toml"
    )
    assert done.recovered.matches and done.recovered.state == checked.recovered.state
    assert (target / "etc" / "kgc.toml").read_text() == 'store_path = "store"\n'
    with KnowledgeEngine(
        store_path=target / "store", lockchain_path=target / "lockchain", git_anchoring=False
    ) as engine:
        assert engine.state_digest == done.recovered.state
        receipt = engine.apply(Delta([_quad("after", ox.Literal("restore"))]))
        assert receipt.seq == 13


def test_backup_of_a_running_engine_in_process_and_by_path(
    live: KnowledgeEngine, tmp_path: Path
) -> None:
    in_process = create_backup(live.store, tmp_path / "lockchain", tmp_path / "b1")
    by_path = create_backup(tmp_path / "store", tmp_path / "lockchain", tmp_path / "b2")
    assert in_process.manifest.store_snapshot == "checkpoint"
    assert by_path.manifest.store_snapshot == "export"  # the engine holds the store's lock
    for result in (in_process, by_path):
        assert verify_backup(result.path).recovered.state == live.state_digest


def test_a_torn_journal_tail_is_left_out_of_the_backup(stopped: Path) -> None:
    journal = stopped / "lockchain" / "journal.jsonl"
    with journal.open("ab") as handle:
        handle.write(b'{"type":"intent","seq":13,"additions":["<urn:ex:torn')
    archive = _backup(stopped)
    assert verify_backup(archive).manifest.last_seq == 12


# Tampering -----------------------------------------------------------------------------------


def _rewrite(archive: Path, change: dict[str, bytes | None], manifest: bool = False) -> Path:
    """A copy of ``archive`` with members replaced (bytes), dropped (None) or added."""
    out = archive.with_name("tampered.tar.gz")
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        members = {m.name: m for m in src.getmembers()}
        data = {n: src.extractfile(m).read() for n, m in members.items() if m.isfile()}  # type: ignore[union-attr]
        for name, value in change.items():
            if value is None:
                del members[name]
            else:
                members.setdefault(name, tarfile.TarInfo(name))
                data[name] = value
        if manifest:
            doc = json.loads(data["manifest.json"])
            for name, value in change.items():
                doc["members"].pop(name, None)
                if value is not None and name != "manifest.json":
                    doc["members"][name] = _sha256(value)
            data["manifest.json"] = json.dumps(doc).encode()
        for name, info in members.items():
            if info.isfile():
                info.size = len(data[name])
                dst.addfile(info, io.BytesIO(data[name]))
            else:
                dst.addfile(info)
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive, "r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_a_changed_member_is_refused_by_name(stopped: Path) -> None:
    archive = _backup(stopped)
    journal = _member(archive, "lockchain/journal.jsonl").replace(b"v3", b"v9", 1)
    tampered = _rewrite(archive, {"lockchain/journal.jsonl": journal})
    with pytest.raises(BackupCorrupt, match=r"member lockchain/journal.jsonl has sha256 \w+, but"):
        verify_backup(tampered)


def test_a_change_with_a_rewritten_manifest_is_caught_by_the_chain(stopped: Path) -> None:
    archive = _backup(stopped)
    lines = _member(archive, "lockchain/journal.jsonl").splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if line.startswith(b'{"type":"receipt","seq":4,'))
    lines[at] = lines[at].replace(b"v3", b"v9", 1)
    tampered = _rewrite(archive, {"lockchain/journal.jsonl": b"".join(lines)}, manifest=True)
    with pytest.raises(
        BackupCorrupt, match=r"lockchain does not verify: .*first bad receipt is 4 .*delta"
    ):
        verify_backup(tampered)


def test_extra_missing_and_unlisted_members_are_refused(stopped: Path) -> None:
    archive = _backup(stopped)
    extra = _rewrite(archive, {"lockchain/extra.txt": b"x"})
    with pytest.raises(BackupCorrupt, match=r"member lockchain/extra\.txt is not listed"):
        verify_backup(extra)
    missing = _rewrite(archive, {"config/kgc.toml": None})
    with pytest.raises(BackupCorrupt, match=r"member config/kgc\.toml is in the manifest but not"):
        verify_backup(missing)
    outside = _rewrite(archive, {"elsewhere/x": b"x"})
    with pytest.raises(BackupCorrupt, match="unexpected member elsewhere/x"):
        verify_backup(outside)


def test_an_archive_without_a_kgc_manifest_is_refused(stopped: Path) -> None:
    archive = _backup(stopped)
    with pytest.raises(BackupCorrupt, match=r"manifest\.json is not a kgc backup manifest"):
        verify_backup(_rewrite(archive, {"manifest.json": b"{not json"}))
    with pytest.raises(BackupCorrupt, match=r"no manifest\.json in the archive"):
        verify_backup(_rewrite(archive, {"manifest.json": None}))


def test_a_truncated_archive_is_refused(stopped: Path) -> None:
    archive = _backup(stopped)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupCorrupt, match="truncated or damaged"):
        verify_backup(archive)


# Retention -----------------------------------------------------------------------------------


def _old_backups(directory: Path, ages_days: list[float]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    now, paths = time.time(), []
    for n, age in enumerate(ages_days):
        path = directory / f"kgc-backup-20240101-00000{n}.tar.gz"
        path.write_bytes(gzip.compress(b""))
        os.utime(path, (now - age * DAY, now - age * DAY))
        paths.append(path)
    return paths


def test_retention_by_count_keeps_the_newest_and_the_new_one(stopped: Path) -> None:
    old = _old_backups(stopped / "backups", [1, 2, 3, 4])
    (stopped / "backups" / "notes.txt").write_text("not a backup")
    new = _backup(stopped, keep=2)
    assert sorted(p.name for p in (stopped / "backups").iterdir()) == sorted(
        [old[0].name, new.name, "notes.txt"]
    )


def test_retention_by_age_never_deletes_the_new_backup(stopped: Path) -> None:
    old = _old_backups(stopped / "backups", [1, 8, 30])
    new = _backup(stopped, max_age_days=7)
    assert {p.name for p in (stopped / "backups").iterdir()} == {old[0].name, new.name}
    os.utime(new, (0, 0))  # even when its clock says it is ancient, and counts first for keep
    assert prune_backups(stopped / "backups", max_age_days=7, keep=1, protect=new) == [old[0]]
    assert new.exists()


def test_retention_settings_are_checked(stopped: Path) -> None:
    with pytest.raises(BackupError, match="keep must be at least 1"):
        _backup(stopped, keep=0)


# Restore and rebuild -------------------------------------------------------------------------


def test_restore_refuses_non_empty_targets_unless_forced(stopped: Path, tmp_path: Path) -> None:
    archive = _backup(stopped)
    with pytest.raises(RestoreRefused, match=r"store: the store target is not empty"):
        restore_backup(archive, stopped / "store", tmp_path / "new-lockchain")
    assert not (tmp_path / "new-lockchain").exists()
    (tmp_path / "empty").mkdir()
    done = restore_backup(archive, tmp_path / "empty", tmp_path / "new-lockchain")
    assert done.recovered.matches
    forced = restore_backup(archive, stopped / "store", stopped / "lockchain", force=True)
    assert forced.recovered.state == done.recovered.state


def test_restore_never_replaces_a_store_or_lockchain_in_use(
    live: KnowledgeEngine, tmp_path: Path
) -> None:
    archive = create_backup(live.store, tmp_path / "lockchain", tmp_path / "backups").path
    with pytest.raises(RestoreRefused, match="store is in use by a running kgc process"):
        restore_backup(archive, tmp_path / "store", tmp_path / "elsewhere", force=True)
    with pytest.raises(RestoreRefused, match="lockchain is in use by a running kgc process"):
        restore_backup(archive, tmp_path / "elsewhere", tmp_path / "lockchain", force=True)
    assert not (tmp_path / "elsewhere").exists()  # refused before anything was touched
    assert live.apply(Delta([_quad("still", ox.Literal("here"))])).committed


def test_rebuild_from_the_journal_alone_matches_the_last_receipt(stopped: Path) -> None:
    rebuilt = rebuild_from_lockchain(stopped / "lockchain", stopped / "rebuilt")
    assert rebuilt.source == "journal" and rebuilt.matches and rebuilt.state != EMPTY_STATE
    assert (rebuilt.last_seq, rebuilt.committed) == (12, 10)
    with pytest.raises(RestoreRefused, match="rebuilt: the store target is not empty"):
        rebuild_from_lockchain(stopped / "lockchain", stopped / "rebuilt")


def test_rebuild_from_git_when_the_journal_is_gone(stopped: Path) -> None:
    expected = rebuild_from_lockchain(stopped / "lockchain", stopped / "from-journal").state
    (stopped / "lockchain" / "journal.jsonl").unlink()
    rebuilt = rebuild_from_lockchain(stopped / "lockchain", stopped / "from-git")
    assert rebuilt.source == "git" and rebuilt.matches and rebuilt.state == expected


# The commands --------------------------------------------------------------------------------


def test_commands_round_trip(stopped: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--store", str(stopped / "store"), "--lockchain", str(stopped / "lockchain")]
    assert main(["backup", "create", *base, "--out", str(stopped / "backups"), "--keep", "3"]) == 0
    (archive,) = (stopped / "backups").glob("kgc-backup-*.tar.gz")
    assert main(["backup", "verify", str(archive)]) == 0
    target = ["--store", str(stopped / "r" / "store"), "--lockchain", str(stopped / "r" / "lc")]
    assert main(["backup", "restore", str(archive), *target]) == 0
    assert (
        main(["lockchain", "rebuild", str(stopped / "r" / "lc"), "--store", str(stopped / "x")])
        == 0
    )
    out = capsys.readouterr().out
    assert "store:      checkpoint" in out and out.count("  match") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backup", "verify", "missing.tar.gz"], "missing.tar.gz: no such backup archive"),
        (["backup", "verify", "plain.txt"], "plain.txt: not a gzip-compressed tar archive"),
        (["backup", "verify", "nomanifest.tar.gz"], "no manifest.json in the archive"),
        (["backup", "restore", "missing.tar.gz", "--store", "s", "--lockchain", "l"], "no such"),
        (["lockchain", "rebuild", "nowhere", "--store", "s"], "nowhere: no such directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("plain.txt").write_text("hello")
    with tarfile.open("nomanifest.tar.gz", "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("store/"))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_backup_while_another_process_writes(tmp_path: Path) -> None:
    """The writer holds the store's lock: the snapshot is an export from a read-only view, taken
    before the journal is copied, and it still recovers to the last committed receipt."""
    worker = Path(__file__).with_name("crash_worker.py")
    command = [sys.executable, str(worker), "run", str(tmp_path / "store")]
    writer = subprocess.Popen([*command, str(tmp_path / "lc")], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        acked = [line for line, _ in zip(writer.stdout, range(30), strict=False)]
        assert acked[0].startswith("READY") and acked[-1].startswith(("ACK", "STAGE", "HOOKED"))
        for _ in range(2):
            result = create_backup(tmp_path / "store", tmp_path / "lc", tmp_path / "out")
            assert result.manifest.store_snapshot == "export"
            checked = verify_backup(result.path)
            assert checked.recovered.matches and checked.receipts >= 5
    finally:
        writer.kill()
        writer.wait()
        assert writer.stdout is not None
        writer.stdout.close()

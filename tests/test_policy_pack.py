"""Loading packs: tampered, unlisted, linked and escaping files, signatures, and archives.

Each refusal is checked together with what a user would see afterwards: the hooks in force and
the graph are unchanged.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from packmaker import forbidden, make_pack, sha256, write_manifest

from kgc import KnowledgeEngine
from kgc.errors import (
    ManifestError,
    PackIntegrityError,
    PackSignatureError,
    PolicyPackError,
)
from kgc.lockchain.signing import SigningKey
from kgc.policy import TrustedKeys, load_pack, sign_pack
from kgc.policy.archive import make_archive


def refused_and_unchanged(engine: KnowledgeEngine, source: Path, error: type, match: str) -> None:
    before = (engine.hooks.snapshot().digest, engine.state_digest, engine.policy.installed())
    with pytest.raises(error, match=match):
        engine.policy.activate(source)
    after = (engine.hooks.snapshot().digest, engine.state_digest, engine.policy.installed())
    assert after == before
    assert engine.apply(forbidden("rule")).committed  # no pack hook is in force


@pytest.fixture
def engine(tmp_path: Path) -> KnowledgeEngine:
    return KnowledgeEngine(policy_path=tmp_path / "policy")


def test_a_good_pack_loads_with_namespaced_hooks(tmp_path: Path) -> None:
    pack = load_pack(make_pack(tmp_path, hooks=("one", "two")))
    assert [h.name for h in pack.hooks] == ["alpha/one", "alpha/two"]
    assert pack.signed_by is None
    assert len(pack.digest) == 64


def test_tampered_condition_file_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    pack = make_pack(tmp_path / "src")
    (pack / "rule.rq").write_text("ASK { }\n", "utf-8")
    refused_and_unchanged(engine, pack, PackIntegrityError, r"rule\.rq: sha256 is [0-9a-f]{64}")


def test_tampered_hook_file_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    pack = make_pack(tmp_path / "src")
    hook = pack / "rule.hook.toml"
    hook.write_text(hook.read_text("utf-8").replace("no forbidden", "anything"), "utf-8")
    refused_and_unchanged(engine, pack, PackIntegrityError, r"rule\.hook\.toml: sha256 is")


def test_unlisted_file_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    pack = make_pack(tmp_path / "src")
    (pack / "sub").mkdir()
    (pack / "sub" / "notes.txt").write_text("hello", "utf-8")
    refused_and_unchanged(engine, pack, PackIntegrityError, r"sub/notes\.txt is not listed")


def test_missing_listed_file_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    pack = make_pack(tmp_path / "src")
    (pack / "rule.rq").unlink()
    refused_and_unchanged(engine, pack, PackIntegrityError, r"rule\.rq is listed in 'files' but")


def test_symlink_inside_a_pack_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    secret = tmp_path / "secret.rq"
    secret.write_text("ASK {}\n", "utf-8")
    pack = make_pack(tmp_path / "src")
    (pack / "link.rq").symlink_to(secret)
    refused_and_unchanged(engine, pack, PackIntegrityError, r"link\.rq is a symbolic link")


def test_condition_ref_outside_the_pack_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    outside = tmp_path / "outside.rq"
    outside.write_bytes(b"ASK { FILTER(false) }\n")
    pack = make_pack(tmp_path / "src")
    hook = pack / "rule.hook.toml"
    text = hook.read_text("utf-8").replace("file:rule.rq", f"file://{outside}")
    hook.write_text(text.replace(sha256((pack / "rule.rq").read_bytes()), sha256(b"")), "utf-8")
    manifest = json.loads((pack / "pack.json").read_text("utf-8"))
    write_manifest(pack, {k: v for k, v in manifest.items() if k != "files"})
    refused_and_unchanged(engine, pack, PackIntegrityError, "relative file: URIs")

    hook.write_text(text.replace(f"file://{outside}", "file:../outside.rq"), "utf-8")
    write_manifest(pack, {k: v for k, v in manifest.items() if k != "files"})
    refused_and_unchanged(engine, pack, PackIntegrityError, "names a file outside the pack")


def test_malformed_hook_in_a_pack_names_pack_and_field(tmp_path: Path) -> None:
    pack = make_pack(tmp_path)
    hook = pack / "rule.hook.toml"
    hook.write_text(hook.read_text("utf-8").replace('kind = "sparql-ask"', 'kind = "magic"'))
    manifest = json.loads((pack / "pack.json").read_text("utf-8"))
    write_manifest(pack, {k: v for k, v in manifest.items() if k != "files"})
    with pytest.raises(PolicyPackError, match=r"pack alpha: .*rule\.hook\.toml: field 'when"):
        load_pack(pack)


# Signatures -------------------------------------------------------------------------------------


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


def test_signed_pack_verifies_with_its_trusted_key(tmp_path: Path, key: SigningKey) -> None:
    pack = make_pack(tmp_path)
    sign_pack(pack, key)
    loaded = load_pack(pack, trusted=TrustedKeys.from_hex(key.public_key_hex))
    assert loaded.signed_by is not None
    assert json.loads((pack / "pack.sig").read_text())["digest"] == loaded.digest


def test_signature_by_an_unknown_key_is_refused(tmp_path: Path, key: SigningKey) -> None:
    pack = make_pack(tmp_path)
    sign_pack(pack, key)
    other = TrustedKeys.from_hex(SigningKey.generate().public_key_hex)
    with pytest.raises(PackSignatureError, match="which is not trusted"):
        load_pack(pack, trusted=other)
    with pytest.raises(PackSignatureError, match="which is not trusted"):
        load_pack(pack)  # a signature is never ignored, even when no key is trusted


def test_wrong_signature_is_refused(tmp_path: Path, key: SigningKey) -> None:
    pack = make_pack(tmp_path)
    sign_pack(pack, key)
    body = json.loads((pack / "pack.sig").read_text())
    body["signature"] = ("0" if body["signature"][0] != "0" else "1") + body["signature"][1:]
    (pack / "pack.sig").write_text(json.dumps(body))
    with pytest.raises(PackSignatureError, match="does not verify"):
        load_pack(pack, trusted=TrustedKeys.from_hex(key.public_key_hex))


def test_signed_pack_changed_after_signing_is_refused(tmp_path: Path, key: SigningKey) -> None:
    pack = make_pack(tmp_path)
    sign_pack(pack, key)
    manifest = json.loads((pack / "pack.json").read_text("utf-8"))
    manifest["description"] = "quietly changed"
    (pack / "pack.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(PackSignatureError, match="does not verify for pack digest"):
        load_pack(pack, trusted=TrustedKeys.from_hex(key.public_key_hex))


def test_required_signature_refuses_unsigned_pack(tmp_path: Path, key: SigningKey) -> None:
    pack = make_pack(tmp_path)
    with pytest.raises(PackSignatureError, match="unsigned, and signatures are required"):
        load_pack(pack, require_signature=True)
    engine = KnowledgeEngine(policy_path=tmp_path / "p", policy_require_signatures=True)
    refused_and_unchanged(engine, pack, PackSignatureError, "signatures are required")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not a readable signature file"),
        ('{"key_id": "ab"}', "expected exactly the fields"),
        (
            '{"format": "x", "algorithm": "Ed25519", "key_id": "", "digest": "", "signature": ""}',
            "unknown format or algorithm",
        ),
    ],
)
def test_malformed_signature_file_is_refused(tmp_path: Path, body: str, message: str) -> None:
    pack = make_pack(tmp_path)
    (pack / "pack.sig").write_text(body)
    with pytest.raises(PackSignatureError, match=message):
        load_pack(pack)


def test_trusted_key_file_is_read_and_bad_ones_refused(tmp_path: Path, key: SigningKey) -> None:
    good = tmp_path / "trusted.pub"
    good.write_text(f"# release key\n{key.public_key_hex}  # ci\n\n")
    assert len(TrustedKeys.from_files(good)) == 1
    bad = tmp_path / "bad.pub"
    bad.write_text("not-a-key\n")
    with pytest.raises(PolicyPackError, match=r"bad\.pub: expected Ed25519 public keys"):
        TrustedKeys.from_files(bad)


# Archives ---------------------------------------------------------------------------------------


def test_tar_gz_archive_installs_and_activates(tmp_path: Path, engine: KnowledgeEngine) -> None:
    archive = make_archive(make_pack(tmp_path / "src"), tmp_path / "alpha.tar.gz")
    refs = engine.policy.activate(archive)
    assert [r.name for r in refs] == ["alpha"]
    assert engine.apply(forbidden("rule")).vetoed_by == ["alpha/rule"]


def test_zip_archive_with_pack_at_its_root_installs(
    tmp_path: Path, engine: KnowledgeEngine
) -> None:
    pack = make_pack(tmp_path / "src")
    archive = tmp_path / "alpha.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(pack.iterdir()):
            zipped.write(path, path.name)
    assert engine.policy.activate(archive)[0].digest == load_pack(pack).digest


def _tar_with(tmp_path: Path, pack: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(pack.iterdir()):
            tar.add(path, arcname=path.name)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return archive


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../escape.rq", tarfile.REGTYPE, r"member '\.\./escape\.rq': .*'\.\.'"),
        ("/etc/escape.rq", tarfile.REGTYPE, r"member '/etc/escape\.rq': .*relative path"),
        ("link.rq", tarfile.SYMTYPE, r"link\.rq is a link or special file"),
        ("hard.rq", tarfile.LNKTYPE, r"hard\.rq is a link or special file"),
        ("fifo", tarfile.FIFOTYPE, r"fifo is a link or special file"),
    ],
)
def test_unsafe_tar_member_is_refused_and_nothing_is_written(
    tmp_path: Path, engine: KnowledgeEngine, name: str, kind: bytes, message: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    data = b"ASK {}\n" if kind == tarfile.REGTYPE else b""
    member.size = len(data)
    archive = _tar_with(tmp_path, make_pack(tmp_path / "src"), member, data)
    refused_and_unchanged(engine, archive, PackIntegrityError, message)
    assert not (tmp_path / "escape.rq").exists()
    assert not Path("/etc/escape.rq").exists()
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == []


def test_zip_traversal_member_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("pack.json", "{}")
        zipped.writestr("../../escape.rq", "ASK {}")
    refused_and_unchanged(engine, archive, PackIntegrityError, r"member '\.\./\.\./escape\.rq'")
    assert not (tmp_path / "escape.rq").exists()


def test_archive_with_too_many_members_is_refused(
    tmp_path: Path, engine: KnowledgeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kgc.policy.archive.MAX_MEMBERS", 3)
    archive = make_archive(make_pack(tmp_path / "src", hooks=("a", "b")), tmp_path / "a.tgz")
    refused_and_unchanged(engine, archive, PackIntegrityError, "more than 3 members")


def test_archive_that_is_not_one_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(os.urandom(64))
    refused_and_unchanged(engine, archive, PolicyPackError, "not a readable .tar.gz archive")


def test_archive_without_manifest_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a/readme.txt", "x")
        zipped.writestr("b/readme.txt", "x")
    refused_and_unchanged(engine, archive, PolicyPackError, "no pack.toml at its root")
    with pytest.raises(ManifestError):
        load_pack(make_pack(tmp_path / "x") / "..")  # a directory that is not a pack


def test_zip_symlink_member_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    pack = make_pack(tmp_path / "src")
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(pack.iterdir()):
            zipped.write(path, path.name)
        link = zipfile.ZipInfo("rule-link.rq")
        link.external_attr = 0o120777 << 16
        zipped.writestr(link, "/etc/passwd")
    refused_and_unchanged(engine, archive, PackIntegrityError, r"rule-link\.rq is a link")

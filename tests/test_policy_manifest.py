"""Pack manifests: every malformed field is refused naming the file and the field's path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packmaker import make_pack

from kgc.errors import ManifestError
from kgc.policy import PackManifest, load_pack, read_manifest

HASH = "a" * 64
GOOD: dict[str, Any] = {
    "name": "data-quality",
    "version": "1.0.0",
    "description": "",
    "hooks": ["a.hook.toml"],
    "files": {"a.hook.toml": HASH, "a.rq": HASH},
    "dependencies": {"base": "^1.0"},
    "compatibility": {"kgc": ">=0.1.0,<0.2.0"},
}


def with_(**changes: Any) -> dict[str, Any]:
    data = {**GOOD, **changes}
    return {k: v for k, v in data.items() if v is not None}


MALFORMED = [
    ("name-missing", with_(name=None), r"field 'name': Field required"),
    ("name-upper", with_(name="Data"), r"field 'name': must be a lowercase slug"),
    ("name-double-dash", with_(name="a--b"), r"field 'name': must be a lowercase slug"),
    ("name-slash", with_(name="a/b"), r"field 'name': must be a lowercase slug"),
    ("version-two-parts", with_(version="1.0"), r"field 'version': '1.0' is not a SemVer"),
    ("version-leading-zero", with_(version="1.01.0"), r"field 'version': .*not a SemVer"),
    ("version-number", with_(version=1), r"field 'version': Input should be a valid string"),
    ("hooks-empty", with_(hooks=[]), r"field 'hooks': Tuple should have at least 1 item"),
    ("hooks-not-hook", with_(hooks=["a.rq"]), r"field 'hooks\.0': 'a\.rq' is not a hook file"),
    (
        "hooks-traversal",
        with_(hooks=["../x.hook.toml"]),
        r"field 'hooks\.0': '\.\./x\.hook\.toml' must not contain '\.\.'",
    ),
    (
        "hooks-absolute",
        with_(hooks=["/etc/x.hook.toml"]),
        r"field 'hooks\.0': .*must be a relative path",
    ),
    (
        "hooks-unlisted",
        with_(hooks=["b.hook.toml"]),
        r"field 'hooks': 'b\.hook\.toml' is not listed in 'files'",
    ),
    (
        "hooks-twice",
        with_(hooks=["a.hook.toml", "a.hook.toml"]),
        r"field 'hooks\.1': .*listed twice",
    ),
    (
        "files-bad-hash",
        with_(files={"a.hook.toml": "xyz"}),
        r"field 'files\.a\.hook\.toml': a sha256 must be 64 lowercase hex",
    ),
    (
        "files-upper-hash",
        with_(files={"a.hook.toml": "A" * 64}),
        r"field 'files\.a\.hook\.toml': a sha256",
    ),
    (
        "files-backslash",
        with_(files={"a.hook.toml": HASH, "dir\\x.rq": HASH}),
        r"field 'files\.dir\\x\.rq': .*'/' separators",
    ),
    ("files-dotdot", with_(files={"a/../../x": HASH}), r"field 'files\.a/\.\./\.\./x': .*'\.\.'"),
    (
        "files-lists-manifest",
        with_(files={"a.hook.toml": HASH, "pack.toml": HASH}),
        r"field 'files\.pack\.toml': the manifest and the signature are not listed",
    ),
    ("files-missing", with_(files=None), r"field 'files': Field required"),
    (
        "dependency-range",
        with_(dependencies={"base": ">=banana"}),
        r"field 'dependencies\.base': '>=banana': 'banana' is not a version",
    ),
    (
        "dependency-name",
        with_(dependencies={"Base": "*"}),
        r"field 'dependencies\.Base': 'Base' is not a pack name",
    ),
    (
        "dependency-on-itself",
        with_(dependencies={"data-quality": "*"}),
        r"field 'dependencies\.data-quality': a pack cannot depend on itself",
    ),
    (
        "dependency-not-string",
        with_(dependencies={"base": 1}),
        r"field 'dependencies\.base': Input should be a valid string",
    ),
    (
        "compatibility-key",
        with_(compatibility={"python": "^3.11"}),
        r"field 'compatibility\.python': unknown \(known: kgc\)",
    ),
    (
        "compatibility-range",
        with_(compatibility={"kgc": "^"}),
        r"field 'compatibility\.kgc': .*not a version",
    ),
    ("extra-field", with_(license="MIT"), r"field 'license': Extra inputs are not permitted"),
    ("description-list", with_(description=["x"]), r"field 'description': Input should be"),
]


@pytest.mark.parametrize(("data", "message"), [pytest.param(d, m, id=i) for i, d, m in MALFORMED])
def test_malformed_manifest_names_file_and_field(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    (tmp_path / "pack.json").write_text(json.dumps(data), "utf-8")
    with pytest.raises(ManifestError, match=rf"^{tmp_path / 'pack.json'}: {message}"):
        read_manifest(tmp_path)


def test_good_manifest_reads_and_its_digest_is_canonical(tmp_path: Path) -> None:
    (tmp_path / "pack.json").write_text(json.dumps(GOOD, indent=4), "utf-8")
    manifest, _ = read_manifest(tmp_path)
    reordered = dict(reversed(list(GOOD.items())))
    assert PackManifest.from_data(reordered, "x").digest() == manifest.digest()
    assert PackManifest.from_data(with_(description="changed"), "x").digest() != manifest.digest()


def test_toml_manifest_errors_name_the_toml_file(tmp_path: Path) -> None:
    (tmp_path / "pack.toml").write_text('name = "x"\nversion = "1.0.0"\nhooks = [\n', "utf-8")
    with pytest.raises(ManifestError, match=r"pack\.toml: cannot be read as TOML"):
        read_manifest(tmp_path)


def test_a_pack_with_two_manifests_is_refused(tmp_path: Path) -> None:
    pack = make_pack(tmp_path)
    (pack / "pack.toml").write_text("", "utf-8")
    with pytest.raises(ManifestError, match=r"both pack\.toml and pack\.json"):
        load_pack(pack)


def test_a_directory_without_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no pack manifest \(pack\.toml or pack\.json\)"):
        load_pack(tmp_path)


def test_shipped_packs_are_toml_and_load(tmp_path: Path) -> None:
    from kgc.demo.assets import PACK_DIRS

    packs = [load_pack(d) for d in PACK_DIRS]
    assert [p.name for p in packs] == ["data-quality", "building-governance"]
    assert packs[1].manifest.dependencies == {"data-quality": "^1.0"}
    assert all(h.name.startswith(f"{p.name}/") for p in packs for h in p.hooks)

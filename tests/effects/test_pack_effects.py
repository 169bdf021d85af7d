"""A policy pack carrying effect code: listed and hashed like conditions, run in the sandbox."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from packmaker import write_manifest

from kgc import Delta, KnowledgeEngine
from kgc.errors import PolicyPackError
from kgc.policy import load_pack

NEW = "SELECT ?s WHERE { GRAPH <urn:kgc:delta:additions> { ?s <urn:ex:type> ?t } }\n"
EFFECT = (
    "def run(event):\n"
    "    rows = event['result']['bindings']\n"
    "    return {'add': [f\"{r['s']} <urn:ex:seen> \\\"yes\\\" .\" for r in rows]}\n"
)


def _pack(root: Path, *, list_effect: bool = True) -> Path:
    directory = root / "tagger-1.0.0"
    directory.mkdir(parents=True)
    (directory / "new.rq").write_text(NEW)
    (directory / "tag.py").write_text(EFFECT)
    digest = hashlib.sha256(EFFECT.encode()).hexdigest()
    query = hashlib.sha256(NEW.encode()).hexdigest()
    (directory / "tag.hook.toml").write_text(
        'name = "tag"\nphase = "post"\n[when]\nkind = "sparql-select"\n'
        f'ref = {{ uri = "file:new.rq", sha256 = "{query}", '
        'media_type = "application/sparql-query" }\n'
        f'[effect]\nref = {{ uri = "file:tag.py", sha256 = "{digest}", '
        'media_type = "text/x-python" }\n'
    )
    manifest: dict[str, object] = {
        "name": "tagger",
        "version": "1.0.0",
        "description": "tags new things, in the sandbox",
        "hooks": ["tag.hook.toml"],
        "dependencies": {},
        "compatibility": {"kgc": "^0.1"},
    }
    write_manifest(directory, manifest)
    if not list_effect:  # written, then left out of the manifest's files
        text = (directory / "pack.json").read_text()
        (directory / "pack.json").write_text(text.replace('"tag.py"', '"other.py"'))
    return directory


def test_a_packs_effect_runs_sandboxed_and_its_proposal_commits(tmp_path: Path) -> None:
    with KnowledgeEngine(policy_path=tmp_path / "policy") as engine:
        engine.policy.activate(_pack(tmp_path))
        receipt = engine.apply(Delta.from_text('<urn:ex:p1> <urn:ex:type> "sensor" .\n'))

        (effect,) = receipt.effects
        assert effect.hook == "tagger/tag"
        assert (effect.trust, effect.verdict) == ("sandboxed", "ran")  # type: ignore[attr-defined]
        assert effect.proposal_status == "committed"  # type: ignore[attr-defined]
        assert engine.query('ASK { <urn:ex:p1> <urn:ex:seen> "yes" }')
        assert [p.name for p in receipt.policy_packs] == ["tagger"]


def test_an_effect_file_the_manifest_does_not_list_refuses_the_pack(tmp_path: Path) -> None:
    with pytest.raises(PolicyPackError, match=r"tag\.py"):
        load_pack(_pack(tmp_path, list_effect=False))

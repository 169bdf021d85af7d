"""Sandboxed effects in the transaction pipeline: proposals become transactions of their own,
failures are typed in the receipt, trusted callables are marked, nothing runs when disabled."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgc import KnowledgeEngine
from kgc.effects.code import SandboxedEffect
from kgc.effects.verdict import EffectVerdict
from kgc.errors import ConditionHashMismatch, HookDefinitionError
from kgc.hooks.conditions import SparqlAsk, SparqlSelect
from kgc.hooks.loader import load_hook_file
from kgc.hooks.model import Hook
from kgc.lockchain import Lockchain
from kgc.rdf.delta import Delta

SENSOR = '<urn:ex:s1> <urn:ex:type> "sensor" .\n'
NEW_SENSOR = "SELECT ?s WHERE { GRAPH <urn:kgc:delta:additions> { ?s <urn:ex:type> ?t } }"
TAG = """
def run(event):
    rows = event["result"]["bindings"]
    print("tagging", len(rows))
    return {
        "add": [f"{row['s']} <urn:ex:checked> \\"yes\\" ." for row in rows],
        "events": [{"tagged": len(rows), "receipt": event["receipt"]["id"]}],
    }
"""


def _effect(source: str, **kwargs: object) -> SandboxedEffect:
    return SandboxedEffect(source, name="test.py", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[KnowledgeEngine]:
    with KnowledgeEngine(lockchain_path=tmp_path / "chain", git_anchoring=False) as engine:
        yield engine


def _post(name: str, source: str, query: str = NEW_SENSOR, **kwargs: object) -> Hook:
    return Hook(name, SparqlSelect(query), phase="post", effect=_effect(source, **kwargs))


def _has(engine: KnowledgeEngine, triple: str) -> bool:
    return bool(engine.query(f"ASK {{ {triple} }}"))


def test_a_proposal_becomes_its_own_transaction_citing_hook_and_receipt(
    engine: KnowledgeEngine, tmp_path: Path
) -> None:
    seen = []
    engine.transactions.on_receipt.append(seen.append)
    engine.hooks.register(_post("tag", TAG))

    receipt = engine.apply(Delta.from_text(SENSOR), actor="alice")

    (verdict,) = receipt.effects
    assert isinstance(verdict, EffectVerdict)
    assert (verdict.trust, verdict.verdict, verdict.error_kind) == ("sandboxed", "ran", None)
    assert verdict.logs == ("tagging 1",)
    assert verdict.events == ({"tagged": 1, "receipt": receipt.id},)
    assert verdict.layers is not None and verdict.layers["seccomp"].endswith("allowed")
    caused = next(r for r in seen if r.id == verdict.proposal)
    assert verdict.proposal_status == "committed" == caused.status
    assert caused.actor == "effect:tag"
    assert caused.provenance == {
        "caused_by": {
            "hook": "tag",
            "receipt": receipt.id,
            "seq": receipt.seq,
            "effect_sha256": hashlib.sha256(TAG.encode()).hexdigest(),
            "generation": 1,
        }
    }
    assert _has(engine, '<urn:ex:s1> <urn:ex:checked> "yes"')
    engine.close()
    assert Lockchain(tmp_path / "chain").verify(replay=True).ok


def test_listeners_see_a_cause_before_what_its_effects_caused_in_sequence(
    engine: KnowledgeEngine,
) -> None:
    # The server's receipt log pages by seq: receipts announced out of order made ?after= skip
    # the caller's own transactions when effects fired.
    seen = []
    engine.transactions.on_receipt.append(seen.append)
    engine.hooks.register(_post("tag", TAG))

    for i in range(3):
        engine.apply(Delta.from_text(SENSOR.replace("s1", f"s{i}")))

    seqs = [r.seq for r in seen]
    assert seqs == sorted(seqs) and len(seqs) == 6
    assert [r.actor for r in seen] == ["anonymous", "effect:tag"] * 3


def test_a_pre_commit_hook_can_veto_what_an_effect_proposes(engine: KnowledgeEngine) -> None:
    engine.hooks.register(_post("tag", TAG))
    engine.hooks.register(Hook("no-checked", SparqlAsk("ASK { ?s <urn:ex:checked> ?o }")))

    receipt = engine.apply(Delta.from_text(SENSOR))

    (verdict,) = receipt.effects
    assert (verdict.verdict, verdict.proposal_status) == ("ran", "vetoed")  # type: ignore[attr-defined]
    assert _has(engine, '<urn:ex:s1> <urn:ex:type> "sensor"')
    assert not _has(engine, "?s <urn:ex:checked> ?o")


@pytest.mark.parametrize(
    ("source", "verdict", "kind", "reason"),
    [
        (
            "def run(e):\n    raise ValueError('no unit for ' + e['hook'])\n",
            "error",
            "failed",
            "ValueError: no unit for broken",
        ),
        ("def run(e):\n    while True:\n        pass\n", "timeout", "timeout", "killed"),
        ("def run(e):\n    return len(bytearray(1 << 30))\n", "error", "memory", "memory"),
        ("def run(e):\n    return {'add': ['<urn:a> <urn:b> .']}\n", "error", "proposal", "line 1"),
        ("def run(e):\n    return {'delete': []}\n", "error", "proposal", "'delete'"),
        ("def run(e):\n    return [1, 2]\n", "error", "proposal", "returned list"),
        (
            "def run(e):\n    return {'add': ['<urn:kgc:x> <urn:b> <urn:c> <urn:kgc:meta> .']}\n",
            "error",
            "proposal",
            "reserved",
        ),
    ],
    ids=["raises", "timeout", "memory", "bad-nquads", "unknown-key", "not-a-dict", "reserved"],
)
def test_effect_failures_are_typed_in_the_receipt_and_change_nothing(
    engine: KnowledgeEngine, source: str, verdict: str, kind: str, reason: str
) -> None:
    engine.hooks.register(_post("broken", source, timeout_ms=300))
    before_count = engine.query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")

    receipt = engine.apply(Delta.from_text(SENSOR))

    (effect,) = receipt.effects
    assert (effect.verdict, effect.error_kind) == (verdict, kind)  # type: ignore[attr-defined]
    assert reason in effect.reason
    assert effect.proposal is None  # type: ignore[attr-defined]
    assert receipt.committed  # an effect cannot undo the commit that fired it
    assert before_count is not None
    assert not _has(engine, "?s <urn:ex:checked> ?o")


def test_trusted_callables_are_marked_trusted_in_the_receipt(engine: KnowledgeEngine) -> None:
    calls = []
    engine.hooks.register(Hook("audit", SparqlSelect(NEW_SENSOR), phase="post", run=calls.append))

    receipt = engine.apply(Delta.from_text(SENSOR))

    (verdict,) = receipt.effects
    assert isinstance(verdict, EffectVerdict)
    assert (verdict.trust, verdict.verdict, verdict.layers) == ("trusted", "ran", None)
    assert receipt.to_dict()["effects"][0]["trust"] == "trusted"
    assert len(calls) == 1


def test_with_sandboxing_disabled_effect_code_never_runs() -> None:
    with KnowledgeEngine(enable_sandboxing=False) as engine:
        engine.hooks.register(_post("tag", TAG))
        receipt = engine.apply(Delta.from_text(SENSOR))

        (verdict,) = receipt.effects
        assert (verdict.verdict, verdict.error_kind) == ("error", "sandbox_disabled")  # type: ignore[attr-defined]
        assert not _has(engine, "?s <urn:ex:checked> ?o")
        assert engine.transactions.effects.status()["state"] == "disabled"


def test_effects_that_keep_proposing_stop_after_the_generation_limit(
    engine: KnowledgeEngine,
) -> None:
    chain = """
def run(event):
    cause = (event["receipt"]["provenance"] or {}).get("caused_by", {})
    n = cause.get("generation", 0)
    return {"add": [f'<urn:ex:g{n + 1}> <urn:ex:type> "sensor" .']}
"""
    seen = []
    engine.transactions.on_receipt.append(seen.append)
    engine.hooks.register(_post("echo", chain))

    engine.apply(Delta.from_text(SENSOR))

    generations = [r.provenance["caused_by"]["generation"] for r in seen if r.provenance]
    assert generations == list(range(1, 9))  # announced in commit order, after their cause
    assert _has(engine, '<urn:ex:g8> <urn:ex:type> "sensor"')
    assert not _has(engine, '<urn:ex:g9> <urn:ex:type> "sensor"')
    last = next(r for r in seen if r.provenance and r.provenance["caused_by"]["generation"] == 8)
    assert last.effects[0].error_kind == "cascade"  # type: ignore[attr-defined]


def test_the_effect_sees_the_delta_and_the_receipt_it_followed(engine: KnowledgeEngine) -> None:
    echo = (
        "def run(event):\n"
        "    return {'events': [{'delta': event['delta'], 'actor': event['receipt']['actor']}]}\n"
    )
    engine.hooks.register(_post("echo", echo))

    receipt = engine.apply(Delta.from_text(SENSOR), actor="bob")

    (seen,) = receipt.effects[0].events  # type: ignore[attr-defined]
    assert seen["delta"] == {
        "additions": [SENSOR.strip()],
        "removals": [],
        "additions_total": 1,
        "removals_total": 0,
    }
    assert seen["actor"] == "bob"


# -- hook files ----------------------------------------------------------------------------------


def _hook_file(tmp_path: Path, source: str, *, sha: str | None = None, media: str = "") -> Path:
    (tmp_path / "tag.py").write_text(source)
    (tmp_path / "new.rq").write_text(NEW_SENSOR)
    digest = sha or hashlib.sha256(source.encode()).hexdigest()
    query_digest = hashlib.sha256(NEW_SENSOR.encode()).hexdigest()
    file = tmp_path / "tag.hook.toml"
    file.write_text(
        f"""name = "tag"
phase = "post"
[when]
kind = "sparql-select"
[when.ref]
uri = "file:new.rq"
sha256 = "{query_digest}"
media_type = "application/sparql-query"
[effect]
timeout_ms = 800
[effect.ref]
uri = "file:tag.py"
sha256 = "{digest}"
media_type = "{media or "text/x-python"}"
"""
    )
    return file


def test_a_hook_file_names_its_effect_by_content_address(
    tmp_path: Path, engine: KnowledgeEngine
) -> None:
    hook = load_hook_file(_hook_file(tmp_path, TAG))
    assert hook.effect is not None and hook.effect.timeout_ms == 800
    engine.hooks.register(hook)

    receipt = engine.apply(Delta.from_text(SENSOR))

    assert receipt.effects[0].proposal_status == "committed"  # type: ignore[attr-defined]


def test_an_effect_file_whose_hash_differs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConditionHashMismatch, match=r"tag\.py"):
        load_hook_file(_hook_file(tmp_path, TAG, sha="0" * 64))


def test_an_effect_ref_with_the_wrong_media_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HookDefinitionError, match=r"effect\.ref\.media_type"):
        load_hook_file(_hook_file(tmp_path, TAG, media="text/plain"))


def test_effect_code_that_does_not_compile_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(HookDefinitionError, match="not valid Python at line 1"):
        load_hook_file(_hook_file(tmp_path, "def run(:\n"))


def test_a_pre_commit_hook_cannot_carry_an_effect() -> None:
    with pytest.raises(HookDefinitionError, match="only post-commit hooks have effects"):
        Hook("x", SparqlAsk("ASK {}"), effect=_effect(TAG))


def test_a_post_commit_hook_file_without_an_effect_is_refused(tmp_path: Path) -> None:
    file = _hook_file(tmp_path, TAG)
    text = file.read_text()
    file.write_text(text[: text.index("[effect]")])
    with pytest.raises(HookDefinitionError, match="needs exactly one of a 'run' callable"):
        load_hook_file(file)


def test_metrics_count_effects_by_trust_and_outcome(engine: KnowledgeEngine) -> None:
    from kgc.telemetry.metrics import Metrics

    metrics = Metrics().attach(engine)
    engine.hooks.register(_post("tag", TAG))
    engine.hooks.register(_post("broken", "def run(e):\n    raise ValueError('x')\n"))
    engine.hooks.register(Hook("audit", SparqlSelect(NEW_SENSOR), phase="post", run=print))

    engine.apply(Delta.from_text(SENSOR))

    text = metrics.render()
    assert 'kgc_effects_total{trust="sandboxed",outcome="ran"} 1' in text
    assert 'kgc_effects_total{trust="sandboxed",outcome="failed"} 1' in text
    assert 'kgc_effects_total{trust="trusted",outcome="ran"} 1' in text


def test_effect_code_without_its_entry_function_is_refused_at_load() -> None:
    with pytest.raises(HookDefinitionError, match="defines no 'run' to call"):
        SandboxedEffect("def handle(event):\n    return None\n", name="e.py")


def test_an_effect_file_hash_mismatch_names_the_effect_file(tmp_path: Path) -> None:
    with pytest.raises(ConditionHashMismatch, match=r"effect file .*tag\.py"):
        load_hook_file(_hook_file(tmp_path, TAG, sha="0" * 64))

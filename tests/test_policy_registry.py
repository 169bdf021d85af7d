"""The registry: activate, deactivate, upgrade and roll back pack sets, on a real engine."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from packmaker import forbidden, make_pack

from kgc import Hook, KnowledgeEngine, SparqlAsk
from kgc.errors import (
    PackDependencyError,
    PackIntegrityError,
    PolicyPackError,
)
from kgc.policy import load_pack


@pytest.fixture
def engine(tmp_path: Path) -> KnowledgeEngine:
    return KnowledgeEngine(policy_path=tmp_path / "policy")


def in_force(engine: KnowledgeEngine) -> list[str]:
    return [h.name for h in engine.hooks.list()]


def test_activated_pack_vetoes_and_every_receipt_names_it(
    tmp_path: Path, engine: KnowledgeEngine
) -> None:
    source = make_pack(tmp_path, hooks=("rule",))
    digest = load_pack(source).digest
    engine.policy.activate(source)

    vetoed = engine.apply(forbidden("rule"))
    committed = engine.apply(forbidden("other"))

    assert vetoed.vetoed_by == ["alpha/rule"]
    assert committed.committed
    for receipt in (vetoed, committed):
        assert [(p.name, p.version, p.digest) for p in receipt.policy_packs] == [
            ("alpha", "1.0.0", digest)
        ]
        assert receipt.to_dict()["policy_packs"] == [
            {"name": "alpha", "version": "1.0.0", "digest": digest}
        ]
        assert receipt.body()["policy_packs"] == receipt.to_dict()["policy_packs"]


def test_receipts_without_packs_keep_their_old_body(engine: KnowledgeEngine) -> None:
    receipt = engine.apply(forbidden("rule"))
    assert receipt.policy_packs == ()
    assert "policy_packs" not in receipt.body()


def test_policy_digest_covers_the_packs(tmp_path: Path, engine: KnowledgeEngine) -> None:
    bare = engine.apply(forbidden("x")).policy_digest
    engine.policy.activate(make_pack(tmp_path, hooks=("rule",)))
    with_pack = engine.apply(forbidden("y")).policy_digest
    engine.policy.activate(make_pack(tmp_path, version="1.0.1", hooks=("rule",)))
    upgraded = engine.apply(forbidden("z")).policy_digest
    assert len({bare, with_pack, upgraded}) == 3  # same hook text, new version: new digest


def test_dependency_must_be_active_at_a_matching_version(
    tmp_path: Path, engine: KnowledgeEngine
) -> None:
    base1 = make_pack(tmp_path, "base", "1.4.0", hooks=("b",))
    base2 = make_pack(tmp_path, "base", "2.0.0", hooks=("b",))
    top = make_pack(tmp_path, "top", dependencies={"base": "^1.2"}, hooks=("t",))

    with pytest.raises(PackDependencyError, match=r"top@1\.0\.0 depends on base \^1\.2, which"):
        engine.policy.activate(top)
    assert in_force(engine) == []
    assert engine.policy.installed() == []  # a refused activation installs nothing

    with pytest.raises(PackDependencyError, match=r"depends on base \^1\.2, but base@2\.0\.0"):
        engine.policy.activate(base2, top)
    assert in_force(engine) == []

    engine.policy.activate(base1, top)
    assert in_force(engine) == ["base/b", "top/t"]

    with pytest.raises(PackDependencyError, match=r"but base@2\.0\.0 is active"):
        engine.policy.activate(base2)  # the upgrade would break top
    assert [str(p) for p in engine.policy.active()] == ["base@1.4.0", "top@1.0.0"]


def test_deactivate_is_refused_while_a_pack_depends_on_it(
    tmp_path: Path, engine: KnowledgeEngine
) -> None:
    engine.policy.activate(
        make_pack(tmp_path, "base", hooks=("b",)),
        make_pack(tmp_path, "top", dependencies={"base": "*"}, hooks=("t",)),
    )
    with pytest.raises(
        PackDependencyError, match=r"cannot deactivate base: active pack top@1\.0\.0"
    ):
        engine.policy.deactivate("base")
    assert in_force(engine) == ["base/b", "top/t"]
    assert engine.policy.deactivate("top", "base") == ()
    assert in_force(engine) == []
    with pytest.raises(PolicyPackError, match="pack 'base' is not active"):
        engine.policy.deactivate("base")


def test_incompatible_kgc_version_is_refused(tmp_path: Path, engine: KnowledgeEngine) -> None:
    pack = make_pack(tmp_path, compatibility={"kgc": ">=9.0.0"})
    with pytest.raises(PackDependencyError, match=r"alpha@1\.0\.0 needs kgc >=9\.0\.0; this is"):
        engine.policy.activate(pack)
    assert in_force(engine) == []


def test_upgrade_then_rollback_through_history(tmp_path: Path, engine: KnowledgeEngine) -> None:
    v1 = make_pack(tmp_path, version="1.0.0", hooks=("old",))
    v2 = make_pack(tmp_path, version="1.1.0", hooks=("new", "newer"))

    engine.policy.activate(v1)
    engine.policy.activate(v2)  # an upgrade: old version out, new in
    assert in_force(engine) == ["alpha/new", "alpha/newer"]
    assert engine.apply(forbidden("old", "1")).committed

    engine.policy.rollback()
    assert in_force(engine) == ["alpha/old"]
    assert engine.apply(forbidden("old", "2")).vetoed_by == ["alpha/old"]
    engine.policy.rollback()
    assert in_force(engine) == []
    with pytest.raises(PolicyPackError, match="no earlier policy to roll back to"):
        engine.policy.rollback()

    engine.policy.activate("alpha@1.1.0")  # by name from the installed packs
    assert in_force(engine) == ["alpha/new", "alpha/newer"]
    engine.policy.activate("alpha@1.0.0")  # a downgrade is the same swap
    assert in_force(engine) == ["alpha/old"]


def test_a_version_cannot_change_its_content(tmp_path: Path, engine: KnowledgeEngine) -> None:
    engine.policy.activate(make_pack(tmp_path / "a", hooks=("one",)))
    changed = make_pack(tmp_path / "b", hooks=("two",))
    with pytest.raises(PolicyPackError, match=r"alpha@1\.0\.0 is already installed with digest"):
        engine.policy.activate(changed)
    assert in_force(engine) == ["alpha/one"]


def test_pack_hooks_live_beside_plain_hooks_without_clashing(
    tmp_path: Path, engine: KnowledgeEngine
) -> None:
    engine.hooks.register(Hook("rule", SparqlAsk("ASK { FILTER(false) }")))
    engine.policy.activate(make_pack(tmp_path, hooks=("rule",)))
    engine.policy.deactivate("alpha")
    assert in_force(engine) == ["rule"]


def test_unknown_pack_name_is_refused(engine: KnowledgeEngine) -> None:
    with pytest.raises(PolicyPackError, match=r"ghost@2\.0\.0: no such pack directory, archive or"):
        engine.policy.activate("ghost@2.0.0")


# Persistence ------------------------------------------------------------------------------------


def test_active_packs_are_restored_when_an_engine_starts(tmp_path: Path) -> None:
    first = KnowledgeEngine(policy_path=tmp_path / "policy")
    first.policy.activate(make_pack(tmp_path / "src", hooks=("rule",)))
    first.policy.activate(make_pack(tmp_path / "src", version="2.0.0", hooks=("rule2",)))
    first.close()

    second = KnowledgeEngine(policy_path=tmp_path / "policy")
    assert in_force(second) == ["alpha/rule2"]
    assert second.apply(forbidden("rule2")).vetoed_by == ["alpha/rule2"]
    second.policy.rollback()  # the history survived too
    assert in_force(second) == ["alpha/rule"]

    state = json.loads((tmp_path / "policy" / "state.json").read_text())
    assert [p["version"] for p in state["active"]] == ["1.0.0"]
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == ["packs", "state.json"]


def test_tampered_installed_pack_stops_the_engine_from_starting(tmp_path: Path) -> None:
    KnowledgeEngine(policy_path=tmp_path / "policy").policy.activate(make_pack(tmp_path / "src"))
    installed = tmp_path / "policy" / "packs" / "alpha" / "1.0.0" / "rule.rq"
    installed.write_text("ASK { FILTER(false) }\n", "utf-8")
    with pytest.raises(PackIntegrityError, match=r"1\.0\.0/rule\.rq: sha256 is"):
        KnowledgeEngine(policy_path=tmp_path / "policy")


def test_a_state_file_that_cannot_be_written_changes_nothing(
    tmp_path: Path, engine: KnowledgeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.policy.activate(make_pack(tmp_path, hooks=("one",)))
    before = engine.hooks.snapshot().digest

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("kgc.policy.registry.write_state", full_disk)
    with pytest.raises(PolicyPackError, match="cannot record the policy state"):
        engine.policy.activate(make_pack(tmp_path, version="2.0.0", hooks=("two",)))
    assert engine.hooks.snapshot().digest == before
    assert in_force(engine) == ["alpha/one"]


# Atomicity --------------------------------------------------------------------------------------


def test_transactions_see_one_whole_pack_set_during_upgrades_and_rollbacks(
    tmp_path: Path,
) -> None:
    engine = KnowledgeEngine()
    sets = {
        (): set(),
        ("a1",): {"alpha/a1", "alpha/a2", "alpha/a3"},
        ("b",): {"alpha/b1", "alpha/b2", "beta/x"},
    }
    base = make_pack(tmp_path, "beta", hooks=("x",))
    v1 = make_pack(tmp_path, "alpha", "1.0.0", hooks=("a1", "a2", "a3"))
    v2 = make_pack(tmp_path, "alpha", "2.0.0", hooks=("b1", "b2"), dependencies={"beta": "*"})
    digests = {load_pack(v1).digest: ("a1",), load_pack(v2).digest: ("b",)}
    engine.policy.activate(v1)

    receipts = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set() or i < 20:
            receipts.append(engine.apply(forbidden(f"w{n}", str(i)), actor=f"w{n}"))
            i += 1

    def switcher() -> None:
        try:
            for _ in range(15):
                for change in (
                    lambda: engine.policy.activate(base, v2),
                    engine.policy.rollback,
                    lambda: engine.policy.deactivate("alpha"),
                    engine.policy.rollback,
                ):
                    change()
                    time.sleep(0.003)  # let writers run under each set, not only between them
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=switcher))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(receipts) >= 80
    seen = set()
    for receipt in receipts:
        alpha = [p for p in receipt.policy_packs if p.name == "alpha"]
        kind = digests[alpha[0].digest] if alpha else ()
        seen.add(kind)
        # The planner may skip hooks it proves quiet; it counts them, within the same set.
        assert {v.hook for v in receipt.hooks} <= sets[kind], receipt.policy_packs
        assert len(receipt.hooks) + receipt.hooks_skipped == len(sets[kind])
        names = {p.name for p in receipt.policy_packs}
        assert names == {"alpha", "beta"} if kind == ("b",) else names <= {"alpha"}
    assert seen == set(sets), seen  # the switches did interleave with the writers


# The lockchain ---------------------------------------------------------------------------------


def test_lockchain_with_pack_receipts_verifies(tmp_path: Path) -> None:
    from kgc.lockchain.signing import SigningKey

    chain = tmp_path / "chain"
    engine = KnowledgeEngine(lockchain_path=chain, signing_key=SigningKey.generate())
    engine.apply(forbidden("before"))  # a receipt from before any pack: no policy_packs field
    engine.policy.activate(make_pack(tmp_path, hooks=("rule",)))
    engine.apply(forbidden("rule"))
    engine.apply(forbidden("after"))
    engine.close()

    lines = [json.loads(line) for line in (chain / "journal.jsonl").read_text().splitlines()]
    sealed = [line["receipt"] for line in lines if "receipt" in line]
    assert ["policy_packs" in body for body in sealed] == [False, True, True]

    done = subprocess.run(
        [sys.executable, "-m", "kgc", "lockchain", "verify", str(chain), "--replay"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("OK")

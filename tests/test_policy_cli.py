"""``kgc policy`` in a subprocess on a temporary policy directory, and the demo's packs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packmaker import make_pack

from kgc import KnowledgeEngine, Receipt
from kgc.demo import BUILDING_TTL, PACK_DIRS, ChangeStream, replay_stream
from kgc.policy import load_pack
from kgc.policy.archive import make_archive

EXAMPLES = Path(__file__).parents[1] / "examples" / "packs"


def kgc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KGC_")}
    return subprocess.run(
        [sys.executable, "-m", "kgc", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
    )


def test_cli_round_trip_on_a_policy_directory(tmp_path: Path) -> None:
    policy = str(tmp_path / "policy")
    quality, governance = (str(EXAMPLES / "data-quality"), str(EXAMPLES / "building-governance"))

    alone = kgc("policy", "activate", governance, "--policy-path", policy)
    assert alone.returncode == 1
    assert alone.stderr == (
        "kgc policy: error: building-governance@1.0.0 depends on data-quality ^1.0, which would "
        "not be active; activate data-quality with it\n"
    )
    assert kgc("policy", "list", "--policy-path", policy).stdout.startswith("no packs installed")

    both = kgc("policy", "activate", quality, governance, "--policy-path", policy)
    assert both.returncode == 0, both.stderr
    assert both.stdout.startswith("active: building-governance@1.0.0 (")

    listing = kgc("policy", "list", env={"KGC_POLICY_PATH": policy})
    digest = load_pack(EXAMPLES / "data-quality").digest
    assert f"* data-quality@1.0.0  {digest}" in listing.stdout

    refused = kgc("policy", "deactivate", "data-quality", "--policy-path", policy)
    assert refused.returncode == 1
    assert "cannot deactivate data-quality: active pack building-governance@1.0.0" in refused.stderr

    assert (
        kgc("policy", "deactivate", "building-governance", "--policy-path", policy).returncode == 0
    )
    engine = KnowledgeEngine(policy_path=Path(policy))  # what a server would load at start
    assert [str(p) for p in engine.policy.active()] == ["data-quality@1.0.0"]

    back = kgc("policy", "rollback", "--policy-path", policy)
    assert back.returncode == 0, back.stderr
    assert "building-governance@1.0.0" in back.stdout and "data-quality@1.0.0" in back.stdout


def test_cli_validate_reports_a_pack_and_refuses_a_tampered_one(tmp_path: Path) -> None:
    good = kgc("policy", "validate", str(EXAMPLES / "building-governance"))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok: building-governance@1.0.0 digest ")
    assert "needs: data-quality ^1.0" in good.stdout

    pack = make_pack(tmp_path)
    (pack / "rule.rq").write_text("ASK {}\n")
    bad = kgc("policy", "validate", str(pack))
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"kgc policy: error: {pack / 'rule.rq'}: sha256 is ")


def test_cli_keygen_sign_and_trust(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "src")
    prefix = tmp_path / "release"

    made = kgc("policy", "keygen", str(prefix))
    signed = kgc("policy", "sign", str(pack), "--key", f"{prefix}.key")
    archive = make_archive(pack, tmp_path / "alpha.tgz")
    untrusted = kgc("policy", "validate", str(archive))
    trusted = kgc("policy", "validate", str(archive), "--trust", f"{prefix}.pub")
    required = kgc(
        "policy", "activate", str(make_pack(tmp_path / "other", "beta")),
        "--policy-path", str(tmp_path / "p"), "--require-signatures",
    )  # fmt: skip

    assert made.returncode == 0, made.stderr
    assert (Path(f"{prefix}.key").stat().st_mode & 0o777) == 0o600
    assert signed.returncode == 0, signed.stderr
    assert untrusted.returncode == 1 and "which is not trusted" in untrusted.stderr
    assert trusted.returncode == 0, trusted.stderr
    assert "(signed by key " in trusted.stdout
    assert required.returncode == 1 and "signatures are required" in required.stderr
    assert kgc("policy", "keygen", str(prefix)).returncode == 1  # never overwrites a key

    # A directory holding a signed pack is listed with the same trust it was activated with.
    policy = str(tmp_path / "signed-dir")
    trust = ("--trust", f"{prefix}.pub")
    assert kgc("policy", "activate", str(archive), "--policy-path", policy, *trust).returncode == 0
    listed = kgc("policy", "list", "--policy-path", policy, *trust)
    assert listed.returncode == 0, listed.stderr
    assert "alpha" in listed.stdout
    assert kgc("policy", "list", "--policy-path", policy).returncode == 1  # key not trusted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["policy"], "required: ACTION"),
        (["policy", "activate"], "the following arguments are required"),
        (["policy", "sign", "x"], "--key"),
    ],
)
def test_cli_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = kgc(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_cli_without_a_policy_directory_says_how_to_give_one() -> None:
    done = kgc("policy", "list")
    assert done.returncode == 1
    assert done.stderr == (
        "kgc policy: error: no policy directory: pass --policy-path DIR or set KGC_POLICY_PATH\n"
    )


def test_examples_link_to_the_packs_the_package_ships() -> None:
    for directory in PACK_DIRS:
        example = EXAMPLES / directory.name
        assert example.is_symlink() and example.resolve() == directory.resolve()


def test_demo_stream_receipts_name_both_packs_by_digest() -> None:
    engine = KnowledgeEngine()
    engine.load(BUILDING_TTL)
    engine.policy.activate(*PACK_DIRS)
    expected = {(p.name, "1.0.0", p.digest) for p in map(load_pack, PACK_DIRS)}
    seen: list[Receipt] = []
    engine.transactions.on_receipt.append(seen.append)

    replay = replay_stream(engine, ChangeStream(engine, count=60, seed=5))

    assert replay.unexpected == []
    assert len(seen) == 60
    for receipt in seen:
        packs = {(p.name, p.version, p.digest) for p in receipt.policy_packs}
        assert packs == expected
    body = json.loads(json.dumps(seen[0].body()))
    assert {p["name"] for p in body["policy_packs"]} == {"building-governance", "data-quality"}

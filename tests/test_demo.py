"""The demo: its shipped building and policy, the change stream, ``kgc demo`` end to end."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest

from kgc import Delta, KnowledgeEngine, Shacl
from kgc.demo import BUILDING_TTL, POLICY_DIR, ChangeStream, DemoReport, run_demo
from kgc.demo.edits import EDIT_KINDS
from kgc.demo.rehash import rehash, stale_refs
from kgc.errors import ConditionHashMismatch
from kgc.hooks.conditions import EvalContext
from kgc.store import OxigraphStore
from kgc.transaction import TransactionManager

BRICK_DATA = Path(__file__).parents[2] / "shared" / "data" / "brick"
POLICY_HOOKS = sorted(
    [
        "equipment-has-brick-type",
        "identifier-well-formed",
        "no-feeds-cycle",
        "no-retire-while-referenced",
        "point-has-equipment",
        "sensor-has-unit",
        "unique-identifier",
    ]
)
# The same hooks as the demo runs them, from its packs: ``<pack>/<hook>``.
GOVERNANCE_HOOKS = [f"building-governance/{hook}" for hook in POLICY_HOOKS]
QUALITY_HOOKS = [
    f"data-quality/{hook}"
    for hook in (
        "humidity-in-range",
        "label-per-language",
        "numeric-value-typed",
        "setpoint-step",
        "value-has-unit",
    )
]
PACK_HOOKS = sorted(GOVERNANCE_HOOKS + QUALITY_HOOKS)
# Hooks the stream's invalid kinds name (label-per-language only ever vetoes alongside
# identifier-well-formed, whose edits it shares).
EXERCISED_HOOKS = sorted(set(PACK_HOOKS) - {"data-quality/label-per-language"})
VALID_KINDS = sorted(kind for kind, (_, expect, _) in EDIT_KINDS.items() if expect is None)
PREFIXES = """
@prefix brick: <https://brickschema.org/schema/Brick#> .
@prefix lh: <https://example.org/buildings/larkspur-hall#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix qudt: <http://qudt.org/schema/qudt/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix unit: <http://qudt.org/vocab/unit/> .
"""


def brick_file(name: str) -> Path:
    path = BRICK_DATA / name
    if not path.is_file():
        pytest.skip(f"real Brick graph not found at {path}: clone shared/ beside the checkout")
    return path


def assert_governed_as_expected(report: DemoReport, hooks: list[str] = EXERCISED_HOOKS) -> None:
    replay = report.replay
    assert replay.unexpected == []
    assert replay.failed == 0
    assert replay.committed > 0
    assert replay.vetoed > 0
    assert report.digest_matches, (report.state_digest, report.recomputed_digest)
    missing = [hook for hook in hooks if replay.vetoes_by_hook[hook] == 0]
    assert missing == [], f"hooks that never vetoed: {missing}"


# The shipped policy ---------------------------------------------------------------------------


def test_no_condition_ref_has_a_stale_sha256() -> None:
    stale = stale_refs(POLICY_DIR)
    assert stale == [], "run `python -m kgc.demo.rehash`:\n" + "\n".join(map(str, stale))


def test_rehash_finds_and_fixes_a_stale_sha256(tmp_path: Path) -> None:
    policy = shutil.copytree(POLICY_DIR, tmp_path / "policy")
    condition = policy / "unique-identifier.rq"
    condition.write_text(condition.read_text("utf-8") + "\n# edited\n", "utf-8")
    with pytest.raises(ConditionHashMismatch, match=r"unique-identifier\.rq: sha256 is"):
        KnowledgeEngine().hooks.load(policy)

    assert [ref.uri for ref in stale_refs(policy)] == ["file:unique-identifier.rq"]
    assert [ref.uri for ref in rehash(policy)] == ["file:unique-identifier.rq"]
    assert stale_refs(policy) == []
    assert len(KnowledgeEngine().hooks.load(policy)) == len(POLICY_HOOKS)


def test_policy_mixes_every_condition_kind() -> None:
    hooks = KnowledgeEngine().hooks.load(POLICY_DIR)
    assert sorted(h.name for h in hooks) == POLICY_HOOKS
    assert {h.when.kind for h in hooks} == {"sparql-ask", "sparql-select", "shacl"}
    assert all(h.phase == "pre" and h.message for h in hooks)


def test_every_invalid_edit_names_a_policy_hook_and_every_hook_is_exercised() -> None:
    expected = {expect for _, expect, _ in EDIT_KINDS.values() if expect is not None}
    assert sorted(expected) == EXERCISED_HOOKS


def test_shipped_building_passes_its_own_policy() -> None:
    engine = KnowledgeEngine()
    engine.hooks.load(POLICY_DIR)
    receipt = engine.load(BUILDING_TTL)
    assert receipt.committed, receipt.hooks
    assert 300 <= len(engine) <= 600


# Each hook on hand-written deltas ----------------------------------------------------------------

# hook -> (bad deltas as (additions, removals) Turtle, a good delta the same hook lets through)
HOOK_CASES: dict[str, tuple[list[tuple[str, str]], tuple[str, str]]] = {
    "point-has-equipment": (
        [
            (
                'lh:x_zat a brick:Zone_Air_Temperature_Sensor ; rdfs:label "LH.X.ZAT" ; '
                "qudt:hasUnit unit:DEG_C .",
                "",
            ),
            ("", "lh:vav_g01 brick:hasPoint lh:vav_g01_rh ."),
            ("", "lh:vav_101_dmp brick:isPointOf lh:vav_101 ."),
        ],
        (
            'lh:x_zat a brick:Zone_Air_Temperature_Sensor ; rdfs:label "LH.X.ZAT" ; '
            "qudt:hasUnit unit:DEG_C ; brick:isPointOf lh:vav_g01 .",
            "",
        ),
    ),
    "equipment-has-brick-type": (
        [
            (
                'lh:pump rdfs:label "LH.PUMP" ; brick:hasPoint lh:pump_ss . '
                'lh:pump_ss a brick:Start_Stop_Command ; rdfs:label "LH.PUMP.SS" .',
                "",
            ),
            (
                'lh:pump a owl:NamedIndividual ; rdfs:label "LH.PUMP" . '
                'lh:pump_ss a brick:Start_Stop_Command ; rdfs:label "LH.PUMP.SS" ; '
                "brick:isPointOf lh:pump .",
                "",
            ),
        ],
        (
            'lh:pump a brick:Pump ; rdfs:label "LH.PUMP" ; brick:hasPoint lh:pump_ss . '
            'lh:pump_ss a brick:Start_Stop_Command ; rdfs:label "LH.PUMP.SS" .',
            "",
        ),
    ),
    "sensor-has-unit": (
        [
            (
                'lh:x_co2 a brick:CO2_Level_Sensor ; rdfs:label "LH.X.CO2" ; '
                "brick:isPointOf lh:vav_103 .",
                "",
            ),
            ("", "lh:ahu_2_rat brick:hasUnit unit:DEG_C ."),
        ],
        (
            'lh:x_co2 a brick:CO2_Level_Sensor ; rdfs:label "LH.X.CO2" ; '
            "brick:isPointOf lh:vav_103 ; brick:hasUnit unit:PPM .",
            "",
        ),
    ),
    "unique-identifier": (
        [
            (
                'lh:x_run a brick:Run_Status ; rdfs:label "LH.AHU-1.SAT" ; '
                "brick:isPointOf lh:ahu_1 .",
                "",
            ),
            (
                'lh:room_g01 rdfs:label "LH.G02-READING" .',
                'lh:room_g01 rdfs:label "LH.G01-ENTRANCE" .',
            ),
        ],
        (
            'lh:x_run a brick:Run_Status ; rdfs:label "LH.AHU-1.SF.RUN-2" ; '
            "brick:isPointOf lh:ahu_1 .",
            "",
        ),
    ),
    "identifier-well-formed": (
        [
            ('lh:room_g01 rdfs:label " Entrance" .', 'lh:room_g01 rdfs:label "LH.G01-ENTRANCE" .'),
            (
                'lh:room_g01 rdfs:label "Entrance\\n" .',
                'lh:room_g01 rdfs:label "LH.G01-ENTRANCE" .',
            ),
            (
                'lh:room_g01 rdfs:label "Entrance"@en .',
                'lh:room_g01 rdfs:label "LH.G01-ENTRANCE" .',
            ),
            ('lh:room_g01 rdfs:label "" .', 'lh:room_g01 rdfs:label "LH.G01-ENTRANCE" .'),
            (
                f'lh:room_g01 rdfs:label "{"E" * 65}" .',
                'lh:room_g01 rdfs:label "LH.G01-ENTRANCE" .',
            ),
            ('lh:room_g01 rdfs:label "LH.G01-FOYER" .', ""),
        ],
        ('lh:room_g01 rdfs:label "LH.G01 Foyer" .', 'lh:room_g01 rdfs:label "LH.G01-ENTRANCE" .'),
    ),
    "no-retire-while-referenced": (
        [
            ("", "lh:vav_101_saf a brick:Supply_Air_Flow_Sensor ."),
            ("", "lh:room_g01 a brick:Room ."),
        ],
        (
            "",
            'lh:vav_101_saf a brick:Supply_Air_Flow_Sensor ; rdfs:label "LH.VAV-101.SAF" ; '
            "brick:hasUnit unit:L-PER-SEC ; brick:isPointOf lh:vav_101 .",
        ),
    ),
    "no-feeds-cycle": (
        [
            ("lh:ahu_1 brick:feeds lh:ahu_1 .", ""),
            ("lh:vav_g01 brick:feeds lh:ahu_1 .", ""),
            ("lh:zone_g01 brick:feeds lh:boiler_1 .", ""),
            ("lh:boiler_1 brick:isFedBy lh:vav_g02 .", ""),
        ],
        ("lh:ahu_1 brick:feeds lh:vav_101 . lh:zone_101 brick:isFedBy lh:crac_1 .", ""),
    ),
}
BAD_CASES = [
    pytest.param(hook, bad, id=f"{hook}-{i}")
    for hook, (bads, _) in HOOK_CASES.items()
    for i, bad in enumerate(bads)
]


def turtle_delta(additions: str, removals: str) -> Delta:
    return Delta.from_text(
        PREFIXES + additions if additions else "",
        PREFIXES + removals if removals else "",
        format="turtle",
    )


@pytest.fixture
def governed() -> KnowledgeEngine:
    engine = KnowledgeEngine()
    engine.load(BUILDING_TTL)
    engine.hooks.load(POLICY_DIR)
    return engine


def test_every_policy_hook_has_cases() -> None:
    assert sorted(HOOK_CASES) == POLICY_HOOKS


@pytest.mark.parametrize(("hook", "bad"), BAD_CASES)
def test_hook_vetoes_its_bad_delta(
    governed: KnowledgeEngine, hook: str, bad: tuple[str, str]
) -> None:
    before = governed.state_digest
    receipt = governed.apply(turtle_delta(*bad), actor="test")
    assert receipt.status == "vetoed"
    assert receipt.vetoed_by == [hook]
    assert governed.state_digest == before


@pytest.mark.parametrize("hook", sorted(HOOK_CASES))
def test_hook_passes_its_good_delta(governed: KnowledgeEngine, hook: str) -> None:
    receipt = governed.apply(turtle_delta(*HOOK_CASES[hook][1]), actor="test")
    assert receipt.committed, [v for v in receipt.hooks if v.verdict != "pass"]
    assert receipt.additions + receipt.removals > 0
    verdict = next(v for v in receipt.hooks if v.hook == hook)
    assert verdict.verdict == "pass"


# The change stream ------------------------------------------------------------------------------


def _drawn(seed: int, count: int) -> list[tuple[str, Delta]]:
    engine = KnowledgeEngine()
    engine.load(BUILDING_TTL)
    return [(c.kind, c.delta) for c in ChangeStream(engine, count=count, seed=seed)]


def test_stream_is_deterministic_per_seed() -> None:
    assert _drawn(7, 300) == _drawn(7, 300)
    assert _drawn(7, 300) != _drawn(8, 300)


def test_stream_mixes_valid_and_invalid_changes() -> None:
    kinds = Counter(kind for kind, _ in _drawn(1, 1000))
    assert sum(kinds.values()) == 1000
    invalid = sum(n for kind, n in kinds.items() if EDIT_KINDS[kind][1] is not None)
    assert 250 <= invalid <= 600
    assert set(kinds) >= set(EDIT_KINDS) - {"name"}  # every entity of the building has a label


# Whole runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_report() -> DemoReport:
    return run_demo(changes=1000, seed=0)


def test_shipped_demo_vetoes_with_every_hook_and_commits_valid_changes(
    shipped_report: DemoReport,
) -> None:
    assert shipped_report.triples_loaded == len(list(ox.parse(path=BUILDING_TTL)))
    assert shipped_report.replay.transactions == 1000
    assert_governed_as_expected(shipped_report)


def test_shipped_demo_commits_every_valid_kind(shipped_report: DemoReport) -> None:
    outcomes = shipped_report.replay.outcomes_by_kind
    for (kind, status), count in outcomes.items():
        if kind in VALID_KINDS:
            assert status == "committed", (kind, status, count)
    assert shipped_report.triples_final > shipped_report.triples_loaded


@pytest.mark.slow
def test_demo_on_soda_hall() -> None:
    report = run_demo(brick_file("soda_brick.ttl"), changes=1000, seed=1)
    assert report.triples_loaded == 3774
    assert_governed_as_expected(report)


@pytest.mark.slow
def test_demo_on_gates_hillman_centers_with_lenient_parse() -> None:
    report = run_demo(brick_file("ghc_brick.ttl"), lenient=True, changes=1000, seed=2)
    assert report.triples_loaded == 55_733
    assert_governed_as_expected(report)


# The command ------------------------------------------------------------------------------------


def kgc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kgc", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_demo_prints_its_summary() -> None:
    done = kgc("demo", "--changes", "150", "--seed", "3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "triples loaded     399" in out
    assert "changes            150 (seed 3)" in out
    assert "unexpected         0" in out
    assert "tx/s" in out
    assert "p50" in out and "p99" in out
    assert "(matches)" in out
    for hook in PACK_HOOKS:
        assert f"    {hook}" in out
    assert "    pack building-governance@1.0.0 " in out
    assert "    pack data-quality@1.0.0 " in out


def test_cli_reports_a_missing_file_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent.ttl"
    done = kgc("demo", "--data", str(missing))
    assert done.returncode == 1
    assert done.stderr == f"kgc demo: error: {missing}: no such file\n"
    assert done.stdout == ""


def test_cli_reports_a_syntax_error_with_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text('@prefix ex: <http://ex/> .\nex:a ex:b ex:c .\nex:a ex:b "open .\n', "utf-8")
    done = kgc("demo", "--data", str(bad))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"kgc demo: error: {bad}, line 3, column ")
    assert "Traceback" not in done.stderr


def test_cli_suggests_lenient_for_an_invalid_iri() -> None:
    ghc = brick_file("ghc_brick.ttl")
    done = kgc("demo", "--data", str(ghc))
    assert done.returncode == 1
    assert f"{ghc}, line 364, column 1:" in done.stderr
    assert done.stderr.endswith("(--lenient accepts some invalid RDF)\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--changes", "-5"], "expected zero or more, got -5"),
        (["demo", "--changes", "many"], "expected a whole number, got 'many'"),
        (["demo", "--seed", "x"], "invalid int value"),
        ([], "required: COMMAND"),
    ],
)
def test_cli_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = kgc(*args)
    assert done.returncode == 2
    assert message in done.stderr


def test_cli_refuses_a_directory(tmp_path: Path) -> None:
    done = kgc("demo", "--data", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr == f"kgc demo: error: {tmp_path}: is a directory, not an RDF file\n"


# Core fixes the demo needed ---------------------------------------------------------------------


def test_shacl_delta_scope_does_not_read_other_instances_of_a_touched_class() -> None:
    store = OxigraphStore()
    ex = "http://example.org/"
    shapes = f"""
        @prefix sh: <http://www.w3.org/ns/shacl#> .
        <{ex}shape> a sh:NodeShape ; sh:targetClass <{ex}Thing> ;
            sh:property [ sh:path <{ex}name> ; sh:minCount 1 ] .
    """
    rdf_type = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    thing = ox.NamedNode(ex + "Thing")
    unnamed = ox.Quad(ox.NamedNode(ex + "unnamed"), rdf_type, thing)
    added = [
        ox.Quad(ox.NamedNode(ex + "new"), rdf_type, thing),
        ox.Quad(ox.NamedNode(ex + "new"), ox.NamedNode(ex + "name"), ox.Literal("n")),
    ]
    store.add_all([unnamed, *added])
    condition = Shacl(shapes, scope="delta")
    assert not condition.evaluate(EvalContext(store, added, ())).fired
    assert condition.evaluate(EvalContext(store, [unnamed], ())).fired


class _RecordingStore(OxigraphStore):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[ox.Quad] = []

    def add_all(self, quads: object) -> None:
        batch = list(quads)  # type: ignore[call-overload]
        self.written.extend(batch)
        super().add_all(batch)


def test_transaction_without_hooks_stages_no_delta_graphs() -> None:
    store = _RecordingStore()
    manager = TransactionManager(store)
    ex = ox.NamedNode("http://example.org/a")
    receipt = manager.apply(Delta([(ex, ex, ex)]), actor="test")
    assert receipt.committed
    assert [q for q in store.written if not isinstance(q.graph_name, ox.DefaultGraph)] == []


def test_cli_demo_with_a_lockchain_that_then_verifies(tmp_path: Path) -> None:
    chain = tmp_path / "chain"

    demo = kgc("demo", "--changes", "120", "--lockchain", str(chain))
    verified = kgc("lockchain", "verify", str(chain), "--replay")

    assert demo.returncode == 0, demo.stderr
    assert (
        f"lockchain          {chain}: 121 receipts sealed and signed, all anchored" in demo.stdout
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.rstrip().endswith("OK")
    digest = demo.stdout.split("state digest")[1].split()[0]
    assert f"state {digest}" in verified.stdout


def test_cli_demo_refuses_a_lockchain_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text("")

    result = kgc("demo", "--changes", "1", "--lockchain", str(tmp_path))

    assert result.returncode == 1
    assert "--lockchain needs a new or empty directory" in result.stderr

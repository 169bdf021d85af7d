"""What a security review of the sandbox found, each reproduced and held.

Before the fixes: forged or deeply nested results made ``apply`` raise after its commit (and the
hooks after it never ran); bytes written after the result outlived the wall-time limit; the log
cap could be lifted from inside the worker; a change could fan out into thousands of effect runs;
the x32 ABI got EPERM instead of a kill; effects could read the host's name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from kgc import KnowledgeEngine
from kgc.effects.cascade import MAX_EFFECT_RUNS
from kgc.effects.code import SandboxedEffect
from kgc.effects.pool import SandboxConfig, SandboxPool
from kgc.errors import HookDefinitionError
from kgc.hooks.conditions import SparqlAsk
from kgc.hooks.model import Hook
from kgc.rdf.delta import Delta

ANY = "ASK { ?s ?p ?o }"
ADD = "<urn:ex:a> <urn:ex:p> <urn:ex:b> .\n"
FORGE_DEEP = """
import os, struct
def run(e):
    body = b'{"ok": true, "value": ' + b"[" * 5000 + b"]" * 5000 + b', "logs": []}'
    os.write(3, struct.pack(">I", len(body)) + body)
    os._exit(0)
"""
FORGE_SURROGATE = """
import os, struct
def run(e):
    body = b'{"ok": true, "value": null, "logs": ["\\\\ud800"]}'
    os.write(3, struct.pack(">I", len(body)) + body)
    os._exit(0)
"""
DEEP_EVENT = """
def run(e):
    v = 1
    for _ in range(700):
        v = {"x": v}
    return {"events": [{"x": v}]}
"""
KEEP_WRITING = """
import os, struct
def run(e):
    body = b'{"ok": true, "value": null, "logs": []}'
    os.write(3, struct.pack(">I", len(body)) + body)
    while True:
        os.write(3, b"z" * 65536)
"""
LIFT_LOG_CAP = """
import sys
def run(e):
    sys.stdout.limit = 10 ** 9
    for i in range(20000):
        print("line", i)
"""


@pytest.fixture
def engine() -> Iterator[KnowledgeEngine]:
    with KnowledgeEngine() as engine:
        yield engine


def _post(name: str, source: str, **kwargs: object) -> Hook:
    effect = SandboxedEffect(source, name=f"{name}.py", **kwargs)  # type: ignore[arg-type]
    return Hook(name, SparqlAsk(ANY), phase="post", effect=effect, priority=1)


@pytest.mark.parametrize(
    ("source", "fault"),
    [
        (FORGE_DEEP, "nests too deeply"),
        (FORGE_SURROGATE, "not Unicode"),
        (DEEP_EVENT, "nests deeper than 32"),
    ],
    ids=["forged-deep-frame", "forged-lone-surrogate", "deeply-nested-event"],
)
def test_a_result_that_would_break_the_receipt_is_a_protocol_error_and_later_hooks_run(
    engine: KnowledgeEngine, source: str, fault: str
) -> None:
    ran = []
    engine.hooks.register(_post("nasty", source))
    later = Hook("later", SparqlAsk(ANY), phase="post", run=ran.append, priority=0)
    engine.hooks.register(later)

    receipt = engine.apply(Delta.from_text(ADD))  # must not raise: the commit stands

    nasty = next(v for v in receipt.effects if v.hook == "nasty")
    assert (nasty.verdict, nasty.error_kind) == ("error", "protocol")  # type: ignore[attr-defined]
    assert fault in nasty.reason
    assert receipt.committed and len(ran) == 1
    assert receipt.to_json()  # the receipt serializes


def test_bytes_after_the_result_end_the_call_at_once() -> None:
    pool = SandboxPool(SandboxConfig(timeout_ms=3000, pool_size=1))
    try:
        # Timed from a warm pool: starting the zygote took 0.4-0.65 s under CPU load (it flaked
        # at the 0.5 s bound). The call alone took 2-41 ms there; "at once" means long before
        # the 3 s limit, which is what it would wait for if the trailing bytes went unnoticed.
        pool.start()
        pool.probe()
        t = time.perf_counter()
        result = pool.call("writer", KEEP_WRITING, {}, timeout_ms=None)
        elapsed = time.perf_counter() - t
    finally:
        pool.close()

    assert result.status == "protocol"
    assert elapsed < 0.5


def test_the_log_cap_holds_even_when_the_worker_lifts_its_own(engine: KnowledgeEngine) -> None:
    pool = SandboxPool(SandboxConfig(pool_size=1, log_limit=4096))
    try:
        result = pool.call("logs", LIFT_LOG_CAP, {}, timeout_ms=None)
    finally:
        pool.close()

    assert result.status == "ok"
    *kept, note = result.logs
    assert sum(len(line) for line in kept) <= 4096
    assert note.startswith("[kgc: ") and "more log line(s) cut" in note


def test_one_change_fanning_out_through_effects_is_bounded(engine: KnowledgeEngine) -> None:
    grow = (
        "import random\ndef run(e):\n"
        "    return {'add': [f'<urn:ex:n{random.random()}> <urn:ex:p> <urn:ex:o> .']}\n"
    )
    seen = []
    engine.transactions.on_receipt.append(seen.append)
    for k in range(3):  # three hooks, each firing on every change: 3 ** 8 runs unbounded
        engine.hooks.register(_post(f"grow{k}", grow))

    t = time.perf_counter()
    engine.apply(Delta.from_text(ADD))
    elapsed = time.perf_counter() - t

    verdicts = [v for r in seen for v in r.effects]
    not_run = [v for v in verdicts if v.reason.startswith("not run")]
    assert len(verdicts) - len(not_run) == MAX_EFFECT_RUNS
    assert not_run and all(v.error_kind == "cascade" for v in not_run)  # type: ignore[attr-defined]
    assert elapsed < 30


def test_an_x32_system_call_kills_the_worker() -> None:
    source = (
        "import ctypes\ndef run(e):\n"
        "    return ctypes.CDLL(None).syscall(0x40000000 | 39)\n"  # x32 getpid
    )
    pool = SandboxPool(SandboxConfig(pool_size=1))
    try:
        result = pool.call("x32", source, {}, timeout_ms=None)
    finally:
        pool.close()

    assert result.status == "crashed"
    assert "SIGSYS" in result.message


def test_an_effect_cannot_read_the_hosts_name_or_interpreter_path() -> None:
    source = (
        "import os, sys\ndef run(e):\n"
        "    try:\n        name = os.uname().nodename\n    except OSError as exc:\n"
        "        name = str(exc)\n"
        "    return {'name': name, 'exe': sys.executable, 'path': sys.path}\n"
    )
    pool = SandboxPool(SandboxConfig(pool_size=1))
    try:
        result = pool.call("who", source, {}, timeout_ms=None)
    finally:
        pool.close()

    assert result.value == {"name": "[Errno 1] Operation not permitted", "exe": "", "path": []}


def test_effect_source_nested_too_deeply_is_refused_at_load() -> None:
    with pytest.raises(HookDefinitionError, match="cannot be compiled"):
        SandboxedEffect("x = " + "-" * 200_000 + "1", name="deep.py")


def test_effect_source_over_the_size_limit_is_refused_before_compiling() -> None:
    # 3 MiB of list literal took 4.7 s and 1.3 GiB to compile in the kgc process.
    with pytest.raises(HookDefinitionError, match="bytes of source; the limit is 262144"):
        SandboxedEffect("x = [" + "1," * 2_000_000 + "]\ndef run(e): pass\n", name="big.py")


FORGE_NAN = """
import os, struct
def run(e):
    body = b'{"ok": true, "value": {"events": [{"x": NaN, "y": 1e400}]}, "logs": []}'
    os.write(3, struct.pack(">I", len(body)) + body)
    os._exit(0)
"""


def test_a_forged_nan_or_infinity_is_a_protocol_error(engine: KnowledgeEngine) -> None:
    engine.hooks.register(_post("nan", FORGE_NAN))

    receipt = engine.apply(Delta.from_text(ADD))

    assert receipt.effects[0].error_kind == "protocol"  # type: ignore[attr-defined]
    assert "NaN" in receipt.effects[0].reason
    json.loads(receipt.to_json(), parse_constant=lambda name: pytest.fail(f"{name} in receipt"))


def test_events_and_log_lines_cannot_swell_a_receipt(engine: KnowledgeEngine) -> None:
    pad = "def run(e):\n    return {'events': [{'pad': 'x' * 10000} for _ in range(95)]}\n"
    blank = "def run(e):\n    for _ in range(200000):\n        print()\n"
    engine.hooks.register(_post("pad", pad))
    engine.hooks.register(_post("blank", blank))

    receipt = engine.apply(Delta.from_text(ADD))

    verdicts = {v.hook: v for v in receipt.effects}
    assert verdicts["pad"].error_kind == "proposal"  # type: ignore[attr-defined]
    assert "the limit is 65536" in verdicts["pad"].reason
    *kept, note = verdicts["blank"].logs  # type: ignore[attr-defined]
    assert len(kept) == 1000
    assert note.startswith("[kgc: 199000 more log line(s) cut")
    assert len(receipt.to_json()) < 100_000


def test_a_caller_provenance_with_a_strange_generation_does_not_break_apply(
    engine: KnowledgeEngine,
) -> None:
    grow = "def run(e):\n    return {'add': ['<urn:ex:x> <urn:ex:p> <urn:ex:y> .']}\n"
    engine.hooks.register(_post("grow", grow))

    receipt = engine.apply(Delta.from_text(ADD), provenance={"caused_by": {"generation": "7"}})

    assert receipt.effects[0].proposal_status == "committed"  # type: ignore[attr-defined]


def test_one_change_and_its_consequences_share_a_time_budget(
    engine: KnowledgeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kgc.effects.cascade

    monkeypatch.setattr(kgc.effects.cascade, "EFFECT_BUDGET_S", 1.0)
    slow = (
        "import random, time\ndef run(e):\n    time.sleep(0.3)\n"
        "    return {'add': [f'<urn:ex:n{random.random()}> <urn:ex:p> <urn:ex:o> .']}\n"
    )
    engine.hooks.register(_post("slow", slow))

    t = time.perf_counter()
    engine.apply(Delta.from_text(ADD))
    elapsed = time.perf_counter() - t

    assert elapsed < 1.6  # one second of effects, then the rest is not run


def test_a_large_transaction_still_reaches_its_effect_with_the_delta_cut(
    engine: KnowledgeEngine,
) -> None:
    count = (
        "def run(e):\n    d = e['delta']\n"
        "    return {'events': [{'n': len(d['additions']), 'total': d['additions_total']}]}\n"
    )
    engine.hooks.register(_post("count", count))
    text = "".join(f"<urn:ex:s{i}> <urn:ex:p> <urn:ex:o{i}> .\n" for i in range(80_000))

    # Governing 80,000 quads took 2.05 s on a busy machine and 3-5 s under CPU load, past the
    # default 2 s pre-commit budget (it flaked so). This test is about what reaches the effect.
    receipt = engine.apply(Delta.from_text(text), timeout_ms=120_000)

    assert receipt.committed, receipt.error
    assert receipt.effects[0].events == ({"n": 1000, "total": 80_000},)  # type: ignore[attr-defined]

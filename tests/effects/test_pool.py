"""The pool itself: concurrency, a dead zygote, a closed pool, and layers a host lacks.

The missing-layer tests run the pool in a child process that first installs a seccomp filter
answering Landlock's system calls with ENOSYS, as a container runtime's profile may. That is the
real way such a host looks to kgc: nothing is mocked inside kgc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from kgc.effects.confine import seccomp_supported
from kgc.effects.pool import SandboxConfig, SandboxPool
from kgc.errors import SandboxUnavailable

PID = "import os\ndef run(event):\n    return os.getpid()\n"


def test_concurrent_calls_each_get_their_own_fresh_worker() -> None:
    pool = SandboxPool(SandboxConfig(pool_size=2))
    results: list[object] = []

    def caller() -> None:
        for _ in range(5):
            results.append(pool.call("pid", PID, {}, timeout_ms=None).value)

    threads = [threading.Thread(target=caller) for _ in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        pool.close()

    assert len(results) == 30
    assert len(set(results)) == 30


def test_a_killed_zygote_is_replaced_on_the_next_call() -> None:
    pool = SandboxPool(SandboxConfig(pool_size=1))
    try:
        assert pool.call("one", PID, {}, timeout_ms=None).status == "ok"
        os.kill(pool.status()["host"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while pool.status()["state"] != "broken" and time.monotonic() < deadline:
            time.sleep(0.01)
        result = pool.call("two", PID, {}, timeout_ms=None)
    finally:
        pool.close()

    assert result.status == "ok"


def test_a_call_right_after_the_zygote_dies_gets_a_worker_of_a_new_one() -> None:
    pool = SandboxPool(SandboxConfig(pool_size=3))
    try:
        pool.probe()  # three warm workers wait; they die with their zygote
        os.kill(pool.status()["host"]["pid"], signal.SIGKILL)
        time.sleep(0.05)
        result = pool.call("after", PID, {}, timeout_ms=None)
    finally:
        pool.close()

    assert result.status == "ok"


def test_a_closed_pool_refuses_calls() -> None:
    pool = SandboxPool(SandboxConfig(pool_size=1))
    pool.start()
    pool.close()
    with pytest.raises(SandboxUnavailable, match="closed"):
        pool.call("late", PID, {}, timeout_ms=None)


def test_closing_the_pool_ends_the_zygote_and_its_workers() -> None:
    pool = SandboxPool(SandboxConfig(pool_size=3))
    pool.start()
    pool.probe()
    zygote = pool.status()["host"]["pid"]
    pool.close()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{zygote}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{zygote}")


BLOCK_LANDLOCK = """
import ctypes, json, struct, sys
from kgc.effects import confine
# A host whose seccomp profile answers Landlock's calls with ENOSYS (ld arch; jeq; ld nr; ...).
insns = [
    (0x20, 0, 0, 4), (0x15, 0, 5, 0xC000003E), (0x20, 0, 0, 0),
    (0x15, 3, 0, 444), (0x15, 2, 0, 445), (0x15, 1, 0, 446),
    (0x06, 0, 0, 0x7FFF0000), (0x06, 0, 0, 0x00050000 | 38),
]
prog = b"".join(struct.pack("=HBBI", *i) for i in insns)
buf = ctypes.create_string_buffer(prog, len(prog))
fprog = confine._SockFprog(len(insns), ctypes.cast(buf, ctypes.c_void_p))
confine._prctl(confine.PR_SET_NO_NEW_PRIVS, 1)
confine._prctl(confine.PR_SET_SECCOMP, confine.SECCOMP_MODE_FILTER, ctypes.byref(fprog))
from kgc.effects.pool import SandboxConfig, SandboxPool
from kgc.errors import SandboxUnavailable
pool = SandboxPool(SandboxConfig(strict=sys.argv[1] == "strict", pool_size=1))
try:
    result = pool.call("x", "def run(e):\\n    return 7\\n", {}, timeout_ms=None)
    print(json.dumps({"status": result.status, "value": result.value, "layers": result.layers}))
except SandboxUnavailable as exc:
    print(json.dumps({"refused": str(exc), "state": pool.status()}))
finally:
    pool.close()
"""


def _without_landlock(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BLOCK_LANDLOCK), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.mark.skipif(seccomp_supported() is not None, reason=str(seccomp_supported()))
def test_strict_mode_refuses_to_run_effects_naming_the_missing_layer() -> None:
    answer = _without_landlock("strict")

    assert "landlock" in str(answer["refused"])
    assert answer["state"]["state"] == "refusing"  # type: ignore[index]


@pytest.mark.skipif(seccomp_supported() is not None, reason=str(seccomp_supported()))
def test_non_strict_mode_runs_with_the_layers_it_has_and_records_the_missing_one() -> None:
    answer = _without_landlock("lenient")

    assert (answer["status"], answer["value"]) == ("ok", 7)
    layers = answer["layers"]
    assert isinstance(layers, dict)
    assert str(layers["landlock"]).startswith("missing")
    assert layers["seccomp"] == "34 system calls allowed"
    assert layers["user"] == "uid 65534 gid 65534"

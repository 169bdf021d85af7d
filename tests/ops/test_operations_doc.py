"""Every ``sh`` block of docs/operations.md, run in order against a real ``kgc serve``.

Paths and the address are pointed at a scratch directory and the test's server: ``/app/data``,
``/app/config``, ``/backups`` and ``localhost:3000``. A block whose first line is
``# kgc stopped`` runs after the server is stopped (SIGTERM), one whose first line is
``# kgc restarted`` after it is started again on the same data. Blocks marked ``console`` (a
Docker engine or a cluster) and ``text`` (configuration) are not run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from ops_helpers import (
    KUBERNETES,
    ROOT,
    Server,
    clean_environment,
    free_port,
    kgc_serve_command,
    port_is_free,
    start_server,
)

DOC = ROOT / "docs" / "operations.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
KEYS = {"READ_KEY": "ops-read-key-0000000001", "WRITE_KEY": "ops-write-key-000000002"}
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))]


class Site:
    """A scratch /app and /backups, and the kgc serve that uses them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "app" / "data"
        self.config = root / "app" / "config"
        self.data.mkdir(parents=True)
        self.config.mkdir(parents=True)
        configmap = yaml.safe_load((KUBERNETES / "base" / "configmap.yaml").read_text("utf-8"))
        (self.config / "kgc.toml").write_text(configmap["data"]["kgc.toml"], encoding="utf-8")
        lines = [f"{KEYS['READ_KEY']} read", f"{KEYS['WRITE_KEY']} write"]
        (self.config / "api-keys").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.port = 3000 if port_is_free(3000) else free_port()
        self.server: Server | None = None
        self.written = 0

    def env(self) -> dict[str, str]:
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        return clean_environment({"PATH": path, **KEYS})

    def start(self) -> None:
        env = self.env() | {
            "BASE_PATH": str(self.data),
            "KGC_CONFIG_FILE": str(self.config / "kgc.toml"),
            "KGC_API_KEYS_FILE": str(self.config / "api-keys"),
        }
        log = self.root / "kgc.log"
        with log.open("ab"):
            pass
        command = kgc_serve_command(self.port)
        self.server = start_server(command, self.root / f"serve-{os.getpid()}.log", self.port, env)
        # The doc reads kgc.log as `kubectl logs` would write it: the server's whole output.
        self.log_target = log

    def stop(self) -> None:
        assert self.server is not None
        assert self.server.stop() == 0, self.server.output()
        self.collect_log()
        self.server = None

    def collect_log(self) -> None:
        if self.server is not None:
            self.log_target.write_text(self.server.output(), encoding="utf-8")

    def localize(self, text: str) -> str:
        text = text.replace("localhost:3000", f"127.0.0.1:{self.port}")
        for inside, outside in (
            ("/app/data", self.data),
            ("/app/config", self.config),
            ("/backups", self.root / "backups"),
        ):
            text = text.replace(inside, str(outside))
        return text

    def run(self, block: str) -> str:
        self.collect_log()
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.localize(block)],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"{block}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout

    def count(self) -> int:
        assert self.server is not None
        answer = httpx.get(
            f"{self.server.url}/sparql",
            params={"query": COUNT},
            headers={"Authorization": f"Bearer {KEYS['READ_KEY']}", "Accept": "text/csv"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return int(answer.text.split()[-1])


@pytest.fixture
def site() -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="kgc-ops-doc-") as scratch:
        place = Site(Path(scratch))
        place.start()
        try:
            yield place
        finally:
            if place.server is not None:
                place.server.stop()


def write_some(site: Site, count: int) -> None:
    """``count`` transactions, each adding a quad no earlier call added."""
    assert site.server is not None
    first, site.written = site.written, site.written + count
    with httpx.Client(base_url=site.server.url, timeout=10) as client:
        for i in range(first, first + count):
            quad = f'<urn:ex:item{i}> <urn:ex:label> "item {i}" .'
            answer = client.post(
                "/transactions",
                json={"additions": [quad]},
                headers={"Authorization": f"Bearer {KEYS['WRITE_KEY']}"},
            )
            assert answer.status_code == 201, answer.text


def test_only_known_block_kinds() -> None:
    kinds = {kind for kind, _ in blocks()}
    assert kinds <= {"sh", "console", "text"}
    console = "\n".join(text for kind, text in blocks() if kind == "console")
    for line in console.splitlines():
        if line.strip() and not line.startswith(" "):
            assert line.split()[0] in ("docker", "kubectl"), line


def test_every_shell_block_of_the_runbook_runs_against_kgc_serve(site: Site) -> None:
    write_some(site, 5)
    before = site.count()
    outputs: list[tuple[str, str]] = []
    for kind, text in blocks():
        if kind != "sh":
            continue
        first = text.splitlines()[0]
        if first == "# kgc stopped":
            site.stop()
        elif first == "# kgc restarted":
            assert site.server is None, "a restart block follows a stopped one"
            site.start()
        outputs.append((text, site.run(text)))

    ran = "\n".join(text for text, _ in outputs)
    for command in ("backup create", "backup verify", "backup restore", "lockchain verify"):
        assert f"kgc {command} " in ran
    by_block = dict(outputs)
    health = next(out for text, out in outputs if "/health" in text)
    assert '"status":"healthy"' in health
    alerts = next(out for text, out in outputs if "system_memory_usage) '" in text)
    assert len(alerts.splitlines()) == 3
    logs = next(out for text, out in outputs if "kgc.log" in text)
    assert '"message": "Memory usage' in logs
    restarted = next(out for text, out in by_block.items() if text.startswith("# kgc restarted"))
    assert restarted.splitlines()[0] == "200"
    assert int(restarted.split()[-1]) == before == site.count()


def test_restore_brings_back_what_was_backed_up_not_what_came_after(site: Site) -> None:
    """The doc's backup, then more writes, then its restore: the later writes are gone."""
    sh = [text for kind, text in blocks() if kind == "sh"]
    backup = next(text for text in sh if "kgc backup create" in text)
    restore = next(text for text in sh if text.startswith("# kgc stopped"))
    write_some(site, 3)
    site.run(backup)
    backed_up = site.count()
    write_some(site, 12)
    assert site.count() == backed_up + 12
    site.stop()
    site.run(restore)
    site.start()
    assert site.count() == backed_up


def fluent_bit_parser() -> dict[str, str]:
    """The ``[PARSER]`` section of the doc's Fluent Bit example, as key -> value."""
    (text,) = [text for kind, text in blocks() if kind == "text" and "[PARSER]" in text]
    section = text.split("[PARSER]", 1)[1].split("\n\n", 1)[0]
    pairs = (line.split(None, 1) for line in section.strip().splitlines())
    return {key: value.strip() for key, value in pairs}


def test_fluent_bit_example_parses_the_time_of_every_kgc_log_line(live_server: Server) -> None:
    """kgc's side of the (unverified) Fluent Bit example: every JSON line has the time key, in
    exactly the example's Time_Format (Fluent Bit's %L, fractional seconds, is Python's %f)."""
    parser = fluent_bit_parser()
    assert parser["Format"] == "json"
    python_format = parser["Time_Format"].replace("%L", "%f")
    lines = [line for line in live_server.output().splitlines() if line.startswith("{")]
    assert len(lines) >= 3
    for line in lines:
        stamp = json.loads(line)[parser["Time_Key"]]
        parsed = datetime.strptime(stamp, python_format)
        assert parsed.replace(tzinfo=UTC) == datetime.fromisoformat(stamp), stamp

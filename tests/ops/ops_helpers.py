"""Helpers for the operations tests: the deploy/ files, a live ``kgc serve``, promtool.

Every server binds 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hookfiles
import httpx
import yaml
from loopback import wait_healthy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
KUBERNETES = DEPLOY / "kubernetes"
INSTALL_PROMTOOL = ROOT / "scripts" / "install-promtool.sh"

# Labels a Prometheus scrape adds to kgc's own series (job, instance) and the example
# configuration's relabelling (namespace, pod), beside the exposition's labels.
SCRAPE_LABELS = frozenset({"job", "instance", "namespace", "pod"})
_NAME = re.compile(r"\b(kgc_[a-zA-Z0-9_]+|up)\b")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def metric_names(promql: str) -> set[str]:
    """kgc series (and ``up``) named in a PromQL expression or a series selector."""
    return set(_NAME.findall(promql))


def exposition(text: str) -> dict[str, set[str]]:
    """Series name -> label names, from Prometheus text exposition."""
    series: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head = line.rsplit(" ", 1)[0]
        name, _, labels = head.partition("{")
        keys = {part.split("=", 1)[0].strip() for part in labels.rstrip("}").split(",") if part}
        series.setdefault(name, set()).update(keys)
    return series


def selector_labels(selector: str) -> set[str]:
    """Label names of a series selector such as ``up{job="kgc", instance="a:1"}``."""
    inside = selector.partition("{")[2].rstrip("}")
    return {m.group(1) for m in re.finditer(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*=", inside)}


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def rules() -> list[dict[str, Any]]:
    groups = load_yaml_documents(PROMETHEUS / "kgc-rules.yml")[0]["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    """(panel title, expression) of every target of every dashboard."""
    import json

    for path in sorted(GRAFANA.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]


def write_veto_hook(folder: Path) -> Path:
    """The shared veto hook (``hookfiles``), refusing the object <urn:example:bad>."""
    return hookfiles.write_veto_hook(folder, "<urn:example:bad>")


@dataclass
class Server:
    """A running ``kgc serve``, its URL and its log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without kgc's or the runbook's settings, plus ``extra``."""
    dropped = ("KGC_", "BASE_PATH", "LOG_LEVEL", "MAX_CONCURRENCY", "STRICT_MODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(extra)
    return env


def start_server(
    command: list[str],
    log: Path,
    port: int,
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    as_user: tuple[int, int] | None = None,
) -> Server:
    """Start ``command`` (a ``kgc serve``) and wait until ``/health`` answers 200."""
    if as_user is not None:
        uid, gid = as_user
        command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=dict(env), cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_healthy(process, server.url, server.output, 60)
    except RuntimeError:
        server.stop()
        raise
    return server


def kgc_serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "kgc", "serve", "--host", "127.0.0.1", "--port", str(port)]


def exercise(url: str) -> None:
    """Commit, veto and refuse a few transactions, so every series appears on /metrics."""
    good = {"additions": ['<urn:ex:a> <urn:ex:p> "x" .'], "removals": []}
    other = {"additions": ['<urn:ex:b> <urn:ex:p> "y" .'], "removals": []}
    bad = {"additions": ["<urn:ex:a> <urn:ex:p> <urn:example:bad> ."], "removals": []}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/transactions", json=good).status_code == 201
        assert client.post("/transactions", json=bad).status_code == 409
        empty = client.post("/transactions", content=b"", headers={"Content-Type": "text/turtle"})
        assert empty.status_code == 400
        assert client.post("/transactions", json=other).status_code == 201

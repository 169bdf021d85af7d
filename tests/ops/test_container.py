"""The container image, without a Docker engine: the Dockerfile's own steps replayed.

The test reads ``Dockerfile``, builds a fresh virtual environment with its RUN lines (container
paths mapped into a scratch directory), starts its CMD as uid 1001 with the ConfigMap's
``kgc.toml``, writes a transaction, and runs its HEALTHCHECK command literally: 0 while the
server answers, non-zero once it is stopped. The user-creating commands (``groupadd``,
``useradd``) are checked for uid and gid 1001 but not run: they would change this machine.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from ops_helpers import KUBERNETES, ROOT, Server, free_port, port_is_free
from ops_helpers import start_server as start

UID = 1001
IMAGE_PYTHONS = ("/usr/local/bin/python3.11", "/usr/bin/python3.11")  # the image's, then Debian's
NOT_REPLAYED = ("groupadd ", "useradd ")
WRITE_KEY = "container-write-key-00000001"
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # where a process could write beside its volume


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(path: Path = ROOT / "Dockerfile") -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return found


def only(keyword: str) -> list[str]:
    return [i.arguments for i in instructions() if i.keyword == keyword]


def environment_lines() -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for arguments in only("ENV"):
        for item in shlex.split(arguments):
            name, _, value = item.partition("=")
            pairs.append((name, value))
    return pairs


def healthcheck_command() -> list[str]:
    (arguments,) = only("HEALTHCHECK")
    exec_form = arguments[arguments.index("CMD ") + 4 :]
    command: list[str] = json.loads(exec_form)
    return command


class Image:
    """The image's file system, mapped into ``root``: /opt, /src and /app live below it."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.built_marker = root / "build-started"
        self.mapping = {"/opt/": f"{root}/opt/", "/src": f"{root}/src", "/app/": f"{root}/app/"}
        base_bin = root / "base-bin"  # the base image's /usr/local/bin: its python
        base_bin.mkdir()
        (base_bin / "python").symlink_to(python)
        self.env = {"PATH": f"{base_bin}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        for key in ("PIP_CONFIG_FILE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
            if key in os.environ:  # how this machine reaches the package registry
                self.env[key] = os.environ[key]

    def path(self, text: str) -> str:
        for inside, outside in self.mapping.items():
            text = text.replace(inside, outside)
        return text

    def copy(self, arguments: str) -> None:
        *sources, destination = shlex.split(arguments)
        target = Path(self.path(destination))
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)

    def run(self, arguments: str) -> None:
        for step in arguments.split(" && "):
            if step.startswith(NOT_REPLAYED):
                continue
            done = subprocess.run(
                ["sh", "-c", self.path(step)],
                env=self.env,
                cwd=self.root,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"RUN {step}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"

    def set_env(self, name: str, value: str) -> None:
        self.env[name] = self.path(value.replace("$PATH", self.env["PATH"]))

    def build(self) -> None:
        """Replay COPY, ENV and RUN in order, as ``docker build`` would."""
        self.built_marker.touch()
        for step in instructions():
            if step.keyword == "COPY":
                self.copy(step.arguments)
            elif step.keyword == "ENV":
                for item in shlex.split(step.arguments):
                    name, _, value = item.partition("=")
                    self.set_env(name, value)
            elif step.keyword == "RUN":
                self.run(step.arguments)


def image_python() -> str:
    """A Python 3.11 that uid 1001 can run (the image's is world-readable too)."""
    for candidate in IMAGE_PYTHONS:
        if not Path(candidate).exists():
            continue
        probe = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", candidate]
        # `-m venv --help` passes without ensurepip, and then `python -m venv` fails in RUN.
        done = subprocess.run([*probe, "-c", "import ensurepip"], capture_output=True, check=False)
        if done.returncode == 0:
            return candidate
    pytest.skip(
        f"no Python 3.11 with ensurepip (needed by python -m venv) that uid {UID} can run: "
        f"tried {IMAGE_PYTHONS}"
    )


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.skip(f"switching to uid {UID} needs root; this test runs as uid {os.geteuid()}")
    scratch = Path(tempfile.mkdtemp(prefix="kgc-image-", dir="/tmp"))
    scratch.chmod(0o755)  # like /: readable by everyone, writable by root only
    try:
        built = Image(scratch, image_python())
        built.build()
        yield built
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_dockerfile_declares_the_runbook_contract() -> None:
    (base,) = only("FROM")
    assert base.startswith("python:3.11-slim")
    assert only("USER") == [f"{UID}:{UID}"]
    assert only("EXPOSE") == ["3000"]
    env = dict(environment_lines())
    assert env["KGC_HOST"] == "0.0.0.0"  # the probes reach the pod's address
    assert env["KGC_PORT"] == "3000"
    assert env["BASE_PATH"] == "/app/data"
    assert json.loads(only("CMD")[0]) == ["kgc", "serve"]
    (healthcheck,) = only("HEALTHCHECK")
    assert "--interval=" in healthcheck
    assert "--timeout=" in healthcheck
    command = healthcheck_command()
    assert command[0] == "python"  # no curl in the slim image
    assert "/health" in command[-1]
    users = [step for run in only("RUN") for step in run.split(" && ")]
    creating = [step for step in users if step.startswith(NOT_REPLAYED)]
    assert len(creating) == 2
    assert all(f"--gid {UID}" in step for step in creating)
    assert any(f"--uid {UID}" in step for step in creating)


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert "*" in lines
    copied = {src for arguments in only("COPY") for src in shlex.split(arguments)[:-1]}
    assert copied == allowed


@pytest.fixture
def served(image: Image) -> Iterator[tuple[Server, dict[str, str]]]:
    data = image.root / "app" / "data"
    config = image.root / "app" / "config"
    assert data.stat().st_uid == UID, "the Dockerfile gives the data volume to uid 1001"
    configmap = yaml.safe_load((KUBERNETES / "base" / "configmap.yaml").read_text("utf-8"))
    (config / "kgc.toml").write_text(configmap["data"]["kgc.toml"], encoding="utf-8")
    # As `docker run` in the Dockerfile's comment: keys from a file, no anonymous writes.
    (config / "api-keys").write_text(f"{WRITE_KEY} write\n", encoding="utf-8")
    port = 3000 if port_is_free(3000) else free_port()
    env = {
        **image.env,
        "KGC_HOST": "127.0.0.1",  # the image says 0.0.0.0; a test listens on loopback only
        "KGC_PORT": str(port),
        "KGC_CONFIG_FILE": str(config / "kgc.toml"),
        "KGC_API_KEYS_FILE": str(config / "api-keys"),
    }
    (workdir,) = only("WORKDIR")
    command = json.loads(only("CMD")[0])
    log = image.root / "serve.log"
    server = start(command, log, port, env, cwd=Path(image.path(workdir)), as_user=(UID, UID))
    try:
        yield server, env
    finally:
        server.stop()
        log.unlink(missing_ok=True)


def run_healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    as_user = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
    return subprocess.run(
        [*as_user, *healthcheck_command()],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_image_serves_as_uid_1001_and_its_healthcheck_tells_up_from_down(
    image: Image, served: tuple[Server, dict[str, str]]
) -> None:
    server, env = served
    assert server.process.pid and _uid_of(server.process.pid) == UID

    healthy = run_healthcheck(env)
    assert healthy.returncode == 0, healthy.stderr

    quad = '<urn:ex:container> <urn:ex:p> "written by uid 1001" .'
    anonymous = httpx.post(f"{server.url}/transactions", json={"additions": [quad]}, timeout=10)
    assert anonymous.status_code == 401, anonymous.text  # the keys file is in force
    answer = httpx.post(
        f"{server.url}/transactions",
        json={"additions": [quad]},
        headers={"Authorization": f"Bearer {WRITE_KEY}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    ready = httpx.get(f"{server.url}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["lockchain"].startswith("ok")

    assert server.stop() == 0, server.output()
    down = run_healthcheck(env)
    assert down.returncode != 0

    data = image.root / "app" / "data"
    assert {p.name for p in data.iterdir()} >= {"store", "lockchain"}
    written = [p for p in image.root.rglob("*") if _owned_by_uid(p)]
    outside = [p for p in written if data not in p.parents and p != data]
    assert outside == [], "uid 1001 wrote outside the data volume"
    assert _created_by_uid_in_scratch_dirs(image) == [], "uid 1001 wrote to shared scratch space"


def _created_by_uid_in_scratch_dirs(image: Image) -> list[str]:
    """Files of uid 1001 in /tmp, /var/tmp and /dev/shm changed since the image was built
    (the image's own tree, below /tmp, is checked file by file above)."""
    roots = [d for d in SCRATCH_DIRS if Path(d).is_dir()]
    skip_image = ["-path", str(image.root), "-prune", "-o"]
    since = ["-user", str(UID), "-cnewer", str(image.built_marker), "-print"]
    done = subprocess.run(
        ["find", *roots, "-xdev", *skip_image, *since],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # unreadable corners make find exit 1; what it printed still counts
    )
    return done.stdout.splitlines()


def _owned_by_uid(path: Path) -> bool:
    try:
        return path.lstat().st_uid == UID
    except FileNotFoundError:
        return False


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for process {pid}")


def test_healthcheck_start_period_matches_the_statefulsets_startup_allowance() -> None:
    """Start-up reads the whole journal (about 80 µs a receipt) and may replay it: Docker must
    not call the container unhealthy before Kubernetes' startup probe would give up."""
    (healthcheck,) = only("HEALTHCHECK")
    period = next(f for f in healthcheck.split() if f.startswith("--start-period="))
    assert period.endswith("s")
    statefulset = yaml.safe_load((KUBERNETES / "base" / "statefulset.yaml").read_text("utf-8"))
    probe = statefulset["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    allowance = probe["periodSeconds"] * probe["failureThreshold"]
    assert int(period.split("=")[1][:-1]) == allowance == 300

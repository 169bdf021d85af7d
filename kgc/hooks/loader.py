"""Hook definition files (TOML or JSON) and their content-addressed condition refs.

::

    name = "point-has-equipment"
    phase = "pre"                 # or "post", which needs an [effect] (below)
    priority = 10                 # higher runs first
    timeout_ms = 2000
    message = "A point must belong to some equipment"
    [channel]                     # optional: which graphs, which state (docs/hooks.md)
    graphs = ["urn:example:site-a"]   # default: every graph; "default" = the default graph
    view = "after"                # after (proposed state) | before | delta
    [when]
    kind = "sparql-ask"           # sparql-ask | sparql-select | shacl | count | threshold
                                  # | delta | window | all | any | not | at-least-k
    scope = "delta"               # shacl only: delta | graph
    [when.ref]
    uri = "file:point-has-equipment.rq"
    sha256 = "..."                # of the file's bytes, hex
    media_type = "application/sparql-query"

Each kind's fields are listed in ``kgc.hooks.when`` and documented in ``docs/conditions.md``.
A post-commit hook file names its effect code, run in the sandbox (``docs/effects.md``)::

    [effect]
    entry = "run"                 # the function to call (default "run")
    timeout_ms = 1000             # optional; at most the sandbox's own limit
    [effect.ref]
    uri = "file:notify.py"
    sha256 = "..."
    media_type = "text/x-python"
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kgc.effects.code import PYTHON_MEDIA_TYPE, SandboxedEffect
from kgc.errors import ConditionHashMismatch, HookDefinitionError
from kgc.hooks.model import Channel, Hook
from kgc.hooks.refs import ConditionRef
from kgc.hooks.when import RefModel, WhenModel, build

HOOK_SUFFIXES = (".hook.toml", ".hook.json")


class _ChannelModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graphs: list[str] = []
    view: Literal["before", "after", "delta"] = "after"


class _EffectModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: RefModel
    entry: str = Field(default="run", min_length=1)
    timeout_ms: float | None = Field(default=None, gt=0)


class _HookModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    phase: Literal["pre", "post"] = "pre"
    priority: int = 0
    timeout_ms: float = Field(default=2000.0, gt=0)
    message: str = ""
    description: str = ""
    when: WhenModel
    channel: _ChannelModel | None = None
    effect: _EffectModel | None = None


def load_hook_file(path: str | Path) -> Hook:
    """Load one hook file, checking every condition file's SHA-256."""
    file = Path(path)
    raw = _read(file)
    try:
        model = _HookModel.model_validate(raw)
    except ValidationError as exc:
        raise HookDefinitionError(f"{file}: {_first_error(exc)}") from exc
    try:
        return _hook(model, file)
    except HookDefinitionError as exc:
        if str(exc).startswith(str(file)):
            raise
        raise HookDefinitionError(f"{file}: {exc}") from None


def _hook(model: _HookModel, file: Path) -> Hook:
    return Hook(
        name=model.name,
        when=build(model.when, file),
        phase=model.phase,
        priority=model.priority,
        timeout_ms=model.timeout_ms,
        message=model.message,
        description=model.description,
        channel=_channel(model.channel, file),
        effect=_effect(model.effect, file),
    )


def _effect(model: _EffectModel | None, file: Path) -> SandboxedEffect | None:
    if model is None:
        return None
    if model.ref.media_type != PYTHON_MEDIA_TYPE:
        raise HookDefinitionError(
            f"{file}: field 'effect.ref.media_type': expected {PYTHON_MEDIA_TYPE!r}, "
            f"got {model.ref.media_type!r}"
        )
    ref = ConditionRef(model.ref.uri, model.ref.sha256, model.ref.media_type)
    try:
        source = ref.load(file.parent)
    except ConditionHashMismatch as exc:  # the same check, about effect code, not a condition
        raise ConditionHashMismatch(str(exc).replace("condition file", "effect file")) from None
    try:
        return SandboxedEffect(source, model.entry, ref.uri, model.timeout_ms)
    except HookDefinitionError as exc:
        raise HookDefinitionError(f"{file}: {exc}") from None


def _channel(model: _ChannelModel | None, file: Path) -> Channel:
    if model is None:
        return Channel()
    try:
        return Channel(tuple(model.graphs), model.view)
    except HookDefinitionError as exc:
        raise HookDefinitionError(f"{file}: {exc}") from None


def hook_files(directory: str | Path) -> list[Path]:
    folder = Path(directory)
    if not folder.is_dir():
        raise HookDefinitionError(f"{folder}: not a directory of hook files")
    return sorted(p for p in folder.iterdir() if p.name.endswith(HOOK_SUFFIXES))


def _read(file: Path) -> dict[str, Any]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise HookDefinitionError(f"{file}: cannot read hook file: {exc.strerror}") from exc
    try:
        if file.name.endswith(".json"):
            loaded = json.loads(data)
        else:
            loaded = tomllib.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HookDefinitionError(f"{file}: not valid {file.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise HookDefinitionError(f"{file}: a hook file must hold one object")
    return loaded


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "<root>"
    return f"field '{where}': {err['msg']}"

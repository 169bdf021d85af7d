"""``SandboxedEffect``: untrusted effect source code, content-addressed.

A post-commit hook does its work in one of two ways, and receipts say which:

- ``run=callable``: a **trusted** Python callable the host registered. It runs in the kgc process
  with every privilege the process has (``trust="trusted"``).
- ``effect=SandboxedEffect(...)``: **untrusted** source code, usually from a policy pack. It runs
  in a confined single-use worker (``trust="sandboxed"``) and can only *propose* a change, which
  becomes a transaction of its own, governed like any other.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from kgc.errors import HookDefinitionError

PYTHON_MEDIA_TYPE = "text/x-python"
# Effect source is compiled in the kgc process (to check it, and once more to send the worker a
# code object): a bound on its size bounds that work (3 MiB of list literal took 1.3 GiB).
MAX_SOURCE_BYTES = 256 * 1024


@dataclass(frozen=True)
class SandboxedEffect:
    """Effect source code: ``entry(event)`` returns ``None`` or a proposal (docs/effects.md).

    ``timeout_ms`` lowers the sandbox's wall-time limit for this effect (never raises it).
    """

    source: str
    entry: str = "run"
    name: str = ""
    timeout_ms: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise HookDefinitionError("effect: 'source' must be non-empty Python source text")
        size = len(self.source.encode("utf-8", "surrogatepass"))
        if size > MAX_SOURCE_BYTES:
            raise HookDefinitionError(
                f"effect {self.name or '<source>'}: {size} bytes of source; the limit is "
                f"{MAX_SOURCE_BYTES}"
            )
        if not self.entry.isidentifier():
            raise HookDefinitionError(f"effect: 'entry' must be a name, got {self.entry!r}")
        if self.timeout_ms is not None and not self.timeout_ms > 0:
            raise HookDefinitionError(f"effect: 'timeout_ms' must be positive: {self.timeout_ms}")
        try:
            code = compile(self.source, self.name or "<effect>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise HookDefinitionError(
                f"effect {self.name or '<source>'}: not valid Python at line {exc.lineno}: "
                f"{exc.msg}"
            ) from None
        except (RecursionError, MemoryError, ValueError) as exc:  # nesting too deep, NUL bytes
            raise HookDefinitionError(
                f"effect {self.name or '<source>'}: cannot be compiled: {type(exc).__name__}: "
                f"{str(exc)[:200]}"
            ) from None

        if self.entry not in code.co_names:  # a module-level def stores its name
            raise HookDefinitionError(
                f"effect {self.name or '<source>'}: defines no {self.entry!r} to call"
            )

    @classmethod
    def from_file(cls, path: str | Path, *, entry: str = "run") -> SandboxedEffect:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HookDefinitionError(f"effect file {file}: cannot read it: {exc}") from exc
        return cls(text, entry=entry, name=file.name)

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the source's UTF-8 bytes: the same digest its hook file's ref carries."""
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

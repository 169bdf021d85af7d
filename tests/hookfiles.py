"""Hook files the server and operations tests install: written out, content-addressed."""

from __future__ import annotations

import hashlib
from pathlib import Path


def write_veto_hook(folder: Path, bad: str) -> Path:
    """A SPARQL-ASK hook in ``folder`` that vetoes any state with the object ``bad`` (an IRI in
    angle brackets); returns ``folder``, for ``KGC_HOOKS_PATH``."""
    query = f"ASK {{ ?s ?p {bad} }}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "no-bad.rq").write_text(query, encoding="utf-8")
    digest = hashlib.sha256(query.encode()).hexdigest()
    (folder / "no-bad.hook.toml").write_text(
        'name = "no-bad"\nmessage = "refused by no-bad"\n[when]\nkind = "sparql-ask"\n'
        f'ref = {{ uri = "file:no-bad.rq", sha256 = "{digest}", '
        'media_type = "application/sparql-query" }\n',
        encoding="utf-8",
    )
    return folder

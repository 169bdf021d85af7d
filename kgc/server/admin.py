"""Hooks, policy packs and lockchain verification, over HTTP.

- ``GET /hooks`` and ``GET /hooks/{name}`` (read), ``DELETE /hooks/{name}`` (admin). Hooks are
  added by policy packs or ``hooks_path``; there is no upload of hook files over HTTP.
- ``GET /policy`` (read): active packs, installed packs, history depth.
- ``POST /policy/activate`` ``{"packs": ["name" | "name@version", ...]}``,
  ``POST /policy/deactivate`` ``{"packs": ["name", ...]}``, ``POST /policy/rollback`` (admin).
  Only packs already installed can be named: never a path on the server.
- ``POST /lockchain/verify`` (admin): the full check of the configured lockchain; 404 without one.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kgc.hooks.manager import PackRef
from kgc.hooks.model import Hook
from kgc.server.errors import HTTPError
from kgc.server.state import AppState, decode, parse_json, read_body

_PACK_SPEC = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[0-9A-Za-z.+-]{1,64})?")
_MAX_ADMIN_BODY = 64 * 1024


async def list_hooks(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    return JSONResponse({"hooks": [hook_summary(h) for h in state.engine.hooks.list()]})


async def get_hook(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    return JSONResponse(hook_summary(state.engine.hooks.get(request.path_params["name"])))


async def delete_hook(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "admin")
    hook = state.engine.hooks.remove(request.path_params["name"])
    return JSONResponse({"removed": hook_summary(hook)})


async def get_policy(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "read")
    registry = state.engine.policy
    return JSONResponse(
        {
            "active": [_ref(p.ref) for p in registry.active()],
            "installed": [_ref(r) for r in registry.installed()],
            "history": len(registry.history),
        }
    )


async def activate(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "admin")
    specs = [_installed_spec(state, spec) for spec in await _packs(request, state)]
    active = await run_in_threadpool(state.engine.policy.activate, *specs)
    return JSONResponse({"active": [_ref(r) for r in active]})


async def deactivate(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "admin")
    names = await _packs(request, state)
    active = await run_in_threadpool(state.engine.policy.deactivate, *names)
    return JSONResponse({"active": [_ref(r) for r in active]})


async def rollback(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "admin")
    active = await run_in_threadpool(state.engine.policy.rollback)
    return JSONResponse({"active": [_ref(r) for r in active]})


async def verify_lockchain(request: Request) -> Response:
    state: AppState = request.app.state.kgc
    state.authorize(request, "admin")
    directory = state.engine.settings.lockchain_path
    if directory is None:
        raise HTTPError(404, "no lockchain is configured (lockchain_path is unset)")
    from kgc.lockchain import Lockchain

    report = await run_in_threadpool(Lockchain(directory).verify)
    first = report.first
    return JSONResponse(
        {
            "ok": report.ok,
            "receipts": report.receipts,
            "signatures": report.signatures,
            "anchored_seq": report.anchored_seq,
            "journal_seq": report.journal_seq,
            "problems": len(report.problems),
            "first_problem": None
            if first is None
            else f"{first.seq} [{first.kind}]: {first.message}",
            "summary": report.summary(),
        }
    )


def hook_summary(hook: Hook) -> dict[str, Any]:
    return {
        "name": hook.name,
        "phase": hook.phase,
        "priority": hook.priority,
        "timeout_ms": hook.timeout_ms,
        "message": hook.message,
        "description": hook.description,
        "condition": getattr(hook.when, "kind", type(hook.when).__name__),
    }


def _ref(ref: PackRef) -> dict[str, str]:
    return {"name": ref.name, "version": ref.version, "digest": ref.digest}


async def _packs(request: Request, state: AppState) -> list[str]:
    """The ``packs`` list of a JSON body, each a ``name`` or ``name@version``."""
    limit = min(_MAX_ADMIN_BODY, state.settings.max_body_bytes)
    name = "the admin routes' limit" if limit == _MAX_ADMIN_BODY else "max_body_bytes"
    text = decode(await read_body(request, limit, name))
    data = parse_json(text)
    packs = data.get("packs") if isinstance(data, dict) else None
    if not isinstance(packs, list) or not packs or not all(isinstance(p, str) for p in packs):
        raise HTTPError(400, 'expected {"packs": ["name" or "name@version", ...]} (non-empty)')
    for spec in packs:
        if not _PACK_SPEC.fullmatch(spec):
            raise HTTPError(400, f"not a pack name or name@version: {spec[:80]!r}")
    return packs


def _installed_spec(state: AppState, spec: str) -> str:
    name, _, version = spec.partition("@")
    refs = [
        r
        for r in state.engine.policy.installed()
        if r.name == name and (not version or r.version == version)
    ]
    if not refs:
        raise HTTPError(404, f"no installed pack {spec!r}")
    return f"{refs[-1].name}@{refs[-1].version}"

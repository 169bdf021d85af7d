"""The worker process behind ``kgc.rdf.canon``: RDFC-1.0 where it can be stopped.

pyoxigraph's canonicalization cannot be interrupted in process, and some inputs (the W3C poison
clique, rdf-canon test074) never finish, so kgc runs it here, in a child process the parent kills
when the budget runs out. This module imports nothing from kgc (only the standard library and
pyoxigraph), so the parent runs it by path as a script under ``python -I`` and it is ready in
30-60 ms. (``python -m kgc.rdf.canon_worker`` also works, but first imports all of kgc.)

Protocol, over stdin and stdout, one request at a time:

- on start the worker writes ``ready\\n``;
- a request is ``HASH CPU_SECONDS MEMORY_BYTES SIZE\\n`` followed by SIZE bytes of N-Quads in
  UTF-8; HASH is ``SHA-256`` or ``SHA-384``;
- the reply is ``KIND SIZE\\n`` followed by SIZE bytes: KIND ``ok`` carries the canonical N-Quads,
  ``memory`` and ``error`` carry a message;
- end of input ends the worker.

Before each request the worker lowers its own soft limits: CPU time to what it has used so far
plus CPU_SECONDS (past it the kernel sends SIGXCPU, which ends the process), and address space to
MEMORY_BYTES. The parent's wall clock is the budget; these limits are the backstop for when the
parent cannot kill the worker. They are soft limits under an unchanged hard limit, so the next
request may raise them again: they bound runaway work, they are not a sandbox.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterable
from typing import BinaryIO

import pyoxigraph as ox

ALGORITHMS = {
    "SHA-256": ox.CanonicalizationAlgorithm.RDFC_1_0,
    "SHA-384": ox.CanonicalizationAlgorithm.RDFC_1_0_SHA_384,
}


def nquads_line(quad: ox.Quad) -> str:
    """The canonical N-Quads line of ``quad`` (pyoxigraph writes terms in canonical form)."""
    if isinstance(quad.graph_name, ox.DefaultGraph):
        return f"{quad.subject} {quad.predicate} {quad.object} .\n"
    return f"{quad.subject} {quad.predicate} {quad.object} {quad.graph_name} .\n"


def sorted_nquads(quads: Iterable[ox.Quad]) -> str:
    """Canonical N-Quads of a set of quads: one line each, no duplicates, in code point order."""
    return "".join(sorted({nquads_line(q) for q in quads}))


def canonicalize(text: bytes, hash_algorithm: str) -> str:
    """RDFC-1.0 over N-Quads ``text``, serialized as canonical N-Quads."""
    dataset = ox.Dataset(ox.parse(text, format=ox.RdfFormat.N_QUADS))
    dataset.canonicalize(ALGORITHMS[hash_algorithm])
    return sorted_nquads(dataset)


def _limit(cpu_seconds: int, memory_bytes: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_CPU, (_capped(used + cpu_seconds, cpu_hard), cpu_hard))
    resource.setrlimit(resource.RLIMIT_AS, (_capped(memory_bytes, as_hard), as_hard))


def _capped(soft: int, hard: int) -> int:
    return soft if hard == resource.RLIM_INFINITY else min(soft, hard)


def _serve(request: bytes, body: bytes) -> tuple[bytes, bytes]:
    hash_algorithm, cpu, memory, _ = request.decode("ascii").split()
    if hash_algorithm not in ALGORITHMS:
        return b"error", f"unknown hash algorithm {hash_algorithm!r}".encode()
    _limit(int(cpu), int(memory))
    try:
        return b"ok", canonicalize(body, hash_algorithm).encode("utf-8")
    except MemoryError:
        return b"memory", f"out of memory under an address-space limit of {memory} bytes".encode()
    except Exception as exc:
        return b"error", f"{type(exc).__name__}: {exc}".encode("utf-8", "backslashreplace")


def _read_request(stdin: BinaryIO) -> tuple[bytes, bytes] | None:
    header = stdin.readline()
    if not header:
        return None
    size = int(header.split()[-1])
    body = stdin.read(size)
    if len(body) != size:
        return None
    return header, body


def main() -> int:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # being stopped must not leave core files
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies may reach the parent's pipe
    stdout.write(b"ready\n")
    stdout.flush()
    while (request := _read_request(stdin)) is not None:
        kind, payload = _serve(*request)
        stdout.write(kind + b" %d\n" % len(payload) + payload)
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The canonical hash: RDFC-1.0 (W3C RDF Dataset Canonicalization) under a work limit.

``canonical_nquads(quads)`` is the dataset in canonical N-Quads: blank nodes relabelled
``_:c14n0``, ``_:c14n1``... by RDFC-1.0, one line per quad, each ending ``\\n``, sorted in code
point order, no duplicates (an empty dataset is the empty string). ``canonical_hash`` is SHA-256
over those bytes, and names its algorithms: RDFC-1.0 with SHA-256 inside, SHA-256 outside.

The work limit. RDFC-1.0 is exponential in the worst case (the W3C poison test, rdf-canon test074,
a 10-node blank-node clique, never finishes in pyoxigraph 0.5.13) and pyoxigraph cannot be
interrupted in process. So:

1. a dataset without blank nodes needs no canonicalization: its canonical form is its sorted
   lines, computed here, in process;
2. a cheap pre-check refuses at once a dataset whose blank-node structure certainly needs more
   than the budget (``_permutation_floor``);
3. everything else runs in a worker process (``canon_pool``) that is killed, and reaped, when the
   wall-clock budget runs out; a CPU-time and an address-space limit set inside the worker are the
   backstop. Either way the caller gets ``CanonicalizationBudgetExceeded``.

The budget counts from the call: pre-check, starting a worker when none is idle (~35 ms), sending
the quads, canonicalizing, and reading the answer back.
"""

from __future__ import annotations

import hashlib
import math
import signal
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import pyoxigraph as ox

from kgc.errors import CanonicalizationBudgetExceeded, CanonicalizationError, InputError
from kgc.rdf.canon_pool import POOL, WorkerDied, WorkerTimeout
from kgc.rdf.canon_worker import ALGORITHMS, nquads_line, sorted_nquads
from kgc.rdf.terms import RESERVED_GRAPH_PREFIX
from kgc.store.base import Store

ALGORITHM = "RDFC-1.0"
HASH_ALGORITHM = "SHA-256"
DEFAULT_BUDGET_S = 10.0
DEFAULT_MEMORY_LIMIT = 4 * 2**30
# The least time one permutation in Hash N-Degree Quads could take: pyoxigraph 0.5.13 spends
# 6-16 us per permutation on this machine across the shapes measured (stars and cliques of
# 2 to 9 interchangeable blank nodes); 0.5 us leaves a twelvefold margin for faster machines.
PERMUTATION_FLOOR_S = 0.5e-6
_FACTORIAL_CAP = 21  # 21! permutations already exceed any budget at the floor above

HashAlgorithm = Literal["SHA-256", "SHA-384"]
QuadSource = Iterable[ox.Quad] | Store | ox.Store


@dataclass(frozen=True)
class CanonicalHash:
    """SHA-256 of a dataset's canonical N-Quads, with the algorithms that produced it."""

    hexdigest: str
    quads: int
    elapsed_ms: float
    algorithm: str = ALGORITHM
    hash_algorithm: str = HASH_ALGORITHM
    digest_algorithm: str = "SHA-256"


@dataclass(frozen=True)
class _Dataset:
    """Distinct quads and their blank nodes; ``opaque`` when a triple term may hide more."""

    quads: list[ox.Quad]
    blank_nodes: dict[ox.BlankNode, list[ox.Quad]]
    opaque: bool

    def size(self) -> str:
        return f"{len(self.quads)} quads with {len(self.blank_nodes)} blank nodes"


def canonical_nquads(
    quads: Iterable[ox.Quad],
    *,
    budget: float = DEFAULT_BUDGET_S,
    hash_algorithm: HashAlgorithm = "SHA-256",
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
) -> str:
    """The RDFC-1.0 canonical N-Quads of ``quads``, computed within ``budget`` seconds.

    ``hash_algorithm`` is the hash RDFC-1.0 uses inside (the standard's default is SHA-256).
    ``memory_limit`` bounds the worker's address space, in bytes. Raises
    ``CanonicalizationBudgetExceeded`` when the work needs more time or memory than that.
    """
    deadline = time.monotonic() + _checked_budget(budget)
    _check_options(hash_algorithm, memory_limit)
    dataset = _dataset(quads)
    if not dataset.blank_nodes and not dataset.opaque:
        return sorted_nquads(dataset.quads)

    floor, group = _permutation_floor(dataset, hash_algorithm)
    if floor * PERMUTATION_FLOOR_S > budget:
        reason = (
            f"refused before starting: it must try at least {floor:,} orderings of "
            f"interchangeable blank nodes (largest group: {group}), more than {budget:g} s "
            f"allows at {PERMUTATION_FLOOR_S * 1e6:g} us each; a blank-node clique such as "
            f"W3C rdf-canon test074 does this"
        )
        raise _exceeded(dataset, "pre-check", budget, reason)
    return _in_worker(dataset, hash_algorithm, budget, memory_limit, deadline)


def canonical_hash(source: QuadSource, *, budget: float = DEFAULT_BUDGET_S) -> CanonicalHash:
    """SHA-256 over the RDFC-1.0 canonical N-Quads of ``source``, within ``budget`` seconds.

    ``source`` is quads (taken as given) or a store, whose reserved ``urn:kgc:`` graphs are left
    out as the state digest leaves them out. Read a live store through ``KnowledgeEngine``'s
    ``canonical_hash``, which takes a snapshot under the transaction lock.
    """
    t = time.perf_counter()
    quads = user_quads(source) if isinstance(source, Store | ox.Store) else source
    text = canonical_nquads(quads, budget=budget)
    return CanonicalHash(
        hexdigest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        quads=text.count("\n"),
        elapsed_ms=round((time.perf_counter() - t) * 1000.0, 4),
    )


def user_quads(store: Iterable[ox.Quad]) -> list[ox.Quad]:
    """The quads of ``store`` outside kgc's reserved graphs."""
    return [q for q in store if not _reserved(q.graph_name)]


def close_workers() -> None:
    """End the idle worker processes now (they also end at interpreter exit)."""
    POOL.close()


def _reserved(graph: ox.NamedNode | ox.BlankNode | ox.DefaultGraph) -> bool:
    return isinstance(graph, ox.NamedNode) and graph.value.startswith(RESERVED_GRAPH_PREFIX)


def _checked_budget(budget: float) -> float:
    if isinstance(budget, bool) or not isinstance(budget, int | float):
        raise InputError(f"budget must be a number of seconds, got {type(budget).__name__}")
    if not 0 < budget < math.inf:
        raise InputError(f"budget must be a positive, finite number of seconds, got {budget}")
    return float(budget)


def _check_options(hash_algorithm: str, memory_limit: int) -> None:
    if hash_algorithm not in ALGORITHMS:
        known = ", ".join(ALGORITHMS)
        raise InputError(f"hash_algorithm must be one of {known}, got {hash_algorithm!r}")
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or memory_limit <= 0:
        raise InputError(f"memory_limit must be a positive number of bytes, got {memory_limit!r}")


def _dataset(quads: Iterable[ox.Quad]) -> _Dataset:
    distinct: dict[ox.Quad, None] = {}
    for i, quad in enumerate(quads):
        if not isinstance(quad, ox.Quad):
            raise InputError(f"item {i} is a {type(quad).__name__}, not a pyoxigraph Quad")
        distinct[quad] = None
    blank_nodes: dict[ox.BlankNode, list[ox.Quad]] = defaultdict(list)
    opaque = False
    for quad in distinct:
        opaque = opaque or isinstance(quad.object, ox.Triple)
        for node in _blank_terms(quad):
            blank_nodes[node].append(quad)
    return _Dataset(list(distinct), dict(blank_nodes), opaque)


def _blank_terms(quad: ox.Quad) -> set[ox.BlankNode]:
    terms = (quad.subject, quad.object, quad.graph_name)
    return {t for t in terms if isinstance(t, ox.BlankNode)}


# The pre-check -----------------------------------------------------------------------------------


def _permutation_floor(dataset: _Dataset, hash_algorithm: str) -> tuple[int, int]:
    """A lower bound on the permutations RDFC-1.0 enumerates, and the largest group permuted.

    RDFC-1.0 (step 5) takes the groups of blank nodes that share a first-degree hash in hash
    order. For each node n of the first group, Hash N-Degree Quads (step 5) enumerates every
    permutation of each set of n's neighbours that share a related hash, and no pruning skips
    the enumeration itself. When the first group is reached only the blank nodes with a unique
    first-degree hash have canonical identifiers, so related hashes are fixed by position,
    predicate and the neighbour's first-degree hash (or its identity, if unique). The sum over
    n of the factorials of those set sizes is therefore work the algorithm must do. Later
    groups are left out: identifiers issued by then may split their sets.
    """
    if dataset.opaque:
        return 0, 0  # triple terms change the hashes; no claim is made
    signatures = {
        node: _first_degree_input(node, quads) for node, quads in dataset.blank_nodes.items()
    }
    shared: dict[str, list[ox.BlankNode]] = defaultdict(list)
    for node, signature in signatures.items():
        shared[signature].append(node)
    groups = [nodes for nodes in shared.values() if len(nodes) > 1]
    if not groups:
        return 0, 0

    first = min(groups, key=lambda nodes: _hash(signatures[nodes[0]], hash_algorithm))
    related = [_related_sets(n, dataset, signatures, shared) for n in first]
    sizes = [len(s) for sets in related for s in sets if len(s) > 1]
    floor = sum(math.factorial(min(size, _FACTORIAL_CAP)) for size in sizes)
    return floor, max(sizes, default=0)


def _first_degree_input(node: ox.BlankNode, quads: Sequence[ox.Quad]) -> str:
    """What Hash First Degree Quads hashes: the node's quads, itself ``_:a``, others ``_:z``."""

    def term(t: object) -> str:
        if isinstance(t, ox.BlankNode):
            return "_:a" if t == node else "_:z"
        return str(t)

    lines = []
    for q in quads:
        graph = "" if isinstance(q.graph_name, ox.DefaultGraph) else f" {term(q.graph_name)}"
        lines.append(f"{term(q.subject)} {q.predicate} {term(q.object)}{graph} .\n")
    return "".join(sorted(lines))


def _related_sets(
    node: ox.BlankNode,
    dataset: _Dataset,
    signatures: dict[ox.BlankNode, str],
    shared: dict[str, list[ox.BlankNode]],
) -> list[set[ox.BlankNode]]:
    sets: dict[tuple[str, str, object], set[ox.BlankNode]] = defaultdict(set)
    for quad in dataset.blank_nodes[node]:
        for position, other in (("s", quad.subject), ("o", quad.object), ("g", quad.graph_name)):
            if not isinstance(other, ox.BlankNode) or other == node:
                continue
            signature = signatures[other]
            identity: object = signature if len(shared[signature]) > 1 else other
            predicate = "" if position == "g" else quad.predicate.value
            sets[position, predicate, identity].add(other)
    return list(sets.values())


def _hash(text: str, hash_algorithm: str) -> str:
    name = "sha384" if hash_algorithm == "SHA-384" else "sha256"
    return hashlib.new(name, text.encode("utf-8")).hexdigest()


# The worker --------------------------------------------------------------------------------------


def _in_worker(
    dataset: _Dataset, hash_algorithm: str, budget: float, memory_limit: int, deadline: float
) -> str:
    body = "".join(nquads_line(q) for q in dataset.quads).encode("utf-8")
    header = f"{hash_algorithm} {math.ceil(budget) + 1} {memory_limit} {len(body)}\n"
    try:
        worker = POOL.take(deadline)
        kind, payload = worker.request(header, body, deadline)
    except WorkerTimeout:
        reason = f"exceeded its wall-clock budget of {budget:g} s; the worker process was killed"
        raise _exceeded(dataset, "wall clock", budget, reason) from None
    except WorkerDied as exc:
        raise _worker_failure(dataset, budget, memory_limit, exc) from exc
    except OSError as exc:  # from starting the process; a running worker's are WorkerDied
        raise CanonicalizationError(
            f"RDFC-1.0 canonicalization of {dataset.size()} could not start a worker process: {exc}"
        ) from exc

    message = payload.decode("utf-8")
    if kind == "ok":
        POOL.give_back(worker)
        return message
    worker.kill()
    if kind == "memory":
        raise _exceeded(dataset, "memory", budget, _out_of_memory(memory_limit, message))
    raise CanonicalizationError(f"RDFC-1.0 canonicalization of {dataset.size()} failed: {message}")


def _worker_failure(
    dataset: _Dataset, budget: float, memory_limit: int, exc: WorkerDied
) -> CanonicalizationError:
    if exc.signal_number == signal.SIGXCPU:
        reason = f"used more CPU time than its budget of {budget:g} s allows; it was stopped"
        return _exceeded(dataset, "CPU time", budget, reason)
    if "memory allocation" in exc.stderr:  # how Rust reports a failed allocation, then aborts
        return _exceeded(dataset, "memory", budget, _out_of_memory(memory_limit, str(exc)))
    detail = f" ({exc.stderr.splitlines()[-1]})" if exc.stderr else ""
    return CanonicalizationError(
        f"RDFC-1.0 canonicalization of {dataset.size()} failed in its worker process: {exc}{detail}"
    )


def _out_of_memory(memory_limit: int, detail: str) -> str:
    return (
        f"ran out of memory under an address-space limit of {memory_limit / 2**20:g} MiB ({detail})"
    )


def _exceeded(
    dataset: _Dataset, limit: str, budget: float, reason: str
) -> CanonicalizationBudgetExceeded:
    return CanonicalizationBudgetExceeded(
        f"RDFC-1.0 canonicalization of {dataset.size()} {reason}",
        limit=limit,
        budget_s=budget,
        quads=len(dataset.quads),
        blank_nodes=len(dataset.blank_nodes),
    )

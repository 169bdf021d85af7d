"""``verify_lockchain``: check a lockchain directory from its files alone.

Steps (``docs/lockchain.md`` gives the same algorithm for independent verifiers):

1. index the journal's receipt lines; each receipt once, in order, none skipped;
2. walk ``refs/kgc/lockchain`` by first parents to the first batch commit;
3. check each batch commit on its own (``verify_git``): every object read raw and re-hashed, the
   tree's shape, ``batch.json`` and ``keys.json``, every receipt (hash, delta digest, signature,
   links inside the batch), its leaves and batch root, and its agreement with the journal's copy;
   large chains are split over worker processes;
4. stitch the batches: numbering, receipts contiguous from 1, links between batches, keys never
   dropped or changed, each tree head's size, root (recomputed over all leaves so far, which also
   makes successive tree heads consistent) and signature;
5. compare with the witness ``anchors.jsonl``: the ref was not moved back or to another history;
6. every anchored receipt is in the journal; the journal's unanchored tail is checked like the
   rest (it is lag, not a fault);
7. with ``replay``, rebuild the graph from the deltas (``kgc.lockchain.replay``) and compare state
   digests with every receipt and, if given, with a live store.

The caller must still decide which public keys to trust: pass ``trusted_keys`` to refuse a
lockchain signed with any other key (an attacker who can write every file can re-sign it all).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pygit2
import pyoxigraph as ox

from kgc.lockchain.fastjson import parse
from kgc.lockchain.gitobjects import ObjectFault, RawObjects, commit_links, read_path
from kgc.lockchain.journal import JOURNAL_FILE
from kgc.lockchain.layout import (
    BATCH_FILE,
    RECEIPTS_DIR,
    REF,
    open_repo,
    receipt_name,
    ref_target,
)
from kgc.lockchain.records import public_key_id
from kgc.lockchain.replay import replay as replay_deltas
from kgc.lockchain.replay import user_lines
from kgc.lockchain.report import Problem, VerifyReport
from kgc.lockchain.stitch import Stitched, check_witness, stitch
from kgc.lockchain.verify_git import BatchResult, check_batch, check_chunk
from kgc.lockchain.verify_journal import JournalScan, check_tail, scan_journal
from kgc.rdf.digest import StateDigest

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
POOL_FROM = 4000
CHUNK_RECEIPTS = 1000
_Work = list[tuple[int, str, int]]


def verify_lockchain(
    directory: str | os.PathLike[str],
    *,
    replay: bool = False,
    store: Iterable[ox.Quad] | None = None,
    progress: Progress | None = None,
    trusted_keys: Iterable[str] | None = None,
    workers: int | None = None,
) -> VerifyReport:
    """Verify the lockchain in ``directory``; the report names the first bad receipt, if any.

    ``progress(phase, done, total)`` is called as batches and replayed receipts are done.
    ``workers``: processes for step 3 (default: 2 from ``POOL_FROM`` receipts on, else 1).
    ``store``: a live graph whose state digest must equal the replay's (implies ``replay``).
    """
    started = time.perf_counter()
    path = Path(directory)
    report = VerifyReport(str(path))
    trusted = None if trusted_keys is None else {public_key_id(k): k for k in trusted_keys}

    # 1.
    journal_path = path / JOURNAL_FILE
    scan = scan_journal(journal_path)
    report.problems += scan.problems
    report.torn_tail, report.journal_seq = scan.torn_tail, scan.last_seq
    if scan.torn_tail:
        report.notes.append(
            "the journal ends in an incomplete record (a crash mid-append); "
            "recovery drops it and it was never acknowledged"
        )
    # 2-3.
    repo = open_repo(path, create=False)
    commits = _walk(repo, report.problems) if repo is not None else []
    results = _check_batches(repo, commits, scan, workers, progress) if repo else []
    # 4-5.
    chain = stitch(results, report.problems, trusted)
    check_witness(path, chain, report.problems, commits)
    report.batches, report.anchored_seq = len(results), chain.last_seq
    # 6.
    _check_journal(journal_path, scan, chain, trusted, report)
    _check_present(path, repo, scan, report)
    if trusted is not None:
        _check_all_signed(scan, report)
    # 7.
    if replay or store is not None:
        _replay(repo, results, scan, chain, store, report, progress)

    report.seconds = time.perf_counter() - started
    return report


def _walk(repo: pygit2.Repository, problems: list[Problem]) -> list[str]:
    """Batch commit ids from the first to the ref's target, following first parents."""
    objects = RawObjects(repo)
    commits: list[str] = []
    oid = ref_target(repo)
    while oid is not None:
        try:
            _, parents = commit_links(objects.read(oid, "commit"), oid)
        except ObjectFault as fault:
            problems.append(
                Problem(
                    1,
                    "git-object",
                    f"{fault}, in the history of {REF}: receipts before it cannot be verified",
                )
            )
            break
        commits.append(oid)
        oid = parents[0] if parents else None
    commits.reverse()
    return commits


def _plan(repo: pygit2.Repository, commits: Sequence[str]) -> list[tuple[int, int]]:
    """(expected first seq, declared last seq) per commit, read without checking."""
    objects = RawObjects(repo)
    plan, first = [], 1
    for commit in commits:
        last = first
        try:
            doc, _ = parse(read_path(objects, commit, BATCH_FILE))
            # The count of leaf hashes bounds the range: a damaged last_seq must not cost its size.
            last = first + max(1, len(doc["leaf_hashes"])) - 1
        except (ObjectFault, KeyError, ValueError, TypeError):
            pass
        plan.append((first, last))
        first = last + 1
    return plan


def _check_batches(
    repo: pygit2.Repository,
    commits: Sequence[str],
    scan: JournalScan,
    workers: int | None,
    progress: Progress | None,
) -> list[BatchResult]:
    plan = _plan(repo, commits)
    total = plan[-1][1] if plan else 0
    if workers is None:
        workers = 2 if total >= POOL_FROM and (os.cpu_count() or 1) >= 2 else 1
    chunks = list(_chunks(commits, plan, scan))
    results: list[BatchResult] = []
    for batch_results in _run(repo, chunks, workers):
        results += batch_results
        if progress is not None and batch_results:
            progress("checking", plan[batch_results[-1].position][1], total)
    return results


def _chunks(
    commits: Sequence[str], plan: Sequence[tuple[int, int]], scan: JournalScan
) -> Iterator[tuple[_Work, dict[int, bytes]]]:
    work: _Work = []
    lines: dict[int, bytes] = {}
    for position, (commit, (first, last)) in enumerate(zip(commits, plan, strict=True)):
        work.append((position, commit, first))
        lines.update((s, scan.lines[s]) for s in range(first, last + 1) if s in scan.lines)
        if len(lines) >= CHUNK_RECEIPTS or position == len(commits) - 1:
            yield work, lines
            work, lines = [], {}
    if work:
        yield work, lines


def _run(
    repo: pygit2.Repository, chunks: list[tuple[_Work, dict[int, bytes]]], workers: int
) -> Iterator[list[BatchResult]]:
    if workers <= 1 or len(chunks) <= 1:
        for work, lines in chunks:
            objects = RawObjects(repo)
            yield [check_batch(objects, pos, commit, first, lines) for pos, commit, first in work]
        return
    # fork is cheapest, but unsafe once other threads run (an anchorer, say): then forkserver.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    context = multiprocessing.get_context(method)
    git_path = repo.path
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(check_chunk, git_path, work, lines) for work, lines in chunks]
        for future in futures:
            yield future.result()


def _check_journal(
    journal_path: Path,
    scan: JournalScan,
    chain: Stitched,
    trusted: dict[str, str] | None,
    report: VerifyReport,
) -> None:
    if not journal_path.exists():
        report.notes.append(f"no journal at {journal_path}: git was checked alone")
    else:
        for seq in range(1, chain.last_seq + 1):
            if seq not in scan.lines:
                end = (
                    f", which ends at receipt {scan.last_seq} (truncated)"
                    if (scan.last_seq < seq)
                    else ""
                )
                report.problems.append(
                    Problem(
                        seq,
                        "journal",
                        f"receipt {seq} is anchored in git but missing from the journal{end}",
                    )
                )
                break
    keys = dict(chain.keys) if trusted is None else {**chain.keys, **trusted}
    tail = check_tail(scan, chain.last_seq, chain.head, keys, report.problems)
    report.receipts = chain.checked + len(tail)
    report.signatures = chain.signatures + sum(1 for t in tail if t.key_id is not None)
    if tail:
        report.notes.append(
            f"{len(tail)} journal receipt(s) after {chain.last_seq} are not "
            "anchored yet (lag); checked from the journal"
        )


def _check_present(
    path: Path, repo: pygit2.Repository | None, scan: JournalScan, report: VerifyReport
) -> None:
    """A directory with neither a journal nor a git anchor is not a lockchain, not an empty one."""
    if repo is None and not (path / JOURNAL_FILE).exists():
        report.problems.append(
            Problem(0, "shape", f"{path}: not a lockchain (no {JOURNAL_FILE} and no git anchor)")
        )


def _check_all_signed(scan: JournalScan, report: VerifyReport) -> None:
    """With pinned keys, an unsigned receipt is a fault: anyone can write one."""
    for seq in sorted(scan.lines):
        record = json.loads(scan.lines[seq])
        if not record.get("signature"):
            report.problems.append(
                Problem(
                    seq,
                    "signature",
                    f"receipt {seq} is unsigned, but trusted keys were given: every receipt must "
                    "be signed by one of them",
                )
            )
            return


def _replay(
    repo: pygit2.Repository | None,
    results: Sequence[BatchResult],
    scan: JournalScan,
    chain: Stitched,
    store: Iterable[ox.Quad] | None,
    report: VerifyReport,
    progress: Progress | None,
) -> None:
    last = max(chain.last_seq, scan.last_seq)
    tick = None if progress is None else (lambda done: progress("replaying", done, last))
    outcome = replay_deltas(_records(repo, results, scan, last), report.problems, tick)
    report.replayed, report.final_state = outcome.replayed, outcome.state
    if store is not None:
        live = StateDigest.of(user_lines(store)).hexdigest()
        if live != outcome.state:
            report.problems.append(
                Problem(
                    max(outcome.replayed, 1),
                    "replay",
                    f"the live "
                    f"store's state digest {live[:16]}... differs from the "
                    f"replayed {outcome.state[:16]}...",
                )
            )


def _records(
    repo: pygit2.Repository | None, results: Sequence[BatchResult], scan: JournalScan, last: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Receipt records in order, from the journal, or from git where the journal lacks one."""
    in_git = {r.seq: res.commit for res in results for r in res.receipts}
    for seq in range(1, last + 1):
        try:
            if seq in scan.lines:
                record, _ = parse(scan.lines[seq])
            elif repo is not None and seq in in_git:
                blob = read_path(RawObjects(repo), in_git[seq], RECEIPTS_DIR, receipt_name(seq))
                record, _ = parse(blob)
            else:
                return
            if not isinstance(record["receipt"], dict) or not isinstance(record["delta"], dict):
                return
        except (KeyError, TypeError, ValueError, ObjectFault):
            return
        yield seq, record

"""Entry signatures verified on all cores.

Only the Ed25519 checks go to worker processes: they are independent of each other and take most of the time. The
chain checks (seq, prev, keys, tenure, tree) stay in the caller, in order. Each deferred check carries the
finding's slot (its place in sequential order), so the merged findings are identical to a sequential run.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor

from ..crypto.logformat import SIGNATURE_SIZE, ParsedLeaf, verify_entry_signature

CHUNK = 1000
# Chunks queued per worker: enough to keep every core busy, few enough to keep memory bounded.
IN_FLIGHT_PER_JOB = 3

Check = tuple[int, int, str, bytes, bytes]  # slot, seq, signer label, public key, leaf
Failure = tuple[int, int, str]  # slot, seq, signer label


def verify_chunk(checks: list[Check]) -> list[Failure]:
    failures = []
    for slot, seq, label, public_key, leaf in checks:
        parsed = ParsedLeaf(leaf[:-SIGNATURE_SIZE], leaf[-SIGNATURE_SIZE:], {})
        if not verify_entry_signature(public_key, parsed):
            failures.append((slot, seq, label))
    return failures


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class SignaturePool:
    """Collects signature checks in chunks and verifies them in `jobs` processes (in this process when jobs == 1)."""

    def __init__(self, jobs: int):
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.failures: list[Failure] = []
        self._chunk: list[Check] = []
        self._pending: deque[Future] = deque()
        self._executor = None
        if jobs > 1:
            # fork where there is one: spawn and forkserver re-import the caller's __main__, which breaks scripts
            # and REPL sessions that call verify_source without an `if __name__ == "__main__"` guard. Workers
            # only run verify_chunk, so the copied database connections are never touched.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method))

    def add(self, slot: int, seq: int, label: str, public_key: bytes, leaf: bytes) -> None:
        self._chunk.append((slot, seq, label, public_key, leaf))
        if len(self._chunk) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        chunk, self._chunk = self._chunk, []
        if not chunk:
            return
        if self._executor is None:
            self.failures.extend(verify_chunk(chunk))
            return
        self._pending.append(self._executor.submit(verify_chunk, chunk))
        while len(self._pending) > self.jobs * IN_FLIGHT_PER_JOB:
            self.failures.extend(self._pending.popleft().result())

    def finish(self) -> list[Failure]:
        """Wait for every check; the failures, in no particular order."""
        self._flush()
        while self._pending:
            self.failures.extend(self._pending.popleft().result())
        self.close()
        return self.failures

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None


class EntryPool:
    """The per-entry work of full verification (entries.process_chunk: parse, hashes, local date, signature) in
    `jobs` worker processes, chunk by chunk; results come back in seq order for the caller to stitch the chain.

    Each chunk carries the keys to try signatures with: `known()` (the caller's key ring when the chunk is sent)
    plus the keys that configuration entries read so far name. Workers trust neither: they only say whether the
    signature verifies under the key they tried, and the caller decides which key is valid at that seq.
    """

    def __init__(self, jobs: int):
        if jobs < 2:
            raise ValueError(f"an entry pool needs at least 2 jobs, got {jobs}")
        self.jobs = jobs
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method))
        self._candidates: dict[str, bytes] = {}

    def results(self, batches, known):
        """(row, result) per row of `batches` (lists of (seq, leaf, state)), in order."""
        from .entries import key_candidates, process_chunk

        pending: deque = deque()
        chunk: list = []
        size = CHUNK
        for batch in batches:
            for row in batch:
                if b'"topic":"ledger/Ledger/' in row[1]:
                    for label, public in key_candidates(row[2]):
                        self._candidates.setdefault(label, public)
                chunk.append(row)
                if len(chunk) >= size:
                    keys = {**self._candidates, **known()}
                    pending.append((chunk, self._executor.submit(process_chunk, chunk, keys)))
                    chunk = []
                    while len(pending) > self.jobs * IN_FLIGHT_PER_JOB:
                        rows, future = pending.popleft()
                        yield from zip(rows, future.result())
        if chunk:
            keys = {**self._candidates, **known()}
            pending.append((chunk, self._executor.submit(process_chunk, chunk, keys)))
        while pending:
            rows, future = pending.popleft()
            yield from zip(rows, future.result())

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

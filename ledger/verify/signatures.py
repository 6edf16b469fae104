"""Entries checked on all cores.

Only the per-entry work goes to worker processes (parsing, hashes, the Ed25519 check): it is independent from entry
to entry and takes most of the time. The chain checks (seq, prev, keys, tenure, tree) stay in the caller, which
gets the results back in seq order, so the findings are those of a sequential run.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor

# Entries per chunk sent to a worker. Small enough that a short log still makes many chunks: with 1,000, a year's
# 4,712 entries made 5 chunks, 3 for one worker and 2 for the other, and the first worker started only when 1,000
# rows were read. 250 verifies a year ~8% faster and longer logs no slower (benchmarks/NOTES.md, section 2).
CHUNK = 250
# Chunks queued per worker: enough to keep every core busy, few enough to keep memory bounded.
IN_FLIGHT_PER_JOB = 3


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
        # fork where there is one: spawn and forkserver re-import the caller's __main__, which breaks scripts and
        # REPL sessions that call verify_source without an `if __name__ == "__main__"` guard. Workers only run
        # entries.process_chunk, so the copied database connections are never touched.
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

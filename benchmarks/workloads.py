"""One workload run per process: `python -m benchmarks.workloads NAME '{"village": 0, "years": 10, ...}'`.

The last stdout line is a JSON object: `seconds` (the timed part only, not interpreter start-up or set-up),
`events`, workload-specific figures, and `rss_mb`, this process's peak resident set (VmHWM) plus the largest child
process it waited for (a process pool's workers). Running each repetition in a fresh process keeps one workload's
memory, caches and page-cache warmth from leaking into the next one's peak.
"""

from __future__ import annotations

import inspect
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from . import books

WORKLOADS = {}


def workload(fn):
    WORKLOADS[fn.__name__] = fn
    return fn


def peak_rss_mb() -> float:
    own = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def scratch() -> Path:
    """A scratch directory on the same disk as the cached ledgers, so that copies and reads are comparable."""
    root = books.CACHE / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root))


def copy_to_disk(source: Path, target: Path) -> None:
    """Copy a set-up file and flush it: otherwise the timed part's first fsync of that file (a WAL checkpoint)
    would write the whole copy, ~0.1 s for a 50-year ledger, and the workload would seem to grow with history."""
    shutil.copy(source, target)
    with open(target, "rb+") as copied:
        os.fsync(copied.fileno())


def read_only_app(path: Path):
    from ledger.store.application import LedgerApplication

    return LedgerApplication(str(path))


# -- 1. projections --------------------------------------------------------------------------------------------


@workload
def trial_balance(village: int, years: int, jobs: int = 1) -> dict:
    """Trial balance at the last history day, from the log (postings streamed; a long log split among `jobs`
    processes)."""
    from ledger.reports import trial_balance_report

    b = books.book(village, years)
    app = read_only_app(b.ledger)
    started = time.perf_counter()
    tb = trial_balance_report(app, date.fromisoformat(b.end_date), jobs=jobs)
    seconds = time.perf_counter() - started
    if not tb.balanced:
        raise AssertionError("trial balance does not balance")
    return {"seconds": seconds, "events": b.events, "total_debit": str(tb.total_debit)}


@workload
def read_model(village: int, years: int, jobs: int = 1) -> dict:
    """Full rebuild of the tracked read models (ledger/projections/readmodel.py, disclosure tables included); a long
    log is projected by `jobs` processes.

    The first rebuild of a book is kept as the book's cached read model, which the monthly workload starts from.
    """
    from ledger.projections.readmodel import ReadModel, rebuild_read_model

    b = books.book(village, years)
    work = scratch()
    try:
        app = read_only_app(b.ledger)
        model = ReadModel(str(work / "readmodel.sqlite"))
        started = time.perf_counter()
        run = rebuild_read_model(app, model, jobs=jobs)
        seconds = time.perf_counter() - started
        model.close()
        cached = b.directory / "readmodel.sqlite"
        if not cached.exists():
            shutil.move(work / "readmodel.sqlite", cached)
        return {"seconds": seconds, "events": b.events, "projected": run.events}
    finally:
        shutil.rmtree(work)


# -- 2. verification -----------------------------------------------------------------------------------------------


def _verify_source_options() -> set[str]:
    from ledger.verify.chain import verify_source

    return set(inspect.signature(verify_source).parameters)


@workload
def verify_chain(village: int, years: int) -> dict:
    """Chain only: strict parse, seq, prev link and stored-state digest of every entry; no signatures."""
    b = books.book(village, years)
    options = _verify_source_options()
    for switch in ("chain_only", "signatures"):
        if switch in options:
            from ledger.verify.chain import verify_source

            started = time.perf_counter()
            result = verify_source(str(b.ledger), **({switch: True} if switch == "chain_only" else {switch: False}))
            seconds = time.perf_counter() - started
            if not result.intact:
                raise AssertionError(result.summary())
            return {"seconds": seconds, "events": result.entries, "how": f"verify_source({switch}=...)"}
    from ledger.crypto.logformat import GENESIS_PREV, leaf_hash, parse_leaf, state_hash
    from ledger.verify.sources import open_source

    source = open_source(str(b.ledger))
    started = time.perf_counter()
    prev, expected, bad = GENESIS_PREV, 0, 0
    for entry in source.entries():
        parsed = parse_leaf(entry.leaf)
        if entry.seq != expected or parsed.seq != expected or parsed.prev != prev:
            bad += 1
        if entry.state is None or state_hash(entry.state) != parsed.state_digest:
            bad += 1
        prev = leaf_hash(entry.leaf)
        expected += 1
    seconds = time.perf_counter() - started
    source.close()
    if bad or expected != b.events:
        raise AssertionError(f"chain check: {bad} bad of {expected} entries")
    return {"seconds": seconds, "events": expected, "how": "logformat building blocks (no chain-only switch)"}


@workload
def verify_full(village: int, years: int, jobs: int) -> dict:
    """verify_source with every Ed25519 signature, on `jobs` processes when the verifier offers it."""
    from ledger.verify.chain import verify_source

    b = books.book(village, years)
    kwargs = {"jobs": jobs} if "jobs" in _verify_source_options() else {}
    started = time.perf_counter()
    result = verify_source(str(b.ledger), **kwargs)
    seconds = time.perf_counter() - started
    if not result.intact:
        raise AssertionError(result.summary())
    return {"seconds": seconds, "events": result.entries, "jobs": kwargs.get("jobs", 1)}


@workload
def ed25519(village: int, years: int, count: int) -> dict:
    """The floor: pinned pyca/cryptography verifies of real entries (entry-sized messages), on one core."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ledger.crypto.logformat import SIGNATURE_SIZE, signed_message
    from ledger.verify.sources import open_source

    b = books.book(village, years)
    public = b.signer.private_key.public_key().public_bytes_raw()
    source = open_source(str(b.ledger))
    leaves = []
    for entry in source.entries(1):  # seq 0 is signed the same way; skipping it keeps every message the same kind
        leaves.append((signed_message(entry.leaf[:-SIGNATURE_SIZE]), entry.leaf[-SIGNATURE_SIZE:]))
        if len(leaves) == count:
            break
    source.close()
    started = time.perf_counter()
    for message, signature in leaves:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "events": len(leaves),
        "message_bytes": round(statistics.mean(len(m) for m, _ in leaves)),
    }


# -- 3. writing ------------------------------------------------------------------------------------------------------


@workload
def batched_import(village: int, years: int) -> dict:
    """import_journal of the history into a fresh ledger: signed log entries written per second."""
    from ledger.importer import import_journal

    b = books.book(village, years)
    work = scratch()
    try:
        app = books.new_ledger(village, work / "ledger.sqlite")
        before = app.recorder.log_size()
        started = time.perf_counter()
        result = import_journal(app, b.history)
        seconds = time.perf_counter() - started
        if not result.ok:
            raise AssertionError(str(result.problems[0]))
        written = app.recorder.log_size() - before
        app.close()
        return {"seconds": seconds, "events": written, "records": result.applied}
    finally:
        shutil.rmtree(work)


@workload
def posting_latency(village: int, years: int) -> dict:
    """app.execute of single records after the history: each voucher is one transaction; latency per voucher."""
    from ledger.domain import journal as j
    from ledger.demo_data import read_journal
    from ledger.store.application import LedgerApplication

    b = books.book(village, years)
    work = scratch()
    try:
        copy_to_disk(b.ledger, work / "ledger.sqlite")
        app = LedgerApplication(str(work / "ledger.sqlite"), signer=b.signer)
        latencies = []
        for record in read_journal(b.month):
            started = time.perf_counter()
            outcome = app.execute(record)
            elapsed = time.perf_counter() - started
            if outcome != "applied":
                raise AssertionError(f"{record.id}: {outcome}")
            if isinstance(record, j.Voucher):
                latencies.append(elapsed)
        app.close()
    finally:
        shutil.rmtree(work)
    latencies.sort()
    return {
        "seconds": sum(latencies),
        "events": len(latencies),
        "median_ms": round(1000 * statistics.median(latencies), 2),
        "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 2),
    }


# -- 4. monthly disclosure -------------------------------------------------------------------------------------------


def _disclosure_writer():
    """`write_disclosure(app, month, out_dir, signer)` wherever the disclosure work has put it, or None."""
    import importlib

    for module in ("ledger.projections.disclosure", "ledger.disclosure", "ledger.projections.readmodel"):
        try:
            found = getattr(importlib.import_module(module), "write_disclosure", None)
        except ImportError:
            continue
        if found is not None:
            return found
    return None


def _current_read_model(b: books.Book) -> Path:
    """The book's read model, rebuilt once and cached beside it (set-up, not timed)."""
    from ledger.projections.readmodel import ReadModel, rebuild_read_model

    cached = b.directory / "readmodel.sqlite"
    if not cached.is_file():
        building = b.directory / "readmodel.sqlite.building"
        building.unlink(missing_ok=True)
        model = ReadModel(str(building))
        rebuild_read_model(read_only_app(b.ledger), model)
        model.close()
        building.rename(cached)
    else:  # cached by an earlier version: opening it gives it this version's indexes, here rather than in a timed run
        ReadModel(str(cached)).close()
    return cached


@workload
def monthly(village: int, years: int) -> dict:
    """Append one month (its vouchers and its close), bring the read model up to date, produce the month's report."""
    from ledger.importer import import_journal
    from ledger.projections.readmodel import ReadModel, update_read_model
    from ledger.store.application import LedgerApplication

    b = books.book(village, years)
    read_model_file = _current_read_model(b)
    work = scratch()
    try:
        copy_to_disk(b.ledger, work / "ledger.sqlite")
        copy_to_disk(read_model_file, work / "readmodel.sqlite")
        app = LedgerApplication(str(work / "ledger.sqlite"), signer=b.signer)
        before = app.recorder.log_size()
        writer = _disclosure_writer()
        t0 = time.perf_counter()
        result = import_journal(app, b.month)
        t1 = time.perf_counter()
        if not result.ok:
            raise AssertionError(str(result.problems[0]))
        model = ReadModel(str(work / "readmodel.sqlite"))
        run = update_read_model(app, model)
        t2 = time.perf_counter()
        if writer is not None:
            writer(app, b.appended_period, work / "disclosure", b.signer, read_model=model)
            how = "write_disclosure"
        else:
            _month_trial_balance(app, b.appended_period)
            how = "period close + incremental read model + month trial balance from the closed period"
        t3 = time.perf_counter()
        appended = app.recorder.log_size() - before
        model.close()
        app.close()
    finally:
        shutil.rmtree(work)
    return {
        "seconds": t3 - t0,
        "events": appended,
        "append_s": round(t1 - t0, 4),
        "read_model_s": round(t2 - t1, 4),
        "report_s": round(t3 - t2, 4),
        "projected": run.events,
        "how": how,
    }


def _month_trial_balance(app, period: str) -> dict[str, Decimal]:
    """First-level balances at the month's end from the closed Period's balances (incremental by construction)."""
    closed = app.repository.get(app.id_of("period", period))
    chart = app.chart
    nets: dict[str, Decimal] = defaultdict(Decimal)
    for code, amount in closed.closing_balances.items():
        nets[chart.top_level(code).code] += amount
    if sum(nets.values()) != 0:
        raise AssertionError(f"{period}: closing balances do not balance")
    return nets


# -- 5. peers --------------------------------------------------------------------------------------------------------


@workload
def ours_postings(village: int, years: int) -> dict:
    """Our per-account totals from the log, for the peers' totals to be compared with (not a timing)."""
    b = books.book(village, years)
    app = read_only_app(b.ledger)
    started = time.perf_counter()
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for p in app.postings():
        totals[f"{p.code}\t{p.detail}"] += p.debit - p.credit
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": b.events, "totals": {k: str(v) for k, v in totals.items() if v}}


@workload
def beancount_load(path: str) -> dict:
    """beancount's own loader and a trial balance by its realization (the work `bean-query balances` does)."""
    from beancount import loader
    from beancount.core import realization

    loader.initialize(use_cache=False)  # as bean-check --no-cache (peers in __main__.py): parse the books every run
    started = time.perf_counter()
    entries, errors, _options = loader.load_file(path)
    real = realization.realize(entries)
    totals = {}
    for account in realization.iter_children(real):
        for position in account.balance:
            if position.units.number:
                totals[account.account] = str(position.units.number)
    seconds = time.perf_counter() - started
    if errors:
        raise AssertionError(f"beancount: {len(errors)} error(s), first: {errors[0]}")
    return {"seconds": seconds, "events": len(entries), "totals": totals}


@workload
def command(argv: list[str]) -> dict:
    """An external program (a peer), timed around its whole run; its peak RSS is this process's only child's."""
    import subprocess

    started = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {completed.returncode}: {completed.stderr[-2000:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "events": 0, "stdout": completed.stdout, "child_rss_mb": round(rss / 1024, 1)}


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    outcome = WORKLOADS[name](**arguments)
    outcome["rss_mb"] = outcome.pop("child_rss_mb", None) or peak_rss_mb()
    sys.stdout.write(json.dumps(outcome) + "\n")


if __name__ == "__main__":
    main()

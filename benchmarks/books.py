"""Deterministic village books for the benchmarks, cached on disk under benchmarks/.cache.

One cached book is village `v` with `years` years of history: the journal of `years + 1` years from
ledger.demo_data.generate_village (1,500 vouchers per village-year by default), split into

    history.jsonl   everything up to and including the close of the last history month (December of the last year)
    month.jsonl     the following January, up to and including its close: the month a disclosure workload appends
    ledger.sqlite   history.jsonl imported and signed (the key is derived from the seed, so reruns agree)

The journal is generated for one year more than the history because demo_data dates contracts by the last year it
generates; the history is therefore a real prefix of books that go on, not books that end.

    python -m benchmarks.books --villages 3 --years 10     # builds (or finds) villages 0..2 with 10 years each
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.crypto.logformat import EntrySigner

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
START_YEAR = 2021
VOUCHERS_PER_YEAR = 1500
CHART = "2023"
# Bump when the cache layout changes; a change of ledger/demo_data.py invalidates the cache by itself.
LAYOUT = 2  # 2: assets snapshotted


def _generator_digest() -> str:
    import ledger.demo_data as demo_data

    source = Path(demo_data.__file__).read_bytes()
    return hashlib.sha256(source + f"{LAYOUT}/{VOUCHERS_PER_YEAR}/{START_YEAR}/{CHART}".encode()).hexdigest()[:12]


def origin_of(village: int) -> str:
    return f"ledger.bench.example/village/{330100000000 + village}/v1"


def seed_of(village: int) -> int:
    return 7919 * (village + 1)


def signer_of(village: int) -> EntrySigner:
    private = hashlib.sha256(f"village-ledger bench signer {village}".encode()).digest()
    return EntrySigner(f"{origin_of(village)}/signer/clerk", Ed25519PrivateKey.from_private_bytes(private))


@dataclass(frozen=True)
class Book:
    village: int
    years: int
    directory: Path
    meta: dict

    @property
    def origin(self) -> str:
        return origin_of(self.village)

    @property
    def signer(self) -> EntrySigner:
        return signer_of(self.village)

    @property
    def ledger(self) -> Path:
        return self.directory / "ledger.sqlite"

    @property
    def history(self) -> Path:
        return self.directory / "history.jsonl"

    @property
    def month(self) -> Path:
        return self.directory / "month.jsonl"

    @property
    def events(self) -> int:
        """Log entries of the history ledger."""
        return self.meta["log_entries"]

    @property
    def appended_period(self) -> str:
        return f"{START_YEAR + self.years:04d}-01"

    @property
    def end_date(self) -> str:
        return f"{START_YEAR + self.years - 1:04d}-12-31"


def book_dir(village: int, years: int) -> Path:
    return CACHE / _generator_digest() / f"v{village:03d}-y{years:03d}"


def book(village: int, years: int, *, log=print) -> Book:
    """The cached book, built on first use (generation and a signed import: minutes for 50 years)."""
    directory = book_dir(village, years)
    meta_file = directory / "meta.json"
    if meta_file.is_file():
        return Book(village, years, directory, json.loads(meta_file.read_text()))
    if directory.exists():
        shutil.rmtree(directory)  # a build that was interrupted
    building = directory.with_name(directory.name + ".building")
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    started = time.perf_counter()
    log(f"  building village {village}, {years} year(s) of {VOUCHERS_PER_YEAR} vouchers (cached in {CACHE})")
    history_records, month_records = _split(village, years)
    _write(building / "history.jsonl", history_records)
    _write(building / "month.jsonl", month_records)
    generated = time.perf_counter() - started
    entries = _import(village, building / "ledger.sqlite", building / "history.jsonl")
    meta = {
        "village": village,
        "years": years,
        "origin": origin_of(village),
        "records": len(history_records),
        "month_records": len(month_records),
        "log_entries": entries,
        "generate_seconds": round(generated, 2),
        "import_seconds": round(time.perf_counter() - started - generated, 2),
    }
    (building / "meta.json").write_text(json.dumps(meta, indent=1))
    building.rename(directory)
    log(f"  built in {time.perf_counter() - started:.0f} s: {len(history_records)} records, {entries} log entries")
    return Book(village, years, directory, meta)


def _split(village: int, years: int) -> tuple[list, list]:
    from ledger.demo_data import generate_village
    from ledger.domain import journal as j

    last_history = f"{START_YEAR + years - 1:04d}-12"
    appended = f"{START_YEAR + years:04d}-01"
    history: list = []
    month: list = []
    target = history
    records = generate_village(
        seed=seed_of(village), years=years + 1, start_year=START_YEAR, chart=CHART, vouchers_per_year=VOUCHERS_PER_YEAR
    )
    for record in records:
        target.append(record)
        if isinstance(record, j.PeriodClose):
            if record.period == last_history:
                target = month
            elif record.period == appended:
                break
    if target is not month or not month or not isinstance(month[-1], j.PeriodClose):
        raise RuntimeError(f"village {village}: the generator did not close {last_history} and {appended}")
    return history, month


def _write(path: Path, records: list) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(record.model_dump_json(exclude_none=True))
            handle.write("\n")


def new_ledger(village: int, path: Path):
    """A fresh ledger for the village (genesis only), opened for writing."""
    from ledger.store.application import LedgerApplication

    app = LedgerApplication(str(path), signer=signer_of(village))
    app.create_ledger(origin=origin_of(village), name=f"基准村{village}", chart=CHART)
    return app


def _import(village: int, ledger_path: Path, journal: Path) -> int:
    from ledger.importer import import_journal

    app = new_ledger(village, ledger_path)
    try:
        result = import_journal(app, journal)
        if not result.ok:
            raise RuntimeError("bench journal refused: " + "; ".join(map(str, result.problems[:5])))
        return app.recorder.log_size()
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--villages", type=int, default=1)
    parser.add_argument("--years", type=int, default=1)
    args = parser.parse_args()
    for village in range(args.villages):
        b = book(village, args.years)
        print(f"{b.directory}: {b.meta['records']} records, {b.events} log entries")


if __name__ == "__main__":
    main()

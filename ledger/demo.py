"""`village-ledger demo`: several years of a sample village, signed as written, verified end to end, reported."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

from .crypto.keys import generate_key_file
from .demo_data import generate_village, write_journal
from .importer import import_journal
from .progress import ProgressBar
from .reports import render_report
from .store.application import LedgerApplication
from .verify.chain import verify_source

DEMO_ORIGIN = "ledger.demo-county.example/village/330100000000/v1"
DEMO_NAME = "示范村 (demo village)"
# The demo's keys protect nothing real; a fixed default keeps `make demo` non-interactive.
DEMO_PASSPHRASE = "village-ledger-demo"


def run_demo(directory: Path, *, years: int = 5, seed: int = 2025, start_year: int = 2021, force_progress: bool = False) -> dict:
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    ledger_path = directory / "village.sqlite"
    for stale in directory.glob("village.sqlite*"):
        stale.unlink()
    passphrase = os.environ.get("LEDGER_KEY_PASSPHRASE", DEMO_PASSPHRASE)
    keys = directory / "keys"
    keys.mkdir(exist_ok=True)
    for stale in keys.glob("*.key"):
        stale.unlink()
    signer_key = generate_key_file(f"{DEMO_ORIGIN}/signer/clerk", "signer", keys / "clerk.key", passphrase)
    log_key = generate_key_file(DEMO_ORIGIN, "log", keys / "log.key", passphrase)

    journal = directory / "journal.jsonl"
    write_journal(generate_village(seed=seed, years=years, start_year=start_year), journal)

    app = LedgerApplication(str(ledger_path), signer=signer_key.signer)
    app.create_ledger(origin=DEMO_ORIGIN, name=DEMO_NAME, chart="2023", log_public_key=log_key.public_key)
    bar = ProgressBar("导入凭证 / importing", 0, force=force_progress)
    result = import_journal(app, journal, progress=bar.update)
    bar.close()
    if not result.ok:
        raise RuntimeError("demo journal refused: " + "; ".join(str(p) for p in result.problems))

    bar = ProgressBar("校验日志 / verifying", app.recorder.log_size(), force=force_progress)
    verification = verify_source(str(ledger_path), progress=bar.update)
    bar.close()
    if not verification.intact:
        raise RuntimeError("demo ledger failed verification:\n" + "\n".join(map(str, verification.findings)))

    year_end = date(start_year + years - 1, 12, 31)
    reports = directory / "reports"
    reports.mkdir(exist_ok=True)
    written = []
    for kind in ("trial-balance", "balance-sheet", "income-statement", "assets", "contracts"):
        for fmt in ("json", "csv"):
            path = reports / f"{kind}-{year_end.isoformat()}.{fmt}"
            path.write_text(render_report(app, kind, at=year_end, fmt=fmt), "utf-8")
            written.append(path)
    entries = app.recorder.log_size()
    app.close()
    elapsed = time.monotonic() - started

    print(f"示范村账簿 / demo ledger: {ledger_path}")
    print(f"  {years} 年 ({start_year}–{year_end.year}), 导入 {result.applied} 条记录, 日志 {entries} 条已签名")
    print(f"  {years} years, {result.applied} journal records imported, {entries} signed log entries")
    print(f"  校验通过 / verified: {verification.summary()}")
    print(f"  报表 / reports: {reports}/ ({len(written)} files: trial balance, balance sheet, income statement, assets, contracts)")
    print(f"  密钥 / keys: {keys}/ (demo passphrase; not for real books)")
    print(f"  用时 / took {elapsed:.1f} s")
    return {"ledger": ledger_path, "entries": entries, "records": result.applied, "reports": written}

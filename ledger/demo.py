"""`village-ledger demo`: several years of a sample village, signed as written, sealed by witnesses each month,
verified end to end against a trust policy, with its latest monthly disclosure and reports."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

from .checkpoints import demo_checkpoints
from .crypto.checkpoint import CosignatureV1Verifier
from .crypto.keys import generate_key_file
from .crypto.note import Ed25519Verifier
from .demo_data import generate_village, write_journal
from .disclosure import write_disclosure
from .export import export_bundle
from .importer import import_journal
from .progress import ProgressBar
from .projections.audit_view import write_audit_view
from .reports import render_report
from .store.application import LedgerApplication
from .verify import verify_source
from .verify.policy import Group, Log, TrustPolicy, Witness, load_policy

DEMO_ORIGIN = "ledger.demo-county.example/village/330100000000/v1"
DEMO_NAME = "示范村 (demo village)"
# The demo's keys protect nothing real; a fixed default keeps `make demo` non-interactive.
DEMO_PASSPHRASE = "village-ledger-demo"
WITNESS_NAMES = ("township", "committee")
# The party secretary and committee chair who leaves office half-way through the sample years.
DEPARTED_OFFICIAL = "O-001"


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

    sealed = demo_checkpoints(app, directory, log_key, passphrase)
    last_month = max(sealed.notes)
    disclosure_files = write_disclosure(app, last_month, directory / "disclosure", signer_key.signer)
    audit_files = write_audit_view(app, DEPARTED_OFFICIAL, directory / "audit")

    policy_path = directory / "policy.txt"
    policy_path.write_text(_demo_policy(log_key.vkey(), sealed.witness_vkeys).format(), "utf-8")
    bundle = directory / "bundle"
    export_bundle(str(ledger_path), bundle, policy_path=policy_path)

    policy = load_policy(policy_path)
    bar = ProgressBar("校验日志 / verifying", app.recorder.log_size(), force=force_progress)
    verification = verify_source(str(ledger_path), policy=policy, progress=bar.update)
    bar.close()
    from_bundle = verify_source(str(bundle), policy=policy)
    for outcome in (verification, from_bundle):
        if not outcome.intact:
            raise RuntimeError("demo ledger failed verification:\n" + "\n".join(map(str, outcome.findings)))

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

    html = next(p for p in disclosure_files if p.suffix == ".html")
    print(f"示范村账簿 / demo ledger: {ledger_path}")
    print(f"  {years} 年 ({start_year}–{year_end.year}), 导入 {result.applied} 条记录, 日志 {entries} 条已签名")
    print(f"  {years} years, {result.applied} journal records imported, {entries} signed log entries")
    print(f"  月结检查点 / monthly checkpoints: {len(sealed.notes)}, cosigned by 镇三资中心 (HTTP witness) and 村务监督委员会 → {sealed.notes_dir}/")
    print(f"  校验通过 / verified against {policy_path}: {verification.summary()}")
    print(f"  审计包 / auditor bundle: {bundle}/ (verified too: `village-ledger verify {bundle} --policy {policy_path}`)")
    print(f"  {last_month} 财务公开 / monthly disclosure: {html}")
    print(f"  离任审计 / departure audit of {DEPARTED_OFFICIAL}: {next(p for p in audit_files if p.suffix == '.html')}")
    print(f"  报表 / reports: {reports}/ ({len(written)} files: trial balance, balance sheet, income statement, assets, contracts)")
    print(f"  密钥 / keys: {keys}/ (demo passphrase; not for real books)")
    print(f"  用时 / took {elapsed:.1f} s")
    return {"ledger": ledger_path, "entries": entries, "records": result.applied, "reports": written,
            "disclosure": disclosure_files, "audit": audit_files, "bundle": bundle, "policy": policy_path}


def _demo_policy(log_vkey: str, witness_vkeys: tuple[str, str]) -> TrustPolicy:
    """Both witnesses must cosign: the township agency and the village supervision committee (TLOG.md §6.4)."""
    return TrustPolicy(
        logs=(Log(Ed25519Verifier.from_vkey(log_vkey)),),
        witnesses=tuple(
            Witness(name, CosignatureV1Verifier.from_vkey(vkey)) for name, vkey in zip(WITNESS_NAMES, witness_vkeys)
        ),
        groups=(Group("village-witnesses", len(WITNESS_NAMES), WITNESS_NAMES, "all"),),
        quorum="village-witnesses",
    )

"""An import of several batches into a SQLite ledger is written through a WritePipeline: a writer process signs
and stores each batch while this one checks the next. What it stores, what it reports and what it refuses are
those of an import without one; a batch that meets another writer is executed again."""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal

import pytest

from conftest import ORIGIN, make_signer
from ledger.domain import journal as j
from ledger.importer import import_journal
from ledger.store import recorders
from ledger.store.application import LedgerApplication
from ledger.verify.chain import verify_source
from test_importer import OPENING, voucher, write

BATCH = 10
# Vouchers over two months with a close between them: the close of January is checked while the batch holding
# January's last vouchers may still be being written.
JANUARY = [voucher(f"记-202501-{n:03d}", f"2025-01-{1 + n // 3:02d}", f"{n}.00") for n in range(1, 31)]
FEBRUARY = [voucher(f"记-202502-{n:03d}", f"2025-02-{1 + n // 3:02d}", f"{n}.00") for n in range(1, 21)]
JANUARY_RECEIPTS = sum(Decimal(f"{n}.00") for n in range(1, 31))
CLOSE = {
    "id": "close-2025-01", "type": "period_close", "period": "2025-01", "date": "2025-01-31",
    "cash_counted": "1200.00", "bank_statement": f"{Decimal('186000.00') + JANUARY_RECEIPTS:.2f}",
}
RECORDS = [OPENING, *JANUARY, CLOSE, *FEBRUARY]


@pytest.fixture
def app(tmp_path, signer):
    app = LedgerApplication(str(tmp_path / "ledger.sqlite"), signer=signer)
    app.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    yield app
    app.close()


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "journal.jsonl"
    write(path, RECORDS)
    return path


def stored_states(app: LedgerApplication) -> list[tuple[str, bytes]]:
    """(topic, state) of every stored event, in the order stored."""
    with app.recorder.datastore.transaction(commit=False) as c:
        c.execute(f"SELECT topic, state FROM {app.recorder.events_table_name} ORDER BY rowid")
        return [(topic, bytes(state)) for topic, state in c.fetchall()]


def in_the_writer(monkeypatch, act) -> None:
    """The writer process calls act(call number) before it writes each batch (the first batch is call 1)."""
    original = recorders.ChainedSQLiteApplicationRecorder.insert_events
    parent, calls = os.getpid(), [0]

    def patched(self, stored_events, **kwargs):
        if os.getpid() != parent:
            calls[0] += 1
            act(calls[0])
        return original(self, stored_events, **kwargs)

    monkeypatch.setattr(recorders.ChainedSQLiteApplicationRecorder, "insert_events", patched)


def test_a_pipelined_import_stores_what_a_batch_by_batch_import_stores(app, journal, tmp_path):
    progress = []
    result = import_journal(app, journal, batch_size=BATCH, progress=lambda done, total: progress.append((done, total)))
    assert (result.applied, result.skipped, result.problems) == (len(RECORDS), 0, [])
    assert progress == [(min(n, len(RECORDS)), len(RECORDS)) for n in range(BATCH, len(RECORDS) + BATCH, BATCH)]
    alone = LedgerApplication(str(tmp_path / "alone.sqlite"), signer=make_signer())
    alone.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    for start in range(0, len(RECORDS), BATCH):
        alone.execute_batch([j.journal_record_adapter.validate_python(r) for r in RECORDS[start : start + BATCH]])
    assert [(t, json.loads(s) | {"timestamp": None}) for t, s in stored_states(app)] == [
        (t, json.loads(s) | {"timestamp": None}) for t, s in stored_states(alone)
    ]
    assert verify_source(app.location).intact
    alone.close()
    again = import_journal(app, journal, batch_size=BATCH)
    assert (again.applied, again.skipped) == (0, len(RECORDS))


def test_a_batch_that_meets_another_writer_is_executed_again(app, journal, monkeypatch):
    def another_writer_posts_first(call: int) -> None:
        if call == 3:  # the batch of January's 20th to 29th vouchers: the other writer moves January's period on
            other = LedgerApplication(app.location, signer=make_signer())
            other.execute(j.journal_record_adapter.validate_python(voucher("记-202501-900", "2025-01-09", "1.00", id_="other")))
            other.close()

    in_the_writer(monkeypatch, another_writer_posts_first)
    result = import_journal(app, journal, batch_size=BATCH)
    # The other writer's receipt makes the counted bank balance of the close wrong: January cannot be closed.
    assert (result.applied, result.skipped) == (1 + 30, 0)
    assert [str(p) for p in result.problems] == [
        f"{journal}:32 (id close-2025-01): bank_statement: statement {CLOSE['bank_statement']} differs from 102 "
        f"{Decimal(CLOSE['bank_statement']) + 1:.2f} and no reconciliation note explains it"
    ]
    vouchers = app.repository.get(app.id_of("period", "2025-01")).voucher_nos
    assert len(vouchers) == 31 and vouchers.count("记-202501-900") == 1
    assert verify_source(app.location).intact


def test_a_refused_record_stores_the_records_before_it_and_nothing_after(app, journal, tmp_path):
    bad = voucher("记-202502-099", "2025-02-20", credit="599")
    path = tmp_path / "bad.jsonl"
    write(path, [*RECORDS[:45], bad, *RECORDS[45:]])
    result = import_journal(app, path, batch_size=BATCH)
    assert (result.applied, result.skipped) == (45, 0)
    assert [str(p) for p in result.problems] == [f"{path}:46 (id v-记-202502-099): lines[1].account: account '599' is not in chart 2023"]
    period = app.repository.get(app.id_of("period", "2025-02"))
    assert period.voucher_nos == [r["voucher_no"] for r in RECORDS[32:45]]
    assert verify_source(app.location).intact


def test_a_month_close_sees_an_asset_registered_in_the_batch_being_written(app, tmp_path, monkeypatch):
    """The asset is the last record of the first batch, January's close the first of the second: it is checked while
    the writer still holds the first batch, and must find the asset undepreciated."""
    asset = {
        "id": "asset-A-1", "type": "asset", "asset_no": "A-1", "name": "仓库", "category": "房屋及建筑物",
        "use": "leased_out", "cost": "12000.00", "in_service": "2024-12-01", "life_months": 120,
        "depreciation_account": "511",
    }
    receipts = sum(Decimal(v["lines"][0]["debit"]) for v in JANUARY[:8])
    close = CLOSE | {"bank_statement": f"{Decimal('186000.00') + receipts:.2f}"}
    path = tmp_path / "assets.jsonl"
    write(path, [OPENING, *JANUARY[:8], asset, close])
    in_the_writer(monkeypatch, lambda call: time.sleep(0.5) if call == 1 else None)
    result = import_journal(app, path, batch_size=BATCH)
    assert (result.applied, result.skipped) == (BATCH, 0)
    assert [str(p) for p in result.problems] == [f"{path}:11 (id close-2025-01): period: asset A-1 (仓库) has no depreciation for 2025-01"]


def test_a_fund_closed_while_its_receipt_is_being_written_still_holds_it(app, tmp_path, monkeypatch):
    fund = {
        "id": "fund-road", "type": "fund", "fund_id": "road", "kind": "special", "name": "道路专项", "account": "241",
        "detail": "道路", "opened": "2025-01-02",
    }
    receipt = voucher("记-202501-050", "2025-01-20", "1000.00", credit="241") | {"summary": "收到道路专项资金"}
    receipt["lines"][1]["detail"] = "道路"
    close = {"id": "fund-road-closed", "type": "fund_closed", "fund_id": "road", "closed": "2025-01-31"}
    path = tmp_path / "fund.jsonl"
    write(path, [OPENING, fund, *JANUARY[:7], receipt, close])
    in_the_writer(monkeypatch, lambda call: time.sleep(0.5) if call == 1 else None)
    result = import_journal(app, path, batch_size=BATCH)
    assert (result.applied, result.skipped) == (BATCH, 0)
    assert [str(p) for p in result.problems] == [f"{path}:11 (id fund-road-closed): closed: fund road still holds -1000.00 on 241 道路"]


def test_a_writer_that_fails_or_dies_stops_the_import_and_a_rerun_completes(app, journal, monkeypatch):
    def fail(call: int) -> None:
        if call == 2:
            raise OSError("disk full")

    with monkeypatch.context() as patch:
        in_the_writer(patch, fail)
        with pytest.raises(OSError, match="disk full"):
            import_journal(app, journal, batch_size=BATCH)
    with monkeypatch.context() as patch:
        in_the_writer(patch, lambda call: os._exit(3) if call == 1 else None)
        with pytest.raises(RuntimeError, match=r"the writer process ended \(exit code 3\)"):
            import_journal(app, journal, batch_size=BATCH)
    assert len(app.repository.get(app.id_of("period", "2025-01")).voucher_nos) == BATCH - 1  # the first batch
    result = import_journal(app, journal, batch_size=BATCH)
    assert (result.applied, result.skipped, result.problems) == (len(RECORDS) - BATCH, BATCH, [])
    assert verify_source(app.location).intact


def test_a_process_running_other_threads_imports_without_forking(app, journal, monkeypatch):
    import threading

    from ledger import importer

    def no_pipeline(*args):
        raise AssertionError("a writer process was forked while another thread ran")

    monkeypatch.setattr(importer, "WritePipeline", no_pipeline)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        result = import_journal(app, journal, batch_size=BATCH)
    finally:
        release.set()
        other.join()
    assert (result.applied, result.skipped, result.problems) == (len(RECORDS), 0, [])
    assert verify_source(app.location).intact

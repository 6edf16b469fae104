"""Journal import: bad input names its line and field, and nothing of a refused record is stored."""

from __future__ import annotations

import gc
import json
from decimal import Decimal

import pytest

from conftest import ORIGIN, make_signer
from ledger.domain.validation import Rejected
from ledger.importer import import_journal, read_journal
from ledger.store.application import LedgerApplication

OPENING = {
    "id": "open", "type": "opening_balances", "date": "2025-01-01",
    "lines": [
        {"account": "101", "debit": "1200.00"},
        {"account": "102", "debit": "186000.00"},
        {"account": "301", "credit": "187200.00"},
    ],
}


def voucher(no: str, day: str, amount="6000.00", *, credit_amount=None, id_: str | None = None, debit="102", credit="50102"):
    return {
        "id": id_ or f"v-{no}", "type": "voucher", "voucher_no": no, "date": day, "summary": "收到仓库租金",
        "lines": [
            {"account": debit, "debit": amount},
            {"account": credit, "detail": "仓库", "credit": amount if credit_amount is None else credit_amount},
        ],
    }


def write(path, records) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records), "utf-8")


@pytest.fixture
def app(ledger_location, signer):
    app = LedgerApplication(ledger_location, signer=signer)
    app.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    yield app
    app.close()


def test_valid_journal_imports_and_reimport_skips_every_record(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05"), voucher("记-202501-002", "2025-01-06", "10.00")])
    first = import_journal(app, journal)
    size = app.recorder.log_size()
    again = import_journal(app, journal)
    assert (first.applied, first.skipped, first.problems) == (3, 0, [])
    assert (again.applied, again.skipped, again.problems) == (0, 3, [])
    assert app.recorder.log_size() == size
    # genesis + opening + 2 x (voucher, period entry) + period opened + 3 journal markers
    assert size == 1 + 1 + 4 + 1 + 3


# (bad record, message, whether the file passed the schema so that the good records before it were stored)
BAD_LINES = [
    (voucher("记-202501-001", "2025-01-05") | {"lines": [{"account": "102", "debit": "6000.00"}, {"account": "50102", "credit": "5000.00"}]},
     "lines: voucher does not balance: debit 6000.00 != credit 5000.00", True),
    (voucher("记-202501-001", "2025-01-05", amount=6000.0, credit_amount="6000.00"),
     "lines[0].debit: amount must be a decimal string with 2 places, not a float: 6000.0", False),
    (voucher("记-202501-001", "2025-01-05", amount="6000.001", credit_amount="6000.00"),
     "lines[0].debit: amount must have exactly 2 decimal places, e.g. \"1400.00\": '6000.001'", False),
    (voucher("记-202501-001", "2025-01-05", credit="599"),
     "lines[1].account: account '599' is not in chart 2023", True),
]
# opening (event + journal marker) and one voucher (voucher, period opened, period entry, journal marker)
GOOD_PREFIX_ENTRIES = 2 + 4


@pytest.mark.parametrize("bad, message, prefix_stored", BAD_LINES, ids=["unbalanced", "float", "three-decimals", "unknown-account"])
def test_bad_record_is_named_by_line_and_field_and_nothing_of_it_is_stored(app, tmp_path, bad, message, prefix_stored):
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, voucher("记-202501-009", "2025-01-04", id_="ok"), bad])
    before = app.recorder.log_size()
    result = import_journal(app, journal)
    assert [str(p) for p in result.problems] == [f"{journal}:3 (id v-记-202501-001): {message}"]
    assert app.recorder.log_size() == before + (GOOD_PREFIX_ENTRIES if prefix_stored else 0)
    assert [v.voucher_no for v in app.vouchers_of("2025-01")] == (["记-202501-009"] if prefix_stored else [])


def test_schema_errors_are_all_reported_before_anything_is_stored(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, "{not json", voucher("记-202501-001", "2025-01-05", amount="1.5", credit_amount="1.50"), OPENING])
    with open(journal, "ab") as f:
        f.write('{"id": "gbk", "summary": "'.encode() + "收到".encode("gbk") + b'"}\n')
    result = import_journal(app, journal)
    assert [str(p) for p in result.problems] == [
        f"{journal}:2: not valid JSON: Expecting property name enclosed in double quotes at column 2",
        f"{journal}:3 (id v-记-202501-001): lines[0].debit: amount must have exactly 2 decimal places, e.g. \"1400.00\": '1.5'",
        f"{journal}:4 (id open): id: duplicate id; first used on line 1",
        f"{journal}:5: not UTF-8: byte 27 of the line",
    ]
    assert app.ledger().opening_date is None


def test_posting_into_a_closed_period_is_refused(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    close = {"id": "close-01", "type": "period_close", "period": "2025-01", "date": "2025-01-31",
             "cash_counted": "1200.00", "bank_statement": "192000.00"}
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05"), close, voucher("记-202501-002", "2025-01-20")])
    result = import_journal(app, journal)
    assert result.applied == 3
    assert [str(p) for p in result.problems] == [
        f"{journal}:4 (id v-记-202501-002): date: period 2025-01 is closed; post a correction in an open period"
    ]
    assert [v.voucher_no for v in app.vouchers_of("2025-01")] == ["记-202501-001"]


def test_month_close_refuses_a_cash_count_that_differs_from_the_books(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    close = {"id": "close-01", "type": "period_close", "period": "2025-01", "date": "2025-01-31",
             "cash_counted": "1100.00", "bank_statement": "186000.00"}
    write(journal, [OPENING, close])
    result = import_journal(app, journal)
    assert [str(p) for p in result.problems] == [
        f"{journal}:2 (id close-01): cash_counted: counted 1100.00 but the books show 1200.00 in 101"
    ]


def test_same_id_with_different_content_is_refused(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05")])
    import_journal(app, journal)
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05", "7000.00")])
    result = import_journal(app, journal)
    assert [str(p) for p in result.problems] == [
        f"{journal}:2 (id v-记-202501-001): id: id 'v-记-202501-001' was already imported with different content"
    ]


def test_duplicate_voucher_number_under_a_new_id_is_refused(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05"), voucher("记-202501-001", "2025-01-06", id_="other")])
    result = import_journal(app, journal)
    assert [str(p) for p in result.problems] == [f"{journal}:3 (id other): voucher_no: voucher 记-202501-001 already exists"]


def test_unknown_signer_is_refused_and_stores_nothing(ledger_location, signer, tmp_path):
    owner = LedgerApplication(ledger_location, signer=signer)
    owner.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    size = owner.recorder.log_size()
    stranger = LedgerApplication(ledger_location, signer=make_signer(9, ORIGIN + "/signer/stranger"))
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING])
    with pytest.raises(Rejected) as refused:
        import_journal(stranger, journal)
    assert str(refused.value) == (
        f"key: signer {stranger.signer.label} is not a registered, unrevoked signer key of this ledger"
    )
    assert owner.recorder.log_size() == size
    owner.close()
    stranger.close()


def test_red_ink_reversal_negates_the_original_once(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    reversal = {"id": "r1", "type": "reversal", "voucher_no": "记-202502-001", "date": "2025-02-03",
                "reverses": "记-202501-001", "summary": "红字冲销", "reason": "科目错误"}
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05", "580.00"), reversal, reversal | {"id": "r2", "voucher_no": "记-202502-002"}])
    result = import_journal(app, journal)
    assert [str(p) for p in result.problems] == [
        f"{journal}:4 (id r2): reverses: 记-202501-001 was already reversed by 记-202502-001"
    ]
    [red] = app.vouchers_of("2025-02")
    assert [(x.code, x.debit, x.credit) for x in red.lines] == [
        ("102", Decimal("-580.00"), Decimal("0.00")),
        ("50102", Decimal("0.00"), Decimal("-580.00")),
    ]


def test_read_journal_reports_the_field_path_of_nested_errors(tmp_path):
    journal = tmp_path / "j.jsonl"
    write(journal, [{"id": "a", "type": "voucher", "voucher_no": "x", "date": "2025-13-01", "summary": "s",
                     "lines": [{"account": "101", "debit": "1.00"}, {"account": "102", "credit": "1.00", "colour": "red"}]}])
    records, problems = read_journal(journal)
    assert records == []
    assert [(p.line, p.field, p.message) for p in problems] == [
        (1, "date", "Input should be a valid date or datetime, month value is outside expected range of 1-12"),
        (1, "lines[1].colour", "Extra inputs are not permitted"),
    ]


def test_funds_are_carried_on_their_account_and_close_only_when_empty(app, tmp_path):
    journal = tmp_path / "j.jsonl"
    fund = {"id": "f1", "type": "fund", "fund_id": "grant", "kind": "special", "name": "道路专项补助",
            "account": "241", "detail": "道路", "purpose": "村道修缮", "opened": "2025-01-02"}
    receive = voucher("记-202501-001", "2025-01-05", "30000.00", credit="241") | {
        "lines": [{"account": "102", "debit": "30000.00"}, {"account": "241", "detail": "道路", "credit": "30000.00"}]}
    spend = voucher("记-202501-002", "2025-01-20", "30000.00") | {
        "lines": [{"account": "241", "detail": "道路", "debit": "30000.00"}, {"account": "102", "credit": "30000.00"}]}
    close = {"id": "f1-closed", "type": "fund_closed", "fund_id": "grant", "closed": "2025-01-25"}
    wrong = fund | {"id": "f2", "fund_id": "box", "kind": "cash", "account": "102"}
    write(journal, [OPENING, fund, receive, close, spend, close | {"id": "f1-closed-2"}, wrong])
    result = import_journal(app, journal, batch_size=3)
    assert [str(p) for p in result.problems] == [
        f"{journal}:4 (id f1-closed): closed: fund grant still holds -30000.00 on 241 道路"
    ]
    write(journal, [OPENING, fund, receive, spend, close, wrong])
    result = import_journal(app, journal, batch_size=3)
    assert [str(p) for p in result.problems] == [
        f"{journal}:6 (id f2): account: a cash fund is carried on 101, not 102"
    ]
    assert app.repository.get(app.id_of("fund", "grant")).closed.isoformat() == "2025-01-25"


# -- the collector: a journal's records live until the import ends, so collections are spared walking them ----------


def _gc_seen(app, journal, monkeypatch) -> dict:
    """What import_journal left the collector as while it read the journal and while it applied the records."""
    import ledger.importer as importer

    seen = {}
    read = importer.read_journal

    def reading(path):
        seen["reading enabled"] = gc.isenabled()
        return read(path)

    def applied(done, total):
        seen["applying enabled"], seen["applying frozen"] = gc.isenabled(), gc.get_freeze_count()

    monkeypatch.setattr(importer, "read_journal", reading)
    seen["result"] = import_journal(app, journal, progress=applied)
    return seen


def test_records_are_built_without_collections_and_frozen_out_of_them_while_applied(app, tmp_path, monkeypatch):
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05")])
    assert gc.isenabled() and gc.get_freeze_count() == 0
    seen = _gc_seen(app, journal, monkeypatch)
    assert (seen["result"].applied, seen["result"].problems) == (2, [])
    assert seen["reading enabled"] is False
    assert seen["applying enabled"] is True and seen["applying frozen"] > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_refused_record_leaves_the_collector_as_it_was(app, tmp_path, monkeypatch):
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05", credit="599")])
    seen = _gc_seen(app, journal, monkeypatch)
    assert [p.message for p in seen["result"].problems] == ["account '599' is not in chart 2023"]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    write(journal, [OPENING, "{not json"])
    seen = _gc_seen(app, journal, monkeypatch)
    assert [p.line for p in seen["result"].problems] == [2]
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_host_that_manages_the_collector_keeps_its_settings(app, tmp_path, monkeypatch):
    """A host that froze its objects (before forking workers) or turned the collector off finds them so after."""
    journal = tmp_path / "j.jsonl"
    write(journal, [OPENING, voucher("记-202501-001", "2025-01-05")])
    gc.freeze()
    gc.disable()
    try:
        host_frozen = gc.get_freeze_count()
        seen = _gc_seen(app, journal, monkeypatch)
        assert seen["result"].applied == 2
        # Frozen objects may be freed meanwhile; none is added to the host's, and its freeze is not undone.
        assert seen["applying enabled"] is False and 0 < seen["applying frozen"] <= host_frozen
        assert not gc.isenabled() and 0 < gc.get_freeze_count() <= host_frozen
    finally:
        gc.enable()
        gc.unfreeze()

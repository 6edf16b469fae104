"""SCENARIOS S10 (and S4, S5, S6, S8, S11): the monthly disclosure of Qinghe 2025, every line asserted."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

import pytest

from ledger.cli import main
from ledger.domain.aggregates import Disclosure
from ledger.domain.validation import Rejected
from ledger.disclosure import ledger_info, write_disclosure
from ledger.projections.disclosure import build_disclosure
from ledger.projections.readmodel import ReadModel, update_read_model
from test_qinghe_import import load_qinghe

# SCENARIOS 10.1: month, 上月结存, 本月收入, 本月支出, 本月结存
FUNDS_10_1 = [
    ("2025-01", "187200.00", "66000.00", "3000.00", "250200.00"),
    ("2025-02", "250200.00", "0.00", "3000.00", "247200.00"),
    ("2025-03", "247200.00", "12000.00", "3000.00", "256200.00"),
    ("2025-04", "256200.00", "40000.00", "3000.00", "293200.00"),
    ("2025-05", "293200.00", "0.00", "9800.00", "283400.00"),
    ("2025-06", "283400.00", "0.00", "38580.00", "244820.00"),
    ("2025-07", "244820.00", "6000.00", "3000.00", "247820.00"),
    ("2025-08", "247820.00", "0.00", "15000.00", "232820.00"),
    ("2025-09", "232820.00", "0.00", "3000.00", "229820.00"),
    ("2025-10", "229820.00", "6000.00", "3000.00", "232820.00"),
    ("2025-11", "232820.00", "0.00", "3000.00", "229820.00"),
    ("2025-12", "229820.00", "1150.00", "7200.00", "223770.00"),
]


@pytest.fixture
def qinghe(ledger_location, signer):
    app = load_qinghe(ledger_location, signer, "2023")
    yield app
    app.close()


@pytest.fixture
def disclose(qinghe):
    model = ReadModel(qinghe.location)
    update_read_model(qinghe, model)

    def build(month: str) -> dict:
        return build_disclosure(
            model, ledger_info(qinghe, date.fromisoformat(month + "-28")), month, published=None, checkpoint_note=None,
            checkpoint_size=None,
        )

    yield build
    model.close()


def lines(doc: dict) -> list[tuple]:
    return [
        (x["seq"], x["date"], x["voucher_no"], x["summary"], x["income"], x["expense"], x["approval"], x["remark"], x["red"])
        for x in doc["income_expense"]["lines"]
    ]


def fund(doc: dict, key: str, which: str = "funds") -> tuple:
    row = next(r for r in doc[which]["rows"] if r["fund"] == key)
    return row["opening"], row["income"], row["expense"], row["transfer_in"], row["transfer_out"], row["closing"]


def test_fund_summary_of_all_twelve_months_and_the_year(disclose):
    for month, opening, income, expense, closing in FUNDS_10_1:
        doc = disclose(month)
        total = fund(doc, "total")
        assert (total[0], total[1], total[2], total[5]) == (opening, income, expense, closing), month
        assert total[3] == total[4]  # cash↔bank transfers cancel out in the total
        assert (doc["income_expense"]["total_income"], doc["income_expense"]["total_expense"]) == (income, expense)
        month_charts = doc["charts"]["month"]
        assert f"{sum(Decimal(c['amount']) for c in month_charts['income']):.2f}" == income
        assert f"{sum(Decimal(c['amount']) for c in month_charts['expense']):.2f}" == expense
    year = disclose("2025-12")
    assert fund(year, "total", "funds_year_to_date") == ("187200.00", "131150.00", "94580.00", "7000.00", "7000.00", "223770.00")


def test_may_table_excludes_the_cash_withdrawal_and_flags_the_cash_payment(disclose):
    doc = disclose("2025-05")
    assert lines(doc) == [
        (1, "2025-05-18", "记-202505-002", "现金支付沟渠清淤人工费", None, "6800.00", "两委扩大会 D-2025-03", "⚠ R04 现金支付超限额", False),
        (2, "2025-05-25", "记-202505-004", "银行代发5月村干部报酬", None, "3000.00", "年度预算", "", False),
    ]
    ie = doc["income_expense"]
    assert (ie["total_income"], ie["total_expense"]) == ("0.00", "9800.00")
    assert ie["total_remark"] == "提现7,000.00 (记-202505-001) 不计收支"
    assert [(t["voucher_no"], t["amount"], t["remark"]) for t in ie["excluded"]] == [
        ("记-202505-001", "7000.00", "⚠ 大额提现未见镇审批记录")
    ]
    assert fund(doc, "cash") == ("1200.00", "0.00", "6800.00", "7000.00", "0.00", "1400.00")
    assert fund(doc, "bank") == ("292000.00", "0.00", "3000.00", "0.00", "7000.00", "282000.00")
    assert doc["flags"] == [
        {"voucher_no": "记-202505-002", "finding": "⚠ R04 现金支付超限额"},
        {"voucher_no": "记-202505-001", "finding": "⚠ 大额提现未见镇审批记录"},
    ]
    assert doc["statements"] is None and doc["special"] == {"works": [], "contracting": []}


def test_june_table_and_the_road_works_special_disclosure(disclose):
    doc = disclose("2025-06")
    assert lines(doc) == [
        (1, "2025-06-12", "记-202506-001", "购办公用品(误记经营支出)", None, "580.00", "两委会 (一般小额事项)", "", False),
        (2, "2025-06-25", "记-202506-003", "银行代发6月村干部报酬", None, "3000.00", "年度预算", "", False),
        (3, "2025-06-28", "记-202506-006", "支付村道修缮工程款(四议两公开 决议2025-03-12)", None, "35000.00",
         "四议两公开 D-2025-01 决议2025-03-12", "专项公开", False),
    ]
    assert fund(doc, "total") == ("283400.00", "0.00", "38580.00", "0.00", "0.00", "244820.00")
    assert fund(doc, "cash")[-1] == "1400.00" and fund(doc, "bank")[-1] == "243420.00"
    [works] = doc["special"]["works"]
    assert (works["decision"], works["budget"], works["paid"], works["unpaid"]) == ("D-2025-01", "35000.00", "35000.00", "0.00")
    assert works["contract"] == {"date": "2025-04-08", "party": "某路桥队", "note": "与某路桥队签订施工合同,固定总价35000元"}
    assert [(s["step"], s["date"], s["due"], s["present"], s["votes_for"]) for s in works["steps"]] == [
        ("propose", "2025-02-20", 5, 5, None),
        ("deliberate", "2025-02-25", 7, 7, 7),
        ("review", "2025-03-05", 42, 30, 27),
        ("resolve", "2025-03-12", 38, 33, 30),
        ("publish_resolution", "2025-03-13", None, None, None),
        ("contract_signed", "2025-04-08", None, None, None),
        ("acceptance", "2025-06-20", None, 5, None),
    ]
    statements = doc["statements"]
    assert [(c["detail"], c["kind"], c["amount"]) for c in statements["claims"]] == [("某建材店", "债务(应付)", "12000.00")]


def test_july_carries_the_red_ink_correction_as_new_lines(disclose):
    doc = disclose("2025-07")
    assert lines(doc) == [
        (1, "2025-07-05", "记-202507-001", "收到仓库租金(3季度)", "6000.00", None, "", "合同 CK-2023-01", False),
        (2, "2025-07-08", "记-202507-002", "红字冲销6月12日凭证(科目错误)", None, "-580.00", "红字冲销", "冲销 记-202506-001", True),
        (3, "2025-07-08", "记-202507-003", "更正:购办公用品", None, "580.00", "两委会 (一般小额事项)", "", False),
        (4, "2025-07-25", "记-202507-005", "银行代发7月村干部报酬", None, "3000.00", "年度预算", "", False),
    ]
    assert fund(doc, "total") == ("244820.00", "6000.00", "3000.00", "0.00", "0.00", "247820.00")


def test_december_table_statements_and_registers(disclose):
    doc = disclose("2025-12")
    assert lines(doc) == [
        (1, "2025-12-20", "记-202512-001", "支付村部全年水电网络费", None, "4200.00", "两委扩大会 (一般事项)", "", False),
        (2, "2025-12-21", "记-202512-002", "银行存款利息", "1150.00", None, "", "", False),
        (3, "2025-12-25", "记-202512-004", "银行代发12月村干部报酬", None, "3000.00", "年度预算", "", False),
    ]
    assert fund(doc, "cash")[-1] == "1400.00" and fund(doc, "bank")[-1] == "222370.00"
    s = doc["statements"]
    bs = {line["key"]: (line["start"], line["end"]) for line in s["balance_sheet"]["lines"]}
    assert bs["monetary_funds"] == ("187200.00", "223770.00")
    assert bs["receivables"] == ("8000.00", "4000.00")
    assert bs["payables"] == ("12000.00", "14200.00")
    assert bs["total_assets"] == ("632000.00", "645370.00")
    assert bs["total_liabilities_and_equity"] == ("632000.00", "645370.00")
    income = {line["key"]: line["amount"] for line in s["income_statement"]["lines"]}
    assert (income["net_income"], income["undistributed_at_end"]) == ("25370.00", "23559.00")
    assert [(c["account"], c["detail"], c["kind"], c["amount"], c["since"]) for c in s["claims"]] == [
        ("内部往来", "周四", "债权(应收)", "1500.00", "2025-12-31"),
        ("内部往来", "孙三", "债权(应收)", "2500.00", "2025-12-31"),
        ("内部往来", "成员(应付分红)", "债务(应付)", "14200.00", "2025-12-31"),
    ]
    contracts = {c["contract_no"]: c for c in s["contracts"]}
    pond = contracts["YT-2025-01"]
    assert (pond["counterparty"], pond["annual_fee"], pond["received_this_year"], pond["outstanding"], pond["future_instalments"]) == (
        "张某", "12000.00", "12000.00", "0.00", "48000.00"
    )
    assert contracts["CK-2023-01"]["received_this_year"] == "24000.00"
    assert [(a["name"], a["cost"], a["accumulated_depreciation"], a["net_value"]) for a in s["assets"]] == [
        ("村部办公楼", "480000.00", "156000.00", "324000.00"),
        ("集体仓库", "144000.00", "50400.00", "93600.00"),
    ]


def test_march_quarter_lists_the_pond_contract_with_its_low_price(disclose):
    doc = disclose("2025-03")
    [pond] = doc["special"]["contracting"]
    assert (pond["contract_no"], pond["subject"], pond["counterparty"], pond["member"]) == ("YT-2025-01", "鱼塘(坑塘水面 20亩)", "张某", False)
    assert (pond["annual_fee"], pond["reference_fee"], pond["ratio_percent"], pond["low_price"]) == ("12000.00", "16000.00", 75, True)
    assert pond["decision"] == "D-2025-02 村民代表会议 2025-02-28 同意31/应到38"
    assert pond["township_approval"] == "TA-2025-01 某镇人民政府 2025-03-05"


def test_publishing_records_the_hash_once_and_the_month_is_never_edited(qinghe, signer, tmp_path):
    june_paths = write_disclosure(qinghe, "2025-06", tmp_path / "june", signer, published=date(2025, 7, 5))
    names = sorted(p.name for p in june_paths)
    assert "disclosure-2025-06.json" in names and "disclosure-2025-06.html" in names
    assert "disclosure-2025-06-income-expense.csv" in names and "disclosure-2025-06-balance-sheet.csv" in names
    digest = hashlib.sha256((tmp_path / "june" / "disclosure-2025-06.json").read_bytes()).hexdigest()
    published = [json.loads(n.state) for n in qinghe.notifications((Disclosure.Published.TOPIC,))]
    assert published == [{"period": "2025-06", "published": "2025-07-05", "sha256": digest, "checkpoint_size": None,
                           "timestamp": published[0]["timestamp"]}]
    with pytest.raises(Rejected, match="already published"):
        write_disclosure(qinghe, "2025-06", tmp_path / "again", signer, published=date(2025, 7, 6))
    # Regenerated after July's correction, June's bytes are the published ones.
    write_disclosure(qinghe, "2025-06", tmp_path / "reproduced", None)
    assert (tmp_path / "reproduced" / "disclosure-2025-06.json").read_bytes() == (tmp_path / "june" / "disclosure-2025-06.json").read_bytes()
    csv_text = (tmp_path / "june" / "disclosure-2025-06-income-expense.csv").read_text("utf-8-sig")
    assert csv_text.splitlines()[-1] == ",,,合计,0.00,38580.00,,,,,"


def test_cli_disclose_draft_without_key(qinghe, tmp_path, capsys):
    code = main(["disclose", qinghe.location, "--month", "2025-07", "--out", str(tmp_path / "out")])
    assert code == 0
    doc = json.loads((tmp_path / "out" / "disclosure-2025-07.json").read_text("utf-8"))
    assert (doc["published"], doc["income_expense"]["total_expense"]) == (None, "3000.00")
    assert list(qinghe.notifications((Disclosure.Published.TOPIC,))) == []
    assert main(["disclose", qinghe.location, "--month", "2025-13", "--out", str(tmp_path)]) == 2
    assert "month must be YYYY-MM" in capsys.readouterr().err


def test_cli_disclose_projects_a_new_read_model_with_several_processes(qinghe, tmp_path, capsys, monkeypatch):
    from ledger.projections import readmodel

    monkeypatch.setattr(readmodel, "PARALLEL_FROM_EVENTS", 1)
    monkeypatch.setattr(readmodel, "RANGE_SPAN", 32)
    outputs = {}
    for jobs in ("1", "3"):
        read_model = str(tmp_path / f"rm-{jobs}.sqlite")
        argv = ["disclose", qinghe.location, "--month", "2025-12", "--out", str(tmp_path / jobs), "--read-model", read_model]
        assert main([*argv, "--jobs", jobs]) == 0
        outputs[jobs] = {path.name: path.read_bytes() for path in (tmp_path / jobs).iterdir()}
    assert len(outputs["1"]) > 2 and outputs["3"] == outputs["1"]
    assert main(["disclose", qinghe.location, "--month", "2025-12", "--out", str(tmp_path), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err


def test_published_disclosure_carries_the_cosigned_checkpoint_of_its_month_close(ledger_location, signer, tmp_path):
    from test_checkpoints import Witnesses, import_with_month_closes, new_ledger

    witnesses = Witnesses(tmp_path)
    app = new_ledger(ledger_location, signer)
    try:
        closes = import_with_month_closes(app, witnesses)
        size, note = closes["2025-05"]
        write_disclosure(app, "2025-05", tmp_path / "may", signer, published=date(2025, 6, 5))
        data = (tmp_path / "may" / "disclosure-2025-05.json").read_bytes()
        doc = json.loads(data)
        assert doc["checkpoint"] == {"note": note, "size": size}
        [event] = [json.loads(n.state) for n in app.notifications((Disclosure.Published.TOPIC,))]
        assert (event["period"], event["sha256"], event["checkpoint_size"]) == ("2025-05", hashlib.sha256(data).hexdigest(), size)
        html = (tmp_path / "may" / "disclosure-2025-05.html").read_text("utf-8")
        assert note.splitlines()[0] in html and "<svg" in html and hashlib.sha256(data).hexdigest() in html
    finally:
        app.close()
        witnesses.close()


def test_statements_of_later_years_equal_those_built_from_every_posting_line(ledger_location, signer, tmp_path):
    # Earlier years reach the statements summed per account and detail by the database; the figures must be those
    # of the reports over every line of the history (red-ink reversals, year-end closes and 113's details included).
    from ledger.demo_data import generate_village, write_journal
    from ledger.domain.charts import load_chart
    from ledger.importer import import_journal
    from ledger.projections.balances import balance_sheet, income_statement
    from ledger.projections.readmodel import postings
    from ledger.store.application import LedgerApplication

    journal = tmp_path / "village.jsonl"
    write_journal(generate_village(seed=7, years=3, vouchers_per_year=120, start_year=2021), journal)
    app = LedgerApplication(ledger_location, signer=signer)
    model = None
    try:
        app.create_ledger(origin="ledger.test.example/village/3/v1", name="三年村", chart="2023")
        assert import_journal(app, journal).ok
        model = ReadModel(app.location)
        update_read_model(app, model)
        chart = load_chart("2023")
        for month in ("2021-03", "2022-06", "2023-09", "2023-12"):
            end = date.fromisoformat(month + "-01").replace(day=30 if month[5:] in ("06", "09") else 31)
            statements = build_disclosure(
                model, ledger_info(app, end), month, published=None, checkpoint_note=None, checkpoint_size=None
            )["statements"]
            every_line = list(postings(model, until=end))
            year_start = date(end.year, 1, 1)
            assert statements["balance_sheet"] == balance_sheet(chart, every_line, year_start, end, origin=app.origin).to_dict()
            assert statements["income_statement"] == income_statement(chart, every_line, end.year, origin=app.origin).to_dict()
    finally:
        if model is not None:
            model.close()
        app.close()

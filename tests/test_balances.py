"""Reports over postings, checked against the Qinghe 2025 books (SCENARIOS.md S1, S10.6, S11, Appendix A)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qinghe_expected as qe

from ledger.domain.charts import UnknownAccount, load_chart
from ledger.domain.money import MoneyError
from ledger.projections.balances import (
    BALANCE_SHEET_LINES,
    INCOME_STATEMENT_LINES,
    KINDS,
    LineDef,
    Posting,
    balance_sheet,
    detail_balances,
    general_ledger,
    income_statement,
    trial_balance,
)

# Appendix A in 2023 codes, one voucher per row: "voucher MM-DD kind  debit lines / credit lines", each line
# CODE[:detail]=amount. Kinds: O opening, V voucher, C closing. Departures from the printed appendix, all
# figure-preserving: the 113 lines of 记-202504-002 and 记-202512-007 carry the households named in S5
# (the appendix prints the summary "农户"), and 记-202512-008 closes 501 per sub-account so that the same
# table maps onto the 2004 chart, where contract fees are 511 发包及上交收入.
QINGHE_2025 = """
期初-2025 01-01 O  101=1200.00 102=186000.00 113:王大=5000.00 113:赵二=3000.00 151:村部办公楼=480000.00 151:集体仓库=144000.00 / 152:村部办公楼=144000.00 152:集体仓库=43200.00 211:某建材店=12000.00 301=200000.00 311=400000.00 32202=20000.00
记-202501-001 01-05 V  102=6000.00 / 50102:仓库=6000.00
记-202501-002 01-15 V  102=60000.00 / 503:村级组织运转经费=60000.00
记-202501-003 01-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202501-004 01-25 V  212=3000.00 / 102=3000.00
记-202501-005 01-28 V  513:折旧费=1000.00 / 152=1000.00
记-202501-006 01-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202502-001 02-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202502-002 02-25 V  212=3000.00 / 102=3000.00
记-202502-003 02-28 V  513:折旧费=1000.00 / 152=1000.00
记-202502-004 02-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202503-001 03-15 V  102=12000.00 / 50103:鱼塘=12000.00
记-202503-002 03-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202503-003 03-25 V  212=3000.00 / 102=3000.00
记-202503-004 03-28 V  513:折旧费=1000.00 / 152=1000.00
记-202503-005 03-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202504-001 04-05 V  102=6000.00 / 50102:仓库=6000.00
记-202504-002 04-20 V  102=8000.00 / 113:王大=5000.00 113:赵二=3000.00
记-202504-003 04-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202504-004 04-25 V  212=3000.00 / 102=3000.00
记-202504-005 04-25 V  102=26000.00 / 50103:机动地=26000.00
记-202504-006 04-28 V  513:折旧费=1000.00 / 152=1000.00
记-202504-007 04-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202505-001 05-18 V  101=7000.00 / 102=7000.00
记-202505-002 05-18 V  514:沟渠清淤=6800.00 / 101=6800.00
记-202505-003 05-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202505-004 05-25 V  212=3000.00 / 102=3000.00
记-202505-005 05-28 V  513:折旧费=1000.00 / 152=1000.00
记-202505-006 05-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202506-001 06-12 V  511:误记=580.00 / 102=580.00
记-202506-002 06-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202506-003 06-25 V  212=3000.00 / 102=3000.00
记-202506-004 06-28 V  513:折旧费=1000.00 / 152=1000.00
记-202506-005 06-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202506-006 06-28 V  514:村道修缮=35000.00 / 102=35000.00
记-202507-001 07-05 V  102=6000.00 / 50102:仓库=6000.00
记-202507-002 07-08 V  511:误记=-580.00 / 102=-580.00
记-202507-003 07-08 V  513:办公费=580.00 / 102=580.00
记-202507-004 07-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202507-005 07-25 V  212=3000.00 / 102=3000.00
记-202507-006 07-28 V  513:折旧费=1000.00 / 152=1000.00
记-202507-007 07-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202508-001 08-15 V  211:某建材店=12000.00 / 102=12000.00
记-202508-002 08-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202508-003 08-25 V  212=3000.00 / 102=3000.00
记-202508-004 08-28 V  513:折旧费=1000.00 / 152=1000.00
记-202508-005 08-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202509-001 09-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202509-002 09-25 V  212=3000.00 / 102=3000.00
记-202509-003 09-28 V  513:折旧费=1000.00 / 152=1000.00
记-202509-004 09-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202510-001 10-05 V  102=6000.00 / 50102:仓库=6000.00
记-202510-002 10-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202510-003 10-25 V  212=3000.00 / 102=3000.00
记-202510-004 10-28 V  513:折旧费=1000.00 / 152=1000.00
记-202510-005 10-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202511-001 11-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202511-002 11-25 V  212=3000.00 / 102=3000.00
记-202511-003 11-28 V  513:折旧费=1000.00 / 152=1000.00
记-202511-004 11-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202512-001 12-20 V  513:水电费=4200.00 / 102=4200.00
记-202512-002 12-21 V  102=1150.00 / 504:利息收入=1150.00
记-202512-003 12-25 V  513:干部报酬=3000.00 / 212=3000.00
记-202512-004 12-25 V  212=3000.00 / 102=3000.00
记-202512-005 12-28 V  513:折旧费=1000.00 / 152=1000.00
记-202512-006 12-28 V  511:出租资产折旧=600.00 / 152=600.00
记-202512-007 12-31 V  113:孙三=2500.00 113:周四=1500.00 / 50103:机动地=4000.00
记-202512-008 12-31 C  50102=24000.00 50103=42000.00 503=60000.00 504=1150.00 / 321=127150.00
记-202512-009 12-31 C  321=101780.00 / 511=7200.00 513=52780.00 514=41800.00
记-202512-010 12-31 C  321=25370.00 / 32202=25370.00
记-202512-011 12-31 C  3220101=7611.00 / 311=7611.00
记-202512-012 12-31 C  3220102=14200.00 / 113:成员(应付分红)=14200.00
记-202512-013 12-31 C  32202=21811.00 / 32201=21811.00
"""

# The 2004 code of each 2023 code used above (SCENARIOS.md gives it where it differs).
CODES_2004 = {
    "211": "202",  # 应付款
    "212": "211",  # 应付工资
    "50102": "50103",  # 出租收入 -> 租赁收入
    "50103": "51101",  # 发包收入 -> 发包及上交收入-承包金
    "503": "522",  # 补助收入
    "504": "531",  # 其他收入
    "511": "502",  # 经营支出
    "513": "541",  # 管理费用
    "514": "551",  # 公益支出 -> 其他支出
    "3220102": "3220104",  # 向成员分配 -> 农户分配
}
KIND_LETTERS = {"O": "opening", "V": "voucher", "C": "closing"}


def qinghe_postings(chart: str = "2023") -> list[Posting]:
    postings = []
    for row in QINGHE_2025.strip().splitlines():
        voucher_no, day, kind, lines = row.split(maxsplit=3)
        debits, credits = lines.split(" / ")
        for side, text in (("debit", debits), ("credit", credits)):
            for line in text.split():
                account, amount = line.split("=")
                code, _, detail = account.partition(":")
                if chart == "2004":
                    code = CODES_2004.get(code, code)
                debit, credit = (Decimal(amount), Decimal("0.00"))[:: 1 if side == "debit" else -1]
                postings.append(
                    Posting(chart, code, detail, date(2025, *map(int, day.split("-"))), debit, credit, voucher_no,
                            KIND_LETTERS[kind])
                )
    return postings


CHART_2023 = load_chart("2023")
CHART_2004 = load_chart("2004")
POSTINGS = qinghe_postings("2023")
POSTINGS_2004 = qinghe_postings("2004")
YEAR_START = date(2025, 1, 1)
YEAR_END = date(2025, 12, 31)


def tb(at: date, **kw) -> dict:
    return trial_balance(CHART_2023, POSTINGS, at, origin=qe.ORIGIN, **kw).to_dict()


def test_journal_table_is_appendix_a():
    vouchers = {p.voucher_no for p in POSTINGS if p.kind != "opening"}
    assert len(vouchers) == 72
    movement = [p for p in POSTINGS if p.kind != "opening"]
    assert sum(p.debit for p in movement) == sum(p.credit for p in movement) == Decimal("589852.00")


# --- trial balance -----------------------------------------------------------------------------------------------


def test_opening_trial_balance():
    qe.assert_trial_balance(tb(YEAR_START), qe.TB_OPENING)


@pytest.mark.parametrize("expected", [qe.TB_2025_03_31, qe.TB_2025_06_30], ids=lambda e: e.at)
def test_month_end_trial_balances(expected):
    qe.assert_trial_balance(tb(date.fromisoformat(expected.at)), expected)


def test_year_end_trial_balance_before_closing_entries():
    qe.assert_trial_balance(tb(YEAR_END, include_closing=False), qe.TB_2025_12_31_BEFORE_CLOSE)


def test_year_end_trial_balance_after_close_nets_113_onto_the_credit_column():
    qe.assert_trial_balance(tb(YEAR_END), qe.TB_2025_12_31_AFTER_CLOSE)


def test_2004_chart_gives_the_same_post_close_trial_balance():
    report = trial_balance(CHART_2004, POSTINGS_2004, YEAR_END, origin=qe.ORIGIN).to_dict()
    qe.assert_trial_balance(report, qe.TB_2025_12_31_AFTER_CLOSE_2004)


def test_include_closing_only_drops_closing_postings_dated_on_the_report_date():
    # Earlier closing entries stay: a report dated after the close is no longer "before closing".
    assert tb(date(2026, 1, 1), include_closing=False) == {**tb(date(2026, 1, 1)), "at": "2026-01-01"}
    assert tb(date(2026, 1, 1))["total_debit"] == "847770.00"


def test_trial_balance_json_text_and_csv():
    report = trial_balance(CHART_2023, POSTINGS, YEAR_END, origin=qe.ORIGIN)
    assert json.loads(report.to_json()) == report.to_dict()
    assert '"name": "库存现金"' in report.to_json()  # Chinese names stay readable, not \u-escaped
    assert report.to_csv().splitlines() == [
        "code,name,debit,credit",
        "101,库存现金,1400.00,0.00",
        "102,银行存款,222370.00,0.00",
        "113,内部往来,0.00,10200.00",
        "151,固定资产,624000.00,0.00",
        "152,累计折旧,0.00,206400.00",
        "301,资本,0.00,200000.00",
        "311,公积公益金,0.00,407611.00",
        "322,收益分配,0.00,23559.00",
        ",合计,847770.00,847770.00",
    ]


# --- balance sheet -----------------------------------------------------------------------------------------------


def test_opening_balance_sheet():
    sheet = balance_sheet(CHART_2023, POSTINGS, YEAR_START, YEAR_START, origin=qe.ORIGIN)
    qe.assert_opening_balance_sheet(sheet.to_dict())


@pytest.mark.parametrize("chart", ["2023", "2004"])
def test_year_end_balance_sheet_uses_113_details(chart):
    charts = {"2023": (CHART_2023, POSTINGS), "2004": (CHART_2004, POSTINGS_2004)}
    sheet = balance_sheet(*charts[chart], YEAR_START, YEAR_END, origin=qe.ORIGIN)
    qe.assert_balance_sheet(sheet.to_dict(), qe.BS_2025_12_31[chart], at="2025-12-31", chart=chart)


def test_balance_sheet_before_the_close_still_balances():
    # P&L not yet closed into 321 counts as undistributed income: 20,000 brought forward + 40,020 so far.
    sheet = balance_sheet(CHART_2023, POSTINGS, YEAR_START, date(2025, 6, 30))
    assert sheet.balanced
    assert sheet["undistributed_income"].end == Decimal("60020.00")
    assert sheet["total_assets"].end == Decimal("672020.00")


def test_balance_sheet_csv_and_json():
    sheet = balance_sheet(CHART_2023, POSTINGS, YEAR_START, YEAR_END, origin=qe.ORIGIN)
    rows = list(csv.DictReader(io.StringIO(sheet.to_csv())))
    assert rows[0] == {"section": "assets", "key": "monetary_funds", "name": "货币资金", "name_en": "Monetary funds",
                       "start": "187200.00", "end": "223770.00"}
    assert rows[-1]["key"] == "total_liabilities_and_equity"
    assert len(rows) == len(sheet.lines)
    assert json.loads(sheet.to_json())["ledger"] == qe.ORIGIN


@pytest.mark.parametrize("version", ["2004", "2023"])
def test_every_account_lands_on_exactly_one_balance_sheet_line(version):
    chart = load_chart(version)
    terms = [
        term
        for lines in BALANCE_SHEET_LINES[version].values()
        for line in lines
        for term in line.formula.split()[::2]
        if not term.startswith("@")
    ]
    expected = [a.code for a in chart.top_level_accounts()]
    expected.append("113")  # once for its debit details, once for its credit details
    assert sorted(term.rpartition(":")[2] for term in terms) == sorted(expected)
    assert {term.rpartition(":")[0] for term in terms if "113" in term} == {"debit_details", "credit_details"}


# --- income statement --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chart", ["2023", "2004"])
def test_income_statement(chart):
    charts = {"2023": (CHART_2023, POSTINGS), "2004": (CHART_2004, POSTINGS_2004)}
    statement = income_statement(*charts[chart], 2025, origin=qe.ORIGIN)
    qe.assert_income_statement(statement.to_dict(), chart)
    assert statement.to_csv().splitlines()[-1].endswith(",23559.00")


def test_income_statement_is_the_same_before_the_close():
    # Activity comes from the vouchers; the closing transfers neither add nor cancel it.
    before = [p for p in POSTINGS if p.kind != "closing"]
    statement = income_statement(CHART_2023, before, 2025)
    assert statement["net_income"].amount == Decimal("25370.00")
    assert statement["to_members"].amount == Decimal("0.00")
    assert statement["undistributed_at_end"].amount == Decimal("45370.00")


def test_next_year_opens_with_the_distributed_result():
    statement = income_statement(CHART_2023, POSTINGS, 2026)
    assert statement["undistributed_at_start"].amount == Decimal("23559.00")
    assert statement["net_income"].amount == Decimal("0.00")


def test_other_transfers_in_and_other_distributions():
    extra = [
        Posting("2023", "311", "", YEAR_END, Decimal("1000.00"), Decimal("0.00"), "记-X-1", "closing"),
        Posting("2023", "32202", "", YEAR_END, Decimal("0.00"), Decimal("1000.00"), "记-X-1", "closing"),
        Posting("2023", "3220103", "", YEAR_END, Decimal("300.00"), Decimal("0.00"), "记-X-2", "closing"),
        Posting("2023", "32201", "", YEAR_END, Decimal("200.00"), Decimal("0.00"), "记-X-3", "closing"),
        Posting("2023", "211", "", YEAR_END, Decimal("0.00"), Decimal("500.00"), "记-X-2", "closing"),
    ]
    statement = income_statement(CHART_2023, POSTINGS + extra, 2025)
    assert statement["other_transfers_in"].amount == Decimal("1000.00")
    assert statement["distributable_income"].amount == Decimal("46370.00")
    assert statement["other_distributions"].amount == Decimal("500.00")
    assert statement["undistributed_at_end"].amount == Decimal("24059.00")


# --- general ledger and details ----------------------------------------------------------------------------------


def test_general_ledger_of_the_bank_in_january():
    ledger = general_ledger(CHART_2023, POSTINGS, "102", YEAR_START, date(2025, 1, 31))
    assert ledger.opening == Decimal("186000.00")
    assert [(e.voucher_no, e.debit, e.credit, e.balance) for e in ledger.entries] == [
        ("记-202501-001", Decimal("6000.00"), Decimal("0.00"), Decimal("192000.00")),
        ("记-202501-002", Decimal("60000.00"), Decimal("0.00"), Decimal("252000.00")),
        ("记-202501-004", Decimal("0.00"), Decimal("3000.00"), Decimal("249000.00")),
    ]
    assert ledger.closing == Decimal("249000.00")


def test_general_ledger_follows_sub_accounts_red_ink_and_the_close():
    ledger = general_ledger(CHART_2023, POSTINGS, "511", YEAR_START, YEAR_END)
    balances = {e.voucher_no: e.balance for e in ledger.entries}
    assert len(ledger.entries) == 15  # 12 depreciation, the error, its red reversal, the closing transfer
    assert balances["记-202506-005"] == Decimal("4180.00")
    assert balances["记-202507-002"] == Decimal("3600.00")
    assert balances["记-202512-006"] == Decimal("7200.00")
    assert (ledger.entries[-1].voucher_no, ledger.closing) == ("记-202512-009", Decimal("0.00"))
    payload = ledger.to_dict()
    assert payload["opening"] == "0.00" and payload["closing"] == "0.00"
    assert ledger.to_csv().splitlines()[1] == "2025-01-01,,,期初余额,,,0.00"


def test_general_ledger_of_a_credit_account_runs_on_the_credit_side():
    ledger = general_ledger(CHART_2023, POSTINGS, "152", YEAR_START, YEAR_END)
    assert (ledger.opening, ledger.closing) == (Decimal("187200.00"), Decimal("206400.00"))


def test_detail_balances_of_113():
    details = detail_balances(CHART_2023, POSTINGS, "113", YEAR_END)
    assert {k: str(v) for k, v in details.items()} == qe.DETAILS_113_2025_12_31
    assert detail_balances(CHART_2023, POSTINGS, "113", date(2025, 6, 30)) == {}
    assert detail_balances(CHART_2023, POSTINGS, "113", YEAR_START) == {
        "王大": Decimal("5000.00"),
        "赵二": Decimal("3000.00"),
    }


# --- input checks ------------------------------------------------------------------------------------------------


def test_posting_refuses_unknown_kind_and_non_decimal_amounts():
    with pytest.raises(ValueError, match="kind"):
        Posting("2023", "101", "", YEAR_START, Decimal("1.00"), Decimal("0.00"), "v", "adjustment")
    with pytest.raises(MoneyError):
        Posting("2023", "101", "", YEAR_START, 1.0, Decimal("0.00"), "v", "voucher")
    with pytest.raises(MoneyError):
        Posting("2023", "101", "", YEAR_START, Decimal("0.001"), Decimal("0.00"), "v", "voucher")
    whole = Posting("2023", "101", "", YEAR_START, Decimal("5"), Decimal("0"), "v", "voucher")
    assert (str(whole.debit), str(whole.credit)) == ("5.00", "0.00")


def test_reports_refuse_postings_of_another_chart_or_unknown_accounts():
    with pytest.raises(ValueError, match="chart 2004"):
        trial_balance(CHART_2023, POSTINGS_2004, YEAR_END, origin=qe.ORIGIN)
    stray = Posting("2023", "999", "", YEAR_START, Decimal("1.00"), Decimal("0.00"), "v", "voucher")
    with pytest.raises(UnknownAccount):
        balance_sheet(CHART_2023, [stray], YEAR_START, YEAR_END)


@pytest.mark.parametrize("version", ["2004", "2023"])
def test_line_formulas_name_real_accounts(version):
    chart = load_chart(version)
    lines = [*(line for lines in BALANCE_SHEET_LINES[version].values() for line in lines),
             *INCOME_STATEMENT_LINES[version]]
    for line in lines:
        for term in line.formula.split()[::2]:
            if not term.startswith("@"):
                assert term.rpartition(":")[2] in chart, (line.key, term)
        assert re.fullmatch(r"[a-z_]+", line.key)


@pytest.mark.parametrize(
    "formula, error",
    [("101 +", "malformed"), ("101 * 102", "expected \\+ or -"), ("@later", "not an earlier line"),
     ("opening:101", "unknown balance-sheet measure")],
)
def test_malformed_line_definitions_are_refused(monkeypatch, formula, error):
    broken = {"assets": (LineDef("broken", "坏", "Broken", formula),), "liabilities_and_equity": ()}
    monkeypatch.setitem(BALANCE_SHEET_LINES, "2023", broken)
    with pytest.raises(ValueError, match=error):
        balance_sheet(CHART_2023, POSTINGS, YEAR_START, YEAR_END)


# --- properties ----------------------------------------------------------------------------------------------------

AMOUNTS = st.decimals(min_value=Decimal("-99999.99"), max_value=Decimal("99999.99"), places=2)
DATES = st.dates(min_value=date(2024, 12, 31), max_value=date(2025, 12, 31))


@st.composite
def balanced_journal(draw, version: str) -> list[Posting]:
    """Vouchers whose lines balance, over every account of the chart (sub-accounts too), red ink included."""
    codes = sorted(load_chart(version).accounts)
    postings = []
    for number in range(draw(st.integers(0, 12))):
        day, kind = draw(DATES), draw(st.sampled_from(KINDS))
        lines = [(draw(st.sampled_from(codes)), draw(st.sampled_from(["", "甲", "乙"])), draw(AMOUNTS))
                 for _ in range(draw(st.integers(1, 4)))]
        offset = draw(st.sampled_from(codes))
        total = sum((amount for _, _, amount in lines), Decimal("0.00"))
        for code, detail, amount in lines:
            postings.append(Posting(version, code, detail, day, amount, Decimal("0.00"), f"v{number}", kind))
        postings.append(Posting(version, offset, draw(st.sampled_from(["", "甲"])), day, Decimal("0.00"), total,
                                f"v{number}", kind))
    return postings


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(["2004", "2023"]), at=DATES, include_closing=st.booleans())
def test_trial_balance_of_balanced_postings_balances(data, version, at, include_closing):
    postings = data.draw(balanced_journal(version))
    report = trial_balance(load_chart(version), postings, at, origin="o", include_closing=include_closing)
    assert report.total_debit == report.total_credit
    assert all((row.debit == 0) != (row.credit == 0) for row in report.rows)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), version=st.sampled_from(["2004", "2023"]), at=DATES)
def test_balance_sheet_of_balanced_postings_balances(data, version, at):
    postings = data.draw(balanced_journal(version))
    sheet = balance_sheet(load_chart(version), postings, YEAR_START, at)
    assert sheet.balanced

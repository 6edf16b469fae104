"""Expected Qinghe 2025 report figures (SCENARIOS.md S1, S10.6, S11) and assertion helpers.

Shared by the projection unit tests and the import integration tests: every helper takes a report in its
JSON form (`report.to_dict()` or the parsed CLI output), so both paths are held to the same exact strings.
"""

from __future__ import annotations

from dataclasses import dataclass

ORIGIN = "qinghe.example/ledger"
YEAR = 2025
YEAR_START = "2025-01-01"


@dataclass(frozen=True)
class ExpectedTrialBalance:
    """A trial balance as INTERFACE.md prints it: (code, name, debit, credit) rows and the common total."""

    at: str
    chart: str
    accounts: tuple[tuple[str, str, str, str], ...]
    total: str


TB_OPENING = ExpectedTrialBalance(  # S1
    "2025-01-01",
    "2023",
    (
        ("101", "库存现金", "1200.00", "0.00"),
        ("102", "银行存款", "186000.00", "0.00"),
        ("113", "内部往来", "8000.00", "0.00"),
        ("151", "固定资产", "624000.00", "0.00"),
        ("152", "累计折旧", "0.00", "187200.00"),
        ("211", "应付款", "0.00", "12000.00"),
        ("301", "资本", "0.00", "200000.00"),
        ("311", "公积公益金", "0.00", "400000.00"),
        ("322", "收益分配", "0.00", "20000.00"),
    ),
    "819200.00",
)

TB_2025_03_31 = ExpectedTrialBalance(  # S10.6
    "2025-03-31",
    "2023",
    (
        ("101", "库存现金", "1200.00", "0.00"),
        ("102", "银行存款", "255000.00", "0.00"),
        ("113", "内部往来", "8000.00", "0.00"),
        ("151", "固定资产", "624000.00", "0.00"),
        ("152", "累计折旧", "0.00", "192000.00"),
        ("211", "应付款", "0.00", "12000.00"),
        ("301", "资本", "0.00", "200000.00"),
        ("311", "公积公益金", "0.00", "400000.00"),
        ("322", "收益分配", "0.00", "20000.00"),
        ("501", "经营收入", "0.00", "18000.00"),
        ("503", "补助收入", "0.00", "60000.00"),
        ("511", "经营支出", "1800.00", "0.00"),
        ("513", "管理费用", "12000.00", "0.00"),
    ),
    "902000.00",
)

TB_2025_06_30 = ExpectedTrialBalance(  # S10.6; 511 still holds the 580 reversed in July
    "2025-06-30",
    "2023",
    (
        ("101", "库存现金", "1400.00", "0.00"),
        ("102", "银行存款", "243420.00", "0.00"),
        ("151", "固定资产", "624000.00", "0.00"),
        ("152", "累计折旧", "0.00", "196800.00"),
        ("211", "应付款", "0.00", "12000.00"),
        ("301", "资本", "0.00", "200000.00"),
        ("311", "公积公益金", "0.00", "400000.00"),
        ("322", "收益分配", "0.00", "20000.00"),
        ("501", "经营收入", "0.00", "50000.00"),
        ("503", "补助收入", "0.00", "60000.00"),
        ("511", "经营支出", "4180.00", "0.00"),
        ("513", "管理费用", "24000.00", "0.00"),
        ("514", "公益支出", "41800.00", "0.00"),
    ),
    "938800.00",
)

TB_2025_12_31_BEFORE_CLOSE = ExpectedTrialBalance(  # S10.6
    "2025-12-31",
    "2023",
    (
        ("101", "库存现金", "1400.00", "0.00"),
        ("102", "银行存款", "222370.00", "0.00"),
        ("113", "内部往来", "4000.00", "0.00"),
        ("151", "固定资产", "624000.00", "0.00"),
        ("152", "累计折旧", "0.00", "206400.00"),
        ("301", "资本", "0.00", "200000.00"),
        ("311", "公积公益金", "0.00", "400000.00"),
        ("322", "收益分配", "0.00", "20000.00"),
        ("501", "经营收入", "0.00", "66000.00"),
        ("503", "补助收入", "0.00", "60000.00"),
        ("504", "其他收入", "0.00", "1150.00"),
        ("511", "经营支出", "7200.00", "0.00"),
        ("513", "管理费用", "52780.00", "0.00"),
        ("514", "公益支出", "41800.00", "0.00"),
    ),
    "953550.00",
)

TB_2025_12_31_AFTER_CLOSE = ExpectedTrialBalance(  # S11; 113 nets to credit (details: Dr 4,000 / Cr 14,200)
    "2025-12-31",
    "2023",
    (
        ("101", "库存现金", "1400.00", "0.00"),
        ("102", "银行存款", "222370.00", "0.00"),
        ("113", "内部往来", "0.00", "10200.00"),
        ("151", "固定资产", "624000.00", "0.00"),
        ("152", "累计折旧", "0.00", "206400.00"),
        ("301", "资本", "0.00", "200000.00"),
        ("311", "公积公益金", "0.00", "407611.00"),
        ("322", "收益分配", "0.00", "23559.00"),
    ),
    "847770.00",
)

TB_2025_12_31_AFTER_CLOSE_2004 = ExpectedTrialBalance(  # S11 on a 2004-chart ledger: same codes, 2004 names
    "2025-12-31",
    "2004",
    (
        ("101", "现金", "1400.00", "0.00"),
        ("102", "银行存款", "222370.00", "0.00"),
        ("113", "内部往来", "0.00", "10200.00"),
        ("151", "固定资产", "624000.00", "0.00"),
        ("152", "累计折旧", "0.00", "206400.00"),
        ("301", "资本", "0.00", "200000.00"),
        ("311", "公积公益金", "0.00", "407611.00"),
        ("322", "收益分配", "0.00", "23559.00"),
    ),
    "847770.00",
)


def assert_trial_balance(report: dict, expected: ExpectedTrialBalance, *, origin: str = ORIGIN) -> None:
    """The whole report object must match, row by row and key by key."""
    assert report == {
        "ledger": origin,
        "at": expected.at,
        "chart": expected.chart,
        "accounts": [
            {"code": code, "name": name, "debit": debit, "credit": credit}
            for code, name, debit, credit in expected.accounts
        ],
        "total_debit": expected.total,
        "total_credit": expected.total,
    }


# Balance sheet lines that are not zero, key -> (年初, 年末); every other line must be 0.00 in both columns.
_BS_COMMON = {
    "monetary_funds": ("187200.00", "223770.00"),
    "receivables": ("8000.00", "4000.00"),  # 113 debit details only, never the net
    "total_current_assets": ("195200.00", "227770.00"),
    "fixed_assets_cost": ("624000.00", "624000.00"),
    "accumulated_depreciation": ("187200.00", "206400.00"),
    "fixed_assets_net": ("436800.00", "417600.00"),
    "total_assets": ("632000.00", "645370.00"),
    "payables": ("12000.00", "14200.00"),  # 211 (2004: 202) 0 + 113 credit details 14,200
    "total_current_liabilities": ("12000.00", "14200.00"),
    "total_liabilities": ("12000.00", "14200.00"),
    "capital": ("200000.00", "200000.00"),
    "reserve_fund": ("400000.00", "407611.00"),
    "undistributed_income": ("20000.00", "23559.00"),
    "total_equity": ("620000.00", "631170.00"),
    "total_liabilities_and_equity": ("632000.00", "645370.00"),
}
BS_2025_12_31 = {"2023": {**_BS_COMMON, "total_non_current_assets": ("436800.00", "417600.00")},
                 "2004": {**_BS_COMMON, "total_fixed_assets": ("436800.00", "417600.00")}}

# S1 opening balance sheet, key -> amount (both columns when drawn at the opening date).
BS_OPENING = {
    "monetary_funds": "187200.00",
    "receivables": "8000.00",
    "fixed_assets_cost": "624000.00",
    "accumulated_depreciation": "187200.00",
    "fixed_assets_net": "436800.00",
    "total_assets": "632000.00",
    "payables": "12000.00",
    "capital": "200000.00",
    "reserve_fund": "400000.00",
    "undistributed_income": "20000.00",
    "total_liabilities_and_equity": "632000.00",
}


def assert_balance_sheet(report: dict, nonzero: dict[str, tuple[str, str]], *, at: str, chart: str) -> None:
    """Lines named in `nonzero` carry exactly those (年初, 年末) figures; all other lines are zero."""
    assert (report["chart"], report["year_start"], report["at"], report["balanced"]) == (chart, YEAR_START, at, True)
    actual = {line["key"]: (line["start"], line["end"]) for line in report["lines"]}
    assert set(nonzero) <= set(actual)
    assert actual == {key: nonzero.get(key, ("0.00", "0.00")) for key in actual}


def assert_opening_balance_sheet(report: dict) -> None:
    """S1: the listed lines in both columns; the subtotals they imply are checked through the totals."""
    lines = {line["key"]: line for line in report["lines"]}
    assert report["balanced"] is True
    for key, amount in BS_OPENING.items():
        assert (lines[key]["start"], lines[key]["end"]) == (amount, amount), key


# 收益及收益分配表 2025 (S11): (key, name, amount) in layout order.
INCOME_STATEMENT_2025 = {
    "2004": (
        ("operating_revenue", "经营收入", "24000.00"),
        ("contracting_revenue", "发包及上交收入", "42000.00"),
        ("investment_income", "投资收益", "0.00"),
        ("operating_expenditure", "经营支出", "7200.00"),
        ("administrative_expenses", "管理费用", "52780.00"),
        ("operating_income", "经营收益", "6020.00"),
        ("agricultural_tax_rebate", "农业税附加返还收入", "0.00"),
        ("subsidy_income", "补助收入", "60000.00"),
        ("other_income", "其他收入", "1150.00"),
        ("other_expenditure", "其他支出", "41800.00"),
        ("income_for_year", "本年收益", "25370.00"),
        ("undistributed_at_start", "年初未分配收益", "20000.00"),
        ("other_transfers_in", "其他转入", "0.00"),
        ("distributable_income", "可分配收益", "45370.00"),
        ("to_reserve_fund", "提取公积公益金", "7611.00"),
        ("to_welfare_fund", "提取应付福利费", "0.00"),
        ("to_outside_investors", "外来投资分利", "0.00"),
        ("to_households", "农户分配", "14200.00"),
        ("other_distributions", "其他", "0.00"),
        ("undistributed_at_end", "年末未分配收益", "23559.00"),
    ),
    "2023": (
        ("operating_revenue", "经营收入", "66000.00"),
        ("operating_expenditure", "经营支出", "7200.00"),
        ("taxes_and_surcharges", "税金及附加", "0.00"),
        ("administrative_expenses", "管理费用", "52780.00"),
        ("investment_income", "投资收益", "0.00"),
        ("operating_income", "经营收益", "6020.00"),
        ("subsidy_income", "补助收入", "60000.00"),
        ("other_income", "其他收入", "1150.00"),
        ("public_welfare_expenditure", "公益支出", "41800.00"),
        ("other_expenditure", "其他支出", "0.00"),
        ("total_income", "收益总额", "25370.00"),
        ("income_tax", "所得税费用", "0.00"),
        ("net_income", "净收益", "25370.00"),
        ("undistributed_at_start", "年初未分配收益", "20000.00"),
        ("other_transfers_in", "其他转入", "0.00"),
        ("distributable_income", "可分配收益", "45370.00"),
        ("to_reserve_fund", "提取公积公益金", "7611.00"),
        ("to_members", "向成员分配", "14200.00"),
        ("other_distributions", "其他", "0.00"),
        ("undistributed_at_end", "年末未分配收益", "23559.00"),
    ),
}


def assert_income_statement(report: dict, chart: str) -> None:
    """Every line of the layout, in order, with its exact amount."""
    assert (report["chart"], report["year"]) == (chart, YEAR)
    actual = [(line["key"], line["name"], line["amount"]) for line in report["lines"]]
    assert actual == list(INCOME_STATEMENT_2025[chart])


# 113 内部往来 detail balances at 2025-12-31 after close, on its (debit) normal side: claims on 孙三 and 周四,
# the members' dividend owed by the collective (S5, S11, S12 handover list).
DETAILS_113_2025_12_31 = {"周四": "1500.00", "孙三": "2500.00", "成员(应付分红)": "-14200.00"}

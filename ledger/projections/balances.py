"""Reports over postings: trial balance (科目余额表), balance sheet (资产负债表), income statement
(收益及收益分配表), general ledger (总账/明细账) and detail balances (明细余额).

Every function takes a Chart and an iterable of Posting and never reads the store (docs/ARCHITECTURE.md,
"Postings seam"). Amounts stay Decimal with two places throughout.

Statement lines are data: per chart version a table of LineDef(key, name_zh, name_en, formula). A formula is
terms joined by " + " and " - " (spaces required):

    @key            the value of an earlier line of the same statement (subtotals, totals)
    CODE            the account's figure on its own normal side, sub-accounts included:
                      balance sheet     -> its balance at the column's date;
                      income statement  -> the year's activity, opening and closing postings left out
    measure:CODE    a named measure of the account, sub-accounts included:
                      balance sheet     -> debit_details / credit_details: the sum of the debit / credit
                                           balances of its detail accounts (113 内部往来, DOMAIN.md §1.1)
                      income statement  -> debits: the year's debit activity, closing postings included
                                           (distributions are booked in the close);
                                           closing_debits: debit activity of closing postings only;
                                           opening: balance as at the year's opening
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from ledger.domain.charts import DEBIT, Account, Chart
from ledger.domain.money import ZERO, format_amount, money

OPENING = "opening"
VOUCHER = "voucher"
CLOSING = "closing"
KINDS = (OPENING, VOUCHER, CLOSING)


@dataclass(frozen=True, slots=True)
class Posting:
    """One voucher line (or opening balance) as it hits one account; red-ink lines carry negative amounts."""

    chart: str
    code: str
    detail: str
    date: dt.date
    debit: Decimal
    credit: Decimal
    voucher_no: str
    kind: str  # OPENING, VOUCHER or CLOSING (a year-end transfer into 321/322 or a distribution)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"posting kind must be one of {', '.join(KINDS)}: {self.kind!r}")
        object.__setattr__(self, "debit", money(self.debit))
        object.__setattr__(self, "credit", money(self.credit))

    @property
    def net(self) -> Decimal:
        """Debit minus credit."""
        return self.debit - self.credit

    @classmethod
    def stored(
        cls, chart: str, code: str, detail: str, date: dt.date, debit: Decimal, credit: Decimal, voucher_no: str,
        kind: str,
    ) -> Posting:
        """A posting of a stored event, whose amounts were checked as two-place money before it was signed.

        Skipping the re-check of __post_init__ makes a report over the whole log several times cheaper; anything
        not read back from the ledger's own events must be built the ordinary way.
        """
        posting = _new_object(cls)
        _set_chart(posting, chart)
        _set_code(posting, code)
        _set_detail(posting, detail)
        _set_date(posting, date)
        _set_debit(posting, debit)
        _set_credit(posting, credit)
        _set_voucher_no(posting, voucher_no)
        _set_kind(posting, kind)
        return posting


_new_object = object.__new__
# The slots' own setters: a frozen dataclass refuses attribute assignment but not its member descriptors.
_set_chart, _set_code, _set_detail, _set_date, _set_debit, _set_credit, _set_voucher_no, _set_kind = (
    getattr(Posting, name).__set__ for name in ("chart", "code", "detail", "date", "debit", "credit", "voucher_no", "kind")
)


@dataclass(frozen=True, slots=True)
class LineDef:
    """Definition of one statement line; the formula syntax is in the module docstring."""

    key: str
    name_zh: str
    name_en: str
    formula: str


# ---------------------------------------------------------------------------------------------------------------
# Line definitions. 2004: DOMAIN.md §2.2 / §2.3 (subtotal layout [U]); 2023: same structure with the 2023 codes
# (DOMAIN.md §2.4, skeleton [U]). Optional 2004 accounts (161, 171, 241) get their own lines and 未分配收益 takes
# P&L accounts not yet closed into 321, so that every account lands on exactly one line and the sheet balances
# on any date, not only after the year-end close.

ASSETS = "assets"
LIABILITIES_AND_EQUITY = "liabilities_and_equity"

_FIXED_ASSETS = (
    LineDef("fixed_assets_cost", "固定资产原价", "Fixed assets at cost", "151"),
    LineDef("accumulated_depreciation", "减：累计折旧", "Less: accumulated depreciation", "152"),
    LineDef("fixed_assets_net", "固定资产净值", "Fixed assets, net", "@fixed_assets_cost - @accumulated_depreciation"),
)
_EQUITY_HEAD = (
    LineDef("capital", "资本", "Capital", "301"),
    LineDef("reserve_fund", "公积公益金", "Accumulation and public-welfare fund", "311"),
)
_EQUITY_TAIL = (
    LineDef("total_equity", "所有者权益合计", "Total owners' equity", "@capital + @reserve_fund + @undistributed_income"),
    LineDef(
        "total_liabilities_and_equity",
        "负债和所有者权益总计",
        "Total liabilities and owners' equity",
        "@total_liabilities + @total_equity",
    ),
)

BALANCE_SHEET_LINES: dict[str, dict[str, tuple[LineDef, ...]]] = {
    "2004": {
        ASSETS: (
            LineDef("monetary_funds", "货币资金", "Monetary funds", "101 + 102"),
            LineDef("short_term_investments", "短期投资", "Short-term investments", "111"),
            LineDef("receivables", "应收款项", "Receivables", "112 + debit_details:113"),
            LineDef("inventories", "存货", "Inventories", "121 + 401"),
            LineDef(
                "total_current_assets",
                "流动资产合计",
                "Total current assets",
                "@monetary_funds + @short_term_investments + @receivables + @inventories",
            ),
            LineDef("livestock", "牲畜（禽）资产", "Livestock and poultry", "131"),
            LineDef("forest", "林木资产", "Forest assets", "132"),
            LineDef("total_agricultural_assets", "农业资产合计", "Total agricultural assets", "@livestock + @forest"),
            LineDef("long_term_investments", "长期投资", "Long-term investments", "141"),
            LineDef("funds_allocated", "拨付所属单位资金", "Funds allocated to subordinate units", "171"),
            *_FIXED_ASSETS,
            LineDef("fixed_assets_disposal", "固定资产清理", "Fixed assets in disposal", "153"),
            LineDef("construction_in_progress", "在建工程", "Construction in progress", "154"),
            LineDef(
                "total_fixed_assets",
                "固定资产合计",
                "Total fixed assets",
                "@fixed_assets_net + @fixed_assets_disposal + @construction_in_progress",
            ),
            LineDef("intangible_assets", "无形资产", "Intangible assets", "161"),
            LineDef(
                "total_assets",
                "资产总计",
                "Total assets",
                "@total_current_assets + @total_agricultural_assets + @long_term_investments + @funds_allocated"
                " + @total_fixed_assets + @intangible_assets",
            ),
        ),
        LIABILITIES_AND_EQUITY: (
            LineDef("short_term_borrowings", "短期借款", "Short-term borrowings", "201"),
            LineDef("payables", "应付款项", "Payables", "202 + credit_details:113"),
            LineDef("wages_payable", "应付工资", "Wages payable", "211"),
            LineDef("welfare_payable", "应付福利费", "Welfare fund payable", "212"),
            LineDef(
                "total_current_liabilities",
                "流动负债合计",
                "Total current liabilities",
                "@short_term_borrowings + @payables + @wages_payable + @welfare_payable",
            ),
            LineDef("long_term_borrowings", "长期借款及应付款", "Long-term borrowings and payables", "221"),
            LineDef("levy_funds", "一事一议资金", "One-matter-one-discussion funds", "231"),
            LineDef("special_payables", "专项应付款", "Special-purpose payables", "241"),
            LineDef(
                "total_long_term_liabilities",
                "长期负债合计",
                "Total long-term liabilities",
                "@long_term_borrowings + @levy_funds + @special_payables",
            ),
            LineDef(
                "total_liabilities",
                "负债合计",
                "Total liabilities",
                "@total_current_liabilities + @total_long_term_liabilities",
            ),
            *_EQUITY_HEAD,
            LineDef(
                "undistributed_income",
                "未分配收益",
                "Undistributed income",
                "321 + 322 + 501 + 511 + 521 + 522 + 531 + 561 - 502 - 541 - 551",
            ),
            *_EQUITY_TAIL,
        ),
    },
    "2023": {
        ASSETS: (
            LineDef("monetary_funds", "货币资金", "Monetary funds", "101 + 102"),
            LineDef("short_term_investments", "短期投资", "Short-term investments", "111"),
            LineDef("receivables", "应收款项", "Receivables", "112 + debit_details:113"),
            LineDef("inventories", "存货", "Inventories", "121 + 401"),
            LineDef("consumable_biological_assets", "消耗性生物资产", "Consumable biological assets", "131"),
            LineDef(
                "total_current_assets",
                "流动资产合计",
                "Total current assets",
                "@monetary_funds + @short_term_investments + @receivables + @inventories"
                " + @consumable_biological_assets",
            ),
            LineDef("long_term_investments", "长期投资", "Long-term investments", "141"),
            LineDef(
                "productive_biological_assets_cost",
                "生产性生物资产原价",
                "Productive biological assets at cost",
                "132",
            ),
            LineDef(
                "productive_biological_assets_depreciation",
                "减：生产性生物资产累计折旧",
                "Less: accumulated depreciation of productive biological assets",
                "133",
            ),
            LineDef(
                "productive_biological_assets_net",
                "生产性生物资产净值",
                "Productive biological assets, net",
                "@productive_biological_assets_cost - @productive_biological_assets_depreciation",
            ),
            LineDef("public_welfare_biological_assets", "公益性生物资产", "Public-welfare biological assets", "134"),
            *_FIXED_ASSETS,
            LineDef("construction_in_progress", "在建工程", "Construction in progress", "153"),
            LineDef("fixed_assets_disposal", "固定资产清理", "Fixed assets in disposal", "154"),
            LineDef("intangible_assets", "无形资产", "Intangible assets, net of amortisation", "161 - 162"),
            LineDef("long_term_deferred_expenses", "长期待摊费用", "Long-term deferred expenses", "171"),
            LineDef("assets_pending_disposal", "待处理财产损溢", "Assets pending disposal", "181"),
            LineDef(
                "total_non_current_assets",
                "非流动资产合计",
                "Total non-current assets",
                "@long_term_investments + @productive_biological_assets_net + @public_welfare_biological_assets"
                " + @fixed_assets_net + @construction_in_progress + @fixed_assets_disposal + @intangible_assets"
                " + @long_term_deferred_expenses + @assets_pending_disposal",
            ),
            LineDef("total_assets", "资产总计", "Total assets", "@total_current_assets + @total_non_current_assets"),
        ),
        LIABILITIES_AND_EQUITY: (
            LineDef("short_term_borrowings", "短期借款", "Short-term borrowings", "201"),
            LineDef("payables", "应付款项", "Payables", "211 + credit_details:113"),
            LineDef("wages_payable", "应付工资", "Wages payable", "212"),
            LineDef("labour_fees_payable", "应付劳务费", "Labour-service fees payable", "213"),
            LineDef("taxes_payable", "应交税费", "Taxes payable", "214"),
            LineDef(
                "total_current_liabilities",
                "流动负债合计",
                "Total current liabilities",
                "@short_term_borrowings + @payables + @wages_payable + @labour_fees_payable + @taxes_payable",
            ),
            LineDef("long_term_borrowings", "长期借款及应付款", "Long-term borrowings and payables", "221"),
            LineDef("levy_funds", "一事一议资金", "One-matter-one-discussion funds", "231"),
            LineDef("special_payables", "专项应付款", "Special-purpose payables", "241"),
            LineDef(
                "total_non_current_liabilities",
                "非流动负债合计",
                "Total non-current liabilities",
                "@long_term_borrowings + @levy_funds + @special_payables",
            ),
            LineDef(
                "total_liabilities",
                "负债合计",
                "Total liabilities",
                "@total_current_liabilities + @total_non_current_liabilities",
            ),
            *_EQUITY_HEAD,
            LineDef(
                "undistributed_income",
                "未分配收益",
                "Undistributed income",
                "321 + 322 + 501 + 502 + 503 + 504 - 511 - 512 - 513 - 514 - 515 - 521",
            ),
            *_EQUITY_TAIL,
        ),
    },
}

_DISTRIBUTION_HEAD = (
    LineDef("undistributed_at_start", "年初未分配收益", "Undistributed income at start of year", "opening:322"),
    # 公积公益金 used to cover a loss is moved into 322 by a closing voucher (DOMAIN.md §2.3 其他转入).
    LineDef("other_transfers_in", "其他转入", "Other transfers in", "closing_debits:311"),
)


def _distribution(income_line: str, shares: tuple[LineDef, ...], other_formula: str) -> tuple[LineDef, ...]:
    """The distribution half of the income statement, shared by both layouts."""
    distributable = f"@{income_line} + @undistributed_at_start + @other_transfers_in"
    payouts = (*shares, LineDef("other_distributions", "其他", "Other distributions", other_formula))
    end = " - ".join(["@distributable_income", *(f"@{line.key}" for line in payouts)])
    return (
        *_DISTRIBUTION_HEAD,
        LineDef("distributable_income", "可分配收益", "Distributable income", distributable),
        *payouts,
        LineDef("undistributed_at_end", "年末未分配收益", "Undistributed income at end of year", end),
    )


INCOME_STATEMENT_LINES: dict[str, tuple[LineDef, ...]] = {
    "2004": (
        LineDef("operating_revenue", "经营收入", "Operating revenue", "501"),
        LineDef("contracting_revenue", "发包及上交收入", "Contracting-out fees and remittances", "511"),
        LineDef("investment_income", "投资收益", "Investment income", "561"),
        LineDef("operating_expenditure", "经营支出", "Operating expenditure", "502"),
        LineDef("administrative_expenses", "管理费用", "Administrative expenses", "541"),
        LineDef(
            "operating_income",
            "经营收益",
            "Operating income",
            "@operating_revenue + @contracting_revenue + @investment_income - @operating_expenditure"
            " - @administrative_expenses",
        ),
        LineDef("agricultural_tax_rebate", "农业税附加返还收入", "Agricultural tax surcharge rebate", "521"),
        LineDef("subsidy_income", "补助收入", "Subsidy income", "522"),
        LineDef("other_income", "其他收入", "Other income", "531"),
        LineDef("other_expenditure", "其他支出", "Other expenditure", "551"),
        LineDef(
            "income_for_year",
            "本年收益",
            "Income for the year",
            "@operating_income + @agricultural_tax_rebate + @subsidy_income + @other_income - @other_expenditure",
        ),
        *_distribution(
            "income_for_year",
            (
                LineDef("to_reserve_fund", "提取公积公益金", "Appropriation to reserve fund", "debits:3220101"),
                LineDef("to_welfare_fund", "提取应付福利费", "Appropriation to welfare fund", "debits:3220102"),
                LineDef("to_outside_investors", "外来投资分利", "Profit to outside investors", "debits:3220103"),
                LineDef("to_households", "农户分配", "Distribution to households", "debits:3220104"),
            ),
            # 3220105 其他 and anything booked straight to 32201 各项分配.
            "debits:32201 - debits:3220101 - debits:3220102 - debits:3220103 - debits:3220104",
        ),
    ),
    "2023": (
        LineDef("operating_revenue", "经营收入", "Operating revenue", "501"),
        LineDef("operating_expenditure", "经营支出", "Operating expenditure", "511"),
        LineDef("taxes_and_surcharges", "税金及附加", "Taxes and surcharges", "512"),
        LineDef("administrative_expenses", "管理费用", "Administrative expenses", "513"),
        LineDef("investment_income", "投资收益", "Investment income", "502"),
        LineDef(
            "operating_income",
            "经营收益",
            "Operating income",
            "@operating_revenue - @operating_expenditure - @taxes_and_surcharges - @administrative_expenses"
            " + @investment_income",
        ),
        LineDef("subsidy_income", "补助收入", "Subsidy income", "503"),
        LineDef("other_income", "其他收入", "Other income", "504"),
        LineDef("public_welfare_expenditure", "公益支出", "Public-welfare expenditure", "514"),
        LineDef("other_expenditure", "其他支出", "Other expenditure", "515"),
        LineDef(
            "total_income",
            "收益总额",
            "Total income",
            "@operating_income + @subsidy_income + @other_income - @public_welfare_expenditure - @other_expenditure",
        ),
        LineDef("income_tax", "所得税费用", "Income tax expense", "521"),
        LineDef("net_income", "净收益", "Net income", "@total_income - @income_tax"),
        *_distribution(
            "net_income",
            (
                LineDef("to_reserve_fund", "提取公积公益金", "Appropriation to reserve fund", "debits:3220101"),
                LineDef("to_members", "向成员分配", "Distribution to members", "debits:3220102"),
            ),
            # 3220103 其他 and anything booked straight to 32201 各项分配.
            "debits:32201 - debits:3220101 - debits:3220102",
        ),
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# Report records


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    """One first-level account of a trial balance; the net sits in one column, the other is zero."""

    code: str
    name: str
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True, slots=True)
class TrialBalance:
    """科目余额表 at a date, first-level accounts with a non-zero balance, sorted by code."""

    ledger: str
    at: dt.date
    chart: str
    rows: tuple[TrialBalanceRow, ...]

    @property
    def total_debit(self) -> Decimal:
        return sum((row.debit for row in self.rows), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((row.credit for row in self.rows), ZERO)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit

    def to_dict(self) -> dict:
        """The INTERFACE.md "Report JSON" object."""
        return {
            "ledger": self.ledger,
            "at": self.at.isoformat(),
            "chart": self.chart,
            "accounts": [
                {"code": r.code, "name": r.name, "debit": format_amount(r.debit), "credit": format_amount(r.credit)}
                for r in self.rows
            ],
            "total_debit": format_amount(self.total_debit),
            "total_credit": format_amount(self.total_credit),
        }

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    def to_csv(self) -> str:
        rows = [[r.code, r.name, format_amount(r.debit), format_amount(r.credit)] for r in self.rows]
        total = ["", "合计", format_amount(self.total_debit), format_amount(self.total_credit)]
        return _csv(["code", "name", "debit", "credit"], [*rows, total])


@dataclass(frozen=True, slots=True)
class BalanceSheetLine:
    """One balance-sheet line with its 年初 (start) and 年末 (end) amounts."""

    section: str  # ASSETS or LIABILITIES_AND_EQUITY
    key: str
    name_zh: str
    name_en: str
    start: Decimal
    end: Decimal


@dataclass(frozen=True, slots=True)
class BalanceSheet:
    """资产负债表: 年初 = as at the year's opening, 年末 = as at `at`."""

    ledger: str
    chart: str
    year_start: dt.date
    at: dt.date
    lines: tuple[BalanceSheetLine, ...]

    def __getitem__(self, key: str) -> BalanceSheetLine:
        return _find(self.lines, key)

    @property
    def balanced(self) -> bool:
        """资产总计 equals 负债和所有者权益总计 in both columns."""
        assets, claims = self["total_assets"], self["total_liabilities_and_equity"]
        return assets.start == claims.start and assets.end == claims.end

    def to_dict(self) -> dict:
        return {
            "ledger": self.ledger,
            "chart": self.chart,
            "year_start": self.year_start.isoformat(),
            "at": self.at.isoformat(),
            "balanced": self.balanced,
            "lines": [
                {
                    "section": line.section,
                    "key": line.key,
                    "name": line.name_zh,
                    "name_en": line.name_en,
                    "start": format_amount(line.start),
                    "end": format_amount(line.end),
                }
                for line in self.lines
            ],
        }

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    def to_csv(self) -> str:
        rows = [
            [line.section, line.key, line.name_zh, line.name_en, format_amount(line.start), format_amount(line.end)]
            for line in self.lines
        ]
        return _csv(["section", "key", "name", "name_en", "start", "end"], rows)


@dataclass(frozen=True, slots=True)
class IncomeStatementLine:
    """One line of the 收益及收益分配表 with the year's amount."""

    key: str
    name_zh: str
    name_en: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class IncomeStatement:
    """收益及收益分配表 for a calendar year, in the layout of the chart version."""

    ledger: str
    chart: str
    year: int
    lines: tuple[IncomeStatementLine, ...]

    def __getitem__(self, key: str) -> IncomeStatementLine:
        return _find(self.lines, key)

    def to_dict(self) -> dict:
        return {
            "ledger": self.ledger,
            "chart": self.chart,
            "year": self.year,
            "lines": [
                {"key": line.key, "name": line.name_zh, "name_en": line.name_en, "amount": format_amount(line.amount)}
                for line in self.lines
            ],
        }

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    def to_csv(self) -> str:
        rows = [[line.key, line.name_zh, line.name_en, format_amount(line.amount)] for line in self.lines]
        return _csv(["key", "name", "name_en", "amount"], rows)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One posting in a general-ledger listing, with the running balance after it."""

    date: dt.date
    voucher_no: str
    code: str
    detail: str
    debit: Decimal
    credit: Decimal
    balance: Decimal


@dataclass(frozen=True, slots=True)
class GeneralLedger:
    """The postings of one account (sub-accounts included) over a period; balances on the account's normal side."""

    chart: str
    code: str
    name: str
    normal_side: str
    start: dt.date
    end: dt.date
    opening: Decimal
    entries: tuple[LedgerEntry, ...]

    @property
    def closing(self) -> Decimal:
        return self.entries[-1].balance if self.entries else self.opening

    def to_dict(self) -> dict:
        return {
            "chart": self.chart,
            "code": self.code,
            "name": self.name,
            "normal_side": self.normal_side,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "opening": format_amount(self.opening),
            "entries": [
                {
                    "date": e.date.isoformat(),
                    "voucher_no": e.voucher_no,
                    "code": e.code,
                    "detail": e.detail,
                    "debit": format_amount(e.debit),
                    "credit": format_amount(e.credit),
                    "balance": format_amount(e.balance),
                }
                for e in self.entries
            ],
            "closing": format_amount(self.closing),
        }

    def to_json(self) -> str:
        return _dumps(self.to_dict())

    def to_csv(self) -> str:
        opening = [self.start.isoformat(), "", "", "期初余额", "", "", format_amount(self.opening)]
        rows = [
            [e.date.isoformat(), e.voucher_no, e.code, e.detail, format_amount(e.debit), format_amount(e.credit),
             format_amount(e.balance)]
            for e in self.entries
        ]
        closing = [self.end.isoformat(), "", "", "期末余额", "", "", format_amount(self.closing)]
        return _csv(["date", "voucher_no", "code", "detail", "debit", "credit", "balance"], [opening, *rows, closing])


# ---------------------------------------------------------------------------------------------------------------
# Reports


def trial_balance(
    chart: Chart, postings: Iterable[Posting], at: dt.date, *, origin: str, include_closing: bool = True
) -> TrialBalance:
    """Trial balance at `at`; include_closing=False gives the view before that day's closing entries."""
    return trial_balance_of_nets(chart, trial_balance_nets(chart, postings, at, include_closing), at, origin=origin)


def trial_balance_nets(
    chart: Chart, postings: Iterable[Posting], at: dt.date, include_closing: bool = True
) -> dict[str, Decimal]:
    """Debit-positive net of each top-level account over the postings: the trial balance's sums, which readers of
    parts of the log can add together."""
    nets: dict[str, Decimal] = defaultdict(lambda: ZERO)
    # A whole history names a few hundred accounts: each is checked and resolved to its top level once.
    top_of: dict[str, str] = {}
    for p in postings:
        top = top_of.get(p.code)
        if top is None or p.chart != chart.version:
            _check(chart, p)
            top = top_of[p.code] = chart.top_level(p.code).code
        if p.date > at or (not include_closing and p.kind == CLOSING and p.date == at):
            continue
        nets[top] += p.debit - p.credit
    return dict(nets)


def trial_balance_of_nets(chart: Chart, nets: dict[str, Decimal], at: dt.date, *, origin: str) -> TrialBalance:
    rows = tuple(
        TrialBalanceRow(code, chart[code].name_zh, max(net, ZERO), max(-net, ZERO))
        for code, net in sorted(nets.items())
        if net
    )
    return TrialBalance(ledger=origin, at=at, chart=chart.version, rows=rows)


def balance_sheet(
    chart: Chart, postings: Iterable[Posting], year_start: dt.date, at: dt.date, *, origin: str = ""
) -> BalanceSheet:
    """Balance sheet with 年初 (as at the opening of `year_start`) and 年末 (as at `at`) columns."""
    postings = _checked(chart, postings)
    sections = BALANCE_SHEET_LINES[chart.version]
    definitions = [line for lines in sections.values() for line in lines]
    start = _evaluate(definitions, _balance_measure(chart, [p for p in postings if _at_opening(p, year_start)]))
    end = _evaluate(definitions, _balance_measure(chart, [p for p in postings if p.date <= at]))
    lines = tuple(
        BalanceSheetLine(section, d.key, d.name_zh, d.name_en, start[d.key], end[d.key])
        for section, defs in sections.items()
        for d in defs
    )
    return BalanceSheet(ledger=origin, chart=chart.version, year_start=year_start, at=at, lines=lines)


def income_statement(chart: Chart, postings: Iterable[Posting], year: int, *, origin: str = "") -> IncomeStatement:
    """收益及收益分配表 for a calendar year."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    postings = _checked(chart, postings)
    in_year = [p for p in postings if first <= p.date <= last and p.kind != OPENING]
    sums = {
        "": _sums((p.code, p.net) for p in in_year if p.kind == VOUCHER),
        "debits": _sums((p.code, p.debit) for p in in_year),
        "closing_debits": _sums((p.code, p.debit) for p in in_year if p.kind == CLOSING),
        "opening": _sums((p.code, p.net) for p in postings if _at_opening(p, first)),
    }

    def measure(name: str, code: str) -> Decimal:
        if name not in sums:
            raise ValueError(f"unknown income-statement measure {name!r}")
        total = _subtree_total(chart, sums[name], code)
        return total if name in ("debits", "closing_debits") else _on_normal_side(chart[code], total)

    definitions = INCOME_STATEMENT_LINES[chart.version]
    values = _evaluate(definitions, measure)
    lines = tuple(IncomeStatementLine(d.key, d.name_zh, d.name_en, values[d.key]) for d in definitions)
    return IncomeStatement(ledger=origin, chart=chart.version, year=year, lines=lines)


def general_ledger(
    chart: Chart, postings: Iterable[Posting], code: str, start: dt.date, end: dt.date
) -> GeneralLedger:
    """Opening balance at `start`, every posting to the account from `start` to `end`, running balance."""
    account = chart[code]
    opening = ZERO
    within: list[Posting] = []
    for p in _checked(chart, postings):
        if not _is_within(chart, p.code, code):
            continue
        if _at_opening(p, start):
            opening += _on_normal_side(account, p.net)
        elif p.date <= end:
            within.append(p)
    entries = []
    balance = opening
    for p in sorted(within, key=lambda p: p.date):  # stable: same-day postings keep their journal order
        balance += _on_normal_side(account, p.net)
        entries.append(LedgerEntry(p.date, p.voucher_no, p.code, p.detail, p.debit, p.credit, balance))
    return GeneralLedger(
        chart=chart.version,
        code=code,
        name=account.name_zh,
        normal_side=account.normal_side,
        start=start,
        end=end,
        opening=opening,
        entries=tuple(entries),
    )


def detail_balances(chart: Chart, postings: Iterable[Posting], code: str, at: dt.date) -> dict[str, Decimal]:
    """Non-zero balance per detail account of `code` at `at`, on the account's normal side, sorted by detail.

    For 113 内部往来 a positive figure is owed to the collective (应收), a negative one owed by it (应付).
    """
    account = chart[code]
    nets = _detail_nets(chart, [p for p in _checked(chart, postings) if p.date <= at], code)
    return {detail: _on_normal_side(account, net) for detail, net in sorted(nets.items()) if net}


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def _checked(chart: Chart, postings: Iterable[Posting]) -> list[Posting]:
    """The postings as a list, refusing any that belong to another chart or name an unknown account."""
    return list(_each_checked(chart, postings))


def _each_checked(chart: Chart, postings: Iterable[Posting]) -> Iterator[Posting]:
    """As _checked, one at a time: a single-pass report keeps memory flat however long the history."""
    for p in postings:
        _check(chart, p)
        yield p


def _check(chart: Chart, p: Posting) -> None:
    if p.chart != chart.version:
        raise ValueError(f"posting {p.voucher_no} is in chart {p.chart}, report is for chart {chart.version}")
    chart[p.code]  # raises UnknownAccount


def _at_opening(p: Posting, day: dt.date) -> bool:
    """Whether a posting is part of the balances as the books open on `day` (opening balances may carry it)."""
    return p.date < day or (p.kind == OPENING and p.date == day)


def _is_within(chart: Chart, code: str, ancestor: str) -> bool:
    account = chart[code]
    while account.code != ancestor:
        if account.parent_code is None:
            return False
        account = chart[account.parent_code]
    return True


def _on_normal_side(account: Account, net: Decimal) -> Decimal:
    return net if account.normal_side == DEBIT else -net


def _sums(pairs: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for code, amount in pairs:
        sums[code] += amount
    return sums


def _subtree_total(chart: Chart, sums: dict[str, Decimal], code: str) -> Decimal:
    chart[code]  # a formula naming an unknown account must fail even when nothing was posted to it
    return sum((amount for c, amount in sums.items() if _is_within(chart, c, code)), ZERO)


def _detail_nets(chart: Chart, postings: Iterable[Posting], code: str) -> dict[str, Decimal]:
    """Debit-minus-credit per detail over the account and its sub-accounts."""
    nets: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for p in postings:
        if _is_within(chart, p.code, code):
            nets[p.detail] += p.net
    return nets


def _balance_measure(chart: Chart, postings: list[Posting]) -> Callable[[str, str], Decimal]:
    """Balance-sheet measures over postings already cut at the column's date."""
    nets = _sums((p.code, p.net) for p in postings)

    def measure(name: str, code: str) -> Decimal:
        if name == "":
            return _on_normal_side(chart[code], _subtree_total(chart, nets, code))
        if name == "debit_details":
            return sum((net for net in _detail_nets(chart, postings, code).values() if net > 0), ZERO)
        if name == "credit_details":
            return sum((-net for net in _detail_nets(chart, postings, code).values() if net < 0), ZERO)
        raise ValueError(f"unknown balance-sheet measure {name!r}")

    return measure


def _evaluate(definitions: Iterable[LineDef], measure: Callable[[str, str], Decimal]) -> dict[str, Decimal]:
    """Value of every line, in order; a line may refer only to lines before it."""
    values: dict[str, Decimal] = {}
    for line in definitions:
        tokens = line.formula.split()
        if len(tokens) % 2 == 0:
            raise ValueError(f"line {line.key}: malformed formula {line.formula!r}")
        total = ZERO
        for position in range(0, len(tokens), 2):
            operator = "+" if position == 0 else tokens[position - 1]
            if operator not in ("+", "-"):
                raise ValueError(f"line {line.key}: expected + or - in {line.formula!r}, got {operator!r}")
            term = tokens[position]
            if term.startswith("@"):
                if term[1:] not in values:
                    raise ValueError(f"line {line.key}: {term} is not an earlier line")
                value = values[term[1:]]
            else:
                name, _, code = term.rpartition(":")
                value = measure(name, code)
            total = total + value if operator == "+" else total - value
        values[line.key] = total
    return values


_Keyed = TypeVar("_Keyed", BalanceSheetLine, IncomeStatementLine)


def _find(lines: tuple[_Keyed, ...], key: str) -> _Keyed:
    for line in lines:
        if line.key == key:
            return line
    raise KeyError(key)


def _dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()

"""Charts of accounts 制度2004 and 制度2023. An account is identified by (chart version, code)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CHART_VERSIONS = ("2004", "2023")
CHARTS_DIRECTORY = Path(__file__).with_name("charts")

DEBIT = "debit"
CREDIT = "credit"
_SIDES = {"借": DEBIT, "贷": CREDIT}


class UnknownAccount(KeyError):
    """An account code that the chart does not define."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Account:
    """One account of one chart version."""

    chart: str
    code: str
    name_zh: str
    name_en: str
    category: str  # 资产 负债 所有者权益 成本 损益
    normal_side: str  # DEBIT or CREDIT
    parent_code: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.chart, self.code)

    @property
    def is_top_level(self) -> bool:
        return self.parent_code is None


@dataclass(frozen=True)
class Chart:
    """A chart of accounts: its version and its accounts by code."""

    version: str
    accounts: dict[str, Account]

    def __getitem__(self, code: str) -> Account:
        try:
            return self.accounts[code]
        except KeyError:
            raise UnknownAccount(f"account {code!r} is not in chart {self.version}") from None

    def __contains__(self, code: object) -> bool:
        return code in self.accounts

    def top_level(self, code: str) -> Account:
        """The first-level account that a (sub-)account rolls up into."""
        account = self[code]
        while account.parent_code is not None:
            account = self[account.parent_code]
        return account

    def top_level_accounts(self) -> list[Account]:
        return sorted((a for a in self.accounts.values() if a.is_top_level), key=lambda a: a.code)


@cache
def load_chart(version: str) -> Chart:
    """Load a chart version from the package data."""
    if version not in CHART_VERSIONS:
        raise ValueError(f"unknown chart version {version!r}; expected one of {', '.join(CHART_VERSIONS)}")
    # The file beside this module, as setuptools installs package data: importlib.resources would first import its
    # readers, which cost a short read-model rebuild more than reading the chart.
    text = (CHARTS_DIRECTORY / f"chart_of_accounts_{version}.csv").read_text("utf-8")
    accounts = {}
    for row in csv.DictReader(text.splitlines()):
        accounts[row["code"]] = Account(
            chart=version,
            code=row["code"],
            name_zh=row["name_zh"],
            name_en=row["name_en"],
            category=row["category"],
            normal_side=_SIDES[row["normal_side"]],
            parent_code=row["parent_code"] or None,
        )
    return Chart(version=version, accounts=accounts)

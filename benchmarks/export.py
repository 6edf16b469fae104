"""Our journal as beancount and ledger/hledger journals, for the peer comparison.

Postings come from ledger.demo_data.expand_postings, which computes every line as the ledger does (depreciation
amounts, red-ink reversals), so the peers' per-account totals can be asserted equal to the totals of our log.

Account names are ASCII: `Root:C<code>:<leaf>`, where the leaf is `D` plus 10 hex digits of the detail's SHA-256,
or `Main` for a line without a detail. beancount requires capitalised ASCII-safe components; the same names are
used for ledger-cli and hledger so that one mapping (written beside the files as accounts.tsv) serves all three.
Every posted account is a leaf, so a tool's flat balance of leaves is exactly our per-(code, detail) total.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from decimal import Decimal
from itertools import groupby
from pathlib import Path

from ledger.demo_data import expand_postings, read_journal
from ledger.domain.charts import CREDIT, Chart, load_chart

ROOT_OF_CATEGORY = {"资产": "Assets", "成本": "Assets", "负债": "Liabilities", "所有者权益": "Equity"}


def account_name(chart: Chart, code: str, detail: str) -> str:
    top = chart.top_level(code)
    root = ROOT_OF_CATEGORY.get(top.category)
    if root is None:  # 损益: revenue accounts are credit-normal
        root = "Income" if top.normal_side == CREDIT else "Expenses"
    leaf = "D" + hashlib.sha256(detail.encode("utf-8")).hexdigest()[:10] if detail else "Main"
    return f"{root}:C{code}:{leaf}"


Transaction = tuple[str, str, list[tuple[str, Decimal]]]  # date, voucher no, [(account, debit - credit)]


def transactions(journal: Path, chart: Chart, names: dict[tuple[str, str], str]) -> Iterator[Transaction]:
    lines = expand_postings(read_journal(journal))
    for (day, voucher_no), group in groupby(lines, key=lambda line: (line[0], line[1])):
        postings = []
        for _, _, code, detail, debit, credit in group:
            key = (code, detail)
            if key not in names:
                names[key] = account_name(chart, code, detail)
            postings.append((names[key], debit - credit))
        yield day.isoformat(), voucher_no, postings


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_beancount(path: Path, txns: Iterable[Transaction], names: dict[tuple[str, str], str]) -> None:
    body = []
    for day, voucher_no, postings in txns:
        body.append(f"{day} * {_quoted(voucher_no)}\n")
        body.extend(f"  {account}  {amount} CNY\n" for account, amount in postings)
    with open(path, "w", encoding="utf-8") as out:
        out.write('option "operating_currency" "CNY"\n')
        # Accounts open before the first opening balance; the books never close one.
        out.writelines(f"1970-01-01 open {account} CNY\n" for account in sorted(set(names.values())))
        out.writelines(body)


def write_ledger(path: Path, txns: Iterable[Transaction]) -> None:
    """ledger-cli / hledger syntax (both read it; two spaces separate account and amount)."""
    with open(path, "w", encoding="utf-8") as out:
        for day, voucher_no, postings in txns:
            out.write(f"{day} * {voucher_no}\n")
            out.writelines(f"    {account}  {amount} CNY\n" for account, amount in postings)


def export(journal: Path, out_dir: Path, chart_version: str = "2023") -> dict[str, Path]:
    """Write books.beancount, books.ledger and accounts.tsv; returns their paths."""
    chart = load_chart(chart_version)
    names: dict[tuple[str, str], str] = {}
    txns = list(transactions(journal, chart, names))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"beancount": out_dir / "books.beancount", "ledger": out_dir / "books.ledger", "map": out_dir / "accounts.tsv"}
    write_beancount(paths["beancount"], txns, names)
    write_ledger(paths["ledger"], txns)
    with open(paths["map"], "w", encoding="utf-8") as out:
        out.writelines(f"{name}\t{code}\t{detail}\n" for (code, detail), name in sorted(names.items()))
    return paths


def account_map(path: Path) -> dict[str, str]:
    """Peer account name -> our "code<TAB>detail" key."""
    mapping = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, code, detail = line.rstrip("\n").split("\t")
            mapping[name] = f"{code}\t{detail}"
    return mapping

"""`village-ledger report`: statements from postings, registers from the asset and contract events."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from uuid import UUID

from .domain.aggregates import Asset, Contract, Voucher
from .domain.charts import load_chart
from .domain.money import ZERO
from .projections.balances import balance_sheet, general_ledger, income_statement, trial_balance
from .store.application import LedgerApplication, month_of

REPORT_KINDS = ("trial-balance", "balance-sheet", "income-statement", "general-ledger", "assets", "contracts")


def render_report(
    app: LedgerApplication,
    kind: str,
    *,
    at: date,
    fmt: str = "json",
    account: str | None = None,
    include_closing: bool = True,
) -> str:
    if fmt not in ("json", "csv"):
        raise LookupError(f"format {fmt!r} is not available for {kind}; use json or csv")
    chart = load_chart(app.ledger().chart)
    if kind == "trial-balance":
        report = trial_balance(chart, app.postings(), at, origin=app.origin, include_closing=include_closing)
    elif kind == "balance-sheet":
        report = balance_sheet(chart, app.postings(), date(at.year, 1, 1), at, origin=app.origin)
    elif kind == "income-statement":
        report = income_statement(chart, app.postings(), at.year, origin=app.origin)
    elif kind == "general-ledger":
        if not account:
            raise LookupError("general-ledger needs --account CODE")
        report = general_ledger(chart, app.postings(), account, date(at.year, 1, 1), at)
    elif kind == "assets":
        return _table(asset_register(app, at), fmt, app.origin, at, "assets")
    elif kind == "contracts":
        return _table(contract_register(app, at), fmt, app.origin, at, "contracts")
    else:
        raise LookupError(f"unknown report {kind!r}; choose one of {', '.join(REPORT_KINDS)}")
    return report.to_json() if fmt == "json" else report.to_csv()


def asset_register(app: LedgerApplication, at: date) -> list[dict]:
    """Fixed-asset register (固定资产登记簿) as at a date: cost, accumulated depreciation, net value, leases."""
    rows = []
    period = month_of(at)
    for notification in app.notifications((Asset.Registered.TOPIC,)):
        registered = Asset.Registered.from_state(UUID(str(notification.originator_id)), 1, notification.state)
        if registered.in_service > at:
            continue
        accumulated, leases, disposed = registered.accumulated_depreciation, [], None
        for event in app.events.get(registered.originator_id, gt=1):
            if isinstance(event, Asset.Depreciated) and event.month <= period:
                accumulated += event.amount
            elif isinstance(event, Asset.Leased):
                leases.append(event.contract_no)
            elif isinstance(event, Asset.Disposed) and event.date <= at:
                disposed = event.date
        rows.append(
            {
                "asset_no": registered.asset_no,
                "name": registered.name,
                "category": registered.category,
                "use": registered.use,
                "in_service": registered.in_service.isoformat(),
                "cost": f"{registered.cost:.2f}",
                "accumulated_depreciation": f"{accumulated:.2f}",
                "net_value": f"{registered.cost - accumulated:.2f}",
                "leases": " ".join(leases),
                "disposed": disposed.isoformat() if disposed else "",
            }
        )
    return sorted(rows, key=lambda r: r["asset_no"])


def contract_register(app: LedgerApplication, at: date) -> list[dict]:
    """Contracts register (合同台账): term, annual fee, received to date, instalments due and unpaid."""
    received: dict[str, Decimal] = {}
    for notification in app.notifications((Voucher.Posted.TOPIC,)):
        state = json.loads(notification.state)
        if state.get("contract") and date.fromisoformat(state["date"]) <= at:
            cash_in = sum(
                (Decimal(x["debit"]) for x in state["lines"] if x["code"][:3] in ("101", "102")), ZERO
            )
            received[state["contract"]] = received.get(state["contract"], ZERO) + cash_in
    rows = []
    for notification in app.notifications((Contract.Signed.TOPIC,)):
        c = Contract.Signed.from_state(UUID(str(notification.originator_id)), 1, notification.state)
        if c.signed > at:
            continue
        due = sum((i.amount for i in c.schedule if i.due <= at), ZERO)
        got = received.get(c.contract_no, ZERO)
        future = [i for i in c.schedule if i.due > at]
        rows.append(
            {
                "contract_no": c.contract_no,
                "subject": f"{c.subject_kind}:{c.subject_no}",
                "counterparty": c.counterparty,
                "member": "是" if c.counterparty_is_member else "否",
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "annual_fee": f"{c.annual_fee:.2f}",
                "due_to_date": f"{due:.2f}",
                "received_to_date": f"{got:.2f}",
                "outstanding": f"{max(due - got, ZERO):.2f}",
                "future_instalments": f"{sum((i.amount for i in future), ZERO):.2f}",
            }
        )
    return sorted(rows, key=lambda r: r["contract_no"])


def _table(rows: list[dict], fmt: str, origin: str, at: date, name: str) -> str:
    if fmt == "json":
        return json.dumps({"ledger": origin, "at": at.isoformat(), name: rows}, ensure_ascii=False, indent=2) + "\n"
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()

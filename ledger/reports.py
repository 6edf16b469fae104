"""`village-ledger report`: statements from postings, registers from the asset and contract events."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from .domain.aggregates import Asset, Contract, Voucher
from .domain.charts import Chart, load_chart
from .domain.model import load_state
from .domain.money import ZERO
from .projections.balances import (
    TrialBalance,
    balance_sheet,
    general_ledger,
    income_statement,
    trial_balance_nets,
    trial_balance_of_nets,
)
from .store.application import LedgerApplication, month_of

REPORT_KINDS = ("trial-balance", "balance-sheet", "income-statement", "general-ledger", "assets", "contracts")
# Below this many events one process sums the log: starting a second one costs about what it would save.
PARALLEL_FROM_EVENTS = 20_000


def render_report(
    app: LedgerApplication,
    kind: str,
    *,
    at: date,
    fmt: str = "json",
    account: str | None = None,
    include_closing: bool = True,
    jobs: int = 1,
) -> str:
    if fmt not in ("json", "csv"):
        raise LookupError(f"format {fmt!r} is not available for {kind}; use json or csv")
    chart = load_chart(app.ledger().chart)
    if kind == "trial-balance":
        report = trial_balance_report(app, at, include_closing=include_closing, jobs=jobs)
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


def trial_balance_report(app: LedgerApplication, at: date, *, include_closing: bool = True, jobs: int = 1) -> TrialBalance:
    """Trial balance at `at` from the log. With jobs > 1 a long SQLite log is cut into that many ranges of
    notification ids, summed at once by this process and jobs - 1 forked ones; the nets add up (PostgreSQL and
    short logs are read by this process alone)."""
    chart = load_chart(app.ledger().chart)
    last = app.recorder.max_notification_id() or 0
    if jobs < 2 or last < PARALLEL_FROM_EVENTS or not app.recorder.forks_safely():
        nets = trial_balance_nets(chart, app.postings(), at, include_closing)
        return trial_balance_of_nets(chart, nets, at, origin=app.origin)
    bounds = [1 + last * part // jobs for part in range(jobs)] + [last + 1]
    workers = [_start_worker(app.location, chart, start, stop, at, include_closing) for start, stop in zip(bounds[1:-1], bounds[2:])]
    nets = trial_balance_nets(chart, app.postings(bounds[0], bounds[1]), at, include_closing)
    for process, results in workers:
        try:
            succeeded, value = results.recv()
        except EOFError:
            raise RuntimeError(f"a trial-balance worker process ended without a result (exit code {process.exitcode})") from None
        finally:
            process.join()
        if not succeeded:
            raise value
        for code, net in value.items():
            nets[code] = nets.get(code, ZERO) + net
    return trial_balance_of_nets(chart, nets, at, origin=app.origin)


def _start_worker(location: str, chart: Chart, start: int, stop: int, at: date, include_closing: bool) -> tuple[Any, Any]:
    """A forked process summing one range (a plain fork: a process pool costs more to start than a year's log
    takes to read), and the end of the pipe its result comes back on."""
    context = multiprocessing.get_context("fork")
    results, sender = context.Pipe(duplex=False)
    process = context.Process(target=_send_range_nets, args=(sender, location, chart, start, stop, at, include_closing))
    process.start()
    sender.close()
    return process, results


def _send_range_nets(sender: Any, location: str, chart: Chart, start: int, stop: int, at: date, include_closing: bool) -> None:
    """In a worker process: (True, the nets over the events with start <= notification id < stop), or (False, the
    exception)."""
    try:
        app = LedgerApplication.reopened(location)
        try:
            sender.send((True, trial_balance_nets(chart, app.postings(start, stop), at, include_closing)))
        finally:
            app.close()
    except Exception as exc:  # the caller re-raises it
        sender.send((False, exc))


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
        state = load_state(notification.state)
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

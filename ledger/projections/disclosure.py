"""The monthly financial disclosure (财务公开, DOMAIN.md §3.3) built from the read model.

The document is plain data (strings, integers, booleans, null; amounts as 2-place decimal strings) so that its
canonical JSON is a stable byte string whose SHA-256 goes into the log when the board is published. Every figure
is cut at the month's last day: once the month is closed, the same log gives the same document, however much is
appended later (corrections appear as new lines in the month they are made, SCENARIOS S8).
"""

from __future__ import annotations

import calendar
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, type_coerce

from ..domain.charts import Chart, load_chart
from ..domain.money import ZERO, format_amount
from ..domain.policy import STEP_NAMES, MatterTier, Policy
from .balances import OPENING, Posting, balance_sheet, income_statement
from .readmodel import (
    BANK,
    CASH,
    REVERSAL,
    Money,
    ReadModel,
    asset_depreciation_table,
    asset_lease_table,
    asset_table,
    claim_movement_table,
    contract_receipt_table,
    contract_table,
    decision_step_table,
    decision_table,
    fund_category_table,
    fund_month_table,
    instalment_table,
    period_table,
    resource_table,
    township_approval_table,
    voucher_line_table,
    voucher_table,
)

FORMAT = "village-ledger/disclosure/v1"
FUND_NAMES = {CASH: "库存现金", BANK: "银行存款"}
WAGES_PAYABLE = "应付工资"
BROUGHT_FORWARD = "年初余额"  # stands for the summed lines of earlier years; shown only in a posting error
COMPLAINT_CHANNEL = "对公开内容有疑问或异议,可向民主理财小组、村务监督委员会或镇农村经营管理站反映。"


@dataclass(frozen=True)
class LedgerInfo:
    """What the disclosure needs of the ledger aggregate: identity, the policy in force, the officials."""

    origin: str
    name: str
    chart: str
    policy: Policy
    officials: tuple[tuple[str, tuple[str, ...], date, date | None], ...]  # (name, roles, term start, term end)


def period_bounds(period: str) -> tuple[date, date]:
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def canonical_json(document: dict) -> bytes:
    """The bytes that are hashed and published: sorted keys, no whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def document_sha256(document: dict) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else format_amount(value)


def _display(value: Decimal) -> str:
    return f"{value:,.2f}"


def build_disclosure(
    model: ReadModel,
    info: LedgerInfo,
    period: str,
    *,
    published: date | None,
    checkpoint_note: str | None,
    checkpoint_size: int | None,
) -> dict[str, Any]:
    """The whole disclosure of `period` as plain data (see the module docstring)."""
    start, end = period_bounds(period)
    chart = load_chart(info.chart)
    year_start = date(start.year, 1, 1)
    quarter_end = start.month % 3 == 0
    deadline_month = date(end.year + (end.month == 12), end.month % 12 + 1, 1)
    with model.engine.connect() as conn:
        closed = conn.execute(select(period_table).where(period_table.c.period == period)).first()
        document: dict[str, Any] = {
            "format": FORMAT,
            "ledger": info.origin,
            "organisation": info.name,
            "chart": info.chart,
            "period": period,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "kind": "annual" if start.month == 12 else "quarterly" if quarter_end else "monthly",
            "published": published.isoformat() if published else None,
            "deadline": deadline_month.replace(day=info.policy.disclosure_deadline_day).isoformat(),
            "closed": None
            if closed is None or closed.closed_on is None
            else {
                "date": closed.closed_on.isoformat(),
                "cash_counted": _amount(closed.cash_counted),
                "bank_statement": _amount(closed.bank_statement),
            },
            "header": _header(info, start, end),
            "income_expense": _income_expense(conn, chart, info.policy, period, start, end),
            "funds": _funds(conn, period, period),
            "funds_year_to_date": _funds(conn, f"{start.year:04d}-01", period),
            "charts": {
                "month": _categories(conn, chart, period, period),
                "year_to_date": _categories(conn, chart, f"{start.year:04d}-01", period),
            },
            "special": {
                "works": _works(conn, info.policy, start if not quarter_end else year_start, end),
                "contracting": _contracting(conn, info.policy, start if not quarter_end else year_start, end),
            },
            "statements": _statements(conn, chart, info, year_start, end) if quarter_end else None,
            "checkpoint": {"note": checkpoint_note, "size": checkpoint_size},
        }
    document["flags"] = [
        {"voucher_no": line["voucher_no"], "finding": line["remark"]}
        for line in document["income_expense"]["lines"]
        if line["remark"].startswith("⚠")
    ] + [
        {"voucher_no": t["voucher_no"], "finding": t["remark"]}
        for t in document["income_expense"]["excluded"]
        if t["remark"].startswith("⚠")
    ]
    return document


def _header(info: LedgerInfo, start: date, end: date) -> dict[str, Any]:
    in_office = [
        (name, roles) for name, roles, term_start, term_end in info.officials
        if term_start <= end and (term_end is None or term_end >= start)
    ]
    return {
        "preparer": [f"{name}({'、'.join(roles)})" for name, roles in in_office if "报账员" in roles or "会计" in "".join(roles)],
        "reviewers": [
            f"{name}({'、'.join(roles)})" for name, roles in in_office if any("民主理财" in r or "监督" in r for r in roles)
        ],
        "complaint_channel": COMPLAINT_CHANNEL,
    }


# -- 收支明细公开表 ---------------------------------------------------------------------------------------------


def _income_expense(conn: Any, chart: Chart, policy: Policy, period: str, start: date, end: date) -> dict[str, Any]:
    vouchers = conn.execute(
        select(voucher_table)
        .where(voucher_table.c.period == period)
        .where(voucher_table.c.kind != "opening")
        .order_by(voucher_table.c.date, voucher_table.c.voucher_no)
    ).all()
    decisions = _decisions(conn, end, {v.decision for v in vouchers if v.decision})
    transfers = [v.voucher_no for v in vouchers if v.is_transfer]
    approvals = {
        row.subject
        for row in conn.execute(
            select(township_approval_table.c.subject).where(township_approval_table.c.subject.in_(transfers))
        )
    }
    rows_of: dict[str, list] = defaultdict(list)
    month_lines = (
        select(voucher_line_table)
        .where(voucher_line_table.c.voucher_no.in_(select(voucher_table.c.voucher_no).where(voucher_table.c.period == period)))
        .order_by(voucher_line_table.c.voucher_no, voucher_line_table.c.line_no)
    )
    for row in conn.execute(month_lines):
        rows_of[row.voucher_no].append(row)
    lines, excluded = [], []
    total_income = total_expense = ZERO
    for v in vouchers:
        rows = rows_of[v.voucher_no]
        if v.is_transfer:
            excluded.append(_transfer(v, rows, policy, approvals))
            continue
        if not v.fund_receipts and not v.fund_payments:
            continue  # accruals, depreciation, closing entries: not cash, shown in the statements
        counter = [r for r in rows if r.fund is None]
        total_income += v.fund_receipts
        total_expense += v.fund_payments
        lines.append(
            {
                "seq": len(lines) + 1,
                "date": v.date.isoformat(),
                "voucher_no": v.voucher_no,
                "summary": v.summary,
                "income": _amount(v.fund_receipts) if v.fund_receipts else None,
                "expense": _amount(v.fund_payments) if v.fund_payments else None,
                "counterparty": v.counterparty or "",
                "accounts": "、".join(dict.fromkeys(_account_label(chart, r.code, r.detail) for r in counter)),
                "approval": _approval(v, counter, chart, policy, decisions),
                "approvers": "、".join(f"{a['role']}{a['person']}" for a in json.loads(v.approvals)),
                "remark": _remark(v, policy, decisions),
                "red": v.kind == REVERSAL,
            }
        )
    transfers = "; ".join(f"{t['label']}{_display(Decimal(t['amount']))} ({t['voucher_no']}) 不计收支" for t in excluded)
    return {
        "lines": lines,
        "total_income": _amount(total_income),
        "total_expense": _amount(total_expense),
        "excluded": excluded,
        "total_remark": transfers,
    }


def _account_label(chart: Chart, code: str, detail: str) -> str:
    name = chart.top_level(code).name_zh
    return f"{name}-{detail}" if detail else name


def _transfer(v: Any, rows: list, policy: Policy, approvals: set[str]) -> dict[str, Any]:
    cash_in = sum((r.debit for r in rows if r.fund == CASH), ZERO)
    amount = sum((r.debit for r in rows), ZERO)
    label = "提现" if cash_in > 0 else "存现" if any(r.fund == CASH for r in rows) else "转账"
    flagged = label == "提现" and cash_in >= policy.cash_withdrawal_township_approval_at and v.voucher_no not in approvals
    return {
        "date": v.date.isoformat(),
        "voucher_no": v.voucher_no,
        "summary": v.summary,
        "label": label,
        "amount": _amount(amount),
        "remark": "⚠ 大额提现未见镇审批记录" if flagged else "现金与银行存款之间划转,不属于收入或支出",
    }


def _decisions(conn: Any, end: date, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The decisions of those ids that exist, with their steps recorded up to `end`."""
    found = {
        row.decision_id: {"title": row.title, "matter": row.matter, "amount": row.amount, "steps": []}
        for row in conn.execute(select(decision_table).where(decision_table.c.decision_id.in_(ids)))
    }
    for step in conn.execute(
        select(decision_step_table)
        .where(decision_step_table.c.decision_id.in_(ids))
        .where(decision_step_table.c.date <= end)
        .order_by(decision_step_table.c.decision_id, decision_step_table.c.version)
    ):
        found[step.decision_id]["steps"].append(step)
    return found


def _approval(v: Any, counter: list, chart: Chart, policy: Policy, decisions: dict) -> str:
    """The approval and democratic procedure behind a line (审批及民主程序)."""
    if v.decision and v.decision in decisions:
        steps = {s.step: s for s in decisions[v.decision]["steps"]}
        if "resolve" in steps:
            return f"四议两公开 {v.decision} 决议{steps['resolve'].date.isoformat()}"
        if "extended_meeting" in steps:
            return f"两委扩大会 {v.decision}"
        if "confirm" in steps:
            return f"两委会 {v.decision}"
        return v.decision
    if v.kind == REVERSAL:
        return "红字冲销"
    if not v.fund_payments:
        return ""
    if any(chart.top_level(r.code).name_zh == WAGES_PAYABLE for r in counter):
        return "年度预算"
    tier = _tier(policy, None, [r.top_code for r in counter], abs(v.fund_payments))
    return f"{_procedure(tier)} ({tier.name_zh})"


def _tier(policy: Policy, matter: str | None, codes: list[str], amount: Decimal) -> MatterTier:
    return policy.ladder_for(matter, codes).tier_for(amount)


def _procedure(tier: MatterTier) -> str:
    """The democratic procedure a tier asks for, as villagers name it."""
    if "resolve" in tier.steps_before:
        return "四议两公开"
    if "extended_meeting" in tier.steps_before:
        return "两委扩大会"
    return "两委会"


def _remark(v: Any, policy: Policy, decisions: dict) -> str:
    remarks = []
    if v.cash_payments > policy.max_cash_payment_per_txn:
        remarks.append("⚠ R04 现金支付超限额")
    if v.reverses:
        remarks.append(f"冲销 {v.reverses}")
    if v.contract:
        remarks.append(f"合同 {v.contract}")
    if v.decision and _is_special_work(decisions.get(v.decision), policy):
        remarks.append("专项公开")
    return "; ".join(remarks)


def _is_special_work(decision: dict | None, policy: Policy) -> bool:
    """Collective works that needed the full 四议两公开 get a special disclosure (专项公开, DOMAIN.md §3.1)."""
    return (
        decision is not None
        and decision["matter"] == "public_works"
        and decision["amount"] is not None
        and "resolve" in _tier(policy, "public_works", [], decision["amount"]).steps_before
    )


# -- 货币资金情况表 -------------------------------------------------------------------------------------------


def _funds(conn: Any, first: str, last: str) -> dict[str, Any]:
    """上期结存 | 本期收入 | 本期支出 | 划入 | 划出 | 本期结存 per fund and in total, over the months first..last."""
    opening = {CASH: ZERO, BANK: ZERO}
    moved = {f: {"income": ZERO, "expense": ZERO, "transfer_in": ZERO, "transfer_out": ZERO} for f in opening}
    t = fund_month_table
    # The months before are summed by the database: a few rows per fund reach Python however long the history.
    net = t.c.opening + t.c.receipts - t.c.payments + t.c.transfers_in - t.c.transfers_out
    carried = select(t.c.fund, type_coerce(func.sum(net), Money))
    for fund, amount in conn.execute(carried.where(t.c.period < first).group_by(t.c.fund)):
        opening[fund] += amount
    for row in conn.execute(select(t).where(t.c.period >= first).where(t.c.period <= last)):
        opening[row.fund] += row.opening
        m = moved[row.fund]
        m["income"] += row.receipts
        m["expense"] += row.payments
        m["transfer_in"] += row.transfers_in
        m["transfer_out"] += row.transfers_out
    rows = []
    for fund in (CASH, BANK):
        m = moved[fund]
        closing = opening[fund] + m["income"] - m["expense"] + m["transfer_in"] - m["transfer_out"]
        rows.append({"fund": fund, "name": FUND_NAMES[fund], "opening": opening[fund], **m, "closing": closing})
    total = {
        key: sum((r[key] for r in rows), ZERO)
        for key in ("opening", "income", "expense", "transfer_in", "transfer_out", "closing")
    }
    rows.append({"fund": "total", "name": "货币资金合计", **total})
    return {
        "from": first,
        "to": last,
        "rows": [{k: (_amount(v) if isinstance(v, Decimal) else v) for k, v in r.items()} for r in rows],
    }


def _categories(conn: Any, chart: Chart, first: str, last: str) -> dict[str, list[dict[str, str]]]:
    sums: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    query = select(fund_category_table).where(fund_category_table.c.period >= first).where(fund_category_table.c.period <= last)
    for row in conn.execute(query):
        sums[row.direction, row.code] += row.amount
    result: dict[str, list[dict[str, str]]] = {"income": [], "expense": []}
    for (direction, code), amount in sorted(sums.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1])):
        if amount:
            result[direction].append({"code": code, "name": chart[code].name_zh, "amount": _amount(amount)})
    return result


# -- 专项公开 -------------------------------------------------------------------------------------------------


def _works(conn: Any, policy: Policy, first: date, end: date) -> list[dict[str, Any]]:
    """Collective works above the major-matter threshold with a step or a payment from `first` to `end`."""
    # Only decisions with a step or a payment from `first` to `end` can be active; the indexes find them without
    # reading the decisions of earlier years. `first` and `end` bound whole months, so the period index serves.
    stepped = select(decision_step_table.c.decision_id).where(decision_step_table.c.date >= first).where(
        decision_step_table.c.date <= end
    )
    paid_from = select(voucher_table.c.decision).where(voucher_table.c.decision.is_not(None)).where(
        voucher_table.c.period >= f"{first.year:04d}-{first.month:02d}"
    ).where(voucher_table.c.period <= f"{end.year:04d}-{end.month:02d}")
    candidates = set(conn.execute(stepped).scalars()) | set(conn.execute(paid_from).scalars())
    works = []
    for decision_id, d in sorted(_decisions(conn, end, candidates).items()):
        if not _is_special_work(d, policy):
            continue
        payments = conn.execute(
            select(voucher_table.c.voucher_no, voucher_table.c.date, voucher_table.c.fund_payments)
            .where(voucher_table.c.decision == decision_id)
            .where(voucher_table.c.date <= end)
            .order_by(voucher_table.c.date, voucher_table.c.voucher_no)
        ).all()
        active = any(first <= s.date for s in d["steps"]) or any(first <= p.date for p in payments)
        if not active:
            continue
        paid = sum((p.fund_payments for p in payments), ZERO)
        contract = next((s for s in d["steps"] if s.step == "contract_signed"), None)
        acceptance = next((s for s in d["steps"] if s.step == "acceptance"), None)
        works.append(
            {
                "decision": decision_id,
                "title": d["title"],
                "budget": _amount(d["amount"]),
                "contract": None
                if contract is None
                else {"date": contract.date.isoformat(), "party": contract.body, "note": contract.note},
                "acceptance": None if acceptance is None else {"date": acceptance.date.isoformat(), "note": acceptance.body},
                "paid": _amount(paid),
                "unpaid": _amount(d["amount"] - paid),
                "payments": [
                    {"voucher_no": p.voucher_no, "date": p.date.isoformat(), "amount": _amount(p.fund_payments)} for p in payments
                ],
                "steps": [_step(s) for s in d["steps"]],
            }
        )
    return works


def _step(s: Any) -> dict[str, Any]:
    return {
        "step": s.step,
        "name": STEP_NAMES.get(s.step, (s.step, s.step))[0],
        "date": s.date.isoformat(),
        "body": s.body,
        "due": s.due,
        "present": s.present,
        "votes_for": s.votes_for,
    }


def _contracting(conn: Any, policy: Policy, first: date, end: date) -> list[dict[str, Any]]:
    """Contracting-out and leases signed from `first` to `end`, with the price against the reference price."""
    rows = conn.execute(
        select(contract_table).where(contract_table.c.signed >= first).where(contract_table.c.signed <= end)
        .order_by(contract_table.c.signed, contract_table.c.contract_no)
    ).all()
    found = []
    for c in rows:
        subject, reference = _subject(conn, c.subject_kind, c.subject_no)
        resolve = None
        if c.decision:
            resolve = conn.execute(
                select(decision_step_table).where(decision_step_table.c.decision_id == c.decision)
                .where(decision_step_table.c.step == "resolve")
            ).first()
        approval = None
        if c.township_approval:
            approval = conn.execute(
                select(township_approval_table).where(township_approval_table.c.approval_id == c.township_approval)
            ).first()
        ratio = None if not reference else (c.annual_fee / reference * 100).quantize(Decimal("1"))
        found.append(
            {
                "contract_no": c.contract_no,
                "subject": subject,
                "counterparty": c.counterparty,
                "member": c.counterparty_is_member,
                "signed": c.signed.isoformat(),
                "term": f"{c.start.isoformat()} 至 {c.end.isoformat()}",
                "annual_fee": _amount(c.annual_fee),
                "reference_fee": _amount(reference),
                "ratio_percent": None if ratio is None else int(ratio),
                "low_price": ratio is not None and ratio < policy.low_price_ratio_flag * 100,
                "decision": None
                if resolve is None
                else f"{c.decision} {resolve.body} {resolve.date.isoformat()} 同意{resolve.votes_for}/应到{resolve.due}",
                "township_approval": None if approval is None else f"{approval.approval_id} {approval.approver} {approval.date.isoformat()}",
            }
        )
    return found


def _subject(conn: Any, kind: str, number: str) -> tuple[str, Decimal | None]:
    """A contract's subject as text, and the reference annual fee (area × guidance price) for resources."""
    if kind == "resource":
        r = conn.execute(select(resource_table).where(resource_table.c.resource_no == number)).first()
        if r is None:
            return number, None
        reference = None
        if r.reference_fee_per_mu_year is not None:
            reference = (Decimal(r.area_mu) * r.reference_fee_per_mu_year).quantize(Decimal("0.01"))
        return f"{r.name}({r.kind} {r.area_mu}亩)", reference
    a = conn.execute(select(asset_table.c.name).where(asset_table.c.asset_no == number)).scalar_one_or_none()
    return a or number, None


# -- quarterly / annual statements and registers --------------------------------------------------------------


def _statements(conn: Any, chart: Chart, info: LedgerInfo, year_start: date, end: date) -> dict[str, Any]:
    # The statements see earlier years only through each account's balance at the year's opening, so the database
    # sums those lines: one posting per account and detail comes back instead of every line of the history.
    cut = [*_brought_forward(conn, year_start), *_postings_between(conn, year_start, end)]
    return {
        "balance_sheet": balance_sheet(chart, cut, year_start, end, origin=info.origin).to_dict(),
        "income_statement": income_statement(chart, cut, end.year, origin=info.origin).to_dict(),
        "claims": claims_register(conn, chart, end),
        "contracts": contracts_register(conn, year_start, end),
        "assets": assets_register(conn, end),
    }


def _brought_forward(conn: Any, day: date) -> Iterator[Posting]:
    """One posting per chart, account and detail carrying the net of all their lines dated before `day`."""
    t = voucher_line_table
    net = type_coerce(func.sum(t.c.debit - t.c.credit), Money)
    query = select(t.c.chart, t.c.code, t.c.detail, net).where(t.c.date < day).group_by(t.c.chart, t.c.code, t.c.detail)
    day_before = day - timedelta(days=1)
    for chart, code, detail, amount in conn.execute(query):
        yield Posting(
            chart=chart, code=code, detail=detail, date=day_before, debit=amount, credit=ZERO,
            voucher_no=BROUGHT_FORWARD, kind=OPENING,
        )


def _postings_between(conn: Any, first: date, last: date) -> Iterator[Posting]:
    """The posting lines dated from `first` to `last`, in date then voucher order."""
    t = voucher_line_table
    query = select(t).where(t.c.date >= first).where(t.c.date <= last).order_by(t.c.date, t.c.voucher_no, t.c.line_no)
    for row in conn.execute(query):
        yield Posting(
            chart=row.chart, code=row.code, detail=row.detail, date=row.date, debit=row.debit, credit=row.credit,
            voucher_no=row.voucher_no, kind=row.kind,
        )


def claims_register(conn: Any, chart: Chart, end: date) -> list[dict[str, Any]]:
    """债权债务明细表: every non-zero detail balance of a claim account at `end`, with the date it dates from."""
    movements: dict[tuple[str, str], list[tuple[date, Decimal]]] = defaultdict(list)
    query = select(claim_movement_table).where(claim_movement_table.c.date <= end).order_by(
        claim_movement_table.c.date, claim_movement_table.c.voucher_no, claim_movement_table.c.line_no
    )
    for row in conn.execute(query):
        movements[row.code, row.detail].append((row.date, row.amount))
    found = []
    for (code, detail), moves in sorted(movements.items()):
        balance = sum((amount for _, amount in moves), ZERO)
        if not balance:
            continue
        since = _outstanding_since(moves, balance)
        found.append(
            {
                "code": code,
                "account": chart[code].name_zh,
                "detail": detail,
                "kind": "债权(应收)" if balance > 0 else "债务(应付)",
                "amount": _amount(abs(balance)),
                "since": since.isoformat(),
                "age_days": (end - since).days,
                "age": _age_text(since, end),
            }
        )
    return found


def _outstanding_since(moves: list[tuple[date, Decimal]], balance: Decimal) -> date:
    """Oldest entry still unsettled, settling first in, first out (the newest increases make up the balance)."""
    remaining = abs(balance)
    since = moves[-1][0]
    for day, amount in reversed(moves):
        if (amount > 0) == (balance > 0) and amount:
            since = day
            remaining -= abs(amount)
            if remaining <= 0:
                break
    return since


def _age_text(since: date, end: date) -> str:
    months = (end.year - since.year) * 12 + end.month - since.month - (end.day < since.day)
    if months < 1:
        return "不足1个月"
    if months < 12:
        return f"{months}个月"
    return f"{months // 12}年{months % 12}个月" if months % 12 else f"{months // 12}年"


def contracts_register(conn: Any, year_start: date, end: date) -> list[dict[str, Any]]:
    """合同台账 at `end`: term, annual fee, received this year and to date, due and unpaid, future instalments."""
    found = []
    for c in conn.execute(select(contract_table).where(contract_table.c.signed <= end).order_by(contract_table.c.contract_no)):
        subject, _ = _subject(conn, c.subject_kind, c.subject_no)
        instalments = conn.execute(select(instalment_table).where(instalment_table.c.contract_no == c.contract_no)).all()
        receipts = conn.execute(
            select(contract_receipt_table.c.date, contract_receipt_table.c.amount)
            .where(contract_receipt_table.c.contract_no == c.contract_no)
            .where(contract_receipt_table.c.date <= end)
        ).all()
        due = sum((i.amount for i in instalments if i.due <= end), ZERO)
        received = sum((r.amount for r in receipts), ZERO)
        found.append(
            {
                "contract_no": c.contract_no,
                "subject": subject,
                "counterparty": c.counterparty,
                "member": c.counterparty_is_member,
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "annual_fee": _amount(c.annual_fee),
                "received_this_year": _amount(sum((r.amount for r in receipts if r.date >= year_start), ZERO)),
                "received_to_date": _amount(received),
                "due_to_date": _amount(due),
                "outstanding": _amount(max(due - received, ZERO)),
                "future_instalments": _amount(sum((i.amount for i in instalments if i.due > end), ZERO)),
            }
        )
    return found


USE_NAMES = {"management": "管理用", "production": "生产用", "public_welfare": "公益用", "leased_out": "出租", "idle": "闲置"}


def assets_register(conn: Any, end: date) -> list[dict[str, Any]]:
    """固定资产台账 at `end`: cost, accumulated depreciation, net value, use, leases, disposal."""
    period = f"{end.year:04d}-{end.month:02d}"
    found = []
    for a in conn.execute(select(asset_table).where(asset_table.c.in_service <= end).order_by(asset_table.c.asset_no)):
        depreciated = conn.execute(
            select(asset_depreciation_table.c.amount)
            .where(asset_depreciation_table.c.asset_no == a.asset_no)
            .where(asset_depreciation_table.c.month <= period)
        ).scalars().all()
        leases = conn.execute(
            select(asset_lease_table.c.contract_no).where(asset_lease_table.c.asset_no == a.asset_no).order_by(asset_lease_table.c.contract_no)
        ).scalars().all()
        accumulated = a.accumulated_at_registration + sum(depreciated, ZERO)
        disposed = a.disposed if a.disposed is not None and a.disposed <= end else None
        found.append(
            {
                "asset_no": a.asset_no,
                "name": a.name,
                "category": a.category,
                "use": USE_NAMES.get(a.use, a.use),
                "in_service": a.in_service.isoformat(),
                "cost": _amount(a.cost),
                "accumulated_depreciation": _amount(accumulated),
                "net_value": _amount(a.cost - accumulated),
                "leases": " ".join(leases),
                "disposed": disposed.isoformat() if disposed else None,
            }
        )
    return found

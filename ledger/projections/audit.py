"""Economic-responsibility audit (经济责任审计): exception rules R01–R15 of DOMAIN.md §9.3, tenure summary and the
handover checklist of §9.4.

The log is read once, in seq order, into an `AuditInput`; every rule is a pure function of that input and the
tenure `Scope`, returning `Finding` records (beancount style). A rule reports each check that found nothing as a
PASS finding, so the audit view lists what was examined as well as what was found. Evidence is the list of
`ledger_log` seq numbers the finding rests on, so an auditor can verify each entry against a signed checkpoint.

Thresholds come from the policy in force on the date of the event examined (`Ledger.policy_at`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from ..crypto.logformat import parse_leaf
from ..domain.aggregates import (
    Asset,
    Contract,
    Decision,
    Fund,
    Ledger,
    Official,
    Period,
    PostingLine,
    Resource,
    TownshipApproval,
    Voucher,
)
from ..domain.charts import Chart, load_chart
from ..domain.model import Event, UnknownTopic, class_for_topic, load_state
from ..domain.money import ZERO
from ..domain.policy import (
    CASH_AND_BANK,
    STEP_NAMES,
    describe_missing,
    missing_steps,
    spending,
)
from .balances import OPENING, Posting, balance_sheet

SEVERITY_ORDER = ("HIGH", "MEDIUM", "LOW", "INFO", "PASS")
SEVERITY_ZH = {"HIGH": "高", "MEDIUM": "中", "LOW": "低", "INFO": "提示", "PASS": "通过"}
DISCLOSURE_TOPIC = "ledger/Disclosure/Published"

RULE_NAMES: dict[str, tuple[str, str]] = {
    "R01": ("白条入账", "IOU slip booked"),
    "R02": ("坐收坐支", "receipts spent without banking"),
    "R03": ("公款私存/小金库", "private deposits / off-book funds"),
    "R04": ("大额现金支付", "large cash payment"),
    "R05": ("超限额库存现金", "cash on hand above the limit"),
    "R06": ("未经民主程序的重大支出", "major spending without democratic procedure"),
    "R07": ("资产流失", "loss of collective assets"),
    "R08": ("低价发包/出租", "contracting out or leasing below price"),
    "R09": ("新增债务", "new debt"),
    "R10": ("担保", "guarantees"),
    "R11": ("挂账未清", "long-outstanding receivables"),
    "R12": ("专款挪用", "misuse of earmarked funds"),
    "R13": ("公开不及时", "late financial disclosure"),
    "R14": ("无合同大额付款给个人", "large payment to an individual without contract"),
    "R15": ("凭证更正", "voucher corrections"),
}

# DOMAIN.md §9.3 R01: tax invoice, fiscal receipt, uniform receipt, payroll, contract settlement. Attachments are
# free text, so a document counts when its name contains one of these words.
ACCEPTED_DOCUMENTS = ("发票", "财政票据", "收据", "工资表", "签字表", "领款", "发放表", "清册", "结算", "合同", "验收单")
CONTRACT_DOCUMENTS = ("合同", "结算")
# R14 needs to know whether a payee is a person. Vouchers carry the payee's name only; a name ending in one of
# these words is taken to be an organisation [U].
ORGANISATION_SUFFIXES = ("公司", "店", "队", "所", "社", "厂", "局", "中心", "银行", "委员会", "政府", "站", "院", "部", "场", "集团")
GUARANTEE_TAG, GUARANTEE_MATTER = "GUARANTEE", "guarantee"
BORROWING_NAMES = ("短期借款", "长期借款及应付款")
OUTSIDER_PAYABLE_NAME = "应付款"
SPECIAL_FUND_NAMES = ("专项应付款", "一事一议资金")
RESERVE_NAME = "公积公益金"
# Cadre pay and office costs may not be paid from earmarked money or the land-compensation share (DOMAIN.md §7.5).
ADMIN_NAMES = ("管理费用", "应付工资")
RECEIVABLE_CODES = ("112", "113")


# ---------------------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of one check: an exception (HIGH … INFO) or a PASS, with the log entries it rests on."""

    rule: str
    check: str
    severity: str
    object: str
    evidence: tuple[int, ...]
    message_zh: str
    message_en: str

    def to_dict(self) -> dict:
        zh, en = RULE_NAMES[self.rule]
        return {
            "rule": self.rule, "rule_zh": zh, "rule_en": en, "check": self.check, "severity": self.severity,
            "object": self.object, "evidence": list(self.evidence), "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


@dataclass(frozen=True, slots=True)
class VoucherRecord:
    """A posted or red-ink voucher as the rules see it, with its log position."""

    seq: int
    voucher_no: str
    date: dt.date
    summary: str
    lines: tuple[PostingLine, ...]
    attachments: tuple[str, ...]
    roles: tuple[str, ...]
    tags: tuple[str, ...]
    decision: str | None
    contract: str | None
    counterparty: str | None
    closing: bool
    reverses: str | None
    reason: str

    def moves(self, chart: Chart) -> list[tuple[str, str, Decimal, Decimal]]:
        """(top-level code, detail, debit, credit) per line."""
        return [(chart.top_level(x.code).code, x.detail, x.debit, x.credit) for x in self.lines]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    decision_id: str
    title: str
    matter: str
    seq: int
    steps: tuple[tuple[str, dt.date, int, Decision.StepRecorded], ...]  # kind, date, seq, event

    def step_dates(self) -> list[tuple[str, dt.date]]:
        return [(kind, day) for kind, day, _, _ in self.steps]


@dataclass(frozen=True, slots=True)
class AssetRecord:
    registered: Asset.Registered
    seq: int
    depreciation: tuple[tuple[str, Decimal], ...]
    leases: tuple[str, ...]
    disposed: Asset.Disposed | None
    disposed_seq: int | None


@dataclass(frozen=True, slots=True)
class Closing:
    period: str
    event: Period.Closed
    seq: int


@dataclass(frozen=True, slots=True)
class DisclosureRecord:
    period: str
    published: dt.date
    seq: int


@dataclass(frozen=True)
class AuditInput:
    """Everything the rules read, taken from one pass over the log."""

    origin: str
    chart: Chart
    ledger: Ledger
    postings: tuple[Posting, ...]
    vouchers: tuple[VoucherRecord, ...]
    decisions: dict[str, DecisionRecord]
    approvals: dict[str, tuple[TownshipApproval.Recorded, int]]
    contracts: tuple[tuple[Contract.Signed, int], ...]
    resources: dict[str, tuple[Resource.Registered, int]]
    assets: tuple[AssetRecord, ...]
    funds: tuple[tuple[Fund.Opened, dt.date | None, int], ...]
    closings: tuple[Closing, ...]
    disclosures: tuple[DisclosureRecord, ...]

    def voucher(self, no: str) -> VoucherRecord | None:
        return next((v for v in self.vouchers if v.voucher_no == no), None)


@dataclass(frozen=True, slots=True)
class Scope:
    """The tenure window examined: from the later of term start and the opening of the books, to departure."""

    official: Official
    start: dt.date
    end: dt.date
    as_of: dt.date  # the handover date: what should have been done by then

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


# ---------------------------------------------------------------------------------------------------------------
# Reading the log once


def read_audit_input(app) -> AuditInput:
    """One pass over `ledger_log` (seq order); events are decoded by their topic, upcast to today's classes."""
    ledger: Ledger | None = None
    owners: dict[UUID, str] = {}
    postings: list[Posting] = []
    vouchers: list[VoucherRecord] = []
    decisions: dict[str, dict] = {}
    approvals, contracts, resources, assets, funds, closings, disclosures = {}, [], {}, {}, {}, [], []
    for record in app.recorder.read_log():
        fields = parse_leaf(record.leaf).fields
        seq, topic = record.seq, fields["topic"]
        if topic == DISCLOSURE_TOPIC:
            # Read by field name, not by class, so that the rule follows the disclosure projection as it evolves.
            state = load_state(record.state)
            disclosures.append(DisclosureRecord(state["period"], dt.date.fromisoformat(state["published"]), seq))
            continue
        try:
            event_class = class_for_topic(topic)
        except UnknownTopic:
            continue
        event: Event = event_class.from_state(UUID(fields["id"]), fields["version"], record.state)
        oid = event.originator_id
        if ledger is None or oid == ledger.id:  # seq 0 is the ledger's genesis
            ledger = event.mutate(ledger)
            if isinstance(event, Ledger.OpeningBalancesRecorded):
                postings += [_posting(ledger.chart, x, event.date, "OPENING", OPENING) for x in event.lines]
        elif isinstance(event, Voucher.Posted | Voucher.Reversed):
            reverses = event.reverses if isinstance(event, Voucher.Reversed) else None
            vouchers.append(VoucherRecord(
                seq=seq, voucher_no=event.voucher_no, date=event.date, summary=event.summary, lines=tuple(event.lines),
                attachments=tuple(event.attachments), roles=tuple(a.role for a in event.approvals),
                tags=tuple(event.tags), decision=getattr(event, "decision", None),
                contract=getattr(event, "contract", None), counterparty=getattr(event, "counterparty", None),
                closing=getattr(event, "closing", False), reverses=reverses, reason=getattr(event, "reason", ""),
            ))
            kind = "closing" if getattr(event, "closing", False) else "voucher"
            postings += [_posting(event.chart, x, event.date, event.voucher_no, kind) for x in event.lines]
        elif isinstance(event, Decision.Opened):
            owners[oid] = event.decision_id
            decisions[event.decision_id] = {"title": event.title, "matter": event.matter, "seq": seq, "steps": []}
        elif isinstance(event, Decision.StepRecorded):
            decisions[owners[oid]]["steps"].append((event.step, event.date, seq, event))
        elif isinstance(event, TownshipApproval.Recorded):
            approvals[event.approval_id] = (event, seq)
        elif isinstance(event, Contract.Signed):
            contracts.append((event, seq))
        elif isinstance(event, Resource.Registered):
            resources[event.resource_no] = (event, seq)
        elif isinstance(event, Asset.Registered):
            owners[oid] = event.asset_no
            assets[event.asset_no] = {"registered": event, "seq": seq, "depreciation": [], "leases": [],
                                      "disposed": None, "disposed_seq": None}
        elif isinstance(event, Asset.Depreciated):
            assets[owners[oid]]["depreciation"].append((event.month, event.amount))
        elif isinstance(event, Asset.Leased):
            assets[owners[oid]]["leases"].append(event.contract_no)
        elif isinstance(event, Asset.Disposed):
            assets[owners[oid]].update(disposed=event, disposed_seq=seq)
        elif isinstance(event, Fund.Opened):
            owners[oid] = event.fund_id
            funds[event.fund_id] = [event, None, seq]
        elif isinstance(event, Fund.Closed):
            funds[owners[oid]][1] = event.closed
        elif isinstance(event, Period.Opened):
            owners[oid] = event.period
        elif isinstance(event, Period.Closed):
            closings.append(Closing(owners[oid], event, seq))
    if ledger is None:
        raise LookupError(f"{app.location} holds no ledger yet (run `village-ledger init`)")
    return AuditInput(
        origin=ledger.origin,
        chart=load_chart(ledger.chart),
        ledger=ledger,
        postings=tuple(postings),
        vouchers=tuple(vouchers),
        decisions={k: DecisionRecord(k, d["title"], d["matter"], d["seq"], tuple(d["steps"])) for k, d in decisions.items()},
        approvals=approvals,
        contracts=tuple(contracts),
        resources=resources,
        assets=tuple(AssetRecord(a["registered"], a["seq"], tuple(a["depreciation"]), tuple(a["leases"]), a["disposed"],
                                 a["disposed_seq"]) for a in assets.values()),
        funds=tuple((f[0], f[1], f[2]) for f in funds.values()),
        closings=tuple(closings),
        disclosures=tuple(disclosures),
    )


def _posting(chart: str, line, day: dt.date, voucher_no: str, kind: str) -> Posting:
    return Posting(chart=chart, code=line.code, detail=line.detail, date=day, debit=line.debit, credit=line.credit,
                   voucher_no=voucher_no, kind=kind)


def tenure_scope(inp: AuditInput, official_id: str) -> Scope:
    """The window of an official's tenure that these books cover."""
    official = inp.ledger.officials.get(official_id)
    if official is None:
        known = ", ".join(sorted(inp.ledger.officials)) or "none"
        raise LookupError(f"official {official_id!r} is not in ledger {inp.origin} (officials: {known})")
    opening = inp.ledger.opening_date or official.term_start
    start = max(official.term_start, opening)
    last_posting = max((p.date for p in inp.postings), default=start)
    end = official.departed or official.term_end or last_posting
    if end < start:
        raise LookupError(f"official {official_id!r} left office ({end}) before these books open ({opening})")
    return Scope(official=official, start=start, end=end, as_of=official.handover_date or end)


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def yuan(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def percent(ratio: Decimal) -> str:
    return f"{(ratio * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP).normalize():f}%"


def _pass(rule: str, check: str, obj: str, zh: str, en: str, evidence: Iterable[int] = ()) -> Finding:
    return Finding(rule, check, "PASS", obj, tuple(sorted(set(evidence))), zh, en)


def _none_detected(rule: str, check: str, what_zh: str, what_en: str) -> Finding:
    return _pass(rule, check, "—", f"未发现({what_zh})", f"none detected ({what_en})")


def _in_scope(inp: AuditInput, scope: Scope) -> list[VoucherRecord]:
    return [v for v in inp.vouchers if scope.covers(v.date)]


def _is_payment(chart: Chart, v: VoucherRecord) -> bool:
    """Money leaves cash or bank for something other than the other fund (a withdrawal or deposit is no payment)."""
    moves = v.moves(chart)
    pays = any(code in CASH_AND_BANK and credit > 0 for code, _, _, credit in moves)
    return pays and any(code not in CASH_AND_BANK and debit > 0 for code, _, debit, _ in moves)


def _spent(chart: Chart, v: VoucherRecord) -> tuple[Decimal, tuple[str, ...]]:
    return spending(chart, ((x.code, x.debit, x.credit) for x in v.lines))


def _codes_named(chart: Chart, names: Iterable[str]) -> set[str]:
    wanted = set(names)
    return {a.code for a in chart.top_level_accounts() if a.name_zh in wanted}


def _months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month - (1 if last.day < first.day else 0)


def _month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _approved(inp: AuditInput, subjects: Iterable[str], by: dt.date) -> tuple[TownshipApproval.Recorded, int] | None:
    wanted = set(subjects)
    return next(((a, s) for a, s in inp.approvals.values() if a.subject in wanted and a.date <= by), None)


# ---------------------------------------------------------------------------------------------------------------
# Rules


def r01_iou_slips(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Expenses paid from cash or bank rest on an invoice, fiscal or uniform receipt, payroll or contract settlement.
    Settling a payable (wages, dividends, suppliers) rests on the documents of the accrual, so it is not examined."""
    found, checked = [], 0
    for v in _in_scope(inp, scope):
        if v.reverses or v.closing or _spent(inp.chart, v)[0] <= 0:
            continue
        checked += 1
        if not any(word in doc for doc in v.attachments for word in ACCEPTED_DOCUMENTS):
            docs = "、".join(v.attachments) or "无"
            found.append(Finding("R01", "documents", "HIGH", v.voucher_no, (v.seq,),
                                 f"支出凭证无合规原始凭证(附件: {docs})",
                                 f"expense paid without invoice, receipt, payroll or contract settlement (attachments: {docs})"))
    return found or [_pass("R01", "documents", "—", f"未发现(已检查支出凭证 {checked} 张)",
                           f"none detected ({checked} expense payments checked)")]


def r02_receipts_spent(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Cash collected is banked within the handover days and never paid out again the same day (坐支)."""
    chart, found = inp.chart, []
    receipts: list[tuple[VoucherRecord, Decimal]] = []
    deposits: list[tuple[dt.date, Decimal]] = []
    paid_by_day: dict[dt.date, list[VoucherRecord]] = defaultdict(list)
    for v in _in_scope(inp, scope):
        moves = v.moves(chart)
        cash_in = sum((d for c, _, d, _ in moves if c == "101"), ZERO)
        cash_out = sum((cr for c, _, _, cr in moves if c == "101"), ZERO)
        from_bank = any(c == "102" and cr > 0 for c, _, _, cr in moves)
        to_bank = any(c == "102" and d > 0 for c, _, d, _ in moves)
        if cash_in > 0 and not from_bank:
            receipts.append((v, cash_in))
        if cash_out > 0 and to_bank:
            deposits.append((v.date, cash_out))
        elif cash_out > 0:
            paid_by_day[v.date].append(v)
    for v, amount in receipts:
        same_day = paid_by_day.get(v.date, [])
        if same_day:
            found.append(Finding("R02", "netting", "HIGH", v.voucher_no, tuple(sorted([v.seq, *(p.seq for p in same_day)])),
                                 f"当日收取现金 {yuan(amount)} 元并有现金支出({'、'.join(p.voucher_no for p in same_day)}),未先存入银行",
                                 f"cash {yuan(amount)} received and cash paid out the same day "
                                 f"({', '.join(p.voucher_no for p in same_day)}) without banking"))
    pending = [(v, amount) for v, amount in receipts]
    available = sorted(deposits)
    for v, amount in pending:
        days = inp.ledger.policy_at(v.date).cash_handover_days
        deadline = v.date + dt.timedelta(days=days)
        remaining = amount
        for index, (day, deposit) in enumerate(available):
            if v.date <= day <= deadline and remaining > 0 and deposit > 0:
                used = min(deposit, remaining)
                remaining -= used
                available[index] = (day, deposit - used)
        if remaining > 0 and deadline <= scope.as_of:
            found.append(Finding("R02", "handover", "MEDIUM", v.voucher_no, (v.seq,),
                                 f"收取现金 {yuan(amount)} 元中 {yuan(remaining)} 元未在 {days} 天内存入银行",
                                 f"{yuan(remaining)} of cash {yuan(amount)} collected was not banked within {days} days"))
    return found or [_none_detected("R02", "netting", "现金收入均及时存入银行", "cash receipts banked in time")]


def r03_private_deposits(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Money sits only in registered accounts, and bank and cash agree with the books at every close."""
    chart, found = inp.chart, []
    registered = {(f.account, f.detail) for f, closed, _ in inp.funds if f.kind in ("bank", "cash")}
    if registered:
        for v in _in_scope(inp, scope):
            for line in v.lines:
                top = chart.top_level(line.code).code
                if top in CASH_AND_BANK and (line.code, line.detail) not in registered:
                    where = f"{line.code} {line.detail}".strip()
                    found.append(Finding("R03", "accounts", "HIGH", v.voucher_no, (v.seq,),
                                         f"资金记入未登记的账户 {where}", f"money booked to an unregistered account {where}"))
    for c in inp.closings:
        year, month = int(c.period[:4]), int(c.period[5:])
        if not scope.covers(dt.date(year, month, 1)) and not scope.covers(c.event.date):
            continue
        book = {top: sum((v for code, v in c.event.closing_balances.items() if chart.top_level(code).code == top), ZERO)
                for top in CASH_AND_BANK}
        if c.event.bank_statement != book["102"]:
            explained = bool(c.event.reconciliation_note)
            found.append(Finding("R03", "bank", "MEDIUM" if explained else "HIGH", c.period, (c.seq,),
                                 f"银行对账单 {yuan(c.event.bank_statement)} 元与账面 {yuan(book['102'])} 元不符"
                                 + (f"(说明: {c.event.reconciliation_note})" if explained else ""),
                                 f"bank statement {yuan(c.event.bank_statement)} differs from the books {yuan(book['102'])}"
                                 + (f" (note: {c.event.reconciliation_note})" if explained else "")))
        if c.event.cash_counted != book["101"]:
            found.append(Finding("R03", "cash", "HIGH", c.period, (c.seq,),
                                 f"盘点现金 {yuan(c.event.cash_counted)} 元与账面 {yuan(book['101'])} 元不符",
                                 f"cash counted {yuan(c.event.cash_counted)} differs from the books {yuan(book['101'])}"))
    return found or [_none_detected("R03", "accounts", "账实相符", "books agree with bank and cash")]


def r04_large_cash(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Cash payments above the per-payment cap; same-day withdrawals or transfers from the approval amount."""
    chart, found = inp.chart, []
    withdrawals: dict[dt.date, list[tuple[VoucherRecord, Decimal]]] = defaultdict(list)
    transfers: dict[dt.date, list[tuple[VoucherRecord, Decimal]]] = defaultdict(list)
    for v in _in_scope(inp, scope):
        if v.reverses:
            continue
        moves = v.moves(chart)
        policy = inp.ledger.policy_at(v.date)
        cash_out = sum((cr for c, _, _, cr in moves if c == "101"), ZERO)
        to_bank = any(c == "102" and d > 0 for c, _, d, _ in moves)
        if cash_out > policy.max_cash_payment_per_txn and not to_bank:
            found.append(Finding("R04", "cash_payment", "HIGH", v.voucher_no, (v.seq,),
                                 f"现金支付 {yuan(cash_out)} 元,超过单笔限额 {yuan(policy.max_cash_payment_per_txn)} 元",
                                 f"cash payment {yuan(cash_out)} > {yuan(policy.max_cash_payment_per_txn)} per payment"))
        bank_out = sum((cr for c, _, _, cr in moves if c == "102"), ZERO)
        if bank_out > 0 and any(c == "101" and d > 0 for c, _, d, _ in moves):
            withdrawals[v.date].append((v, bank_out))
        elif bank_out > 0:
            transfers[v.date].append((v, bank_out))
    for day, items in sorted(withdrawals.items()):
        _daily_approval(inp, found, day, items, inp.ledger.policy_at(day).cash_withdrawal_township_approval_at,
                        "withdrawal", "现金提取", "cash withdrawal")
    for day, items in sorted(transfers.items()):
        threshold = inp.ledger.policy_at(day).transfer_township_approval_at
        if threshold is not None:
            _daily_approval(inp, found, day, items, threshold, "transfer", "转账支付", "transfers")
    return found or [_none_detected("R04", "cash_payment", "现金支付均未超限额", "no cash payment above the limits")]


def _daily_approval(inp, found, day, items, threshold, check, zh, en) -> None:
    total = sum((amount for _, amount in items), ZERO)
    if total < threshold:
        return
    nos = [v.voucher_no for v, _ in items]
    if _approved(inp, nos, day) is not None:
        return
    found.append(Finding("R04", check, "MEDIUM", "、".join(nos), tuple(v.seq for v, _ in items),
                         f"当日{zh} {yuan(total)} 元,达到 {yuan(threshold)} 元/日,无乡镇审批记录",
                         f"{en} {yuan(total)} ≥ {yuan(threshold)}/day, no township approval"))


def r05_cash_holding(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Cash on hand at the end of each day stays within the holding limit."""
    chart, found = inp.chart, []
    balance = sum((p.net for p in inp.postings if chart.top_level(p.code).code == "101"
                   and (p.date < scope.start or (p.kind == OPENING and p.date == scope.start))), ZERO)
    by_day: dict[dt.date, list[VoucherRecord]] = defaultdict(list)
    for v in _in_scope(inp, scope):
        if any(chart.top_level(x.code).code == "101" for x in v.lines):
            by_day[v.date].append(v)
    for day in sorted(by_day):
        balance += sum((x.debit - x.credit for v in by_day[day] for x in v.lines if chart.top_level(x.code).code == "101"), ZERO)
        limit = inp.ledger.policy_at(day).cash_holding_limit
        if balance > limit:
            found.append(Finding("R05", "holding", "MEDIUM", day.isoformat(), tuple(v.seq for v in by_day[day]),
                                 f"当日库存现金 {yuan(balance)} 元,超过限额 {yuan(limit)} 元",
                                 f"cash on hand {yuan(balance)} at end of day > limit {yuan(limit)}"))
    return found or [_none_detected("R05", "holding", "日终库存现金未超限额", "end-of-day cash within the limit")]


def r06_democratic_procedure(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Spending in a band the policy audits has its decision steps on record, dated before the commitment."""
    found, passed = [], []
    for v in _in_scope(inp, scope):
        if v.reverses or v.closing:
            continue
        amount, accounts = _spent(inp.chart, v)
        if amount <= 0:
            continue
        decision = inp.decisions.get(v.decision) if v.decision else None
        policy = inp.ledger.policy_at(v.date)
        tier = policy.ladder_for(decision.matter if decision else None, accounts).tier_for(amount)
        if tier.audit_severity is None:
            continue
        obj = f"{v.voucher_no} / {v.decision}" if v.decision else v.voucher_no
        steps = decision.step_dates() if decision else []
        commitment = next((d for s, d in steps if s == "contract_signed"), v.date)
        missing = [describe_missing(m) for m in missing_steps(tier, steps, commitment, after_by=scope.as_of)]
        missing += _quorum_problems(decision) if decision else []
        evidence = [v.seq, *((decision.seq, *(s for _, _, s, _ in decision.steps)) if decision else ())]
        if not decision:
            found.append(Finding("R06", "steps", tier.audit_severity, obj, (v.seq,),
                                 f"{tier.name_zh}支出 {yuan(amount)} 元无四议两公开记录",
                                 f"{tier.name} spending {yuan(amount)} without a democratic-decision record"))
        elif missing:
            zh = "; ".join(z for z, _ in missing)
            en = "; ".join(e for _, e in missing)
            found.append(Finding("R06", "steps", tier.audit_severity, obj, tuple(sorted(evidence)),
                                 f"{tier.name_zh}支出 {yuan(amount)} 元民主程序不完整: {zh}",
                                 f"{tier.name} spending {yuan(amount)}: democratic procedure incomplete: {en}"))
        else:
            passed.append((obj, evidence, commitment))
    if found:
        return found
    if not passed:
        return [_none_detected("R06", "steps", "无须民主程序的大额支出", "no spending in an audited band")]
    return [_pass("R06", "steps", "; ".join(o for o, _, _ in passed),
                  "各步骤均在合同/支付前完成,实施结果已公开",
                  "all steps before the contract; results published",
                  [s for _, e, _ in passed for s in e])]


def _quorum_problems(decision: DecisionRecord) -> list[tuple[str, str]]:
    """Party members' meeting: 2/3 present, more than half of those due approve; representatives: 2/3 present,
    more than half of those present approve (DOMAIN.md §4.1, SCENARIOS S6). Checked where counts were recorded."""
    problems = []
    for kind, _, _, e in decision.steps:
        if kind not in ("review", "resolve") or e.due is None:
            continue
        zh = STEP_NAMES[kind][0]
        if e.present is not None and e.present * 3 < e.due * 2:
            problems.append((f"{zh}出席 {e.present}/{e.due} 不足2/3", f"{kind}: {e.present}/{e.due} present, fewer than 2/3"))
        base = e.due if kind == "review" else (e.present if e.present is not None else e.due)
        if e.votes_for is not None and e.votes_for * 2 <= base:
            problems.append((f"{zh}赞成 {e.votes_for}/{base} 未过半", f"{kind}: {e.votes_for}/{base} in favour, no majority"))
    return problems


def r07_asset_loss(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Disposals rest on a decision; leased-out assets have a contract and their rent is booked."""
    found = []
    received = _contract_receipts(inp, scope.end)
    leases = {c.contract_no: (c, s) for c, s in inp.contracts if c.subject_kind == "asset"}
    for a in inp.assets:
        r = a.registered
        if a.disposed is not None and scope.covers(a.disposed.date) and a.disposed.decision is None:
            found.append(Finding("R07", "disposal", "HIGH", r.asset_no, (a.seq, a.disposed_seq),
                                 f"资产 {r.name} 处置({a.disposed.method})无集体决策记录",
                                 f"asset {r.name} disposed of ({a.disposed.method}) without a collective decision"))
        active = [leases[no] for no in a.leases if no in leases and leases[no][0].start <= scope.end <= leases[no][0].end]
        if r.use == "leased_out" and a.disposed is None and not active:
            found.append(Finding("R07", "lease", "MEDIUM", r.asset_no, (a.seq,),
                                 f"出租资产 {r.name} 无有效租赁合同", f"leased-out asset {r.name} has no contract in force"))
        for contract, seq in active:
            due = sum((i.amount for i in contract.schedule if scope.covers(i.due)), ZERO)
            got = received.get(contract.contract_no, ZERO)
            if got < due:
                found.append(Finding("R07", "rent", "MEDIUM", contract.contract_no, (seq,),
                                     f"出租资产 {r.name} 应收租金 {yuan(due)} 元,入账 {yuan(got)} 元",
                                     f"rent for {r.name}: {yuan(due)} due, {yuan(got)} booked"))
    if found:
        return found
    names = ", ".join(a.registered.asset_no for a in inp.assets) or "—"
    return [_pass("R07", "assets", names, "未发现资产流失(无未经决策的处置,出租资产有合同且租金入账)",
                  "none detected (no disposal without decision; leased assets under contract, rent booked)")]


def _contract_receipts(inp: AuditInput, until: dt.date) -> dict[str, Decimal]:
    received: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for v in inp.vouchers:
        if v.contract and v.date <= until:
            received[v.contract] += sum((x.debit for x in v.lines if inp.chart.top_level(x.code).code in CASH_AND_BANK), ZERO)
    return received


def r08_contract_price(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Contracts signed in the tenure: fee against the reference or the previous contract; outsiders' contracts have
    the 2/3 consent and township approval before signing; terms within the cap (DOMAIN.md §7.2)."""
    found_price, found_legal, legal_passes = [], [], []
    previous: dict[tuple[str, str], Contract.Signed] = {}
    for contract, seq in sorted(inp.contracts, key=lambda cs: cs[0].signed):
        key = (contract.subject_kind, contract.subject_no)
        before = previous.get(key)
        previous[key] = contract
        if not scope.covers(contract.signed):
            continue
        policy = inp.ledger.policy_at(contract.signed)
        reference, basis_zh, basis_en = None, "", ""
        if contract.subject_kind == "resource" and contract.subject_no in inp.resources:
            resource, _ = inp.resources[contract.subject_no]
            if resource.reference_fee_per_mu_year is not None:
                reference = (resource.reference_fee_per_mu_year * resource.area_mu).quantize(Decimal("0.01"))
                basis_zh, basis_en = "参考价", "reference"
        if before is not None and (reference is None or before.annual_fee > reference):
            reference, basis_zh, basis_en = before.annual_fee, f"上一合同 {before.contract_no}", f"previous contract {before.contract_no}"
        if reference is not None and reference > 0:
            ratio = contract.annual_fee / reference
            if ratio < policy.low_price_ratio_flag:
                found_price.append(Finding("R08", "low_price", "MEDIUM", contract.contract_no, (seq,),
                                           f"承包费 {yuan(contract.annual_fee)} 元,为{basis_zh} {yuan(reference)} 元的 {percent(ratio)},须说明理由",
                                           f"fee {yuan(contract.annual_fee)} = {percent(ratio)} of {basis_en} {yuan(reference)}; explanation required"))
        outsider = not contract.counterparty_is_member and contract.subject_kind == "resource"
        capped = not contract.counterparty_is_member or contract.subject_kind == "asset"
        problems_zh, problems_en, evidence, notes_zh, notes_en = [], [], [seq], [], []
        if outsider:
            decision = inp.decisions.get(contract.decision) if contract.decision else None
            resolve = next((e for k, d, s, e in (decision.steps if decision else ()) if k == "resolve" and d <= contract.signed), None)
            if resolve is None or resolve.due is None or resolve.votes_for is None:
                problems_zh.append("无村民(代表)会议2/3同意记录")
                problems_en.append("no record of 2/3 consent of the villagers' (representatives') meeting")
            else:
                evidence += [s for k, d, s, e in decision.steps if e is resolve]
                if resolve.votes_for * 3 < resolve.due * 2:
                    problems_zh.append(f"同意 {resolve.votes_for}/{resolve.due} 不足2/3")
                    problems_en.append(f"consent {resolve.votes_for}/{resolve.due} below 2/3")
                else:
                    notes_zh.append(f"{resolve.votes_for}/{resolve.due} ≥ 2/3")
                    notes_en.append(f"{resolve.votes_for}/{resolve.due} ≥ 2/3")
            approval = inp.approvals.get(contract.township_approval) if contract.township_approval else None
            if approval is None or approval[0].date > contract.signed:
                problems_zh.append("签约前无乡镇政府批准")
                problems_en.append("no township approval before signing")
            else:
                evidence.append(approval[1])
                notes_zh.append(f"乡镇批准 {approval[0].date.isoformat()}")
                notes_en.append(f"township approval {approval[0].date.isoformat()}")
        if capped and contract.end >= _add_years(contract.start, policy.lease_max_years):
            problems_zh.append(f"期限超过 {policy.lease_max_years} 年")
            problems_en.append(f"term longer than {policy.lease_max_years} years")
        if problems_zh:
            found_legal.append(Finding("R08", "outsider_approval", "HIGH", contract.contract_no, tuple(sorted(evidence)),
                                       f"对外发包/出租程序不合规: {'; '.join(problems_zh)}",
                                       f"contract to a non-member or lease not in order: {'; '.join(problems_en)}"))
        elif outsider:
            legal_passes.append(_pass("R08", "outsider_approval", contract.contract_no, " + ".join(notes_zh),
                                      " + ".join(notes_en), evidence))
    results = found_price + found_legal
    if not found_price:
        results.append(_none_detected("R08", "low_price", "无低于参考价的合同", "no contract below the reference price"))
    if not found_legal:
        results += legal_passes or [_none_detected("R08", "outsider_approval", "无对外发包", "no contract to non-members")]
    return results


def r09_new_debt(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Borrowings and payables to outsiders at the end against the start; how each new borrowing was decided."""
    chart, found = inp.chart, []
    borrowing, payable = _codes_named(chart, BORROWING_NAMES), _codes_named(chart, (OUTSIDER_PAYABLE_NAME,))
    start = _balances_at(inp, scope.start, opening=True)
    end = _balances_at(inp, scope.end, opening=False)

    def owed(balances, codes):
        return -sum((balances.get(code, ZERO) for code in codes), ZERO)

    b0, b1, p0, p1 = owed(start, borrowing), owed(end, borrowing), owed(start, payable), owed(end, payable)
    for v in _in_scope(inp, scope):
        amount = sum((x.credit for x in v.lines if chart.top_level(x.code).code in borrowing), ZERO)
        if amount <= 0 or v.reverses:
            continue
        decision = inp.decisions.get(v.decision) if v.decision else None
        if decision is not None and decision.matter == "public_works":
            found.append(Finding("R09", "borrowing", "HIGH", v.voucher_no, (v.seq, decision.seq),
                                 f"举债 {yuan(amount)} 元用于公益性建设(禁止)",
                                 f"borrowing {yuan(amount)} for public-welfare works (prohibited)"))
            continue
        resolved = decision is not None and any(k == "resolve" for k, *_ in decision.steps)
        reviewed = _approved(inp, [v.voucher_no, *( [v.decision] if v.decision else [])], v.date) is not None
        if not (resolved and reviewed):
            found.append(Finding("R09", "borrowing", "HIGH", v.voucher_no, (v.seq,),
                                 f"借款 {yuan(amount)} 元无四议两公开决议或乡镇审核",
                                 f"borrowing {yuan(amount)} without 四议两公开 resolution or township review"))
    if b1 > b0 or p1 > p0:
        found.append(Finding("R09", "balance", "MEDIUM", "—", (),
                             f"任期内债务增加: 借款 {yuan(b0)} → {yuan(b1)} 元, 对外应付款 {yuan(p0)} → {yuan(p1)} 元",
                             f"debt grew in the tenure: borrowings {yuan(b0)} → {yuan(b1)}, payables to outsiders {yuan(p0)} → {yuan(p1)}"))
    return found or [_pass("R09", "balance", "—",
                           f"无新增借款(借款 {yuan(b0)} → {yuan(b1)} 元); 对外应付款 {yuan(p0)} → {yuan(p1)} 元",
                           f"no new borrowing (borrowings {yuan(b0)} → {yuan(b1)}); payables to outsiders {yuan(p0)} → {yuan(p1)}")]


def _balances_at(inp: AuditInput, day: dt.date, *, opening: bool) -> dict[str, Decimal]:
    """Top-level net balances (debit positive) as the books open on `day` (opening=True) or at its end."""
    nets: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for p in inp.postings:
        if (p.date < day or (p.kind == OPENING and p.date == day)) if opening else p.date <= day:
            nets[inp.chart.top_level(p.code).code] += p.net
    return nets


def r10_guarantees(inp: AuditInput, scope: Scope) -> list[Finding]:
    """No guarantee may be given with collective assets (财务制度 art. 23)."""
    found = [Finding("R10", "guarantee", "HIGH", v.voucher_no, (v.seq,), f"以集体资产提供担保: {v.summary}",
                     f"guarantee given with collective assets: {v.summary}")
             for v in _in_scope(inp, scope) if GUARANTEE_TAG in v.tags]
    for d in inp.decisions.values():
        dates = [day for _, day, _, _ in d.steps]
        if d.matter == GUARANTEE_MATTER and any(scope.covers(day) for day in dates):
            found.append(Finding("R10", "guarantee", "HIGH", d.decision_id, (d.seq,), f"担保事项决策: {d.title}",
                                 f"decision to give a guarantee: {d.title}"))
    return found or [_none_detected("R10", "guarantee", "无担保", "no guarantee")]


def r11_ageing(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Receivables outstanding at the end are younger than the ageing limit; cadres' advances are settled in days."""
    chart, found = inp.chart, []
    policy = inp.ledger.policy_at(scope.end)
    cadres = {o.name for o in inp.ledger.officials.values()}
    seq_of = {v.voucher_no: v.seq for v in inp.vouchers}
    debits: dict[tuple[str, str], list[Posting]] = defaultdict(list)
    nets: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for p in inp.postings:
        top = chart.top_level(p.code).code
        if top in RECEIVABLE_CODES and p.date <= scope.end:
            nets[(top, p.detail)] += p.net
            if p.debit > 0:
                debits[(top, p.detail)].append(p)
    outstanding_total, codes = ZERO, set()
    for (code, detail), balance in sorted(nets.items()):
        if balance <= 0:
            continue
        outstanding_total += balance
        codes.add(code)
        # The balance is made of the latest debits (receipts settle the oldest first).
        left, oldest, evidence = balance, scope.end, []
        for p in sorted(debits[(code, detail)], key=lambda p: p.date, reverse=True):
            if left <= 0:
                break
            left -= p.debit
            oldest = p.date
            evidence.append(seq_of.get(p.voucher_no))
        evidence = tuple(sorted(s for s in evidence if s is not None))
        months = _months_between(oldest, scope.end)
        name = f"{code} {detail}".strip()
        if months >= policy.receivable_ageing_months:
            found.append(Finding("R11", "ageing", "MEDIUM", name, evidence,
                                 f"应收 {yuan(balance)} 元挂账 {months} 个月(自 {oldest.isoformat()}),超过 {policy.receivable_ageing_months} 个月",
                                 f"receivable {yuan(balance)} outstanding {months} months (since {oldest.isoformat()}), limit {policy.receivable_ageing_months}"))
        elif any(cadre in detail for cadre in cadres) and (scope.end - oldest).days > policy.advance_settlement_days:
            found.append(Finding("R11", "advance", "MEDIUM", name, evidence,
                                 f"干部借支 {yuan(balance)} 元自 {oldest.isoformat()} 起未在 {policy.advance_settlement_days} 天内结清",
                                 f"advance {yuan(balance)} to a cadre since {oldest.isoformat()} not settled within {policy.advance_settlement_days} days"))
    if found:
        return found
    return [_pass("R11", "ageing", ", ".join(sorted(codes)) or "—",
                  f"应收 {yuan(outstanding_total)} 元,账龄均不足 {policy.receivable_ageing_months} 个月",
                  f"{yuan(outstanding_total)} aged < {policy.receivable_ageing_months} months")]


def r12_earmarked(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Earmarked money (专项应付款, 一事一议资金, 公积公益金) is not spent on cadre pay or office costs, and is
    drawn only under a decision."""
    chart, found = inp.chart, []
    special = _codes_named(chart, SPECIAL_FUND_NAMES)
    reserve = _codes_named(chart, (RESERVE_NAME,))
    admin = _codes_named(chart, ADMIN_NAMES)
    for v in _in_scope(inp, scope):
        if v.closing or v.reverses:
            continue
        moves = v.moves(chart)
        drawn = sum((d for c, _, d, _ in moves if c in special | reserve), ZERO)
        if drawn <= 0:
            continue
        if any(c in admin for c, _, d, cr in moves if d > 0 or cr > 0):
            found.append(Finding("R12", "purpose", "HIGH", v.voucher_no, (v.seq,),
                                 f"专项资金 {yuan(drawn)} 元用于干部报酬或管理费用",
                                 f"earmarked money {yuan(drawn)} spent on cadre pay or office costs"))
        elif v.decision is None:
            found.append(Finding("R12", "purpose", "MEDIUM", v.voucher_no, (v.seq,),
                                 f"动用专项资金 {yuan(drawn)} 元无决策记录",
                                 f"earmarked money {yuan(drawn)} drawn without a decision"))
    return found or [_none_detected("R12", "purpose", "专项资金未被挪用", "no misuse of earmarked funds")]


def r13_disclosure(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Each month of the tenure is disclosed by the policy's day of the following month."""
    found, months, evidence = [], [], []
    day = dt.date(scope.start.year, scope.start.month, 1)
    while day <= scope.end:
        months.append(day)
        day = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    for first in months:
        period = _month_key(first)
        next_month = dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        deadline_day = inp.ledger.policy_at(next_month).disclosure_deadline_day
        deadline = next_month.replace(day=deadline_day)
        published = sorted((d for d in inp.disclosures if d.period == period), key=lambda d: d.published)
        if published and published[0].published <= deadline:
            evidence.append(published[0].seq)
        elif published:
            found.append(Finding("R13", "monthly", "MEDIUM", period, (published[0].seq,),
                                 f"{period} 财务公开于 {published[0].published.isoformat()} 发布,晚于 {deadline.isoformat()}",
                                 f"{period} disclosure published {published[0].published.isoformat()}, after the deadline {deadline.isoformat()}"))
        elif deadline <= scope.as_of:
            found.append(Finding("R13", "monthly", "MEDIUM", period, (),
                                 f"{period} 财务公开未发布(期限 {deadline.isoformat()})",
                                 f"{period} disclosure not published (deadline {deadline.isoformat()})"))
    if found:
        return found
    day_text = inp.ledger.policy_at(scope.end).disclosure_deadline_day
    return [_pass("R13", "monthly", f"{len(evidence)} 期月度公开 / {len(evidence)} monthly boards",
                  f"均于次月{day_text}日前公开", f"published by the {_ordinal(day_text)}", evidence)]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def r14_individual_payments(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Payments to a person from the policy's amount rest on a contract and its settlement."""
    found = []
    for v in _in_scope(inp, scope):
        if v.reverses or v.closing or not v.counterparty or not _is_payment(inp.chart, v):
            continue
        if v.counterparty.endswith(ORGANISATION_SUFFIXES):
            continue
        amount = sum((x.credit for x in v.lines if inp.chart.top_level(x.code).code in CASH_AND_BANK), ZERO)
        threshold = inp.ledger.policy_at(v.date).individual_payment_contract_at
        decision = inp.decisions.get(v.decision) if v.decision else None
        contracted = (v.contract is not None
                      or any(word in doc for doc in v.attachments for word in CONTRACT_DOCUMENTS)
                      or (decision is not None and any(k == "contract_signed" for k, *_ in decision.steps)))
        if amount >= threshold and not contracted:
            found.append(Finding("R14", "contract", "HIGH", v.voucher_no, (v.seq,),
                                 f"向个人 {v.counterparty} 付款 {yuan(amount)} 元,无合同及结算",
                                 f"payment {yuan(amount)} to the individual {v.counterparty} without contract and settlement"))
    return found or [_none_detected("R14", "contract", "无无合同的大额个人付款", "no large payment to a person without contract")]


def r15_corrections(inp: AuditInput, scope: Scope) -> list[Finding]:
    """Red-ink reversals and their correcting vouchers (informational)."""
    found = []
    for index, v in enumerate(inp.vouchers):
        if not v.reverses or not scope.covers(v.date):
            continue
        original = inp.voucher(v.reverses)
        amount = sum((x.debit for x in original.lines), ZERO) if original else ZERO
        correction = next((c for c in inp.vouchers[index + 1:] if c.date == v.date and not c.reverses
                           and ("CORRECTION" in c.tags or v.reverses in " ".join(c.attachments))), None)
        obj = v.voucher_no + (f"/{correction.voucher_no.rsplit('-', 1)[-1]}" if correction else "")
        evidence = [v.seq, *([original.seq] if original else []), *([correction.seq] if correction else [])]
        reason = f", {v.reason}" if v.reason else ""
        found.append(Finding("R15", "reversal", "INFO", obj, tuple(sorted(evidence)),
                             f"红字冲销 {v.reverses} ({yuan(amount)} 元{reason})"
                             + (f",更正凭证 {correction.voucher_no}" if correction else ""),
                             f"red reversal of {v.reverses} ({yuan(amount)}{reason})"
                             + (f", corrected by {correction.voucher_no}" if correction else "")))
    return found


RULES: tuple[Callable[[AuditInput, Scope], list[Finding]], ...] = (
    r01_iou_slips, r02_receipts_spent, r03_private_deposits, r04_large_cash, r05_cash_holding,
    r06_democratic_procedure, r07_asset_loss, r08_contract_price, r09_new_debt, r10_guarantees, r11_ageing,
    r12_earmarked, r13_disclosure, r14_individual_payments, r15_corrections,
)


def run_rules(inp: AuditInput, scope: Scope) -> tuple[list[Finding], list[Finding]]:
    """(exceptions ordered by severity, then rule, then log position; passes ordered by rule)."""
    results = [f for rule in RULES for f in rule(inp, scope)]
    exceptions = [f for f in results if f.severity != "PASS"]
    exceptions.sort(key=lambda f: (SEVERITY_ORDER.index(f.severity), f.rule, f.evidence[:1] or (0,)))
    passes = sorted((f for f in results if f.severity == "PASS"), key=lambda f: f.rule)
    return exceptions, passes


# ---------------------------------------------------------------------------------------------------------------
# Summary block and handover checklist


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    name_zh: str
    name_en: str
    start: Decimal
    end: Decimal

    @property
    def change(self) -> Decimal:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Summary:
    """The tenure's start and end figures (SCENARIOS S12 summary block)."""

    metrics: tuple[Metric, ...]
    contracts_start: tuple[str, ...]
    contracts_end: tuple[str, ...]


def summarize(inp: AuditInput, scope: Scope) -> Summary:
    sheet = balance_sheet(inp.chart, inp.postings, scope.start, scope.end, origin=inp.origin)
    start = _balances_at(inp, scope.start, opening=True)
    end = _balances_at(inp, scope.end, opening=False)
    payable = _codes_named(inp.chart, (OUTSIDER_PAYABLE_NAME,))
    borrowing = _codes_named(inp.chart, BORROWING_NAMES)

    def credit(balances, codes):
        return -sum((balances.get(c, ZERO) for c in codes), ZERO)

    outsiders = (credit(start, payable), credit(end, payable))
    payables = sheet["payables"]
    metrics = (
        Metric("monetary_funds", "货币资金", "Monetary funds", sheet["monetary_funds"].start, sheet["monetary_funds"].end),
        Metric("receivables", "应收款项", "Receivables", sheet["receivables"].start, sheet["receivables"].end),
        Metric("payables_outsiders", "对外应付款项", "Payables to outsiders", *outsiders),
        Metric("members_payable", "应付成员款项(含分红)", "Payable to members (dividends)",
               payables.start - outsiders[0], payables.end - outsiders[1]),
        Metric("borrowings", "借款", "Borrowings", credit(start, borrowing), credit(end, borrowing)),
        Metric("net_assets", "净资产", "Net assets", sheet["total_equity"].start, sheet["total_equity"].end),
    )
    return Summary(metrics, _active_contracts(inp, scope.start), _active_contracts(inp, scope.end))


def _active_contracts(inp: AuditInput, day: dt.date) -> tuple[str, ...]:
    return tuple(sorted(c.contract_no for c, _ in inp.contracts if c.signed <= day and c.start <= day <= c.end))


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One line of the handover list (移交清册), to be ticked and signed."""

    key: str
    title_zh: str
    title_en: str
    detail_zh: str
    detail_en: str


def handover_checklist(inp: AuditInput, scope: Scope, exceptions: list[Finding]) -> tuple[ChecklistItem, ...]:
    """DOMAIN.md §9.4: what the outgoing official hands over, with the amounts the books show at departure."""
    chart, end = inp.chart, scope.end
    balances = _balances_at(inp, end, opening=False)
    last_close = max((c for c in inp.closings if c.event.date <= scope.as_of), key=lambda c: c.period, default=None)
    items = [ChecklistItem("seals", "印章(公章、财务专用章、负责人名章)", "Seals (official, finance, personal)",
                           "逐枚清点移交", "count and hand over each seal")]
    vouchers = [v for v in inp.vouchers if scope.covers(v.date)]
    closed = [c.period for c in inp.closings if scope.covers(c.event.date)]
    items.append(ChecklistItem("books", "会计凭证、账簿、报表", "Vouchers, books and reports",
                               f"记账凭证 {len(vouchers)} 张,已月结 {len(closed)} 期",
                               f"{len(vouchers)} vouchers, {len(closed)} closed periods"))
    banks = [(f, closed_on) for f, closed_on, _ in inp.funds if f.kind == "bank" and (closed_on is None or closed_on > end)]
    book_bank = balances.get("102", ZERO)
    statement = last_close.event.bank_statement if last_close else None
    agree_zh = ("= 对账单" if statement == book_bank else f"对账单 {yuan(statement)}") if statement is not None else "无对账单"
    agree_en = ("= statement" if statement == book_bank else f"statement {yuan(statement)}") if statement is not None else "no statement"
    names = "、".join(f"{f.name}({f.bank} 尾号{f.account_no_last4})" for f, _ in banks)
    items.append(ChecklistItem("bank_accounts", "银行账户、银行卡及U盾", "Bank accounts, cards and U-keys",
                               f"{len(banks)} 个账户 {names}; 账面余额 {yuan(book_bank)} 元 {agree_zh}",
                               f"{len(banks)} account(s); balance {yuan(book_bank)} per book {agree_en}"))
    counted = last_close.event.cash_counted if last_close else balances.get("101", ZERO)
    items.append(ChecklistItem("cash", "库存现金", "Cash on hand", f"盘点现金 {yuan(counted)} 元", f"cash {yuan(counted)} counted"))
    contract_texts_zh, contract_texts_en = [], []
    for c, _ in sorted(inp.contracts, key=lambda cs: cs[0].contract_no):
        if not (c.signed <= end and c.end >= end):
            continue
        future = [i for i in c.schedule if i.due > end]
        if future:
            years = f"{future[0].due.year}–{future[-1].due.year}"
            total = yuan(sum((i.amount for i in future), ZERO))
            contract_texts_zh.append(f"{c.contract_no} {c.counterparty}(至 {c.end.isoformat()}, {years} 年应收 {total} 元)")
            contract_texts_en.append(f"{c.contract_no} {c.counterparty} (to {c.end.isoformat()}, {years} schedule {total})")
        else:
            contract_texts_zh.append(f"{c.contract_no} {c.counterparty}(至 {c.end.isoformat()})")
            contract_texts_en.append(f"{c.contract_no} {c.counterparty} (to {c.end.isoformat()})")
    items.append(ChecklistItem("contracts", "合同", "Contracts", "; ".join(contract_texts_zh) or "无", "; ".join(contract_texts_en) or "none"))
    month = _month_key(end)
    held = [a for a in inp.assets if a.registered.in_service <= end and (a.disposed is None or a.disposed.date > end)]
    net = sum((a.registered.cost - a.registered.accumulated_depreciation
               - sum((amount for m, amount in a.depreciation if m <= month), ZERO) for a in held), ZERO)
    items.append(ChecklistItem("assets", "固定资产登记簿", "Fixed-asset register",
                               f"固定资产 {len(held)} 项,净值 {yuan(net)} 元", f"{len(held)} fixed assets, net {yuan(net)}"))
    resources = sorted(inp.resources.values(), key=lambda r: r[0].resource_no)
    items.append(ChecklistItem("resources", "资源登记簿", "Resource register",
                               "、".join(f"{r.resource_no} {r.name} {r.area_mu}亩" for r, _ in resources) or "无",
                               ", ".join(f"{r.resource_no} {r.name} {r.area_mu} mu" for r, _ in resources) or "none"))
    claims, debts = _details(inp, end, RECEIVABLE_CODES, debit=True), _details(inp, end, ("113",), debit=False)
    debts += _details(inp, end, tuple(_codes_named(chart, (OUTSIDER_PAYABLE_NAME, *BORROWING_NAMES))), debit=False)
    items.append(ChecklistItem("claims_and_debts", "债权债务清单", "Claims and debts",
                               f"债权: {'、'.join(f'{d} {yuan(a)}' for d, a in claims) or '无'}; 债务: {'、'.join(f'{d} {yuan(a)}' for d, a in debts) or '无'}",
                               f"claims: {', '.join(f'{d} {yuan(a)}' for d, a in claims) or 'none'}; debts: {', '.join(f'{d} {yuan(a)}' for d, a in debts) or 'none'}"))
    open_items = [(n, f) for n, f in enumerate(exceptions, 1) if f.severity in ("HIGH", "MEDIUM", "LOW")]
    items.append(ChecklistItem("open_exceptions", "待说明的审计发现", "Open exceptions needing an explanation",
                               "; ".join(f"#{n} {f.rule} {f.object}" for n, f in open_items) or "无",
                               "; ".join(f"#{n} {f.rule} {f.object}" for n, f in open_items) or "none"))
    in_tenure = [d for d in sorted(inp.decisions.values(), key=lambda d: d.decision_id)
                 if any(scope.covers(day) for _, day, _, _ in d.steps)]
    full = [d.decision_id for d in in_tenure if any(k == "resolve" for k, *_ in d.steps)]
    other = [d.decision_id for d in in_tenure if d.decision_id not in full]
    items.append(ChecklistItem("decisions", "四议两公开档案及其他决策记录", "四议两公开 files and other decision records",
                               ("、".join(full) or "无") + (f"; 其他决策记录: {'、'.join(other)}" if other else ""),
                               (", ".join(full) or "none") + (f"; other decision records: {', '.join(other)}" if other else "")))
    boards = sorted({d.period for d in inp.disclosures if d.published <= scope.as_of and scope.start <= _first_of(d.period) <= end})
    items.append(ChecklistItem("disclosures", "财务公开档案", "Disclosure archive",
                               f"月度公开快照 {len(boards)} 期", f"{len(boards)} disclosure snapshots"))
    items.append(ChecklistItem("signatures", "移交清册签字", "Signatures of the handover list",
                               f"移交人 {scope.official.name}、接交人、监交人(乡镇三资中心)签字,一式三份",
                               f"signed by the outgoing {scope.official.name}, the incoming official and the supervisor "
                               "(township centre); three copies"))
    return tuple(items)


def _first_of(period: str) -> dt.date:
    return dt.date(int(period[:4]), int(period[5:7]), 1)


def _details(inp: AuditInput, at: dt.date, codes: Iterable[str], *, debit: bool) -> list[tuple[str, Decimal]]:
    """Detail balances of the accounts at `at` on one side: debit (owed to the collective) or credit (owed by it)."""
    wanted = set(codes)
    nets: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for p in inp.postings:
        top = inp.chart.top_level(p.code).code
        if top in wanted and p.date <= at:
            nets[p.detail or inp.chart[top].name_zh] += p.net
    return [(d, n if debit else -n) for d, n in nets.items() if (n > 0 if debit else n < 0)]


# ---------------------------------------------------------------------------------------------------------------
# The whole audit


@dataclass(frozen=True)
class Audit:
    """A departure (or tenure) audit of one official over the books."""

    origin: str
    ledger_name: str
    scope: Scope
    summary: Summary
    exceptions: tuple[Finding, ...]
    passes: tuple[Finding, ...]
    checklist: tuple[ChecklistItem, ...]
    log_size: int


def audit_official(inp: AuditInput, official_id: str, log_size: int) -> Audit:
    scope = tenure_scope(inp, official_id)
    exceptions, passes = run_rules(inp, scope)
    return Audit(
        origin=inp.origin, ledger_name=inp.ledger.name, scope=scope, summary=summarize(inp, scope),
        exceptions=tuple(exceptions), passes=tuple(passes),
        checklist=handover_checklist(inp, scope, exceptions), log_size=log_size,
    )

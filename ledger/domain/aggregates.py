"""Aggregates of one village ledger and their events.

Identities are name-based UUIDs under the ledger's origin, so a voucher number, asset number or journal record id
maps to exactly one aggregate and a duplicate is caught by the store's uniqueness, not by a race-prone lookup.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .journal import Amount, Approval, Instalment
from .model import Aggregate, Event, TrustedModel, register_aggregate
from .policy import Policy, upgrade_policy_v1

Role = Literal["signer", "log", "witness"]


def ledger_id(origin: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"village-ledger:{origin}")


# A batch asks for each id several times (the prefetch, the marker, the handler's lookups); uuid5 is a SHA-1.
@lru_cache(maxsize=4096)
def child_id(origin: str, kind: str, key: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"village-ledger:{origin}/{kind}/{key}")


class PostingLine(TrustedModel):
    """A voucher line as stored: a chart account, its detail, and both columns (the unused one is 0.00)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    detail: str = ""
    debit: Amount
    credit: Amount


class KeySpec(BaseModel):
    """A key as registered in the log: the verifier reads exactly these fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: Role
    public_key: str  # base64 raw Ed25519
    key_id: str  # hex, C2SP key id
    holder: str | None = None  # official id for signer keys


class RegisteredKey(KeySpec):
    registered_version: int
    revoked_version: int | None = None


class Official(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    official_id: str
    name: str
    roles: list[str]
    term_start: dt.date
    term_end: dt.date | None = None
    departed: dt.date | None = None
    handover_date: dt.date | None = None


@register_aggregate("ledger/Ledger")
class Ledger(Aggregate):
    """The ledger itself: identity, chart, policy, officials and tenures, signer keys, opening balances."""

    origin: str = ""
    name: str = ""
    chart: str = ""
    policies: list[Policy] = []
    keys: list[RegisteredKey] = []
    officials: dict[str, Official] = {}
    opening_date: dt.date | None = None
    opening_lines: list[PostingLine] = []
    distribution_plans: dict[int, dict[str, Any]] = {}

    @field_validator("policies", mode="before")
    @classmethod
    def _upgrade_snapshot_policies(cls, value: Any) -> Any:
        # Snapshots taken before policy ladders hold v1 policies; events are upcast by their class version instead.
        return [upgrade_policy_v1(p) if isinstance(p, dict) and "major_matter_threshold" in p else p for p in value]

    class Opened(Event):
        """Genesis: identity, chart, policy and the first keys, valid from this very entry (seq 0)."""

        TOPIC: ClassVar[str] = "ledger/Ledger/Opened"
        CLASS_VERSION: ClassVar[int] = 2  # v2: the policy's matter thresholds became spending ladders
        origin: str
        name: str
        chart: Literal["2004", "2023"]
        policy: Policy
        keys: list[KeySpec] = Field(min_length=1)

        @classmethod
        def upcast_v1_v2(cls, state: dict) -> dict:
            return {**state, "policy": upgrade_policy_v1(state["policy"])}

        def apply(self, ledger: "Ledger") -> None:
            ledger.origin, ledger.name, ledger.chart = self.origin, self.name, self.chart
            ledger.policies = [self.policy]
            ledger.keys = [RegisteredKey(**k.model_dump(), registered_version=self.originator_version) for k in self.keys]
            ledger.officials, ledger.opening_lines, ledger.distribution_plans = {}, [], {}
            ledger.opening_date = None

    class KeyRegistered(Event):
        """A key added later; valid from the entry after this one."""

        TOPIC: ClassVar[str] = "ledger/Ledger/KeyRegistered"
        name: str
        role: Role
        public_key: str
        key_id: str
        holder: str | None = None

        def apply(self, ledger: "Ledger") -> None:
            ledger.keys.append(
                RegisteredKey(
                    name=self.name,
                    role=self.role,
                    public_key=self.public_key,
                    key_id=self.key_id,
                    holder=self.holder,
                    registered_version=self.originator_version,
                )
            )

    class KeyRevoked(Event):
        TOPIC: ClassVar[str] = "ledger/Ledger/KeyRevoked"
        name: str
        key_id: str
        reason: str

        def apply(self, ledger: "Ledger") -> None:
            ledger.keys = [
                k.model_copy(update={"revoked_version": self.originator_version})
                if (k.name, k.key_id) == (self.name, self.key_id) and k.revoked_version is None
                else k
                for k in ledger.keys
            ]

    class PolicyAdopted(Event):
        TOPIC: ClassVar[str] = "ledger/Ledger/PolicyAdopted"
        CLASS_VERSION: ClassVar[int] = 2  # as Opened
        policy: Policy

        @classmethod
        def upcast_v1_v2(cls, state: dict) -> dict:
            return {**state, "policy": upgrade_policy_v1(state["policy"])}

        def apply(self, ledger: "Ledger") -> None:
            ledger.policies = sorted([*ledger.policies, self.policy], key=lambda p: p.effective)

    class OfficialAppointed(Event):
        TOPIC: ClassVar[str] = "ledger/Ledger/OfficialAppointed"
        official_id: str
        name: str
        roles: list[str]
        term_start: dt.date
        term_end: dt.date | None = None

        def apply(self, ledger: "Ledger") -> None:
            ledger.officials[self.official_id] = Official(
                official_id=self.official_id,
                name=self.name,
                roles=list(self.roles),
                term_start=self.term_start,
                term_end=self.term_end,
            )

    class OfficialDeparted(Event):
        TOPIC: ClassVar[str] = "ledger/Ledger/OfficialDeparted"
        official_id: str
        departed: dt.date
        handover_date: dt.date

        def apply(self, ledger: "Ledger") -> None:
            ledger.officials[self.official_id] = ledger.officials[self.official_id].model_copy(
                update={"departed": self.departed, "handover_date": self.handover_date}
            )

    class OpeningBalancesRecorded(Event):
        TOPIC: ClassVar[str] = "ledger/Ledger/OpeningBalancesRecorded"
        date: dt.date
        lines: list[PostingLine]

        def apply(self, ledger: "Ledger") -> None:
            ledger.opening_date, ledger.opening_lines = self.date, list(self.lines)

    class DistributionPlanAdopted(Event):
        TOPIC: ClassVar[str] = "ledger/Ledger/DistributionPlanAdopted"
        year: int
        adopted: dt.date
        decision: str | None = None
        reserve_rate: Decimal
        per_share: Amount
        shares: int

        def apply(self, ledger: "Ledger") -> None:
            ledger.distribution_plans[self.year] = self.model_dump(
                mode="json", include={"adopted", "decision", "reserve_rate", "per_share", "shares"}
            )

    class CheckpointRecorded(Event):
        """A signed checkpoint of this log (TLOG.md §3), with the witness cosignatures gathered for it.

        Kept in the log itself so that publication is ordered and signed like everything else; it describes the
        tree of the first `size` entries, all of which precede it. `period` is the month whose close it seals.
        """

        TOPIC: ClassVar[str] = "ledger/Ledger/CheckpointRecorded"
        size: int = Field(ge=0)
        root_hash: str = Field(description="base64 of the 32-byte RFC 9162 root")
        note: str = Field(description="the signed note exactly as published, cosignature lines included")
        period: str | None = Field(None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")

    def active_key(self, name: str, key_id: str, role: Role) -> RegisteredKey | None:
        for key in self.keys:
            if (key.name, key.key_id, key.role) == (name, key_id, role) and key.revoked_version is None:
                return key
        return None

    def policy_at(self, day: dt.date) -> Policy:
        in_force = [p for p in self.policies if p.effective <= day]
        return in_force[-1] if in_force else self.policies[0]


@register_aggregate("ledger/Period")
class Period(Aggregate):
    """One accounting month: which vouchers entered it, and whether it is closed (月结)."""

    period: str = ""
    voucher_nos: list[str] = []
    closed: bool = False
    closing_balances: dict[str, Decimal] = {}

    class Opened(Event):
        TOPIC: ClassVar[str] = "ledger/Period/Opened"
        period: str

        def apply(self, period: "Period") -> None:
            period.period, period.voucher_nos, period.closed, period.closing_balances = self.period, [], False, {}

    class VoucherEntered(Event):
        TOPIC: ClassVar[str] = "ledger/Period/VoucherEntered"
        voucher_no: str

        def apply(self, period: "Period") -> None:
            period.voucher_nos.append(self.voucher_no)

    class Closed(Event):
        """Month close: the counted cash and bank statement, and every account's closing balance (debit positive)."""

        TOPIC: ClassVar[str] = "ledger/Period/Closed"
        date: dt.date
        cash_counted: Amount
        bank_statement: Amount
        reconciliation_note: str = ""
        vouchers: int
        closing_balances: dict[str, Amount]

        def apply(self, period: "Period") -> None:
            period.closed = True
            period.closing_balances = dict(self.closing_balances)


@register_aggregate("ledger/Voucher")
class Voucher(Aggregate):
    """A bookkeeping voucher (记账凭证). Immutable once posted; corrected only by a red-ink reversal."""

    voucher_no: str = ""
    date: dt.date | None = None
    chart: str = ""
    summary: str = ""
    lines: list[PostingLine] = []
    tags: list[str] = []
    closing: bool = False
    reverses: str | None = None
    reversed_by: str | None = None

    class Posted(Event):
        TOPIC: ClassVar[str] = "ledger/Voucher/Posted"
        voucher_no: str
        date: dt.date
        chart: str
        summary: str
        lines: list[PostingLine]
        attachments: list[str] = []
        approvals: list[Approval] = []
        tags: list[str] = []
        decision: str | None = None
        contract: str | None = None
        counterparty: str | None = None
        asset: str | None = None
        closing: bool = Field(False, description="a year-end transfer into 321/322 (结转), not income or expense")

        def apply(self, voucher: "Voucher") -> None:
            voucher.set_fields(
                voucher_no=self.voucher_no, date=self.date, chart=self.chart, summary=self.summary,
                lines=list(self.lines), tags=list(self.tags), closing=self.closing, reverses=None, reversed_by=None,
            )

    class Reversed(Event):
        """The red-ink voucher (红字冲销): the original's lines negated, under a new voucher number."""

        TOPIC: ClassVar[str] = "ledger/Voucher/Reversed"
        voucher_no: str
        date: dt.date
        chart: str
        summary: str
        reverses: str
        reason: str = ""
        lines: list[PostingLine]
        attachments: list[str] = []
        approvals: list[Approval] = []
        tags: list[str] = []

        def apply(self, voucher: "Voucher") -> None:
            voucher.set_fields(
                voucher_no=self.voucher_no, date=self.date, chart=self.chart, summary=self.summary,
                lines=list(self.lines), tags=list(self.tags), closing=False, reverses=self.reverses, reversed_by=None,
            )

    class MarkedReversed(Event):
        """Recorded on the original so that it can be reversed only once."""

        TOPIC: ClassVar[str] = "ledger/Voucher/MarkedReversed"
        reversed_by: str

        def apply(self, voucher: "Voucher") -> None:
            voucher.reversed_by = self.reversed_by


FUND_ACCOUNTS = {"cash": ("101",), "bank": ("102",), "special": ("241", "102", "231")}


@register_aggregate("ledger/Fund")
class Fund(Aggregate):
    """A fund (资金): the cash box, a bank account or an earmarked special fund, and the account that carries it."""

    fund_id: str = ""
    kind: str = ""
    account: str = ""
    detail: str = ""
    closed: dt.date | None = None

    class Opened(Event):
        TOPIC: ClassVar[str] = "ledger/Fund/Opened"
        fund_id: str
        kind: Literal["cash", "bank", "special"]
        name: str
        account: str
        detail: str = ""
        bank: str = ""
        account_no_last4: str = ""
        purpose: str = ""
        opened: dt.date

        def apply(self, fund: "Fund") -> None:
            fund.fund_id, fund.kind, fund.account, fund.detail = self.fund_id, self.kind, self.account, self.detail
            fund.closed = None

    class Closed(Event):
        TOPIC: ClassVar[str] = "ledger/Fund/Closed"
        closed: dt.date

        def apply(self, fund: "Fund") -> None:
            fund.closed = self.closed


@register_aggregate("ledger/Asset")
class Asset(Aggregate):
    """A fixed asset (固定资产) with its depreciation schedule, leases and disposal."""

    asset_no: str = ""
    name: str = ""
    use: str = ""
    cost: Decimal = Decimal("0.00")
    residual: Decimal = Decimal("0.00")
    in_service: dt.date | None = None
    life_months: int = 0
    depreciation_account: str = ""
    depreciation_detail: str = ""
    accumulated: Decimal = Decimal("0.00")
    depreciated_months: list[str] = []
    leases: list[str] = []
    disposed: dt.date | None = None

    class Registered(Event):
        TOPIC: ClassVar[str] = "ledger/Asset/Registered"
        asset_no: str
        name: str
        category: str
        use: str
        cost: Amount
        in_service: dt.date
        life_months: int
        residual: Amount
        depreciation_account: str
        depreciation_detail: str = ""
        accumulated_depreciation: Amount
        voucher_no: str | None = None

        def apply(self, asset: "Asset") -> None:
            asset.asset_no, asset.name, asset.use = self.asset_no, self.name, self.use
            asset.cost, asset.residual, asset.in_service = self.cost, self.residual, self.in_service
            asset.life_months = self.life_months
            asset.depreciation_account, asset.depreciation_detail = self.depreciation_account, self.depreciation_detail
            asset.accumulated, asset.depreciated_months = self.accumulated_depreciation, []
            asset.leases, asset.disposed = [], None

    class Depreciated(Event):
        TOPIC: ClassVar[str] = "ledger/Asset/Depreciated"
        month: str
        amount: Amount
        voucher_no: str

        def apply(self, asset: "Asset") -> None:
            asset.accumulated += self.amount
            asset.depreciated_months.append(self.month)

    class Leased(Event):
        TOPIC: ClassVar[str] = "ledger/Asset/Leased"
        contract_no: str

        def apply(self, asset: "Asset") -> None:
            asset.leases.append(self.contract_no)

    class Disposed(Event):
        TOPIC: ClassVar[str] = "ledger/Asset/Disposed"
        date: dt.date
        method: str
        decision: str | None = None
        voucher_no: str | None = None

        def apply(self, asset: "Asset") -> None:
            asset.disposed = self.date


@register_aggregate("ledger/Resource")
class Resource(Aggregate):
    """A collectively owned resource (资源): land, water surface, forest, wasteland."""

    resource_no: str = ""
    name: str = ""
    area_mu: Decimal = Decimal("0")
    reference_fee_per_mu_year: Decimal | None = None
    contracts: list[str] = []

    class Registered(Event):
        TOPIC: ClassVar[str] = "ledger/Resource/Registered"
        resource_no: str
        kind: str
        name: str
        area_mu: Decimal
        location: str = ""
        reference_fee_per_mu_year: Amount | None = None

        def apply(self, resource: "Resource") -> None:
            resource.resource_no, resource.name, resource.area_mu = self.resource_no, self.name, self.area_mu
            resource.reference_fee_per_mu_year, resource.contracts = self.reference_fee_per_mu_year, []

    class ContractedOut(Event):
        TOPIC: ClassVar[str] = "ledger/Resource/ContractedOut"
        contract_no: str

        def apply(self, resource: "Resource") -> None:
            resource.contracts.append(self.contract_no)


@register_aggregate("ledger/Contract")
class Contract(Aggregate):
    """A contract contracting out a resource or leasing out an asset, with its fee schedule."""

    contract_no: str = ""

    class Signed(Event):
        TOPIC: ClassVar[str] = "ledger/Contract/Signed"
        contract_no: str
        subject_kind: Literal["resource", "asset"]
        subject_no: str
        counterparty: str
        counterparty_is_member: bool
        signed: dt.date
        start: dt.date
        end: dt.date
        annual_fee: Amount
        schedule: list[Instalment] = []
        decision: str | None = None
        township_approval: str | None = None

        def apply(self, contract: "Contract") -> None:
            contract.contract_no = self.contract_no


class StepRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str
    date: dt.date


@register_aggregate("ledger/Decision")
class Decision(Aggregate):
    """A matter under democratic decision (四议两公开 or a lesser band) and its recorded steps."""

    decision_id: str = ""
    matter: str = ""
    steps: list[StepRecord] = []

    class Opened(Event):
        TOPIC: ClassVar[str] = "ledger/Decision/Opened"
        decision_id: str
        title: str
        matter: str
        amount: Amount | None = None

        def apply(self, decision: "Decision") -> None:
            decision.decision_id, decision.matter, decision.steps = self.decision_id, self.matter, []

    class StepRecorded(Event):
        TOPIC: ClassVar[str] = "ledger/Decision/StepRecorded"
        step: str
        date: dt.date
        body: str
        due: int | None = None
        present: int | None = None
        votes_for: int | None = None
        votes_against: int | None = None
        abstentions: int | None = None
        evidence: list[str] = []
        note: str = ""

        def apply(self, decision: "Decision") -> None:
            decision.steps.append(StepRecord(step=self.step, date=self.date))


@register_aggregate("ledger/TownshipApproval")
class TownshipApproval(Aggregate):
    """An approval given by the township (乡镇审批)."""

    approval_id: str = ""

    class Recorded(Event):
        TOPIC: ClassVar[str] = "ledger/TownshipApproval/Recorded"
        approval_id: str
        subject: str
        matter: str
        date: dt.date
        approver: str

        def apply(self, approval: "TownshipApproval") -> None:
            approval.approval_id = self.approval_id


@register_aggregate("ledger/Disclosure")
class Disclosure(Aggregate):
    """A published monthly disclosure (财务公开): its hash is in the log, so the board can never be edited."""

    period: str = ""
    sha256: str = ""

    class Published(Event):
        TOPIC: ClassVar[str] = "ledger/Disclosure/Published"
        period: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
        published: dt.date = Field(description="local date the board was posted")
        sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the disclosure's canonical JSON")
        checkpoint_size: int | None = Field(None, ge=0, description="tree size of the cosigned checkpoint it carries")

        def apply(self, disclosure: "Disclosure") -> None:
            disclosure.period, disclosure.sha256 = self.period, self.sha256


@register_aggregate("ledger/JournalRecord")
class JournalRecord(Aggregate):
    """Marks a journal record as applied, so that re-importing the same id is skipped (and a changed one refused)."""

    record_id: str = ""
    digest: str = ""

    class Applied(Event):
        TOPIC: ClassVar[str] = "ledger/JournalRecord/Applied"
        record_id: str
        record_type: str
        digest: str  # SHA-256 of the record's canonical JSON

        def apply(self, record: "JournalRecord") -> None:
            record.set_fields(record_id=self.record_id, digest=self.digest)

"""Journal import format (JSON Lines): one record per line, discriminated by `type`, unique by `id`.

These pydantic models are the format's single definition; the published JSON Schema is generated from them
(`village-ledger schema`, ledger/schema/journal.schema.json). Amounts are decimal strings with exactly two places.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, TypeAdapter, WithJsonSchema

from .money import format_amount, parse_amount

AMOUNT_PATTERN = r"^-?(0|[1-9][0-9]{0,14})\.[0-9]{2}$"

Amount = Annotated[
    Decimal,
    BeforeValidator(parse_amount),
    PlainSerializer(format_amount, return_type=str),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "description": "yuan with exactly 2 decimals"}),
]
Month = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
Ratio = Annotated[Decimal, Field(ge=0, le=1), PlainSerializer(str, return_type=str)]


class Record(BaseModel):
    """Fields every journal record has."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    id: Annotated[str, Field(min_length=1, max_length=200, description="unique across the ledger; re-import of the same id is skipped")]


class Line(BaseModel):
    """One line of a voucher: an account of the ledger's chart, an optional detail (sub-ledger) and one side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: Annotated[str, Field(pattern=r"^[0-9]{3,9}$", description="account code of the ledger's chart")]
    detail: str = Field("", description="detail account: household, counterparty, project …")
    debit: Amount | None = None
    credit: Amount | None = None


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: str = Field(description="e.g. 报账员, 村委会主任, 民主理财小组, 镇三资中心")
    person: str
    date: dt.date


class OfficialAppointed(Record):
    """An official takes office for a term (任期)."""

    type: Literal["official"]
    official_id: str
    name: str
    roles: list[str] = Field(min_length=1)
    term_start: dt.date
    term_end: dt.date | None = None


class OfficialDeparted(Record):
    """An official leaves office; triggers the departure audit (离任审计)."""

    type: Literal["official_departed"]
    official_id: str
    departed: dt.date
    handover_date: dt.date


class FundOpened(Record):
    """A fund the collective holds: the cash box, a bank account, or an earmarked special fund (专项资金)."""

    type: Literal["fund"]
    fund_id: str
    kind: Literal["cash", "bank", "special"]
    name: str
    account: str = Field(pattern=r"^[0-9]{3,9}$", description="the chart account that carries it (101, 102, 241 …)")
    detail: str = Field("", description="its detail account, if the chart account has several funds")
    bank: str = ""
    account_no_last4: str = Field("", pattern=r"^([0-9]{4})?$", description="last four digits only")
    purpose: str = Field("", description="what an earmarked fund may be spent on")
    opened: dt.date


class FundClosed(Record):
    """A fund closed (bank account cancelled, special fund spent and settled); its balance must be zero."""

    type: Literal["fund_closed"]
    fund_id: str
    closed: dt.date


class OpeningBalances(Record):
    """Opening balances of the books (期初余额), before any voucher."""

    type: Literal["opening_balances"]
    date: dt.date
    lines: list[Line] = Field(min_length=1)


class Voucher(Record):
    """A bookkeeping voucher (记账凭证): balanced lines, evidence and approvals."""

    type: Literal["voucher"]
    voucher_no: str = Field(pattern=r"^\S+$")
    date: dt.date
    summary: str = Field(min_length=1)
    lines: list[Line] = Field(min_length=2)
    attachments: list[str] = []
    approvals: list[Approval] = []
    tags: list[str] = []
    decision: str | None = Field(None, description="democratic decision (四议两公开) this payment executes")
    contract: str | None = None
    counterparty: str | None = None


class Reversal(Record):
    """A red-ink reversal (红字冲销) of an earlier voucher: its lines, negated, in a new voucher."""

    type: Literal["reversal"]
    voucher_no: str = Field(pattern=r"^\S+$")
    date: dt.date
    reverses: str = Field(description="voucher_no of the voucher being reversed")
    summary: str = Field(min_length=1)
    reason: str = ""
    attachments: list[str] = []
    approvals: list[Approval] = []
    tags: list[str] = []


StepKind = Literal[
    "propose",  # 1 村党组织提议
    "deliberate",  # 2 两委会议商议
    "review",  # 3 党员大会审议
    "resolve",  # 4 村民(代表)会议决议
    "publish_resolution",  # 5 决议公开
    "publish_results",  # 6 实施结果公开
    "extended_meeting",  # 两委扩大会 (general matters, before and after)
    "confirm",  # 两委会 confirmation
    "contract_signed",
    "acceptance",  # 验收
]


class DecisionOpened(Record):
    """A matter put to democratic decision (四议两公开 or a lesser band)."""

    type: Literal["decision"]
    decision_id: str
    title: str
    matter: str = Field(description="e.g. public_works, contracting_out, asset_disposal, borrowing, spending")
    amount: Amount | None = None


class DecisionStep(Record):
    """One recorded step of a decision, with attendance and votes where a meeting voted."""

    type: Literal["decision_step"]
    decision_id: str
    step: StepKind
    date: dt.date
    body: str = Field(description="the meeting or actor, e.g. 党员大会")
    due: int | None = Field(None, ge=0, description="应到")
    present: int | None = Field(None, ge=0, description="实到")
    votes_for: int | None = Field(None, ge=0)
    votes_against: int | None = Field(None, ge=0)
    abstentions: int | None = Field(None, ge=0)
    evidence: list[str] = []
    note: str = ""


class TownshipApproval(Record):
    """An approval by the township (乡镇审批), e.g. contracting to a non-member or a large cash withdrawal."""

    type: Literal["township_approval"]
    approval_id: str
    subject: str = Field(description="what is approved: a contract no., voucher no. or decision id")
    matter: str
    date: dt.date
    approver: str


class AssetRegistered(Record):
    """A fixed asset enters the register: bought now (with its voucher) or brought in at opening."""

    type: Literal["asset"]
    asset_no: str
    name: str
    category: str = Field(description="房屋及建筑物, 机器设备, 运输设备, 办公设备, 农业基础设施, 其他")
    use: Literal["management", "production", "public_welfare", "leased_out", "idle"]
    cost: Amount
    in_service: dt.date
    life_months: int = Field(gt=0)
    residual: Amount = Decimal("0.00")
    depreciation_account: str = Field(description="expense account debited by monthly depreciation")
    depreciation_detail: str = ""
    accumulated_depreciation: Amount = Field(Decimal("0.00"), description="already depreciated when registered")
    voucher_no: str | None = Field(None, description="the voucher that paid for it, if bought within these books")


class Depreciation(Record):
    """Monthly depreciation of one asset, posted as a voucher (Dr expense / Cr 152) computed from the register."""

    type: Literal["depreciation"]
    asset_no: str
    month: Month
    voucher_no: str = Field(pattern=r"^\S+$")
    date: dt.date
    summary: str | None = None


class AssetDisposed(Record):
    """An asset leaves the register (sale, scrapping, transfer)."""

    type: Literal["asset_disposed"]
    asset_no: str
    date: dt.date
    method: Literal["sale", "scrap", "transfer", "loss"]
    decision: str | None = None
    voucher_no: str | None = None


class ResourceRegistered(Record):
    """A collectively owned resource (land, pond, forest, wasteland …) enters the register."""

    type: Literal["resource"]
    resource_no: str
    kind: str = Field(description="GB/T 21010 class, e.g. 耕地, 坑塘水面, 林地")
    name: str
    area_mu: Decimal = Field(gt=0)
    location: str = ""
    reference_fee_per_mu_year: Amount | None = Field(None, description="county guidance price")


class Instalment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    due: dt.date
    amount: Amount


class ContractSigned(Record):
    """A contract that contracts out a resource or leases out an asset (发包 / 出租)."""

    type: Literal["contract"]
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


class PeriodClose(Record):
    """Month close (月结): cash count and bank statement must match the books."""

    type: Literal["period_close"]
    period: Month
    date: dt.date
    cash_counted: Amount
    bank_statement: Amount
    reconciliation_note: str = ""


class DistributionPlan(Record):
    """The year's income distribution plan adopted by the members' (representative) meeting."""

    type: Literal["distribution_plan"]
    year: int
    adopted: dt.date
    decision: str | None = None
    reserve_rate: Ratio = Field(description="提取公积公益金 share of the year's income")
    per_share: Amount
    shares: int = Field(ge=0)


JournalRecord = Annotated[
    Union[
        OfficialAppointed,
        OfficialDeparted,
        FundOpened,
        FundClosed,
        OpeningBalances,
        Voucher,
        Reversal,
        DecisionOpened,
        DecisionStep,
        TownshipApproval,
        AssetRegistered,
        Depreciation,
        AssetDisposed,
        ResourceRegistered,
        ContractSigned,
        PeriodClose,
        DistributionPlan,
    ],
    Field(discriminator="type"),
]

journal_record_adapter: TypeAdapter[JournalRecord] = TypeAdapter(JournalRecord)


def journal_json_schema() -> dict:
    schema = journal_record_adapter.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "village-ledger journal record (one per JSON Lines line)"
    return schema

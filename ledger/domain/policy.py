"""Financial-control policy: thresholds are data, scoped to a jurisdiction and an effective date (DOMAIN.md §0.2).

A policy file (`village-ledger init --policy FILE`) is JSON: either one policy object or
`{"policies": [policy, ...]}` holding the dated policies of one jurisdiction; the format is described in
docs/audit.md. The functions at the end are pure checks shared by the audit rules (R06) and the strict mode of
the voucher handler, so that both read the same tiers the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .charts import DEBIT, Chart
from .journal import Amount, StepKind

Severity = Literal["HIGH", "MEDIUM", "LOW"]

STEP_NAMES: dict[str, tuple[str, str]] = {
    "propose": ("村党组织提议", "party branch proposal"),
    "deliberate": ("村两委会议商议", "joint committee deliberation"),
    "review": ("党员大会审议", "party members' meeting review"),
    "resolve": ("村民(代表)会议决议", "villagers' (representatives') meeting resolution"),
    "publish_resolution": ("决议公开", "publication of the resolution"),
    "publish_results": ("实施结果公开", "publication of the results"),
    "extended_meeting": ("两委扩大会", "extended joint committee meeting"),
    "confirm": ("两委会确认", "joint committee confirmation"),
    "contract_signed": ("签订合同", "contract signed"),
    "acceptance": ("验收", "acceptance"),
}


class MatterTier(BaseModel):
    """One band of a spending ladder: amounts in [min, max) and what they need before and after the commitment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="e.g. major / general / minor")
    name_zh: str = Field(description="e.g. 重大事项")
    min: Amount | None = Field(None, description="inclusive lower bound; none = from zero")
    max: Amount | None = Field(None, description="exclusive upper bound; none = unbounded")
    steps_before: tuple[StepKind, ...] = ()
    steps_after: tuple[StepKind, ...] = ()
    signers: tuple[str, ...] = Field((), description="approval roles every payment of this band carries")
    audit_severity: Severity | None = Field(
        None, description="severity of an audit finding (R06) when steps are missing; none = enforced only in strict mode"
    )

    def contains(self, amount: Decimal) -> bool:
        return (self.min is None or amount >= self.min) and (self.max is None or amount < self.max)

    def band_text(self) -> str:
        low = f"{self.min:.2f}" if self.min is not None else "0.00"
        return f"{low} ≤ amount < {self.max:.2f}" if self.max is not None else f"amount ≥ {low}"


class SpendingLadder(BaseModel):
    """The tiers for one kind of spending; a payment uses the first ladder naming its matter or expense account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spending_type: str = Field(description="default, production, non_production, capital_works …")
    matters: tuple[str, ...] = Field((), description="decision matters (DecisionOpened.matter) using this ladder")
    accounts: tuple[str, ...] = Field((), description="top-level expense or capital account codes using this ladder")
    tiers: tuple[MatterTier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _tiers_cover_every_amount_once(self) -> SpendingLadder:
        tiers = sorted(self.tiers, key=lambda t: t.min if t.min is not None else Decimal(-1))
        if tiers[0].min is not None or tiers[-1].max is not None:
            raise ValueError(f"ladder {self.spending_type}: the lowest tier needs no min and the highest no max")
        for lower, upper in pairwise(tiers):
            if lower.max != upper.min:
                raise ValueError(
                    f"ladder {self.spending_type}: tier {lower.name} ends at {lower.max} but {upper.name} starts at {upper.min}"
                )
        return self

    def tier_for(self, amount: Decimal) -> MatterTier:
        return next(t for t in self.tiers if t.contains(amount))


class Policy(BaseModel):
    """The thresholds in force for one jurisdiction from one date (values are local, never hard-coded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jurisdiction: str = Field(description="the township or county whose rules these are")
    effective: dt.date
    ladders: tuple[SpendingLadder, ...] = Field(min_length=1, description="one of them has spending_type 'default'")
    max_cash_payment_per_txn: Amount
    cash_holding_limit: Amount = Field(description="end-of-day cash on hand")
    cash_withdrawal_township_approval_at: Amount = Field(description="same-day cash withdrawals needing township approval")
    transfer_township_approval_at: Amount | None = Field(None, description="same-day transfers needing township approval")
    cash_handover_days: int = Field(3, ge=0, description="days within which cash collected must be banked")
    advance_settlement_days: int = Field(3, ge=0, description="days within which an advance to a cadre is settled")
    low_price_ratio_flag: Decimal = Field(gt=0, le=1, description="flag a contract fee below this share of the reference")
    lease_max_years: int = Field(20, gt=0, description="longest lease or outsider contract term")
    individual_payment_contract_at: Amount = Field(
        Decimal("5000.00"), description="payments to an individual from this amount need a contract and settlement (R14)"
    )
    disclosure_deadline_day: int = Field(ge=1, le=28, description="day of the following month")
    receivable_ageing_months: int = Field(12, gt=0)
    reserve_rate: Decimal = Field(ge=0, le=1, description="提取公积公益金 share of the year's income")
    strict: bool = Field(False, description="refuse a payment whose required approvals or prior steps are missing")

    @model_validator(mode="after")
    def _has_default_ladder(self) -> Policy:
        types = [ladder.spending_type for ladder in self.ladders]
        if "default" not in types:
            raise ValueError("ladders: one ladder must have spending_type 'default'")
        if len(set(types)) != len(types):
            raise ValueError(f"ladders: spending types repeat: {', '.join(types)}")
        return self

    def ladder_for(self, matter: str | None, accounts: Iterable[str]) -> SpendingLadder:
        """The decision's matter decides first, then the expense account, then the default ladder."""
        codes = set(accounts)
        for ladder in self.ladders:
            if matter is not None and matter in ladder.matters:
                return ladder
        for ladder in self.ladders:
            if codes & set(ladder.accounts):
                return ladder
        return next(ladder for ladder in self.ladders if ladder.spending_type == "default")


_SIGNERS = ("报账员", "村委会主任", "民主理财小组")


def seed_ladder(major_over: Decimal, minor_below: Decimal) -> SpendingLadder:
    """The project seed's three tiers (DOMAIN.md §4.2 first row): amounts above `major_over` are major matters."""
    major_from = major_over + Decimal("0.01")
    return SpendingLadder(
        spending_type="default",
        tiers=(
            MatterTier(name="minor", name_zh="一般小额事项", max=minor_below, steps_after=("confirm",), signers=_SIGNERS),
            MatterTier(
                name="general", name_zh="一般事项", min=minor_below, max=major_from,
                steps_before=("extended_meeting",), steps_after=("extended_meeting",), signers=_SIGNERS,
            ),
            MatterTier(
                name="major", name_zh="重大事项", min=major_from,
                steps_before=("propose", "deliberate", "review", "resolve", "publish_resolution"),
                steps_after=("publish_results", "confirm"), signers=_SIGNERS, audit_severity="HIGH",
            ),
        ),
    )


EXAMPLE_POLICY = Policy(
    jurisdiction="example township (values of SCENARIOS.md S1)",
    effective=dt.date(2025, 1, 1),
    ladders=(seed_ladder(Decimal("20000.00"), Decimal("2000.00")),),
    max_cash_payment_per_txn=Decimal("1000.00"),
    cash_holding_limit=Decimal("2000.00"),
    cash_withdrawal_township_approval_at=Decimal("5000.00"),
    low_price_ratio_flag=Decimal("0.80"),
    disclosure_deadline_day=10,
    receivable_ageing_months=12,
    reserve_rate=Decimal("0.30"),
)


def upgrade_policy_v1(state: dict) -> dict:
    """A policy as stored before ladders (two flat thresholds) in today's shape, with the seed's steps and signers."""
    state = dict(state)
    major = Decimal(state.pop("major_matter_threshold"))
    minor = Decimal(state.pop("minor_matter_ceiling"))
    state["ladders"] = [seed_ladder(major, minor).model_dump(mode="json")]
    return state


class PolicyFileError(ValueError):
    """A policy file that cannot be used, with the file named."""


def load_policy_file(path: Path) -> list[Policy]:
    """The dated policies of one jurisdiction, oldest first."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyFileError(f"{path}: not JSON: {exc}") from None
    items = data["policies"] if isinstance(data, dict) and set(data) == {"policies"} else [data]
    if not isinstance(items, list) or not items:
        raise PolicyFileError(f"{path}: 'policies' must be a non-empty list")
    policies = []
    for index, item in enumerate(items):
        try:
            policies.append(Policy.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'policy'}: {e['msg']}" for e in exc.errors())
            raise PolicyFileError(f"{path}: policies[{index}]: {problems}") from None
    jurisdictions = sorted({p.jurisdiction for p in policies})
    if len(jurisdictions) > 1:
        raise PolicyFileError(f"{path}: one file holds one jurisdiction's policies, found {', '.join(jurisdictions)}")
    dates = [p.effective for p in policies]
    if len(set(dates)) != len(dates):
        raise PolicyFileError(f"{path}: two policies take effect on the same date")
    return sorted(policies, key=lambda p: p.effective)


# -- governance checks shared by strict mode and the audit ---------------------------------------------------------


def missing_steps(
    tier: MatterTier, steps: Iterable[tuple[str, dt.date]], commitment: dt.date, *, after_by: dt.date | None
) -> list[str]:
    """Steps (kind, date) the tier requires that are not on record: before ones dated on or before the commitment,
    after ones dated on or after it and no later than `after_by` (None: not due yet, as at payment time)."""
    steps = list(steps)
    missing = [f"before:{kind}" for kind in tier.steps_before if not any(s == kind and d <= commitment for s, d in steps)]
    if after_by is not None:
        # An extended meeting may be both the prior deliberation and the later confirmation; the later one must be
        # a separate record dated after the commitment.
        missing += [
            f"after:{kind}"
            for kind in tier.steps_after
            if not any(
                s == kind and commitment <= d <= after_by and (kind not in tier.steps_before or d > commitment)
                for s, d in steps
            )
        ]
    return missing


def missing_signers(tier: MatterTier, roles: Iterable[str]) -> list[str]:
    present = set(roles)
    return [role for role in tier.signers if role not in present]


def describe_missing(item: str) -> tuple[str, str]:
    """Chinese and English text of a `before:step` / `after:step` item of missing_steps."""
    when, kind = item.split(":", 1)
    zh, en = STEP_NAMES.get(kind, (kind, kind))
    return (f"事前{zh}({kind})" if when == "before" else f"事后{zh}({kind})",
            f"{en} ({kind}) {'before the commitment' if when == 'before' else 'after it'}")


CASH_AND_BANK = ("101", "102")
_CAPITAL_ACCOUNT_NAMES = ("固定资产", "在建工程")


def spending(chart: Chart, lines: Iterable[tuple[str, Decimal, Decimal]]) -> tuple[Decimal, tuple[str, ...]]:
    """What a voucher of (code, debit, credit) lines pays out of cash or bank on expense or capital accounts, and the
    top-level codes of those accounts. Accruals, settlements of payables and transfers between funds pay nothing."""
    lines = list(lines)
    if not any(chart.top_level(code).code in CASH_AND_BANK and credit > 0 for code, _, credit in lines):
        return Decimal("0.00"), ()
    amount, codes = Decimal("0.00"), []
    for code, debit, _ in lines:
        top = chart.top_level(code)
        if debit > 0 and ((top.category == "损益" and top.normal_side == DEBIT) or top.name_zh in _CAPITAL_ACCOUNT_NAMES):
            amount += debit
            codes.append(top.code)
    return amount, tuple(dict.fromkeys(codes))

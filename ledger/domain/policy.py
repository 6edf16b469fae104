"""Financial-control policy: thresholds are data, scoped to a jurisdiction and an effective date (DOMAIN.md §0.2)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from .journal import Amount


class Policy(BaseModel):
    """The thresholds in force for one jurisdiction from one date (values are local, never hard-coded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jurisdiction: str = Field(description="the township or county whose rules these are")
    effective: dt.date
    major_matter_threshold: Amount = Field(description="above this a matter needs full 四议两公开")
    minor_matter_ceiling: Amount = Field(description="below this a matter needs only 两委会 confirmation")
    max_cash_payment_per_txn: Amount
    cash_holding_limit: Amount
    cash_withdrawal_township_approval_at: Amount
    low_price_ratio_flag: Decimal = Field(gt=0, le=1)
    disclosure_deadline_day: int = Field(ge=1, le=28, description="day of the following month")
    receivable_ageing_months: int = Field(12, gt=0)
    reserve_rate: Decimal = Field(ge=0, le=1, description="提取公积公益金 share of the year's income")


EXAMPLE_POLICY = Policy(
    jurisdiction="example township (values of SCENARIOS.md S1)",
    effective=dt.date(2025, 1, 1),
    major_matter_threshold=Decimal("20000.00"),
    minor_matter_ceiling=Decimal("2000.00"),
    max_cash_payment_per_txn=Decimal("1000.00"),
    cash_holding_limit=Decimal("2000.00"),
    cash_withdrawal_township_approval_at=Decimal("5000.00"),
    low_price_ratio_flag=Decimal("0.80"),
    disclosure_deadline_day=10,
    receivable_ageing_months=12,
    reserve_rate=Decimal("0.30"),
)

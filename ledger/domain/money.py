"""Money: Decimal with exactly two places (分). Never float."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_AMOUNT_TEXT = re.compile(r"^-?(0|[1-9][0-9]{0,14})\.[0-9]{2}$")


class MoneyError(ValueError):
    """An amount that is not a two-place decimal."""


def parse_amount(value: object) -> Decimal:
    """Parse an amount given as text with exactly two decimals, e.g. "1400.00".

    Floats are refused outright: a float has already lost the cents it claims to carry.
    """
    if isinstance(value, (bool, float)):
        raise MoneyError(f"amount must be a decimal string with 2 places, not a {type(value).__name__}: {value!r}")
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, int):
        raise MoneyError(f"amount must be a decimal string with 2 places, not an integer: {value!r}")
    if not isinstance(value, str):
        raise MoneyError(f"amount must be a decimal string with 2 places: {value!r}")
    if not _AMOUNT_TEXT.match(value):
        raise MoneyError(f"amount must have exactly 2 decimal places, e.g. \"1400.00\": {value!r}")
    return Decimal(value)


def money(value: Decimal) -> Decimal:
    """Check that a Decimal has at most two places and return it with exactly two."""
    if not isinstance(value, Decimal):
        raise MoneyError(f"amount must be a Decimal: {value!r}")
    if not value.is_finite():
        raise MoneyError(f"amount must be finite: {value!r}")
    quantized = value.quantize(CENT)
    if quantized != value:
        raise MoneyError(f"amount has more than 2 decimal places: {value}")
    return quantized


def round_money(value: Decimal) -> Decimal:
    """Round a computed amount (e.g. a depreciation quotient) to 分, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def format_amount(value: Decimal) -> str:
    """The canonical text of an amount: plain digits, a point and two decimals."""
    return f"{money(value):.2f}"

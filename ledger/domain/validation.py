"""Pure validators: each returns a list of Problem records; callers decide whether to refuse."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .charts import Chart
from .money import ZERO


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a command cannot be recorded: the field at fault and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class Rejected(ValueError):
    """A command refused by the domain; nothing of it was stored."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def refuse_if(problems: list[Problem]) -> None:
    if problems:
        raise Rejected(problems)


def check_lines(chart: Chart, lines, *, red_ink: bool = False, require_balance: bool = True) -> list[Problem]:
    """Every line names a chart account and has exactly one side; debits equal credits.

    Ordinary vouchers carry positive amounts only; a red-ink reversal carries negative ones only.
    """
    problems: list[Problem] = []
    total_debit = total_credit = ZERO
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if line.account not in chart:
            problems.append(Problem(f"{where}.account", f"account {line.account!r} is not in chart {chart.version}"))
        sides = [side for side in ("debit", "credit") if getattr(line, side) is not None]
        if len(sides) != 1:
            problems.append(Problem(where, "a line has exactly one of debit or credit"))
            continue
        amount: Decimal = getattr(line, sides[0])
        if amount == ZERO:
            problems.append(Problem(f"{where}.{sides[0]}", "amount must not be zero"))
        elif red_ink and amount > ZERO:
            problems.append(Problem(f"{where}.{sides[0]}", "a red-ink reversal carries negative amounts only"))
        elif not red_ink and amount < ZERO:
            problems.append(
                Problem(f"{where}.{sides[0]}", "negative amounts are allowed only in a red-ink reversal (红字冲销)")
            )
        if sides[0] == "debit":
            total_debit += amount
        else:
            total_credit += amount
    if require_balance and not problems and total_debit != total_credit:
        problems.append(
            Problem("lines", f"voucher does not balance: debit {total_debit:.2f} != credit {total_credit:.2f}")
        )
    return problems

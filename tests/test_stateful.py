"""Stateful property test: random command sequences against a real SQLite ledger.

Invariants: the trial balance always balances and equals an independent model; replaying the store in a fresh
application rebuilds the same state; any single changed byte in any stored row is detected, at that row's seq.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, precondition, rule

from conftest import ORIGIN, make_signer
from ledger.domain import journal as j
from ledger.domain.charts import load_chart
from ledger.domain.validation import Rejected
from ledger.projections.balances import trial_balance
from ledger.store.application import LedgerApplication
from ledger.verify import verify_source

CHART = load_chart("2023")
ACCOUNTS = [("101", ""), ("102", ""), ("113", "王大"), ("113", "赵二"), ("211", "建材店"), ("50102", "仓库"),
            ("50103", "鱼塘"), ("511", ""), ("513", "办公费"), ("514", "村道"), ("3220101", "")]
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000.00"), places=2)
FAR_FUTURE = date(2099, 12, 31)


class LedgerMachine(RuleBasedStateMachine):
    vouchers = Bundle("vouchers")

    @initialize()
    def open_books(self):
        self.directory = Path(tempfile.mkdtemp(prefix="ledger-stateful-"))
        self.path = str(self.directory / "ledger.sqlite")
        self.app = LedgerApplication(self.path, signer=make_signer())
        self.app.create_ledger(origin=ORIGIN, name="性质测试村", chart="2023")
        self.model: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.month, self.counter, self.records = 1, 0, 0
        self.lines_of: dict[str, list[j.Line]] = {}
        self._apply(j.OpeningBalances(id="open", type="opening_balances", date=date(2025, 1, 1), lines=[
            j.Line(account="101", debit=Decimal("1500.00")),
            j.Line(account="102", debit=Decimal("100000.00")),
            j.Line(account="301", credit=Decimal("101500.00")),
        ]))

    def teardown(self):
        self.app.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _apply(self, record) -> None:
        self.app.execute(record)
        for line in record.lines:
            self.model[(line.account, line.detail)] += (line.debit or 0) - (line.credit or 0)

    def _day(self) -> date:
        return date(2025, self.month, 1 + self.counter % 28)

    @rule(target=vouchers, debit=st.sampled_from(ACCOUNTS), credit=st.sampled_from(ACCOUNTS), amount=AMOUNTS)
    def post_voucher(self, debit, credit, amount):
        self.counter += 1
        number = f"记-2025{self.month:02d}-{self.counter:03d}"
        lines = [j.Line(account=debit[0], detail=debit[1], debit=amount),
                 j.Line(account=credit[0], detail=credit[1], credit=amount)]
        self._apply(j.Voucher(id=number, type="voucher", voucher_no=number, date=self._day(), summary="测试", lines=lines))
        self.lines_of[number] = lines
        return number

    @rule(original=consumes(vouchers))
    def reverse(self, original):
        self.counter += 1
        number = f"记-2025{self.month:02d}-{self.counter:03d}"
        self.app.execute(j.Reversal(id=number, type="reversal", voucher_no=number, date=self._day(),
                                    reverses=original, summary="红字冲销"))
        for line in self.lines_of[original]:
            self.model[(line.account, line.detail)] -= (line.debit or 0) - (line.credit or 0)

    @precondition(lambda self: self.month < 12)
    @rule()
    def close_month(self):
        cash = sum((v for (code, _), v in self.model.items() if code == "101"), Decimal("0.00"))
        bank = sum((v for (code, _), v in self.model.items() if code == "102"), Decimal("0.00"))
        period = f"2025-{self.month:02d}"
        self.app.execute(j.PeriodClose(id=f"close-{period}", type="period_close", period=period,
                                       date=date(2025, self.month, 28), cash_counted=cash, bank_statement=bank))
        self.month, self.counter = self.month + 1, 0

    @precondition(lambda self: self.month > 1)
    @rule(amount=AMOUNTS)
    def posting_into_a_closed_period_is_refused(self, amount):
        size = self.app.recorder.log_size()
        with pytest.raises(Rejected):
            self.app.execute(j.Voucher(id="late", type="voucher", voucher_no="记-late", date=date(2025, 1, 15),
                                       summary="补记", lines=[j.Line(account="101", debit=amount),
                                                              j.Line(account="102", credit=amount)]))
        assert self.app.recorder.log_size() == size

    @invariant()
    def trial_balance_balances_and_matches_the_model(self):
        if not hasattr(self, "app"):
            return
        report = trial_balance(CHART, self.app.postings(), FAR_FUTURE, origin=ORIGIN)
        assert report.total_debit == report.total_credit
        expected = defaultdict(Decimal)
        for (code, _), net in self.model.items():
            expected[CHART.top_level(code).code] += net
        assert {r.code: r.debit - r.credit for r in report.rows} == {c: v for c, v in expected.items() if v}

    @rule()
    def replaying_the_store_rebuilds_the_same_state(self):
        fresh = LedgerApplication(self.path)
        try:
            assert list(fresh.postings()) == list(self.app.postings())
            for month in range(1, self.month + 1):
                period = f"2025-{month:02d}"
                mine, theirs = self.app.vouchers_of(period), fresh.vouchers_of(period)
                assert [v.model_dump() for v in theirs] == [v.model_dump() for v in mine]
            assert fresh.ledger().model_dump() == self.app.ledger().model_dump()
        finally:
            fresh.close()

    @rule(data=st.data())
    def any_changed_byte_is_detected_at_its_row(self, data):
        copy = self.directory / "tampered.sqlite"
        copy.unlink(missing_ok=True)
        with sqlite3.connect(self.path) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        size = self.app.recorder.log_size()
        seq = data.draw(st.integers(0, size - 1), label="seq")
        column = data.draw(st.sampled_from(["leaf", "state"]), label="column")
        with sqlite3.connect(copy) as conn:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                conn.execute(f"DROP TRIGGER {name}")
            if column == "leaf":
                (value,) = conn.execute("SELECT leaf FROM ledger_log WHERE seq = ?", (seq,)).fetchone()
            else:
                (value,) = conn.execute(
                    "SELECT e.state FROM stored_events e JOIN ledger_log l ON e.originator_id = l.originator_id "
                    "AND e.originator_version = l.originator_version WHERE l.seq = ?", (seq,)).fetchone()
            index = data.draw(st.integers(0, len(value) - 1), label="byte")
            flip = data.draw(st.integers(1, 255), label="xor")
            changed = bytearray(value)
            changed[index] ^= flip
            if column == "leaf":
                conn.execute("UPDATE ledger_log SET leaf = ? WHERE seq = ?", (bytes(changed), seq))
            else:
                conn.execute(
                    "UPDATE stored_events SET state = ? WHERE rowid = (SELECT e.rowid FROM stored_events e JOIN ledger_log l "
                    "ON e.originator_id = l.originator_id AND e.originator_version = l.originator_version WHERE l.seq = ?)",
                    (bytes(changed), seq))
        findings = verify_source(str(copy)).findings
        assert findings, f"changed byte {index} of {column} at seq {seq} went unnoticed"
        assert min(f.seq for f in findings if f.seq is not None) == seq


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=12, stateful_step_count=18, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

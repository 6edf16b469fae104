"""SCENARIOS.md end to end: the Qinghe 2025 journal imported through the CLI's path, figures read back exactly."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

import qinghe_expected as qe
from conftest import FIXTURES
from ledger.domain.charts import load_chart
from ledger.importer import import_journal
from ledger.projections.balances import detail_balances
from ledger.reports import render_report
from ledger.store.application import LedgerApplication

JOURNALS = {"2023": FIXTURES / "qinghe_2025.jsonl", "2004": FIXTURES / "qinghe_2025_chart2004.jsonl"}


def load_qinghe(location: str, signer, chart: str) -> LedgerApplication:
    app = LedgerApplication(location, signer=signer)
    app.create_ledger(origin=qe.ORIGIN, name="清河村", chart=chart)
    result = import_journal(app, JOURNALS[chart])
    assert [str(p) for p in result.problems] == []
    assert (result.applied, result.skipped) == (116, 0)
    return app


@pytest.fixture
def qinghe(ledger_location, signer):
    app = load_qinghe(ledger_location, signer, "2023")
    yield app
    app.close()


def report(app, kind: str, at: str, **options) -> dict:
    return json.loads(render_report(app, kind, at=date.fromisoformat(at), **options))


def test_trial_balances_of_s10_and_s11(qinghe):
    qe.assert_trial_balance(report(qinghe, "trial-balance", "2025-01-01"), qe.TB_OPENING)
    qe.assert_trial_balance(report(qinghe, "trial-balance", "2025-03-31"), qe.TB_2025_03_31)
    qe.assert_trial_balance(report(qinghe, "trial-balance", "2025-06-30"), qe.TB_2025_06_30)
    qe.assert_trial_balance(
        report(qinghe, "trial-balance", "2025-12-31", include_closing=False), qe.TB_2025_12_31_BEFORE_CLOSE
    )
    qe.assert_trial_balance(report(qinghe, "trial-balance", "2025-12-31"), qe.TB_2025_12_31_AFTER_CLOSE)


@pytest.mark.parametrize("jobs", [2, 3])
def test_trial_balances_summed_by_several_processes_are_exact(qinghe, jobs, monkeypatch):
    import ledger.reports as reports

    monkeypatch.setattr(reports, "PARALLEL_FROM_EVENTS", 1)
    submitted = []
    start_worker = reports._start_worker
    monkeypatch.setattr(reports, "_start_worker", lambda *a: submitted.append(a[2:4]) or start_worker(*a))
    qe.assert_trial_balance(report(qinghe, "trial-balance", "2025-03-31", jobs=jobs), qe.TB_2025_03_31)
    qe.assert_trial_balance(
        report(qinghe, "trial-balance", "2025-12-31", include_closing=False, jobs=jobs), qe.TB_2025_12_31_BEFORE_CLOSE
    )
    qe.assert_trial_balance(report(qinghe, "trial-balance", "2025-12-31", jobs=jobs), qe.TB_2025_12_31_AFTER_CLOSE)
    if qinghe.location.startswith("postgresql://"):
        assert submitted == []  # the server reads the log: one process
    else:
        last = qinghe.recorder.max_notification_id()
        # every notification id after this process's first range, in the workers' ranges, each once
        ranges = submitted[: jobs - 1]
        assert ranges[0][0] == 1 + last // jobs and ranges[-1][1] == last + 1
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))


def test_an_error_in_a_trial_balance_worker_is_raised_by_the_caller(tmp_path, signer, monkeypatch):
    import ledger.reports as reports

    app = load_qinghe(str(tmp_path / "ledger.sqlite"), signer, "2023")
    monkeypatch.setattr(reports, "PARALLEL_FROM_EVENTS", 1)
    # Only the worker opens the ledger again.
    monkeypatch.setattr(reports.LedgerApplication, "reopened", classmethod(lambda cls, location: 1 / 0))
    with pytest.raises(ZeroDivisionError):
        reports.trial_balance_report(app, date(2025, 12, 31), jobs=2)
    app.close()


def test_balance_sheet_and_income_statement_of_s11(qinghe):
    qe.assert_balance_sheet(
        report(qinghe, "balance-sheet", "2025-12-31"), qe.BS_2025_12_31["2023"], at="2025-12-31", chart="2023"
    )
    qe.assert_income_statement(report(qinghe, "income-statement", "2025-12-31"), "2023")
    details = detail_balances(load_chart("2023"), qinghe.postings(), "113", date(2025, 12, 31))
    assert {k: f"{v:.2f}" for k, v in details.items()} == qe.DETAILS_113_2025_12_31


def test_csv_trial_balance_totals(qinghe):
    text = render_report(qinghe, "trial-balance", at=date(2025, 12, 31), fmt="csv")
    assert text.splitlines()[0] == "code,name,debit,credit"
    assert text.splitlines()[-1] == ",合计,847770.00,847770.00"


def test_registers_of_assets_and_contracts(qinghe):
    assets = report(qinghe, "assets", "2025-12-31")["assets"]
    assert [(a["name"], a["cost"], a["accumulated_depreciation"], a["net_value"]) for a in assets] == [
        ("村部办公楼", "480000.00", "156000.00", "324000.00"),
        ("集体仓库", "144000.00", "50400.00", "93600.00"),
    ]
    contracts = {c["contract_no"]: c for c in report(qinghe, "contracts", "2025-12-31")["contracts"]}
    pond = contracts["YT-2025-01"]
    assert (pond["annual_fee"], pond["received_to_date"], pond["outstanding"], pond["future_instalments"]) == (
        "12000.00", "12000.00", "0.00", "48000.00"
    )
    assert contracts["CK-2023-01"]["received_to_date"] == "24000.00"


def test_month_closes_record_the_counted_funds(qinghe):
    june = qinghe.repository.get(qinghe.id_of("period", "2025-06"))
    assert june.closed
    assert (june.closing_balances["101"], june.closing_balances["102"]) == (
        Decimal("1400.00"), Decimal("243420.00")
    )
    assert [v.voucher_no for v in qinghe.vouchers_of("2025-07")][:3] == ["记-202507-001", "记-202507-002", "记-202507-003"]


def test_2004_chart_ledger_gives_the_2004_statements(tmp_path, signer):
    app = load_qinghe(str(tmp_path / "qinghe2004.sqlite"), signer, "2004")
    qe.assert_trial_balance(report(app, "trial-balance", "2025-12-31"), qe.TB_2025_12_31_AFTER_CLOSE_2004)
    qe.assert_balance_sheet(
        report(app, "balance-sheet", "2025-12-31"), qe.BS_2025_12_31["2004"], at="2025-12-31", chart="2004"
    )
    qe.assert_income_statement(report(app, "income-statement", "2025-12-31"), "2004")
    app.close()


def test_reimporting_the_year_changes_nothing(qinghe):
    size = qinghe.recorder.log_size()
    again = import_journal(qinghe, JOURNALS["2023"])
    assert (again.applied, again.skipped, again.problems) == (0, 116, [])
    assert qinghe.recorder.log_size() == size

"""The demo village generator (ledger/demo_data.py): deterministic, valid, balanced books that actually import."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.crypto.logformat import EntrySigner
from ledger.demo_data import CODE_2004, expand_postings, generate_village, read_journal, write_journal
from ledger.domain import journal as j
from ledger.domain.charts import load_chart

ZERO = Decimal("0.00")
SMALL = dict(seed=7, years=2, vouchers_per_year=120)
NUMBERED = (j.Voucher, j.Reversal, j.Depreciation)
VOUCHER_NO = re.compile(r"^记-(\d{6})-(\d{3})$")

# Computed once from generate_village(**SMALL) and pinned: a change to the generator shows up here.
SMALL_COUNTS = {
    "asset": 4,
    "contract": 8,
    "decision": 11,
    "decision_step": 43,
    "depreciation": 80,
    "distribution_plan": 2,
    "official": 5,
    "official_departed": 1,
    "opening_balances": 1,
    "period_close": 24,
    "resource": 4,
    "reversal": 2,
    "township_approval": 2,
    "voucher": 176,
}
SMALL_CLOSING_BANK = Decimal("194852.45")
SMALL_CLOSING_CASH = Decimal("1855.89")


def chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def net_by_top_level(records, chart: str) -> dict[str, Decimal]:
    accounts = load_chart(chart)
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for _, _, account, _, debit, credit in expand_postings(records):
        totals[accounts.top_level(account).code] += debit - credit
    return dict(totals)


@pytest.fixture(scope="module")
def default_records() -> list[j.Record]:
    return list(generate_village())


@pytest.fixture(scope="module")
def small_records() -> list[j.Record]:
    return list(generate_village(**SMALL))


# -- determinism and format ---------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path):
    paths = {name: tmp_path / f"{name}.jsonl" for name in ("a", "b", "c")}
    write_journal(generate_village(**SMALL), paths["a"])
    write_journal(generate_village(**SMALL), paths["b"])
    write_journal(generate_village(**{**SMALL, "seed": 8}), paths["c"])
    assert paths["a"].read_bytes() == paths["b"].read_bytes()
    assert paths["a"].read_bytes() != paths["c"].read_bytes()


def test_default_config_is_deterministic(default_records):
    again = [r.model_dump_json(exclude_none=True) for r in generate_village()]
    assert [r.model_dump_json(exclude_none=True) for r in default_records] == again


def test_every_record_round_trips_through_the_journal_adapter(default_records):
    for record in default_records:
        text = record.model_dump_json(exclude_none=True)
        assert j.journal_record_adapter.validate_json(text) == record


def test_write_and_read_journal(tmp_path, small_records):
    path = tmp_path / "v.jsonl"
    assert write_journal(iter(small_records), path) == len(small_records)
    assert list(read_journal(path)) == small_records
    assert all(line.startswith('{"id":') for line in path.read_text("utf-8").splitlines())


def test_unknown_chart_is_refused():
    with pytest.raises(ValueError, match="chart"):
        list(generate_village(chart="1999"))


def test_generation_is_fast():
    started = time.perf_counter()
    records = list(generate_village(seed=1, years=5, vouchers_per_year=400))
    assert time.perf_counter() - started < 2.0
    assert len(records) > 2000


# -- structure of the books -----------------------------------------------------------------------------------------


def test_ids_and_voucher_numbers_are_unique_monthly_and_date_ordered(default_records):
    ids = [r.id for r in default_records]
    assert len(ids) == len(set(ids))
    last: dict[str, tuple] = {}
    for record in default_records:
        if not isinstance(record, NUMBERED):
            continue
        match = VOUCHER_NO.match(record.voucher_no)
        assert match, record.voucher_no
        month, number = match.group(1), int(match.group(2))
        assert month == f"{record.date:%Y%m}"
        previous = last.get(month)
        assert number == (previous[1] + 1 if previous else 1), record.voucher_no
        assert previous is None or previous[0] <= record.date
        last[month] = (record.date, number)


def test_about_vouchers_per_year(default_records):
    per_year = Counter(r.date.year for r in default_records if isinstance(r, NUMBERED))
    assert sorted(per_year) == [2021, 2022, 2023, 2024, 2025]
    assert all(360 <= n <= 440 for n in per_year.values()), per_year
    big_village = generate_village(seed=3, years=2, vouchers_per_year=1500)
    big = Counter(r.date.year for r in big_village if isinstance(r, NUMBERED))
    assert all(1400 <= n <= 1600 for n in big.values()), big


def test_trial_balance_balances_and_every_voucher_balances(default_records):
    per_voucher: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    total_debit = total_credit = ZERO
    for _, voucher_no, _, _, debit, credit in expand_postings(default_records):
        per_voucher[voucher_no][0] += debit
        per_voucher[voucher_no][1] += credit
        total_debit += debit
        total_credit += credit
    assert total_debit == total_credit
    assert all(d == c for d, c in per_voucher.values())
    for record in default_records:
        if isinstance(record, j.Voucher):
            assert all((x.debit or ZERO) > ZERO or (x.credit or ZERO) > ZERO for x in record.lines)


def test_month_closes_match_the_books_in_order(default_records):
    chart = load_chart("2023")
    by_voucher: dict[str, list] = defaultdict(list)
    for posting in expand_postings(default_records):
        by_voucher[posting[1]].append(posting)
    balances: dict[str, Decimal] = defaultdict(lambda: ZERO)
    closed: list[str] = []
    min_cash = min_bank = None
    for record in default_records:
        key = "OPENING" if isinstance(record, j.OpeningBalances) else getattr(record, "voucher_no", None)
        if isinstance(record, (j.OpeningBalances, *NUMBERED)):
            assert f"{record.date:%Y-%m}" not in closed, "posted into a closed period"
            for _, _, account, _, debit, credit in by_voucher[key]:
                balances[chart.top_level(account).code] += debit - credit
            min_cash = balances["101"] if min_cash is None else min(min_cash, balances["101"])
            min_bank = balances["102"] if min_bank is None else min(min_bank, balances["102"])
        elif isinstance(record, j.PeriodClose):
            assert record.cash_counted == balances["101"]
            assert record.bank_statement == balances["102"]
            closed.append(record.period)
    assert closed == [f"{y}-{m:02d}" for y in range(2021, 2026) for m in range(1, 13)]
    assert min_cash >= ZERO and min_bank > Decimal("50000.00")


def test_every_asset_in_service_is_depreciated_each_month_before_its_close(default_records):
    assets = {r.asset_no: r for r in default_records if isinstance(r, j.AssetRegistered)}
    disposed = {r.asset_no: r.date for r in default_records if isinstance(r, j.AssetDisposed)}
    depreciated = {(r.asset_no, r.month) for r in default_records if isinstance(r, j.Depreciation)}
    for period in [f"{y}-{m:02d}" for y in range(2021, 2026) for m in range(1, 13)]:
        for no, asset in assets.items():
            gone = no in disposed and f"{disposed[no]:%Y-%m}" < period
            if f"{asset.in_service:%Y-%m}" < period and not gone:
                assert (no, period) in depreciated, (no, period)
    bought = [a for a in assets.values() if a.voucher_no]
    assert len(bought) == 1 and len(disposed) == 1


def test_year_end_close_empties_income_accounts_and_distributes(default_records):
    chart = load_chart("2023")
    closing = [r for r in default_records if isinstance(r, j.Voucher) and "CLOSE" in r.tags]
    assert all((r.date.month, r.date.day) == (12, 31) for r in closing)
    assert sorted({r.date.year for r in closing}) == [2021, 2022, 2023, 2024, 2025]
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for _, _, account, detail, debit, credit in expand_postings(default_records):
        totals[(account, detail)] += debit - credit
    for (account, _), value in totals.items():
        if chart[account].category == "损益" or account in ("321", "32201", "3220101", "3220102"):
            assert value == ZERO, account
    plans = [r for r in default_records if isinstance(r, j.DistributionPlan)]
    assert [p.year for p in plans] == [2021, 2022, 2023, 2024, 2025]
    dividends = [r for r in closing if any(x.account == "3220102" and x.debit for x in r.lines)]
    assert dividends
    for r in dividends:
        assert [x.detail for x in r.lines if x.credit] == ["成员(应付分红)"] and r.lines[1].account == "113"
    paid = [r for r in default_records if isinstance(r, j.Voucher) and r.date.month == 1
            and any(x.account == "113" and x.detail == "成员(应付分红)" and x.debit for x in r.lines)]
    # each January pays last year's dividend (the opening balance's in the first year); the last one stays payable
    assert [r.date.year for r in paid] == [2021] + [r.date.year + 1 for r in dividends if r.date.year < 2025]


def test_village_has_the_expected_character(default_records):
    types = Counter(r.type for r in default_records)
    assert types["official_departed"] == 1 and types["official"] == 5
    assert types["reversal"] >= 5 and types["resource"] == 4 and types["asset"] == 4
    steps = {(r.decision_id, r.step) for r in default_records if isinstance(r, j.DecisionStep)}
    works = [r.decision_id for r in default_records if isinstance(r, j.DecisionOpened) and r.matter == "public_works"]
    assert len(works) == 5
    for decision_id in works:
        for step in ("propose", "deliberate", "review", "resolve", "publish_resolution", "contract_signed",
                     "acceptance", "confirm"):
            assert (decision_id, step) in steps
    tags = Counter(t for r in default_records if isinstance(r, j.Voucher) for t in r.tags)
    assert tags["CASH_PAYMENT_OVER_LIMIT"] > 0 and tags["CORRECTION"] == types["reversal"]
    contracts = [r for r in default_records if isinstance(r, j.ContractSigned)]
    assert any(not c.counterparty_is_member and c.township_approval for c in contracts)
    accrued = [r for r in default_records if isinstance(r, j.Voucher) and r.summary.startswith("年终结算应收未收")]
    assert accrued and all(any(x.account == "113" and x.debit for x in r.lines) for r in accrued)


def test_chart_2004_uses_2004_codes_only():
    chart = load_chart("2004")
    records = list(generate_village(seed=7, years=2, vouchers_per_year=120, chart="2004"))
    accounts = {x.account for r in records if isinstance(r, (j.Voucher, j.OpeningBalances)) for x in r.lines}
    accounts |= {r.depreciation_account for r in records if isinstance(r, j.AssetRegistered)}
    assert accounts <= set(chart.accounts)
    assert {"541", "502", "522", "51101"} <= accounts and not accounts & {"503", "513", "514"}
    # same books, other codes: the same top-level totals once mapped
    same = net_by_top_level(list(generate_village(**SMALL)), "2023")
    assert net_by_top_level(records, "2004")["102"] == same["102"]
    assert set(CODE_2004.values()) <= set(chart.accounts)


def test_pinned_small_config(small_records):
    assert dict(sorted(Counter(r.type for r in small_records).items())) == SMALL_COUNTS
    totals = net_by_top_level(small_records, "2023")
    assert totals["102"] == SMALL_CLOSING_BANK
    assert totals["101"] == SMALL_CLOSING_CASH
    last = small_records[-1]
    assert isinstance(last, j.PeriodClose) and last.period == "2022-12" and last.bank_statement == SMALL_CLOSING_BANK


# -- the books import into a real ledger ------------------------------------------------------------------------------


def _import(tmp_path, records, chart: str):
    from ledger.store.application import LedgerApplication

    signer = EntrySigner(
        name="demo.example/village/000000000000/v1/signer/clerk",
        private_key=Ed25519PrivateKey.from_private_bytes(bytes(range(32))),
    )
    app = LedgerApplication(str(tmp_path / "v.sqlite"), signer=signer)
    app.create_ledger(origin="demo.example/village/000000000000/v1", name="示范村", chart=chart)
    for batch in chunks(records, 200):
        assert set(app.execute_batch(batch)) == {"applied"}
    return app


def _ledger_totals(app, chart: str) -> dict[str, Decimal]:
    accounts = load_chart(chart)
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for posting in app.postings():
        totals[accounts.top_level(posting.code).code] += posting.debit - posting.credit
    return {code: value for code, value in totals.items() if value != ZERO}


@pytest.mark.parametrize("chart", ["2023", "2004"])
def test_small_books_import(tmp_path, chart):
    records = list(generate_village(**SMALL, chart=chart))
    app = _import(tmp_path, records, chart)
    expected = {code: value for code, value in net_by_top_level(records, chart).items() if value != ZERO}
    assert _ledger_totals(app, chart) == expected
    assert expected["102"] == SMALL_CLOSING_BANK
    # importing again skips every record
    assert set(app.execute_batch(records[:50])) == {"skipped"}


def test_default_books_import(tmp_path, default_records):
    app = _import(tmp_path, default_records, "2023")
    expected = {code: value for code, value in net_by_top_level(default_records, "2023").items() if value != ZERO}
    assert _ledger_totals(app, "2023") == expected

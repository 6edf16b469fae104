"""Several processes posting to one ledger at once: optimistic conflicts are retried, the chain never forks or gaps."""

from __future__ import annotations

import multiprocessing
from datetime import date
from decimal import Decimal

from conftest import ORIGIN, make_signer
from ledger.domain import journal as j
from ledger.store.application import LedgerApplication
from ledger.verify import verify_source

WRITERS, VOUCHERS_EACH = 3, 12


def _post(location: str, writer: int) -> None:
    app = LedgerApplication(location, signer=make_signer())
    for n in range(VOUCHERS_EACH):
        number = f"记-202501-{writer}{n:02d}"
        app.execute(j.Voucher(
            id=number, type="voucher", voucher_no=number, date=date(2025, 1, 10), summary="并发测试",
            lines=[j.Line(account="102", debit=Decimal("10.00")), j.Line(account="50102", credit=Decimal("10.00"))],
        ))
    app.close()


def test_processes_posting_into_the_same_period_all_land_on_one_chain(ledger_location, signer):
    app = LedgerApplication(ledger_location, signer=signer)
    app.create_ledger(origin=ORIGIN, name="并发村", chart="2023")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_post, args=(ledger_location, w)) for w in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * WRITERS
    total = WRITERS * VOUCHERS_EACH
    # every voucher's period entry went through the one Period aggregate: conflicts were retried, none lost
    period = app.repository.get(app.id_of("period", "2025-01"))
    assert sorted(period.voucher_nos) == sorted(f"记-202501-{w}{n:02d}" for w in range(WRITERS) for n in range(VOUCHERS_EACH))
    result = verify_source(ledger_location)
    # genesis + per voucher (voucher, period entry, journal marker) + the period opened once
    assert (result.intact, result.entries) == (True, 1 + 3 * total + 1)
    app.close()


def _voucher(number: str) -> j.Voucher:
    return j.Voucher(
        id=number, type="voucher", voucher_no=number, date=date(2025, 1, 10), summary="缓存测试",
        lines=[j.Line(account="102", debit=Decimal("10.00")), j.Line(account="50102", credit=Decimal("10.00"))],
    )


def test_a_saved_period_stays_cached_and_later_batches_still_see_other_writers(ledger_location, signer):
    first = LedgerApplication(ledger_location, signer=signer)
    first.create_ledger(origin=ORIGIN, name="缓存村", chart="2023")
    period_id = first.id_of("period", "2025-01")
    first.execute(_voucher("记-202501-001"))
    assert first.repository.cache.get(period_id).version == 2  # opened, one voucher entered: as just saved
    other = LedgerApplication(ledger_location, signer=signer)
    other.execute(_voucher("记-202501-002"))
    other.close()
    first.execute(_voucher("记-202501-003"))  # starts from the cached version 2, fast-forwarded past the other's
    assert first.repository.cache.get(period_id).voucher_nos == ["记-202501-001", "记-202501-002", "记-202501-003"]
    assert verify_source(ledger_location).intact
    first.close()

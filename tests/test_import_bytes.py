"""What an import stores, pinned byte for byte: the events, log entries and snapshots of a generated village-year
imported under a fixed clock, with either Ed25519 signer, are the same as before the import was made faster; and
a month close looks up the registered assets through their index, not by reading every event."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import pytest

from conftest import ORIGIN, make_signer
from test_domain_model import _replay
from ledger.demo_data import generate_village, write_journal
from ledger.domain import model
from ledger.domain.aggregates import Asset
from ledger.importer import import_journal
from ledger.store import recorders
from ledger.store.application import LedgerApplication

FIXED = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
YEAR = 2024
# SHA-256 of stored_rows() after importing the journal below twice (the second time every record is skipped),
# computed with the writer as it was before the import was made faster (commit c5cca1c).
PINNED = {
    200: "6385c5610f4db1467ced7269ab8ed680d8acc4ba2a02f2325d305dbd76cef745",
    7: "465158995fed5eac1c343f00c756c34be8509692282e9d28807ac009e653e44c",
}


@pytest.fixture(scope="module")
def village_year(tmp_path_factory) -> Path:
    """1,366 records: every month has about 100 vouchers, so Period snapshots are taken inside batches."""
    path = tmp_path_factory.mktemp("journal") / "village.jsonl"
    write_journal(generate_village(seed=11, years=1, start_year=YEAR, vouchers_per_year=1300), path)
    return path


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(model, "utc_now", lambda: FIXED)
    return lambda: FIXED


def signing(monkeypatch, signer: str) -> None:
    if signer == "pyca":
        monkeypatch.setattr(recorders, "_sodium_sign", None)


def new_ledger(location: str, clock) -> LedgerApplication:
    app = LedgerApplication(location, signer=make_signer(), clock=clock)
    app.create_ledger(origin=ORIGIN, name="基准村", chart="2023")
    return app


def stored_rows(app: LedgerApplication) -> str:
    """SHA-256 over every stored event (notification id, id, version, topic, state), every log entry (seq, leaf,
    leaf hash) and the snapshots of the Ledger and each month's Period (id, version, topic, state)."""
    digest = hashlib.sha256()
    notifications = app.recorder.select_notifications(start=1, limit=10**6)
    for n in notifications:
        row = (n.id, str(UUID(str(n.originator_id))), n.originator_version, n.topic, bytes(n.state))
        digest.update(repr(row).encode())
    for record in app.recorder.read_log():
        digest.update(repr((record.seq, bytes(record.leaf), bytes(record.leaf_hash))).encode())
    snapshot_ids = [app.id_of("period", f"{YEAR}-{month:02d}") for month in range(1, 13)]
    for aggregate_id in [app.ledger().id, *snapshot_ids]:
        for s in app.snapshots.recorder.select_events(aggregate_id):
            row = (str(UUID(str(s.originator_id))), s.originator_version, s.topic, bytes(s.state))
            digest.update(repr(row).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("signer", ["libsodium", "pyca"])
def test_an_imported_village_year_is_stored_as_pinned(ledger_location, village_year, fixed_clock, monkeypatch, signer):
    signing(monkeypatch, signer)
    app = new_ledger(ledger_location, fixed_clock)
    first = import_journal(app, village_year)
    again = import_journal(app, village_year)
    assert (first.problems, first.applied, again.skipped) == ([], 1366, 1366)
    periods = [app.id_of("period", f"{YEAR}-{month:02d}") for month in range(1, 13)]
    assert sum(1 for period in periods if app.snapshots.recorder.select_events(period)) >= 6
    assert stored_rows(app) == PINNED[200]
    app.close()


def test_small_batches_are_stored_as_pinned(tmp_path, village_year, fixed_clock):
    # Batches of 7 reach a Period's snapshot version in every position of a write, the last one included.
    app = new_ledger(str(tmp_path / "ledger.sqlite"), fixed_clock)
    assert import_journal(app, village_year, batch_size=7).applied == 1366
    assert import_journal(app, village_year, batch_size=7).skipped == 1366
    assert stored_rows(app) == PINNED[7]
    app.close()


@pytest.mark.parametrize("batch_size", [7, 200])
def test_asset_snapshots_equal_the_replay_of_their_events(tmp_path, village_year, fixed_clock, batch_size):
    """Assets are snapshotted every 12 versions, inside batches the writer process stores as well."""
    app = new_ledger(str(tmp_path / "ledger.sqlite"), fixed_clock)
    assert import_journal(app, village_year, batch_size=batch_size).applied == 1366
    registered = [UUID(str(n.originator_id)) for n in app.notifications((Asset.Registered.TOPIC,))]
    checked = 0
    for asset_id in registered:
        events = list(app.events.get(asset_id))
        for snapshot in app.snapshots.get(asset_id):
            assert snapshot.originator_version % 12 == 0
            assert snapshot.mutate(None).model_dump() == _replay(events[: snapshot.originator_version]).model_dump()
            checked += 1
    assert checked == sum(len(list(app.events.get(a))) // 12 for a in registered) > 0
    app.close()


def test_registered_assets_are_read_through_their_partial_index(ledger_location, village_year, fixed_clock):
    app = new_ledger(ledger_location, fixed_clock)
    assert import_journal(app, village_year).applied == 1366
    registered = {UUID(str(n.originator_id)) for n in app.notifications((Asset.Registered.TOPIC,))}
    assert len(registered) == 3 and set(app.recorder.select_originator_ids(Asset.Registered.TOPIC)) == registered
    with pytest.raises(ValueError, match="has no index"):
        app.recorder.select_originator_ids(Asset.Depreciated.TOPIC)
    app.close()
    if not ledger_location.startswith("postgresql"):
        with closing(sqlite3.connect(ledger_location)) as connection:
            plan = connection.execute(
                f"EXPLAIN QUERY PLAN SELECT originator_id FROM stored_events WHERE topic = '{Asset.Registered.TOPIC}'"
            ).fetchall()
        assert "USING INDEX stored_events_ledger_asset_registered" in plan[0][-1]

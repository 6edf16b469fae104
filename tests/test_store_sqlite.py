"""The chained SQLite recorder: our conformance suite, eventsourcing's own recorder suites, and LEDGER paths."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import InfrastructureFactory, OperationalError
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteDatastore,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)

from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from eventsourcing.utils import Environment, get_topic

from ledger.store import ChainedSQLiteApplicationRecorder, env_for_location
from ledger.store.conformance import (
    CONFORMANCE_ORIGIN,
    ChainedRecorderConformance,
    DefaultSigning,
    assert_chain_covers_events,
    conformance_signer,
    new_events,
)
from ledger.store.sqlite import Factory


class TestChainedSQLiteRecorder(ChainedRecorderConformance):
    def setup_method(self) -> None:
        self.directory = tempfile.TemporaryDirectory()
        self.factories: list[InfrastructureFactory[Any]] = []

    def teardown_method(self) -> None:
        for factory in self.factories:
            factory.close()
        self.directory.cleanup()

    def persistence_env(self) -> dict[str, str]:
        return env_for_location(str(Path(self.directory.name) / "ledger.db"))

    def create_recorder(self) -> ChainedSQLiteApplicationRecorder:
        factory = InfrastructureFactory.construct(self.persistence_env())
        self.factories.append(factory)
        recorder = factory.application_recorder()
        assert type(recorder) is ChainedSQLiteApplicationRecorder
        return recorder

    def execute_sql(self, recorder: ChainedSQLiteApplicationRecorder, statement: str) -> None:
        with recorder.datastore.transaction(commit=True) as c:
            c.execute(statement.format(log=recorder.log_table_name, events=recorder.events_table_name))

    def test_log_table_lives_in_the_ledger_file(self) -> None:
        recorder = self.create_recorder()
        self.write(recorder, new_events(2))
        with sqlite3.connect(Path(self.directory.name) / "ledger.db") as db:
            rows = db.execute("SELECT seq, originator_version FROM ledger_log ORDER BY seq").fetchall()
            columns = [row[1] for row in db.execute("PRAGMA table_info(ledger_log)")]
        assert rows == [(0, 1), (1, 2)]
        assert columns == ["seq", "leaf", "leaf_hash", "originator_id", "originator_version"]

    def test_writer_waits_for_another_process_lock_then_gives_up(self) -> None:
        env = {**self.persistence_env(), "SQLITE_LOCK_TIMEOUT": "1"}
        factory = InfrastructureFactory.construct(env)
        self.factories.append(factory)
        recorder = factory.application_recorder()
        # Another process's writer holding the database, as seen through a separate connection.
        other = sqlite3.connect(env["SQLITE_DBNAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(OperationalError, match="locked"):
                self.write(recorder, new_events(1))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert recorder.log_size() == 0
        assert self.write(recorder, new_events(1)) == [1]
        assert recorder.log_size() == 1

    def test_factory_refuses_an_unchained_application_recorder_topic(self) -> None:
        env = {**self.persistence_env(), "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteApplicationRecorder)}
        factory = InfrastructureFactory.construct(env)
        self.factories.append(factory)
        with pytest.raises(ValueError, match="not a chained recorder"):
            factory.application_recorder()


class SigningSQLiteRecorder(DefaultSigning, ChainedSQLiteApplicationRecorder):
    pass


class SigningSQLiteRecorderCase:
    """Runs an eventsourcing suite on fresh files, then checks the log covers every event it stored."""

    def setUp(self) -> None:
        self.directory = tempfile.TemporaryDirectory()
        self.recorders: list[SigningSQLiteRecorder] = []

    def tearDown(self) -> None:
        for recorder in self.recorders:
            assert_chain_covers_events(recorder, signer=conformance_signer(), origin=CONFORMANCE_ORIGIN)
            recorder.datastore.close()
        self.directory.cleanup()

    def create_recorder(self) -> SigningSQLiteRecorder:
        path = Path(self.directory.name) / f"ledger{len(self.recorders)}.db"
        recorder = SigningSQLiteRecorder(SQLiteDatastore(db_name=str(path)))
        recorder.create_table()
        self.recorders.append(recorder)
        return recorder


class TestEventsourcingApplicationRecorderSuite(SigningSQLiteRecorderCase, ApplicationRecorderTestCase):
    pass


class TestEventsourcingNonInterleavingSuite(SigningSQLiteRecorderCase, NonInterleavingNotificationIDsBaseCase):
    pass


class TestEventsourcingFactorySuite(InfrastructureFactoryTestCase[Factory]):
    def setUp(self) -> None:
        self.directory = tempfile.TemporaryDirectory()
        self.env = Environment("TestCase", env_for_location(str(Path(self.directory.name) / "ledger.db")))
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.directory.cleanup()

    def expected_factory_class(self) -> type[Factory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type[SQLiteAggregateRecorder]:
        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type[ChainedSQLiteApplicationRecorder]:
        return ChainedSQLiteApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[SQLiteTrackingRecorder]:
        return SQLiteTrackingRecorder

    def tracking_recorder_subclass(self) -> type[SQLiteTrackingRecorder]:
        return TrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[SQLiteProcessRecorder]:
        return SQLiteProcessRecorder


class TrackingRecorderSubclass(SQLiteTrackingRecorder):
    pass


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "LEDGER is empty"),
        ("   ", "LEDGER is empty"),
        (":memory:", "in-memory"),
        ("file:ledger?mode=memory", "in-memory"),
        ("sqlite:///ledger.db", "unsupported URL scheme 'sqlite'"),
        ("mysql://u:secret@h/db", "unsupported URL scheme 'mysql'"),
    ],
)
def test_env_for_location_refuses(location: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        env_for_location(location)
    assert "LEDGER" in str(raised.value)
    assert "secret" not in str(raised.value)


def test_env_for_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "books").mkdir()
    monkeypatch.chdir(tmp_path)
    assert env_for_location("books/village.db") == {
        "PERSISTENCE_MODULE": "ledger.store.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "books" / "village.db"),
        "SQLITE_LOCK_TIMEOUT": "30",
    }
    with pytest.raises(ValueError, match="is a directory"):
        env_for_location(str(tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        env_for_location(str(tmp_path / "missing" / "village.db"))


def test_a_reopened_ledger_creates_no_tables(tmp_path: Path) -> None:
    """Forked workers reopen the ledger of the process they were forked from, whose tables exist: no schema
    statements are run."""
    from ledger.store.application import LedgerApplication

    path = str(tmp_path / "ledger.db")

    def tables() -> set[str]:
        connection = sqlite3.connect(path)
        try:
            return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            connection.close()

    LedgerApplication.reopened(path).close()
    assert tables() == set()
    LedgerApplication(path).close()
    assert tables() == {"stored_events", "ledger_log", "stored_snapshots"}

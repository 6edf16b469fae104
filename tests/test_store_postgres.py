"""The chained PostgreSQL recorder (needs LEDGER_TEST_POSTGRES_URL), and parsing of PostgreSQL LEDGER URLs."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from psycopg.sql import SQL, Identifier

from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from eventsourcing.utils import Environment, get_topic

from ledger.crypto.logformat import parse_leaf
from ledger.store import ChainedPostgresApplicationRecorder, env_for_location
from ledger.store.conformance import (
    CONFORMANCE_ORIGIN,
    ChainedRecorderConformance,
    DefaultSigning,
    assert_chain_covers_events,
    conformance_signer,
    new_events,
)
from ledger.store.postgres import Factory

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL", "")


class ScratchSchema:
    """A fresh, randomly named schema in the test database, dropped with everything in it afterwards."""

    def __init__(self) -> None:
        self.name = f"ledger_test_{uuid4().hex[:16]}"
        parts = urlsplit(POSTGRES_URL)
        self.location = urlunsplit(parts._replace(query=f"schema={self.name}"))
        self.factories: list[InfrastructureFactory[Any]] = []

    def env(self, **overrides: str) -> dict[str, str]:
        return {**env_for_location(self.location), **overrides}

    def factory(self, **overrides: str) -> InfrastructureFactory[Any]:
        factory = InfrastructureFactory.construct(self.env(**overrides))
        self.factories.append(factory)
        return factory

    def connect(self) -> psycopg.Connection[Any]:
        env = self.env()
        return psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            autocommit=True,
        )

    def drop(self) -> None:
        for factory in self.factories:
            factory.close()
        with self.connect() as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(Identifier(self.name)))


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests")
class TestChainedPostgresRecorder(ChainedRecorderConformance):
    def setup_method(self) -> None:
        self.schema = ScratchSchema()

    def teardown_method(self) -> None:
        self.schema.drop()

    def persistence_env(self) -> dict[str, str]:
        return self.schema.env()

    def create_recorder(self) -> ChainedPostgresApplicationRecorder:
        recorder = self.schema.factory().application_recorder()
        assert type(recorder) is ChainedPostgresApplicationRecorder
        return recorder

    def execute_sql(self, recorder: ChainedPostgresApplicationRecorder, statement: str) -> None:
        schema = recorder.datastore.schema
        query = SQL(statement).format(
            log=Identifier(schema, recorder.log_table_name), events=Identifier(schema, recorder.events_table_name)
        )
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(query)

    def test_factory_creates_the_schema_with_both_tables(self) -> None:
        with self.schema.connect() as conn:
            found = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (self.schema.name,))
            assert found.fetchone() == (0,)
        factory = InfrastructureFactory.construct(Environment("LedgerApplication", self.schema.env()))
        self.schema.factories.append(factory)
        assert factory.application_recorder().events_table_name == "stored_events"
        with self.schema.connect() as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
                (self.schema.name,),
            ).fetchall()
            functions = conn.execute(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s ORDER BY p.proname",
                (self.schema.name,),
            ).fetchall()
        # Named after no application: an auditor finds the events beside ledger_log whatever wrote them.
        assert tables == [("ledger_log",), ("stored_events",)]
        # eventsourcing's es_insert_events_* fast path is not created: it would store events without entries.
        assert functions == [("ledger_append_only",), ("ledger_entry_required",)]

    @pytest.mark.parametrize("table", ["log", "events"])
    def test_truncate_refused(self, table: str) -> None:
        recorder = self.create_recorder()
        self.write(recorder, new_events(2))
        with pytest.raises(IntegrityError, match="TRUNCATE .* refused: the ledger is append-only"):
            self.execute_sql(recorder, f"TRUNCATE {{{table}}}")
        assert recorder.log_size() == 2
        assert recorder.max_notification_id() == 2

    def test_unchained_insert_refused_at_commit(self) -> None:
        recorder = self.create_recorder()
        self.write(recorder, new_events(1))
        with pytest.raises(IntegrityError, match="has no log entry: unchained events are refused"):
            self.execute_sql(
                recorder,
                f"INSERT INTO {{events}} (originator_id, originator_version, topic, state) "
                f"VALUES ('{uuid4()}', 1, 'forged', '\\x00')",
            )
        assert recorder.log_size() == 1
        assert len(recorder.select_notifications(start=None, limit=10)) == 1

    def test_db_functions_fast_path_refused(self) -> None:
        factory = self.schema.factory(POSTGRES_ENABLE_DB_FUNCTIONS="yes")
        with pytest.raises(ValueError, match="POSTGRES_ENABLE_DB_FUNCTIONS"):
            factory.application_recorder()

    def test_factory_refuses_an_unchained_application_recorder_topic(self) -> None:
        factory = self.schema.factory(APPLICATION_RECORDER_TOPIC=get_topic(PostgresApplicationRecorder))
        with pytest.raises(ValueError, match="not a chained recorder"):
            factory.application_recorder()

    def test_text_originator_ids(self) -> None:
        recorder = self.schema.factory(ORIGINATOR_ID_TYPE="text").application_recorder()
        events = [StoredEvent("voucher-2025-0001", version, "ledger/Tested", b"{}") for version in (1, 2)]
        self.write(recorder, events)
        assert [parse_leaf(r.leaf).fields["id"] for r in recorder.read_log()] == ["voucher-2025-0001"] * 2
        assert assert_chain_covers_events(recorder, signer=conformance_signer(), origin=CONFORMANCE_ORIGIN) == 2


class SigningPostgresRecorder(DefaultSigning, ChainedPostgresApplicationRecorder):
    pass


class SigningPostgresRecorderCase:
    """Runs an eventsourcing suite on a scratch schema, then checks the log covers every event it stored."""

    def setUp(self) -> None:
        self.schema = ScratchSchema()
        self.recorders: list[SigningPostgresRecorder] = []

    def tearDown(self) -> None:
        try:
            for recorder in self.recorders:
                assert_chain_covers_events(recorder, signer=conformance_signer(), origin=CONFORMANCE_ORIGIN)
        finally:
            self.schema.drop()

    def create_recorder(self) -> SigningPostgresRecorder:
        factory = self.schema.factory(APPLICATION_RECORDER_TOPIC=get_topic(SigningPostgresRecorder))
        recorder = factory.application_recorder()
        assert isinstance(recorder, SigningPostgresRecorder)
        self.recorders.append(recorder)
        return recorder


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests")
class TestEventsourcingApplicationRecorderSuite(SigningPostgresRecorderCase, ApplicationRecorderTestCase):
    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests")
class TestEventsourcingNonInterleavingSuite(SigningPostgresRecorderCase, NonInterleavingNotificationIDsBaseCase):
    pass


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="set LEDGER_TEST_POSTGRES_URL to run PostgreSQL tests")
class TestEventsourcingFactorySuite(InfrastructureFactoryTestCase[Factory]):
    def setUp(self) -> None:
        self.schema = ScratchSchema()
        self.env = Environment("TestCase", self.schema.env())
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self.schema.drop()

    def expected_factory_class(self) -> type[Factory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type[PostgresAggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ChainedPostgresApplicationRecorder]:
        return ChainedPostgresApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[PostgresTrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[PostgresTrackingRecorder]:
        return TrackingRecorderSubclass

    def expected_process_recorder_class(self) -> type[PostgresProcessRecorder]:
        return PostgresProcessRecorder


class TrackingRecorderSubclass(PostgresTrackingRecorder):
    pass


def test_env_for_postgres_url() -> None:
    assert env_for_location("postgresql://clerk:s%40cret@db.example:6543/books?schema=village_0001") == {
        "PERSISTENCE_MODULE": "ledger.store.postgres",
        "POSTGRES_DBNAME": "books",
        "POSTGRES_HOST": "db.example",
        "POSTGRES_PORT": "6543",
        "POSTGRES_USER": "clerk",
        "POSTGRES_PASSWORD": "s@cret",
        "POSTGRES_SCHEMA": "village_0001",
    }


def test_env_for_postgres_url_defaults() -> None:
    assert env_for_location("postgres://127.0.0.1/test") == {
        "PERSISTENCE_MODULE": "ledger.store.postgres",
        "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": "public",
    }


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("postgresql://clerk:secret@/books", "needs a host"),
        ("postgresql://clerk:secret@db.example:99999/books", "not a valid URL"),
        ("postgresql://clerk:secret@db.example", "exactly one database name"),
        ("postgresql://clerk:secret@db.example/books/extra", "exactly one database name"),
        ("postgresql://clerk:secret@db.example/books?sslmode=require", r"unknown parameter\(s\) \['sslmode'\]"),
        ("postgresql://clerk:secret@db.example/books?schema=a&schema=b", "schema must be one name"),
        ("postgresql://clerk:secret@db.example/books?schema=bad-name", "schema must be one name"),
        ("postgresql://clerk:secret@db.example/books?schema=", "schema must be one name"),
        ("postgresql://clerk:secret@db.example/books#frag", "unexpected #fragment"),
    ],
)
def test_env_for_postgres_url_refuses(location: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        env_for_location(location)
    assert str(raised.value).startswith("LEDGER 'postgresql://clerk:***@")
    assert "secret" not in str(raised.value)

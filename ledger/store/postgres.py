"""Persistence module for a ledger kept in one PostgreSQL schema: ``PERSISTENCE_MODULE=ledger.store.postgres``.

Only the application recorder is chained; snapshots are derived data and tracking/process recorders are stock.
"""

from __future__ import annotations

from eventsourcing import postgres as es_postgres
from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.utils import Environment, EnvType, resolve_topic
from psycopg.sql import SQL, Identifier

from ledger.store.recorders import ChainedPostgresApplicationRecorder

# eventsourcing would prefix the table with the application's name; a schema holds one ledger, and a fixed name
# (the one SQLite uses) lets an auditor find the events next to ledger_log without knowing the application.
EVENTS_TABLE_NAME = "stored_events"


class Factory(es_postgres.PostgresFactory):
    application_recorder_class = ChainedPostgresApplicationRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        # One schema per ledger, and eventsourcing's datastore assumes its schema exists.
        if self.env_create_table():
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.datastore.schema)))

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        recorder_class = resolve_topic(topic) if topic else type(self).application_recorder_class
        # The topic could otherwise swap in a recorder that stores events without log entries.
        if not issubclass(recorder_class, ChainedPostgresApplicationRecorder):
            raise ValueError(f"{self.APPLICATION_RECORDER_TOPIC}={topic!r} is not a chained recorder")
        recorder = recorder_class(datastore=self.datastore, events_table_name=EVENTS_TABLE_NAME)
        if self.env_create_table():
            recorder.create_table()
        return recorder

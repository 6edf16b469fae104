"""Persistence module for a ledger kept in one SQLite file: ``PERSISTENCE_MODULE=ledger.store.sqlite``.

Only the application recorder is chained; snapshots are derived data and tracking/process recorders are stock.
"""

from __future__ import annotations

from eventsourcing import sqlite as es_sqlite
from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.utils import resolve_topic

from ledger.store.recorders import ChainedSQLiteApplicationRecorder


class Factory(es_sqlite.SQLiteFactory):
    application_recorder_class = ChainedSQLiteApplicationRecorder

    def application_recorder(self) -> ApplicationRecorder:
        # APPLICATION_RECORDER_TOPIC could otherwise swap in a recorder that stores events without log entries.
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        if topic and not issubclass(resolve_topic(topic), ChainedSQLiteApplicationRecorder):
            raise ValueError(f"{self.APPLICATION_RECORDER_TOPIC}={topic!r} is not a chained recorder")
        return super().application_recorder()

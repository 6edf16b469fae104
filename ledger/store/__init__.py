"""Storage: eventsourcing's SQLite and PostgreSQL recorders, chaining every stored event into the ledger's log."""

from ledger.store.location import env_for_location
from ledger.store.recorders import (
    LOG_TABLE_NAME,
    ChainedPostgresApplicationRecorder,
    ChainedSQLiteApplicationRecorder,
    ChainWriter,
    LogRecord,
    OriginMismatchError,
)

__all__ = [
    "LOG_TABLE_NAME",
    "ChainWriter",
    "ChainedPostgresApplicationRecorder",
    "ChainedSQLiteApplicationRecorder",
    "LogRecord",
    "OriginMismatchError",
    "env_for_location",
]

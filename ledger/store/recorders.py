"""Application recorders that chain every stored event into the ledger's log (DESIGN.md "Log format v1").

Each write stores its events and appends one signed leaf per event to ``ledger_log`` in the same transaction,
while holding the lock that serializes writers, so the log and the events commit or roll back together and two
writers can never read the same chain head. ``ledger_log`` and the events table refuse UPDATE and DELETE by trigger.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore, SQLiteTransaction
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

from ledger.crypto.logformat import (
    GENESIS_PREV,
    SIGNATURE_SIZE,
    EntrySigner,
    encode_entry,
    format_time,
    leaf_hash,
    parse_leaf,
    signed_message,
    state_hash,
)

try:
    if os.environ.get("LEDGER_ED25519", "").lower() == "pyca":
        raise ImportError("libsodium disabled by LEDGER_ED25519=pyca")
    from nacl.bindings import crypto_sign as _sodium_sign
    from nacl.bindings import crypto_sign_seed_keypair as _sodium_seed_keypair
except ImportError:
    _sodium_sign = None

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Sequence

    from psycopg import Cursor
    from psycopg.rows import DictRow

LOG_TABLE_NAME = "ledger_log"
READ_BATCH_SIZE = 500
# Ids per `IN (...)` list: well under SQLite's bound-parameter limit (999 before SQLite 3.32).
IDS_PER_SELECT = 500

# Topics rare in a long log that a writer nevertheless looks up in full (a month close checks every asset ever
# registered): each has a partial index on the events table, so that `select_originator_ids` reads only its events.
INDEXED_TOPICS = ("ledger/Asset/Registered",)

# The PostgreSQL recorder prepares the entries before the events are inserted and appends them afterwards;
# eventsourcing passes the same keyword arguments to both template methods, so this list carries them across.
_PENDING_ENTRIES = "_ledger_pending_entries"


class OriginMismatchError(ValueError):
    """A write whose origin differs from the origin of the ledger's first entry."""


@dataclass(frozen=True)
class LogRecord:
    """One log entry as stored, with the stored bytes of the event it commits to.

    ``state`` is None only if the event row is missing, which the triggers prevent; readers then see the gap
    instead of having it hidden by the join.
    """

    seq: int
    leaf: bytes
    leaf_hash: bytes
    state: bytes | None


@dataclass(frozen=True)
class ChainHead:
    """Where the next entry goes: its seq, its prev, and the origin every entry must carry (None while empty)."""

    size: int
    prev: bytes
    origin: str | None


@dataclass(frozen=True)
class ChainRequest:
    signer: EntrySigner
    origin: str
    clock: Callable[[], datetime]


class ChainedEntry(NamedTuple):
    """One signed entry of a write (a tuple: a writer makes one per stored event)."""

    seq: int
    leaf: bytes
    leaf_hash: bytes
    stored_event: StoredEvent


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def entry_signing(signer: EntrySigner) -> Callable[[bytes], bytes]:
    """`signer.sign`, done by libsodium when PyNaCl (the optional `fast` extra) is installed.

    Ed25519 signatures are deterministic (RFC 8032 §5.1.6): libsodium's bytes are pyca/cryptography's, in about half
    the time, and a writer signs every entry in chain order. The writer, not ledger.crypto, holds this, because the
    auditor's crypto layer imports only the pinned library. LEDGER_ED25519=pyca makes the writer sign with
    pyca/cryptography too (and the verifier verify with the pinned rule alone).
    """
    if _sodium_sign is None or type(signer).sign is not EntrySigner.sign:
        return signer.sign
    seed = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secret_key = _sodium_seed_keypair(seed)[1]
    return lambda entry: _sodium_sign(signed_message(entry), secret_key)[:SIGNATURE_SIZE]


class ChainWriter(ABC):
    """The chain logic both backends share; each backend supplies the SQL."""

    log_table_name = LOG_TABLE_NAME
    read_batch_size = READ_BATCH_SIZE
    _signing: tuple[EntrySigner, Callable[[bytes], bytes]] | None = None  # the last signer and its entry_signing
    datastore: SQLiteDatastore | PostgresDatastore
    events_table_name: str

    @staticmethod
    def chain_request(stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> ChainRequest | None:
        """The signing parameters of a write, or None for a write of no events; refuses an unsigned write."""
        if not stored_events:
            return None
        signer = kwargs.get("signer")
        origin = kwargs.get("origin")
        clock = kwargs.get("clock") or utc_now
        if not isinstance(signer, EntrySigner):
            raise ValueError(f"refusing to store {len(stored_events)} event(s) without signer=EntrySigner(...)")
        if not isinstance(origin, str) or not origin:
            raise ValueError(f"refusing to store {len(stored_events)} event(s) without origin=<ledger origin>")
        if not callable(clock):
            raise ValueError("clock must be a callable returning a timezone-aware datetime")
        return ChainRequest(signer=signer, origin=origin, clock=clock)

    @staticmethod
    def chain_head(row: tuple[int, bytes, bytes | None] | None) -> ChainHead:
        """The head from (last seq, last leaf hash, leaf of seq 0), or None for an empty log."""
        if row is None:
            return ChainHead(size=0, prev=GENESIS_PREV, origin=None)
        seq, last_hash, genesis_leaf = row
        if genesis_leaf is None:
            raise ProgrammingError(f"{LOG_TABLE_NAME} has entries but no seq 0")
        return ChainHead(size=seq + 1, prev=bytes(last_hash), origin=parse_leaf(bytes(genesis_leaf)).fields["origin"])

    def chain_entries(
        self, head: ChainHead, stored_events: Sequence[StoredEvent], request: ChainRequest
    ) -> list[ChainedEntry]:
        """Sign one entry per stored event, in the order given, continuing from head."""
        if head.origin is not None and head.origin != request.origin:
            raise OriginMismatchError(
                f"this ledger's origin is {head.origin!r}; refusing entries for origin {request.origin!r}"
            )
        # One time per write: the events of one transaction are recorded at one moment.
        time = format_time(request.clock())
        label = request.signer.label
        sign = self._entry_signing(request.signer)
        prev = head.prev
        entries = []
        for offset, stored_event in enumerate(stored_events):
            seq = head.size + offset
            entry = encode_entry(
                origin=request.origin,
                seq=seq,
                prev=prev,
                time=time,
                signer=label,
                originator_id=self.entry_id(stored_event.originator_id),
                version=stored_event.originator_version,
                topic=stored_event.topic,
                state_digest=state_hash(stored_event.state),
            )
            leaf = entry + sign(entry)
            prev = leaf_hash(leaf)
            entries.append(ChainedEntry(seq=seq, leaf=leaf, leaf_hash=prev, stored_event=stored_event))
        return entries

    def _entry_signing(self, signer: EntrySigner) -> Callable[[bytes], bytes]:
        """entry_signing(signer), kept for the writes that follow by the same signer: deriving libsodium's key from
        the seed takes as long as signing an entry, and a single posting is one write."""
        signing = self._signing  # read once: another thread may write for another signer meanwhile
        if signing is None or signing[0] is not signer:
            signing = self._signing = (signer, entry_signing(signer))
        return signing[1]

    def entry_id(self, originator_id: UUID | str) -> str:
        """The entry's ``id``: a UUID in its hyphenated form, whatever form the caller passed it in."""
        if isinstance(originator_id, UUID):
            return str(originator_id)
        if self.datastore.originator_id_type == "uuid":
            return str(UUID(originator_id))
        return originator_id

    def read_log(self, start: int = 0, stop: int | None = None) -> Iterator[LogRecord]:
        """Entries with start <= seq < stop (to the end if stop is None), in seq order, fetched in batches."""
        if start < 0 or (stop is not None and stop < 0):
            raise ValueError(f"read_log needs non-negative bounds, got start={start}, stop={stop}")
        position = start
        while stop is None or position < stop:
            limit = self.read_batch_size if stop is None else min(self.read_batch_size, stop - position)
            batch = self._select_log_batch(position, stop, limit)
            yield from batch
            if len(batch) < limit:
                return
            position = batch[-1].seq + 1

    @abstractmethod
    def select_events_of(self, originator_ids: Collection[UUID]) -> list[StoredEvent]:
        """Every stored event of the given aggregates, each one's together and in version order; one read per chunk.

        A writer checking many ids it expects to be new (one batch's records) pays one round trip, not one each.
        """

    @abstractmethod
    def log_size(self) -> int:
        """Number of entries, i.e. the next seq."""

    @abstractmethod
    def select_originator_ids(self, topic: str) -> list[UUID]:
        """The originator of each stored event of one of INDEXED_TOPICS, through that topic's partial index."""

    @abstractmethod
    def forks_safely(self) -> bool:
        """Whether work on this ledger may go to forked processes that open it anew (a long trial balance, an
        import's writer, read-model ranges)."""

    def _topic_index_name(self, topic: str) -> str:
        return f"{self.events_table_name}_{re.sub(r'[^0-9A-Za-z]', '_', topic).lower()}"

    @staticmethod
    def _indexed_topic(topic: str) -> str:
        if topic not in INDEXED_TOPICS:
            raise ValueError(f"topic {topic!r} has no index; add it to INDEXED_TOPICS")
        return topic

    @abstractmethod
    def _select_log_batch(self, start: int, stop: int | None, limit: int) -> list[LogRecord]:
        """At most limit entries with start <= seq (< stop), in seq order, each in one read."""


def _hyphenated(hex_digits: str) -> str:
    """str(UUID(hex_digits)) of the 32 lowercase hex digits eventsourcing's SQLite recorder stores for a UUID."""
    if len(hex_digits) != 32:
        return str(UUID(hex_digits))
    return f"{hex_digits[:8]}-{hex_digits[8:12]}-{hex_digits[12:16]}-{hex_digits[16:20]}-{hex_digits[20:]}"


def _sqlite_text(text: str) -> str:
    """An SQLite string literal."""
    return "'" + text.replace("'", "''") + "'"


class ImmediateSQLiteTransaction(SQLiteTransaction):
    """A write transaction that takes SQLite's write lock at BEGIN.

    eventsourcing issues a deferred "BEGIN", which takes the write lock only at the first write statement, so
    whether a chained write sees the newest head would depend on its statements' order; and in WAL mode a
    deferred transaction that has read an older snapshot cannot upgrade and fails at once with SQLITE_BUSY.
    BEGIN IMMEDIATE waits (up to the busy timeout) until no other connection or process is writing and holds
    the lock until commit, so the head read in the transaction stays the head until the entries are appended.
    """

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            cursor.sqlite_cursor.close()
            raise OperationalError(e) from e
        return cursor


class ChainedSQLiteApplicationRecorder(SQLiteApplicationRecorder, ChainWriter):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        log = self.log_table_name
        self.select_head_statement = (
            f"SELECT seq, leaf_hash, (SELECT leaf FROM {log} WHERE seq = 0) AS genesis "
            f"FROM {log} ORDER BY seq DESC LIMIT 1"
        )
        self.insert_log_statement = (
            f"INSERT INTO {log} (seq, leaf, leaf_hash, originator_id, originator_version) VALUES (?, ?, ?, ?, ?)"
        )
        self.log_size_statement = f"SELECT COALESCE(MAX(seq) + 1, 0) FROM {log}"
        self.select_max_rowid_statement = f"SELECT MAX(rowid) FROM {self.events_table_name}"
        select_batch = (
            f"SELECT l.seq, l.leaf, l.leaf_hash, e.state FROM {log} AS l "
            f"LEFT JOIN {self.events_table_name} AS e "
            "ON e.originator_id = l.originator_id AND e.originator_version = l.originator_version "
            "WHERE l.seq >= ? "
        )
        self.select_log_batch_statement = select_batch + "ORDER BY l.seq LIMIT ?"
        self.select_log_batch_until_statement = select_batch + "AND l.seq < ? ORDER BY l.seq LIMIT ?"

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        log = self.log_table_name
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {log} ("
            "seq INTEGER PRIMARY KEY CHECK (seq >= 0), "
            "leaf BLOB NOT NULL, "
            "leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32), "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "UNIQUE (originator_id, originator_version))"
        )
        for table in (log, self.events_table_name):
            for operation in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_refuse_{operation.lower()} "
                    f"BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{operation} on {table} refused: the ledger is append-only'); END"
                )
        for topic in INDEXED_TOPICS:
            # The topic as a literal, here and in the query: SQLite uses a partial index only for a WHERE term it
            # can match to the index's own at prepare time.
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {self._topic_index_name(topic)} "
                f"ON {self.events_table_name} (originator_id) WHERE topic = {_sqlite_text(topic)}"
            )
        return statements

    def forks_safely(self) -> bool:
        """Where the platform forks and no other thread runs here: a fork copies other threads' locks as they are,
        held or not."""
        return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1

    def select_originator_ids(self, topic: str) -> list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            topic_literal = _sqlite_text(self._indexed_topic(topic))
            c.execute(f"SELECT originator_id FROM {self.events_table_name} WHERE topic = {topic_literal}")
            return [self.convert_originator_id(row[0]) for row in c.fetchall()]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with (
            self.datastore.get_connection(commit=True) as conn,
            ImmediateSQLiteTransaction(conn, commit=True) as curs,
            curs as c,
        ):
            return self._insert_events(c, stored_events, **kwargs)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        request = self.chain_request(stored_events, kwargs)
        notification_ids = self._insert_stored_events(c, stored_events)
        if request is None:
            return notification_ids
        c.execute(self.select_head_statement)
        row = c.fetchone()
        entries = self.chain_entries(self.chain_head(None if row is None else tuple(row)), stored_events, request)
        c.executemany(
            self.insert_log_statement,
            [
                (
                    e.seq,
                    e.leaf,
                    e.leaf_hash,
                    self._stored_originator_id(e.stored_event),
                    e.stored_event.originator_version,
                )
                for e in entries
            ],
        )
        return notification_ids

    def _insert_stored_events(self, c: sqlite3.Cursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """eventsourcing's insert (same rows, same statement) as one executemany instead of one execute per event.

        Its notification ids are the rowids SQLite gives the rows: one more than the table's largest rowid
        before each insert (https://sqlite.org/autoinc.html), so first..first+n-1 in this write-locked
        transaction; checked after the insert all the same.
        """
        if not stored_events:
            return []
        c.execute(self.select_max_rowid_statement)
        first = (c.fetchone()[0] or 0) + 1
        c.executemany(
            self.insert_events_statement,
            [(self._stored_originator_id(s), s.originator_version, s.topic, s.state) for s in stored_events],
        )
        last = first + len(stored_events) - 1
        c.execute(self.select_max_rowid_statement)
        if c.fetchone()[0] != last:
            raise ProgrammingError(f"{self.events_table_name}: rowids of the inserted events are not {first}..{last}")
        return list(range(first, last + 1))

    @staticmethod
    def _stored_originator_id(stored_event: StoredEvent) -> str:
        # Exactly what eventsourcing writes into the events table, so the log joins back to its event.
        originator_id = stored_event.originator_id
        return originator_id.hex if isinstance(originator_id, UUID) else originator_id

    def select_events_of(self, originator_ids: Collection[UUID]) -> list[StoredEvent]:
        ids = [i.hex for i in originator_ids]
        found = []
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), IDS_PER_SELECT):
                chunk = ids[start : start + IDS_PER_SELECT]
                c.execute(
                    f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version",
                    chunk,
                )
                found.extend(
                    StoredEvent(
                        originator_id=self.convert_originator_id(row[0]),
                        originator_version=row[1],
                        topic=row[2],
                        state=row[3],
                    )
                    for row in c.fetchall()
                )
        return found

    def select_states(self, start: int, limit: int, topics: Sequence[str]) -> list[tuple[int, str, bytes]]:
        """(notification id, topic, state) of the given topics from `start` on, in notification order.

        For readers that need only the state: select_notifications builds a Notification and a UUID per event,
        which costs a whole-history report as much as reading the rows.
        """
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, topic, state FROM {self.events_table_name} "
                f"WHERE rowid >= ? AND topic IN ({','.join('?' * len(topics))}) ORDER BY rowid LIMIT ?",
                (start, *topics, limit),
            )
            return c.fetchall()

    def select_event_rows(
        self, start: int, limit: int, topics: Sequence[str], *, stop: int | None = None
    ) -> list[tuple[int, str, int, str, bytes]]:
        """(notification id, originator id, version, topic, state) of the given topics from `start` on (and before
        `stop` if given), in notification order; the originator id in its hyphenated form, as entries name it."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
                f"WHERE rowid >= ? {'' if stop is None else 'AND rowid < ? '}"
                f"AND topic IN ({','.join('?' * len(topics))}) ORDER BY rowid LIMIT ?",
                (start, *(() if stop is None else (stop,)), *topics, limit),
            )
            rows = c.fetchall()
        # eventsourcing stores a UUID as its 32 lowercase hex digits: slicing them costs a read of the whole log
        # less than building a UUID per row.
        hyphenated = _hyphenated if self.datastore.originator_id_type == "uuid" else self.entry_id
        return [(row[0], hyphenated(row[1]), row[2], row[3], row[4]) for row in rows]

    def log_size(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.log_size_statement)
            return c.fetchone()[0]

    def _select_log_batch(self, start: int, stop: int | None, limit: int) -> list[LogRecord]:
        with self.datastore.transaction(commit=False) as c:
            if stop is None:
                c.execute(self.select_log_batch_statement, (start, limit))
            else:
                c.execute(self.select_log_batch_until_statement, (start, stop, limit))
            return [
                LogRecord(seq=row[0], leaf=row[1], leaf_hash=row[2], state=row[3]) for row in c.fetchall()
            ]


class ChainedPostgresApplicationRecorder(PostgresApplicationRecorder, ChainWriter):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        if datastore.enable_db_functions:
            # That path inserts events through a database function that bypasses the template methods below.
            raise ValueError("POSTGRES_ENABLE_DB_FUNCTIONS would store events without log entries; turn it off")
        super().__init__(datastore, events_table_name=events_table_name)
        # Nothing in this schema should offer a way to insert events that skips the chain.
        del self.sql_create_statements[self.create_insert_function_statement_index]

        schema = Identifier(self.datastore.schema)
        log = Identifier(self.log_table_name)
        events = Identifier(self.events_table_name)
        id_type = Identifier(self.datastore.originator_id_type)
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {schema}.{log} ("
                    "seq bigint PRIMARY KEY CHECK (seq >= 0), "
                    "leaf bytea NOT NULL, "
                    "leaf_hash bytea NOT NULL CHECK (octet_length(leaf_hash) = 32), "
                    "originator_id {id_type} NOT NULL, "
                    "originator_version bigint NOT NULL, "
                    "UNIQUE (originator_id, originator_version))"
                ).format(schema=schema, log=log, id_type=id_type),
                SQL(
                    "CREATE OR REPLACE FUNCTION {schema}.ledger_append_only() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION '% on %.% refused: the ledger is append-only', "
                    "TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation'; "
                    "END $$"
                ).format(schema=schema),
                *(
                    SQL(
                        "CREATE OR REPLACE TRIGGER ledger_append_only "
                        "BEFORE UPDATE OR DELETE OR TRUNCATE ON {schema}.{table} "
                        "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.ledger_append_only()"
                    ).format(schema=schema, table=table)
                    for table in (log, events)
                ),
                *(
                    SQL(
                        "CREATE INDEX IF NOT EXISTS {index} ON {schema}.{events} (originator_id) WHERE topic = {topic}"
                    ).format(
                        index=Identifier(self._topic_index_name(topic)),
                        schema=schema,
                        events=events,
                        topic=Literal(topic),
                    )
                    for topic in INDEXED_TOPICS
                ),
                # A backstop below the recorder: at commit, every event inserted by any path must have its entry.
                SQL(
                    "CREATE OR REPLACE FUNCTION {schema}.ledger_entry_required() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NOT EXISTS (SELECT 1 FROM {schema}.{log} AS l "
                    "WHERE l.originator_id = NEW.originator_id AND l.originator_version = NEW.originator_version) "
                    "THEN RAISE EXCEPTION 'event %/% has no log entry: unchained events are refused', "
                    "NEW.originator_id, NEW.originator_version USING ERRCODE = 'integrity_constraint_violation'; "
                    "END IF; RETURN NULL; END $$"
                ).format(schema=schema, log=log),
                # Constraint triggers have no CREATE OR REPLACE.
                SQL(
                    "DO $$ BEGIN IF NOT EXISTS ("
                    "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE t.tgname = 'ledger_entry_required' "
                    "AND n.nspname = {schema_name} AND c.relname = {table_name}"
                    ") THEN CREATE CONSTRAINT TRIGGER ledger_entry_required AFTER INSERT ON {schema}.{events} "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {schema}.ledger_entry_required(); "
                    "END IF; END $$"
                ).format(
                    schema=schema,
                    events=events,
                    schema_name=Literal(self.datastore.schema),
                    table_name=Literal(self.events_table_name),
                ),
            ]
        )

        self.lock_log_statement = SQL("LOCK TABLE {schema}.{log} IN EXCLUSIVE MODE").format(schema=schema, log=log)
        self.select_head_statement = SQL(
            "SELECT seq, leaf_hash, (SELECT leaf FROM {schema}.{log} WHERE seq = 0) AS genesis "
            "FROM {schema}.{log} ORDER BY seq DESC LIMIT 1"
        ).format(schema=schema, log=log)
        self.insert_log_statement = SQL(
            "INSERT INTO {schema}.{log} (seq, leaf, leaf_hash, originator_id, originator_version) "
            "SELECT * FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[], %s::{id_type}[], %s::bigint[]) "
            "RETURNING seq"
        ).format(schema=schema, log=log, id_type=id_type)
        self.log_size_statement = SQL("SELECT COALESCE(MAX(seq) + 1, 0) AS size FROM {schema}.{log}").format(
            schema=schema, log=log
        )
        self.select_states_statement = SQL(
            "SELECT notification_id, topic, state FROM {schema}.{events} "
            "WHERE notification_id >= %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
        ).format(schema=schema, events=events)
        self.select_event_rows_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE notification_id >= %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
        ).format(schema=schema, events=events)
        self.select_event_rows_until_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE notification_id >= %s AND notification_id < %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
        ).format(schema=schema, events=events)
        self.select_events_of_statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{events} "
            "WHERE originator_id = ANY(%s::{id_type}[]) ORDER BY originator_id, originator_version"
        ).format(schema=schema, events=events, id_type=id_type)
        select_batch = SQL(
            "SELECT l.seq, l.leaf, l.leaf_hash, e.state FROM {schema}.{log} AS l "
            "LEFT JOIN {schema}.{events} AS e "
            "ON e.originator_id = l.originator_id AND e.originator_version = l.originator_version "
            "WHERE l.seq >= %s "
        ).format(schema=schema, log=log, events=events)
        self.select_log_batch_statement = select_batch + SQL("ORDER BY l.seq LIMIT %s")
        self.select_log_batch_until_statement = select_batch + SQL("AND l.seq < %s ORDER BY l.seq LIMIT %s")

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # Applications starting together would run this DDL concurrently, and CREATE OR REPLACE TRIGGER locks the
        # log before the events table, the reverse of a writer's order: a deadlock. So one creator at a time, and
        # none at all once the schema is set up (its last object, the constraint trigger, exists).
        curs.execute(
            SQL("SELECT pg_advisory_xact_lock(hashtext({key}))").format(
                key=Literal(f"village-ledger:create:{self.datastore.schema}")
            )
        )
        curs.execute(
            SQL(
                "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE t.tgname = 'ledger_entry_required' AND n.nspname = {schema} AND c.relname = {table}"
            ).format(schema=Literal(self.datastore.schema), table=Literal(self.events_table_name))
        )
        if curs.fetchone() is None:
            super()._create_table(curs)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return super().insert_events(stored_events, **kwargs, **{_PENDING_ENTRIES: []})

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Runs first inside the write transaction, outside eventsourcing's error capture, so anything refused
        # here rolls the whole write back; the entries are appended once the events are inserted.
        super()._insert_events(curs, stored_events, **kwargs)
        pending: list[ChainedEntry] = kwargs[_PENDING_ENTRIES]
        pending.clear()
        request = self.chain_request(stored_events, kwargs)
        if request is None:
            return
        # The events-table lock eventsourcing takes before inserting, taken now so the head cannot move between
        # this read and the append; the log lock also serializes recorders of other events tables in this schema.
        self._lock_table(curs)
        curs.execute(self.lock_log_statement)
        row = curs.execute(self.select_head_statement).fetchone()
        head = self.chain_head(None if row is None else (row["seq"], row["leaf_hash"], row["genesis"]))
        pending.extend(self.chain_entries(head, stored_events, request))

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        pending: list[ChainedEntry] = kwargs[_PENDING_ENTRIES]
        curs.execute(
            self.insert_log_statement,
            (
                [e.seq for e in pending],
                [e.leaf for e in pending],
                [e.leaf_hash for e in pending],
                [e.stored_event.originator_id for e in pending],
                [e.stored_event.originator_version for e in pending],
            ),
        )
        # Fetching syncs the pipeline, so a failed append raises here, inside eventsourcing's error capture,
        # rather than at commit.
        curs.fetchall()
        return notification_ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events_of(self, originator_ids: Collection[UUID]) -> list[StoredEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_events_of_statement, (list(originator_ids),))
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_states(self, start: int, limit: int, topics: Sequence[str]) -> list[tuple[int, str, bytes]]:
        """As ChainedSQLiteApplicationRecorder.select_states."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_states_statement, (start, list(topics), limit))
            return [(row["notification_id"], row["topic"], bytes(row["state"])) for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_event_rows(
        self, start: int, limit: int, topics: Sequence[str], *, stop: int | None = None
    ) -> list[tuple[int, str, int, str, bytes]]:
        """As ChainedSQLiteApplicationRecorder.select_event_rows."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if stop is None:
                curs.execute(self.select_event_rows_statement, (start, list(topics), limit))
            else:
                curs.execute(self.select_event_rows_until_statement, (start, stop, list(topics), limit))
            return [
                (row["notification_id"], str(row["originator_id"]), row["originator_version"], row["topic"], bytes(row["state"]))
                for row in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def log_size(self) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            row = curs.execute(self.log_size_statement).fetchone()
            assert row is not None
            return row["size"]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def forks_safely(self) -> bool:
        """No: the connection pool runs threads of its own, whose locks a fork would copy as they are."""
        return False

    def select_originator_ids(self, topic: str) -> list[UUID]:
        # The topic as a literal: PostgreSQL plans a partial index only for a condition it can match at planning.
        statement = SQL("SELECT originator_id FROM {schema}.{events} WHERE topic = {topic}").format(
            schema=Identifier(self.datastore.schema),
            events=Identifier(self.events_table_name),
            topic=Literal(self._indexed_topic(topic)),
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement)
            return [row["originator_id"] for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _select_log_batch(self, start: int, stop: int | None, limit: int) -> list[LogRecord]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if stop is None:
                curs.execute(self.select_log_batch_statement, (start, limit))
            else:
                curs.execute(self.select_log_batch_until_statement, (start, stop, limit))
            return [
                LogRecord(
                    seq=row["seq"],
                    leaf=bytes(row["leaf"]),
                    leaf_hash=bytes(row["leaf_hash"]),
                    state=None if row["state"] is None else bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

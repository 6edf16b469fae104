"""Where the verifier reads entries from: a SQLite file, a PostgreSQL schema, or an exported bundle directory.

Each source yields (seq, leaf, state) in seq order, where state is the stored event bytes that the entry's
(originator id, version) points at, or None when no such event is stored; and lists stored events with no entry.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit
from typing import Any

LOG_TABLE = "ledger_log"
CHECKPOINT_TOPIC = "ledger/Ledger/CheckpointRecorded"
EVENTS_TABLE = "stored_events"
_BATCH = 5000
_ROWS = 10000  # rows per read in batches(): fewer round trips, still constant memory


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One log row as read: its position, leaf bytes and the stored event state it points at."""

    seq: int
    leaf: bytes
    state: bytes | None


class Source:
    """A readable ledger."""

    description: str

    def size(self) -> int:
        raise NotImplementedError

    def entries(self, start: int = 0) -> Iterator[SourceEntry]:
        """Entries with seq >= start, in seq order."""
        raise NotImplementedError

    def batches(self, start: int = 0) -> Iterator[list[tuple[int, bytes, bytes | None]]]:
        """The same entries as raw (seq, leaf, state) rows, a list at a time (what the verifier reads)."""
        batch = []
        for entry in self.entries(start):
            batch.append((entry.seq, entry.leaf, entry.state))
            if len(batch) >= _BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def unlogged_events(self) -> list[tuple[str, int]]:
        """Stored events that no log entry points at (originator id, version)."""
        return []

    def published_checkpoints(self) -> list[tuple[str, str]]:
        """Checkpoint notes shipped beside the entries (a bundle's checkpoints/*.note): (file name, text)."""
        return []

    def keys_listing(self) -> str | None:
        """A bundle's keys.txt, to be compared with the keys the log registers; None for a database or when absent."""
        return None

    def stored_checkpoint_states(self) -> list[bytes]:
        """States of stored checkpoint events, read ahead only to learn which tree sizes to keep roots for.

        Nothing is trusted from them: every checkpoint is checked when its log entry is reached.
        """
        return []

    def close(self) -> None:
        pass


_JOIN = (
    "SELECT l.seq, l.leaf, e.state FROM {log} AS l LEFT JOIN {events} AS e "
    "ON e.originator_id = l.originator_id AND e.originator_version = l.originator_version "
    "WHERE l.seq >= {mark} ORDER BY l.seq LIMIT {mark}"
)
_RANGE = (
    "SELECT l.seq, l.leaf, e.state FROM {log} AS l LEFT JOIN {events} AS e "
    "ON e.originator_id = l.originator_id AND e.originator_version = l.originator_version "
    "WHERE l.seq >= {mark} AND l.seq < {mark} ORDER BY l.seq"
)
_UNLOGGED = (
    "SELECT e.originator_id, e.originator_version FROM {events} AS e LEFT JOIN {log} AS l "
    "ON e.originator_id = l.originator_id AND e.originator_version = l.originator_version "
    "WHERE l.seq IS NULL ORDER BY e.originator_id, e.originator_version"
)


def _as_bytes(value: bytes | memoryview | str | None) -> bytes | None:
    # A column rewritten as TEXT by someone with database access is checked as its UTF-8 bytes: a finding, not a crash.
    if value is None or value.__class__ is bytes:
        return value
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _as_byte_rows(rows: list) -> list[tuple[int, bytes, bytes | None]]:
    """SQLite returns bytes already (the common case is one pass of checks); PostgreSQL returns memoryview."""
    if all(leaf.__class__ is bytes and (state is None or state.__class__ is bytes) for _, leaf, state in rows):
        return rows
    return [(seq, _as_bytes(leaf), _as_bytes(state)) for seq, leaf, state in rows]


def range_rows(conn, query: str, lo: int, hi: int) -> list[tuple[int, bytes, bytes | None]]:
    rows = _as_byte_rows(conn.execute(query, (lo, hi)).fetchall())
    return rows


_WORKER_CONNECTIONS: dict = {}


def sqlite_range_rows(uri: str, lo: int, hi: int) -> list[tuple[int, bytes, bytes | None]]:
    """Source.rows(lo, hi) of the SQLite file at `uri`, through this process's own read-only connection."""
    key = (os.getpid(), uri)
    conn = _WORKER_CONNECTIONS.get(key)
    if conn is None:
        conn = _WORKER_CONNECTIONS[key] = sqlite3.connect(uri, uri=True)
    return range_rows(conn, _RANGE.format(log=LOG_TABLE, events=EVENTS_TABLE, mark="?"), lo, hi)


class _DatabaseSource(Source):
    """A ledger in a database: the log joined to the stored events, read in large batches of raw rows."""

    _conn: Any
    _log: str
    _events: str
    _mark: str  # the driver's parameter placeholder

    def size(self) -> int:
        return self._conn.execute(f"SELECT count(*) FROM {self._log}").fetchone()[0]

    def entries(self, start: int = 0) -> Iterator[SourceEntry]:
        for rows in self.batches(start):
            for seq, leaf, state in rows:
                yield SourceEntry(seq, leaf, state)

    def batches(self, start: int = 0) -> Iterator[list[tuple[int, bytes, bytes | None]]]:
        query = _JOIN.format(log=self._log, events=self._events, mark=self._mark)
        while True:
            rows = _as_byte_rows(self._conn.execute(query, (start, _ROWS)).fetchall())
            if rows:
                yield rows
            if len(rows) < _ROWS:
                return
            start = rows[-1][0] + 1

    def dense_seqs(self, start: int) -> tuple[int, int] | None:
        """(first, end) when the log's seqs from `start` on are exactly the integers first..end-1, else None."""
        return None

    def rows(self, lo: int, hi: int) -> list[tuple[int, bytes, bytes | None]]:
        """The raw rows with lo <= seq < hi, in seq order (what batches() yields for that range)."""
        return range_rows(self._conn, _RANGE.format(log=self._log, events=self._events, mark=self._mark), lo, hi)

    def prefetch_unlogged(self) -> None:
        """Run unlogged_events() now (while workers read the log); its next call returns this answer."""
        self._unlogged = self.unlogged_events()

    def unlogged_events(self) -> list[tuple[str, int]]:
        prefetched = self.__dict__.pop("_unlogged", None)
        if prefetched is not None:
            return prefetched
        return [(str(a), b) for a, b in self._conn.execute(_UNLOGGED.format(log=self._log, events=self._events))]

    def stored_checkpoint_states(self) -> list[bytes]:
        query = f"SELECT state FROM {self._events} WHERE topic = {self._mark}"
        return [bytes(state) for (state,) in self._conn.execute(query, (CHECKPOINT_TOPIC,))]

    def close(self) -> None:
        self._conn.close()


class SQLiteSource(_DatabaseSource):
    """A SQLite ledger file, opened read-only."""

    _log, _events, _mark = LOG_TABLE, EVENTS_TABLE, "?"

    def __init__(self, path: str):
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no such ledger file: {path}")
        self.description = str(file)
        self._conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {LOG_TABLE, EVENTS_TABLE} <= tables:
            raise ValueError(f"{path} is not a village-ledger database (no {LOG_TABLE}/{EVENTS_TABLE} tables)")
        self.uri = f"{file.resolve().as_uri()}?mode=ro"

    def dense_seqs(self, start: int) -> tuple[int, int] | None:
        # seq must be the rowid (INTEGER PRIMARY KEY): then every seq is an integer and min/max are index lookups.
        columns = self._conn.execute(f"SELECT name, type, pk FROM pragma_table_info('{LOG_TABLE}')").fetchall()
        if [(name, kind.upper()) for name, kind, pk in columns if pk] != [("seq", "INTEGER")]:
            return None
        low, high, count = self._conn.execute(
            f"SELECT (SELECT min(seq) FROM {LOG_TABLE}), (SELECT max(seq) FROM {LOG_TABLE}), "
            f"(SELECT count(*) FROM {LOG_TABLE})"
        ).fetchone()
        if not count or low.__class__ is not int or high.__class__ is not int or low < start or high - low + 1 != count:
            return None
        return low, high + 1


class PostgresSource(_DatabaseSource):
    """One ledger's schema in PostgreSQL, read in a read-only transaction."""

    _mark = "%s"

    def __init__(self, url: str):
        import psycopg

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.schema = query.pop("schema", ["public"])[0]
        self.description = urlunsplit(parts._replace(netloc=parts.hostname or "", query=""))
        conninfo = urlunsplit(parts._replace(query=""))
        self._conn = psycopg.connect(conninfo)
        self._conn.read_only = True
        self._log = f'"{self.schema}".{LOG_TABLE}'
        self._events = f'"{self.schema}".{EVENTS_TABLE}'


class BundleSource(Source):
    """An exported auditor bundle: entries.jsonl, one {"seq", "leaf", "state"} object per line (base64 bytes),
    and checkpoints/*.note, the checkpoint notes as published."""

    def __init__(self, directory: str):
        self.directory = Path(directory)
        self.path = self.directory / "entries.jsonl"
        if not self.path.is_file():
            raise FileNotFoundError(f"{directory} is not a bundle (no entries.jsonl)")
        self.description = str(directory)

    def size(self) -> int:
        with open(self.path, "rb") as lines:
            return sum(1 for line in lines if line.strip())

    def entries(self, start: int = 0) -> Iterator[SourceEntry]:
        with open(self.path, encoding="ascii") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if int(row["seq"]) < start:
                        continue
                    yield SourceEntry(
                        int(row["seq"]),
                        base64.b64decode(row["leaf"], validate=True),
                        base64.b64decode(row["state"], validate=True),
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{self.path}:{number}: not a bundle entry: {exc}") from None

    def keys_listing(self) -> str | None:
        path = self.directory / "keys.txt"
        try:
            return path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from None

    def published_checkpoints(self) -> list[tuple[str, str]]:
        notes = []
        for path in sorted((self.directory / "checkpoints").glob("*.note")):
            try:
                notes.append((str(path), path.read_text("utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{path}: cannot read the checkpoint note: {exc}") from None
        return notes


def open_source(location: str) -> Source:
    if "://" in location:
        if location.split("://", 1)[0].lower() not in ("postgresql", "postgres"):
            raise ValueError(f"unsupported source {location!r}")
        return PostgresSource(location)
    if Path(location).is_dir():
        return BundleSource(location)
    return SQLiteSource(location)

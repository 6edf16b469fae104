"""Read models of one ledger as SQLAlchemy tables, kept up to date by a tracked projection of the event log.

The projection follows eventsourcing's TrackingRecorder pattern, run as a batch job: it reads the stored events of
the projected topics in batches after its tracked position, and each batch's rows are written together with the new
tracking position in ONE transaction. A job killed mid-batch therefore leaves the previous batch's state
and position, and a rerun redoes exactly the missing batches. Every table is a sum or a set over events, never a
running state that depends on when the job ran, so a full rebuild gives the same rows as any sequence of
incremental runs. For the same reason a long run can be cut into ranges projected by several processes at once:
one process writes the ranges' rows in log order, each range with its position.

The tables live next to the ledger (same SQLite file, same PostgreSQL schema) or in a database of their own.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from multiprocessing.connection import wait as connection_wait
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from uuid import UUID

from eventsourcing.persistence import Tracking, TrackingRecorder
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
    TypeDecorator,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection

from ..domain.aggregates import (
    Asset,
    Contract,
    Decision,
    Disclosure,
    Ledger,
    Period,
    Resource,
    TownshipApproval,
    Voucher,
)
from ..domain.charts import load_chart
from ..domain.journal import Approval
from ..domain.model import load_state
from ..domain.money import CENT, money
from .balances import CLOSING, OPENING, VOUCHER, Posting

try:  # the rebuild's inner loop in C, built where a compiler and SQLite's headers were at hand (setup.py)
    from . import _rows as compiled_rows
except ImportError:
    compiled_rows = None

CASH, BANK = "cash", "bank"
FUND_OF_ACCOUNT = {"101": CASH, "102": BANK}
# Accounts whose detail balances are claims on others or debts to them (债权债务), per chart (DOMAIN.md §1).
CLAIM_ACCOUNTS = {
    "2023": ("112", "113", "201", "211", "212", "213", "214", "221", "231", "241"),
    "2004": ("112", "113", "201", "202", "211", "212", "221", "231", "241"),
}
OPENING_VOUCHER = "OPENING"
REVERSAL = "reversal"
FUND_COLUMNS = ("opening", "receipts", "payments", "transfers_in", "transfers_out")


class Money(TypeDecorator):
    """Yuan as an integer number of 分: SQLite has no decimal type and a float column would lose cents."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> int | None:
        if value is None:
            return None
        return int(money(value) / CENT)

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        return None if value is None else (Decimal(value) * CENT).quantize(CENT)


metadata = MetaData()

tracking_table = Table(
    "rm_tracking",
    metadata,
    Column("application_name", String(100), primary_key=True),
    Column("origin", Text, nullable=False),
    Column("notification_id", BigInteger, nullable=False),
)
voucher_table = Table(
    "rm_voucher",
    metadata,
    Column("voucher_no", String(100), primary_key=True),
    # Not indexed: nothing looks a voucher up by it, and random ids cost a rebuild a quarter of its time in
    # index-page writes.
    Column("aggregate_id", String(36), nullable=False),
    Column("notification_id", BigInteger, nullable=False),
    Column("date", Date, nullable=False),
    Column("period", String(7), nullable=False, index=True),
    Column("chart", String(4), nullable=False),
    Column("kind", String(10), nullable=False),  # opening, voucher, closing, reversal
    Column("summary", Text, nullable=False),
    Column("reverses", String(100)),
    Column("reversed_by", String(100)),
    Column("decision", String(100)),
    Column("contract", String(100)),
    Column("counterparty", Text),
    Column("tags", Text, nullable=False),  # JSON list
    Column("approvals", Text, nullable=False),  # JSON list of {role, person, date}
    Column("attachments", Text, nullable=False),  # JSON list
    # Fund columns: receipts/payments into 101+102 from outside the funds; a voucher touching only 101/102 is an
    # internal transfer (提现/存现), which is not income or expense.
    Column("is_transfer", Boolean, nullable=False),
    Column("fund_receipts", Money, nullable=False),
    Column("fund_payments", Money, nullable=False),
    Column("cash_payments", Money, nullable=False),
    # Only the vouchers paid under a decision, few among many: the others would cost a rebuild an index entry each.
    Index(
        "ix_rm_voucher_decided", "decision",
        sqlite_where=text("decision IS NOT NULL"), postgresql_where=text("decision IS NOT NULL"),
    ),
)
voucher_line_table = Table(
    "rm_voucher_line",
    metadata,
    Column("voucher_no", String(100), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("date", Date, nullable=False, index=True),
    Column("chart", String(4), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("code", String(12), nullable=False),
    Column("top_code", String(3), nullable=False),
    Column("detail", Text, nullable=False),
    Column("debit", Money, nullable=False),
    Column("credit", Money, nullable=False),
    Column("fund", String(4)),  # cash, bank or NULL
)
fund_month_table = Table(
    "rm_fund_month",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("fund", String(4), primary_key=True),
    Column("opening", Money, nullable=False),  # opening balances recorded in this month
    Column("receipts", Money, nullable=False),
    Column("payments", Money, nullable=False),
    Column("transfers_in", Money, nullable=False),
    Column("transfers_out", Money, nullable=False),
)
fund_category_table = Table(
    "rm_fund_category",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("direction", String(7), primary_key=True),  # income or expense
    Column("code", String(3), primary_key=True),  # top-level counter-account of the fund movement
    Column("amount", Money, nullable=False),
)
claim_movement_table = Table(
    "rm_claim_movement",
    metadata,
    Column("voucher_no", String(100), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("date", Date, nullable=False),
    Column("code", String(3), nullable=False, index=True),
    Column("detail", Text, nullable=False),
    Column("amount", Money, nullable=False),  # debit minus credit: positive is owed to the collective
)
period_table = Table(
    "rm_period",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True),
    Column("closed_on", Date),
    Column("cash_counted", Money),
    Column("bank_statement", Money),
    Column("reconciliation_note", Text),
)
contract_table = Table(
    "rm_contract",
    metadata,
    Column("contract_no", String(100), primary_key=True),
    Column("subject_kind", String(8), nullable=False),
    Column("subject_no", String(100), nullable=False),
    Column("counterparty", Text, nullable=False),
    Column("counterparty_is_member", Boolean, nullable=False),
    Column("signed", Date, nullable=False, index=True),
    Column("start", Date, nullable=False),
    Column("end", Date, nullable=False),
    Column("annual_fee", Money, nullable=False),
    Column("decision", String(100)),
    Column("township_approval", String(100)),
)
instalment_table = Table(
    "rm_instalment",
    metadata,
    Column("contract_no", String(100), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("due", Date, nullable=False),
    Column("amount", Money, nullable=False),
)
contract_receipt_table = Table(
    "rm_contract_receipt",
    metadata,
    Column("voucher_no", String(100), primary_key=True),
    Column("contract_no", String(100), nullable=False, index=True),
    Column("date", Date, nullable=False),
    Column("amount", Money, nullable=False),
)
asset_table = Table(
    "rm_asset",
    metadata,
    Column("asset_no", String(100), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("use", String(20), nullable=False),
    Column("cost", Money, nullable=False),
    Column("residual", Money, nullable=False),
    Column("in_service", Date, nullable=False),
    Column("life_months", Integer, nullable=False),
    Column("accumulated_at_registration", Money, nullable=False),
    Column("disposed", Date),
    Column("disposal_method", String(10)),
)
asset_depreciation_table = Table(
    "rm_asset_depreciation",
    metadata,
    Column("asset_no", String(100), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("amount", Money, nullable=False),
    Column("voucher_no", String(100), nullable=False),
)
asset_lease_table = Table(
    "rm_asset_lease",
    metadata,
    Column("asset_no", String(100), primary_key=True),
    Column("contract_no", String(100), primary_key=True),
)
resource_table = Table(
    "rm_resource",
    metadata,
    Column("resource_no", String(100), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("area_mu", String(30), nullable=False),  # an area, not money: kept as its exact decimal text
    Column("location", Text, nullable=False),
    Column("reference_fee_per_mu_year", Money),
)
decision_table = Table(
    "rm_decision",
    metadata,
    Column("decision_id", String(100), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("matter", String(40), nullable=False),
    Column("amount", Money),
)
decision_step_table = Table(
    "rm_decision_step",
    metadata,
    Column("decision_id", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("step", String(30), nullable=False),
    Column("date", Date, nullable=False, index=True),
    Column("body", Text, nullable=False),
    Column("due", Integer),
    Column("present", Integer),
    Column("votes_for", Integer),
    Column("votes_against", Integer),
    Column("abstentions", Integer),
    Column("note", Text, nullable=False),
)
township_approval_table = Table(
    "rm_township_approval",
    metadata,
    Column("approval_id", String(100), primary_key=True),
    Column("subject", String(100), nullable=False, index=True),
    Column("matter", Text, nullable=False),
    Column("date", Date, nullable=False),
    Column("approver", Text, nullable=False),
)
disclosure_table = Table(
    "rm_disclosure",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("published", Date, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("checkpoint_size", BigInteger),
    Column("notification_id", BigInteger, nullable=False),
)

# Indexes that read models built by earlier versions have and this one drops when it opens them.
RETIRED_INDEXES = ("ix_rm_voucher_aggregate_id", "ix_rm_voucher_decision")
READ_MODEL_TABLES = tuple(t for t in metadata.sorted_tables if t is not tracking_table)
IMAGE_SCHEMA = "rm_packed"
# The tables the rows of a posted voucher go to, in the order ledger/projections/_rows.c takes their statements.
POSTED_TABLES = (voucher_table.name, voucher_line_table.name, claim_movement_table.name, contract_receipt_table.name)


def _untyped_table(table: Table) -> str:
    """CREATE TABLE with the table's columns in their order, without types or keys (ReadModel.pack_rows)."""
    columns = ", ".join(f'"{column.name}"' for column in table.c)
    return f'CREATE TABLE "{table.name}" ({columns})'


IMAGE_TABLES = tuple(map(_untyped_table, READ_MODEL_TABLES))

TOPICS = (
    Ledger.OpeningBalancesRecorded.TOPIC,
    Voucher.Posted.TOPIC,
    Voucher.Reversed.TOPIC,
    Voucher.MarkedReversed.TOPIC,
    Period.Opened.TOPIC,
    Period.Closed.TOPIC,
    Contract.Signed.TOPIC,
    Asset.Registered.TOPIC,
    Asset.Depreciated.TOPIC,
    Asset.Leased.TOPIC,
    Asset.Disposed.TOPIC,
    Resource.Registered.TOPIC,
    Decision.Opened.TOPIC,
    Decision.StepRecorded.TOPIC,
    TownshipApproval.Recorded.TOPIC,
    Disclosure.Published.TOPIC,
)


class ReadModelError(RuntimeError):
    """The read model cannot be used with this ledger, or another job moved it while this one ran."""


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def read_model_url(location: str) -> tuple[str, str | None]:
    """SQLAlchemy URL and schema for a location in the LEDGER form: a SQLite file path or postgresql://…?schema=S."""
    scheme, separator, _ = location.partition("://")
    if not separator:
        path = Path(location).expanduser().resolve()
        if not path.parent.is_dir():
            raise ReadModelError(f"read model {location!r}: directory {str(path.parent)!r} does not exist")
        return f"sqlite:///{path}", None
    if scheme.lower() not in ("postgresql", "postgres"):
        raise ReadModelError(f"read model {location.split('@')[-1]!r}: give a SQLite file path or a postgresql:// URL")
    parts = urlsplit(location)
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"schema"})
    if unknown:
        raise ReadModelError(f"read model URL: unknown parameter(s) {unknown}; only schema=NAME is understood")
    schema = query.get("schema", ["public"])[0]
    userinfo = ""
    if parts.username:
        userinfo = quote(unquote(parts.username), safe="")
        if parts.password:
            userinfo += ":" + quote(unquote(parts.password), safe="")
        userinfo += "@"
    return f"postgresql+psycopg://{userinfo}{parts.hostname}:{parts.port or 5432}{parts.path}", schema


class ReadModel(TrackingRecorder):
    """The read-model tables and their tracking row, in one database (the ledger's own, or a separate one)."""

    def __init__(self, location: str):
        url, schema = read_model_url(location)
        self.location = location
        self.schema = schema
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
                # eventsourcing may hold the same file; wait for its write lock instead of failing at once.
                dbapi_connection.execute("PRAGMA busy_timeout = 30000")
                # Write-ahead log (what eventsourcing uses for the ledger's own file): a commit costs one sync, and
                # readers of the disclosure tables never wait for the job. NORMAL sync in WAL mode keeps every
                # batch atomic with its tracking position; a power cut can only lose the last batches, which the
                # next run redoes.
                dbapi_connection.execute("PRAGMA journal_mode = WAL")
                dbapi_connection.execute("PRAGMA synchronous = NORMAL")
                # Where the rows a worker process packed are copied from (pack_rows).
                dbapi_connection.execute(f"ATTACH DATABASE ':memory:' AS {IMAGE_SCHEMA}")

        else:
            self.engine = self.engine.execution_options(schema_translate_map={None: schema})
        self._connection: Connection | None = None
        self._statements: dict[tuple[str, str, tuple[str, ...]], str] = {}
        # What inserted rows may carry for NULL in a nullable column that never holds a number: on SQLite 0, which
        # the INSERT turns into NULL (NULLIF), because Python's sqlite3 binds None through an adapter lookup that
        # costs a rebuild more than the rest of a row's parameters; PostgreSQL types its parameters, so None.
        self.absent: int | None = 0 if self.engine.dialect.name == "sqlite" else None
        self.create_tables()

    def create_tables(self) -> None:
        with self.engine.begin() as conn:
            if self.schema:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            metadata.create_all(conn)
            # create_all adds indexes only with their table: read models built before an index existed get it here.
            for table in metadata.sorted_tables:
                for index in table.indexes:
                    index.create(conn, checkfirst=True)
            prefix = f'"{self.schema}".' if self.schema else ""
            for name in RETIRED_INDEXES:
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS {prefix}"{name}"')

    def close(self) -> None:
        self.engine.dispose()

    # -- TrackingRecorder: the position is written in the batch's own transaction -------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            self._connection = conn
            try:
                yield conn
            finally:
                self._connection = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise ReadModelError("read-model rows are written only inside ReadModel.transaction()")
        return self._connection

    # -- batch writes through the driver: rows arrive as tuples already in the columns' stored form ----------------

    def write(self, writes: Writes) -> None:
        """A batch's rows into the current transaction: inserts, then updates, then the added sums.

        Updates follow the inserts: an update of a row this batch inserted then finds it, as it would have had each
        event been written at once. Fund and category sums are added to the stored ones.
        """
        if writes.image is not None:
            self._insert_image(writes)
        for table_name, rows in writes.rows.items():
            self.execute_many(self.insert_sql(table_name), rows)
        for (table_name, columns), rows in writes.updates.items():
            self.execute_many(self.update_sql(table_name, columns), rows)
        if writes.funds:
            self.execute_many(
                self.add_to_sql(fund_month_table.name), [(*key, *sums) for key, sums in writes.funds.items()]
            )
        if writes.categories:
            self.execute_many(
                self.add_to_sql(fund_category_table.name), [(*key, amount) for key, amount in writes.categories.items()]
            )

    def execute_many(self, statement: str, rows: list[tuple]) -> None:
        self.connection.exec_driver_sql(statement, rows)

    @property
    def packs_rows(self) -> bool:
        """Whether worker processes should send rows packed (pack_rows): a SQLite read model copies a packed range
        into its tables in one statement per table, without binding each value in Python."""
        return self.engine.dialect.name == "sqlite" and hasattr(sqlite3.Connection, "deserialize")

    def pack_rows(self, writes: Writes) -> None:
        """Move the rows of `writes` into a serialized in-memory SQLite database of the read-model tables.

        Every image has every table, created in one order: the statements that copy from one image are then valid
        for the next (SQLite would not notice that a deserialized schema with the same cookie is another one). Its
        columns have neither types nor keys: values stay as bound, and the read model's own columns convert and
        check them when they are copied, as they would have had they been bound there.
        """
        inserts = [(self.insert_sql(table_name), rows) for table_name, rows in writes.rows.items()]
        packed = tuple(writes.rows)
        image, writes.compiled_image = writes.compiled_image, None
        if image is not None:  # the posted vouchers' rows are in it already
            packed = tuple(dict.fromkeys(POSTED_TABLES + packed))
        elif compiled_rows is not None:
            image = compiled_rows.Image(IMAGE_TABLES)
        if image is None:
            writes.image = _packed(IMAGE_TABLES, inserts)
        else:
            for statement, rows in inserts:
                image.insert(statement, rows)
            writes.image = image.serialize()
        writes.packed = packed
        writes.rows.clear()

    def _insert_image(self, writes: Writes) -> None:
        driver = self.connection.connection.driver_connection
        driver.deserialize(writes.image, name=IMAGE_SCHEMA)
        for table_name in writes.packed:
            driver.execute(f'INSERT INTO main."{table_name}" SELECT * FROM {IMAGE_SCHEMA}."{table_name}"')

    def insert_sql(self, table_name: str) -> str:
        return self._statement("insert", table_name, ())

    def update_sql(self, table_name: str, columns: tuple[str, ...]) -> str:
        """UPDATE table SET columns WHERE its primary key; parameters are the new values, then the key."""
        return self._statement("update", table_name, columns)

    def add_to_sql(self, table_name: str) -> str:
        """Insert rows keyed by the table's primary key, adding their other columns to a row already there."""
        return self._statement("add_to", table_name, ())

    def _statement(self, kind: str, table_name: str, columns: tuple[str, ...]) -> str:
        key = kind, table_name, columns
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = self._build_statement(kind, metadata.tables[table_name], columns)
        return statement

    def _build_statement(self, kind: str, table: Table, columns: tuple[str, ...]) -> str:
        preparer = self.engine.dialect.identifier_preparer
        marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        name = preparer.quote(table.name)
        target = f"{preparer.quote_schema(self.schema)}.{name}" if self.schema else name
        every = [preparer.quote(c.name) for c in table.c]
        if kind == "delete":  # the rows whose `columns` equal the parameters; every row if none are given
            conditions = " AND ".join(f"{preparer.quote(c)} = {marker}" for c in columns)
            return f"DELETE FROM {target}" + (f" WHERE {conditions}" if conditions else "")
        if kind == "select":  # `columns` of the row whose primary key is the parameter
            (key,) = table.primary_key
            return f"SELECT {', '.join(map(preparer.quote, columns))} FROM {target} WHERE {preparer.quote(key.name)} = {marker}"
        if kind == "advance":  # the tracking position: new position, application name, expected position
            return (
                f"UPDATE {target} SET notification_id = {marker} WHERE application_name = {marker} "
                f"AND notification_id = {marker}"
            )
        if kind == "update":
            (key,) = table.primary_key
            assignments = ", ".join(f"{preparer.quote(c)} = {marker}" for c in columns)
            return f"UPDATE {target} SET {assignments} WHERE {preparer.quote(key.name)} = {marker}"
        values = [
            f"NULLIF({marker}, 0)" if self.absent is not None and c.nullable and not _holds_numbers(c) else marker
            for c in table.c
        ]
        insert_rows = f"INSERT INTO {target} ({', '.join(every)}) VALUES ({', '.join(values)})"
        if kind == "insert":
            return insert_rows
        keys = ", ".join(preparer.quote(c.name) for c in table.primary_key)
        sums = ", ".join(
            f"{preparer.quote(c.name)} = {name}.{preparer.quote(c.name)} + excluded.{preparer.quote(c.name)}"
            for c in table.c
            if not c.primary_key
        )
        return f"{insert_rows} ON CONFLICT ({keys}) DO UPDATE SET {sums}"

    # The tracking statements are SQL text, as the rows' are: SQLAlchemy's first compilation of a statement in a
    # process costs a short run more than the statement itself.

    def insert_tracking(self, tracking: Tracking) -> None:
        """Move the position forward; refuse (and so roll the batch back) if another job moved it meanwhile."""
        moved = self.connection.exec_driver_sql(
            self._statement("advance", tracking_table.name, ()),
            (tracking.notification_id, tracking.application_name, self._expected_position),
        )
        if tracking.notification_id <= self._expected_position or moved.rowcount != 1:
            raise ReadModelError(
                f"read model {self.location}: tracking position of {tracking.application_name} moved while this "
                f"job ran (expected {self._expected_position}); rerun the job"
            )
        self._expected_position = tracking.notification_id

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(tracking_table.c.notification_id).where(tracking_table.c.application_name == application_name)
            ).scalar_one_or_none()

    def start_tracking(self, application_name: str, origin: str) -> int:
        """The tracked position (0 if never run); refuses a read model that belongs to another ledger."""
        with self.engine.begin() as conn:
            row = conn.exec_driver_sql(
                self._statement("select", tracking_table.name, ("origin", "notification_id")), (application_name,)
            ).first()
            if row is None:
                conn.exec_driver_sql(self.insert_sql(tracking_table.name), (application_name, origin, 0))
                position = 0
            elif row.origin != origin:
                raise ReadModelError(
                    f"read model {self.location} holds the books of {row.origin}, not {origin}; give another location"
                )
            else:
                position = row.notification_id
        self._expected_position = position
        return position

    def clear(self, application_name: str) -> None:
        """Empty every read-model table and reset the position, in one transaction (for a full rebuild)."""
        with self.engine.begin() as conn:
            for table in reversed(READ_MODEL_TABLES):
                conn.exec_driver_sql(self._statement("delete", table.name, ()))
            conn.exec_driver_sql(self._statement("delete", tracking_table.name, ("application_name",)), (application_name,))

    def dump(self) -> dict[str, list[tuple]]:
        """Every row of every read-model table, sorted: two read models are equal exactly when their dumps are."""
        with self.engine.connect() as conn:
            return {
                table.name: sorted(tuple(row) for row in conn.execute(select(table)))
                for table in READ_MODEL_TABLES
            }


@dataclass(frozen=True)
class RunResult:
    start: int  # the tracked position before the run
    end: int  # after it
    batches: int
    events: int


class Writes:
    """The rows a run of events gives, held in memory until they are written in a few set-based statements; plain
    data keyed by table name, so that a worker process can send them to the writer."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = defaultdict(list)  # each row in its table's column order
        self.updates: dict[tuple[str, tuple[str, ...]], list[tuple]] = defaultdict(list)  # SET values + primary key
        self.funds: dict[tuple[str, str], list[int]] = {}  # FUND_COLUMNS in 分
        self.categories: dict[tuple[str, str, str], int] = defaultdict(int)  # 分
        self.events = 0  # projected events
        self.end = 0  # the tracking position once written: the last notification id these rows account for
        self.image: bytes | None = None  # the rows packed by ReadModel.pack_rows, `rows` then empty
        self.compiled_image: Any = None  # where the C loop put the posted vouchers' rows, until they are packed
        self.packed: tuple[str, ...] = ()  # the tables with rows in `image`


def _holds_numbers(column: Column) -> bool:
    return isinstance(column.type, (Integer, BigInteger, Money, Boolean))


def _fen(amount: str) -> int:
    """An amount as stored ("-12.30": plain digits, a point, two decimals) in 分, the read model's unit."""
    if amount == "0.00":  # one side of nearly every line
        return 0
    if amount[-3:-2] != ".":
        raise ReadModelError(f"stored amount {amount!r} does not have two decimals")
    return int(amount.replace(".", "", 1))


def _optional_fen(amount: str | None) -> int | None:
    return None if amount is None else _fen(amount)


def _row(table: Table, **values: Any) -> tuple:
    """The row's values in the table's column order (every column given: a missing one is a KeyError)."""
    return tuple(values[column.name] for column in table.c)


_json_string = json.encoder.encode_basestring  # a str as json.dumps(..., ensure_ascii=False) writes it
APPROVAL_FIELDS = tuple(Approval.model_fields)
APPROVAL_TEMPLATE = "{" + ", ".join(f"{_json_string(field)}: %s" for field in APPROVAL_FIELDS) + "}"
if any(_json_string(field) != f'"{field}"' for field in APPROVAL_FIELDS):  # the C loop writes the names as they are
    raise ReadModelError("an approval field's name needs escaping in JSON")
_approval_values = itemgetter(*APPROVAL_FIELDS)


def _state(event_class: Any, state: bytes) -> dict:
    """A stored state as a dict of the event class's current version."""
    data = load_state(state)
    if "_v" in data or event_class.CLASS_VERSION > 1:
        data = event_class.upcast_state(data)
    return data


def _json_strings(values: Sequence[str]) -> str:
    """json.dumps(values, ensure_ascii=False) of a list of strings (the text the column has always held)."""
    return "[" + ", ".join(map(_json_string, values)) + "]" if values else "[]"


def _json_approvals(approvals: Sequence[dict], known: dict[tuple[str, ...], str]) -> str:
    """json.dumps of the approvals as pydantic dumps them (Approval's field order), ensure_ascii=False; the text of
    each approval is kept in `known` (the same people sign a day's vouchers) and built only when not there."""
    texts = []
    for approval in approvals:
        values = _approval_values(approval)
        text = known.get(values)
        if text is None:
            text = known[values] = APPROVAL_TEMPLATE % tuple(map(_json_string, values))
        texts.append(text)
    return "[" + ", ".join(texts) + "]"


class LedgerProjection:
    """Turns the stored events of the projected topics into rows, taken a batch at a time.

    It reads stored states as the log holds them (JSON, brought to the current class version), not domain events:
    the events were validated when they were written and are covered by the log's signatures, and decoding them
    through pydantic cost more than everything else the rebuild does. What an event refers to but does not carry
    (the voucher a reversal reverses, the asset of a depreciation, the decision of a step) comes from the ledger's
    own earlier events, not from the read model: the rows of that part of the log may not be written yet, because
    another process projects it (update_read_model with jobs > 1).
    """

    name = "ledger_read_model"
    topics = TOPICS

    def __init__(self, app: Any, absent: int | None = None, packing: ReadModel | None = None):
        self.app = app
        self.absent = absent  # in place of None in the voucher and line rows (ReadModel.absent)
        self.packing = packing  # the SQLite read model that packs each take's rows (ReadModel.pack_rows), if any
        self._writes = Writes()
        self._top_codes: dict[str, dict[str, str]] = {}  # chart → code → top-level code
        # References of the vouchers projected since the last take, for reversals of them: no read of the ledger.
        self._references: dict[str, tuple[str | None, str | None, str | None]] = {}  # decision, contract, counterparty
        # Their numbers by aggregate id, for marks of their reversal: each is the voucher's first event's number.
        self._voucher_nos: dict[str, str] = {}
        self._approval_texts: dict[tuple[str, ...], str] = {}  # approvals met since the last take, as JSON
        # Facts that never change once registered, kept for the run: aggregate id → asset no / decision id / period.
        self._asset_nos: dict[str, str] = {}
        self._decision_ids: dict[str, str] = {}
        self._periods: dict[str, str] = {}
        self._handlers = {
            Ledger.OpeningBalancesRecorded.TOPIC: (Ledger.OpeningBalancesRecorded, self._opening),
            Voucher.Posted.TOPIC: (Voucher.Posted, self._posted),
            Voucher.Reversed.TOPIC: (Voucher.Reversed, self._reversed),
            Voucher.MarkedReversed.TOPIC: (Voucher.MarkedReversed, self._marked_reversed),
            Period.Opened.TOPIC: (Period.Opened, self._period_opened),
            Period.Closed.TOPIC: (Period.Closed, self._period_closed),
            Contract.Signed.TOPIC: (Contract.Signed, self._contract),
            Asset.Registered.TOPIC: (Asset.Registered, self._asset),
            Asset.Depreciated.TOPIC: (Asset.Depreciated, self._depreciated),
            Asset.Leased.TOPIC: (Asset.Leased, self._leased),
            Asset.Disposed.TOPIC: (Asset.Disposed, self._disposed),
            Resource.Registered.TOPIC: (Resource.Registered, self._resource),
            Decision.Opened.TOPIC: (Decision.Opened, self._decision),
            Decision.StepRecorded.TOPIC: (Decision.StepRecorded, self._step),
            TownshipApproval.Recorded.TOPIC: (TownshipApproval.Recorded, self._approval),
            Disclosure.Published.TOPIC: (Disclosure.Published, self._disclosure),
        }
        if set(self._handlers) != set(TOPICS):
            raise ReadModelError("the projected topics and their handlers differ")
        # Posted vouchers go straight into the packed image through the C loop, where it is built; it reads the
        # current version of their state and binds absent values as 0, as a SQLite read model does.
        self._compiled = (
            compiled_rows is not None and packing is not None and absent == 0 and Voucher.Posted.CLASS_VERSION == 1
        )
        if self._compiled:
            self._posted_inserts = tuple(map(packing.insert_sql, POSTED_TABLES))
            self._constants = (FUND_OF_ACCOUNT, CLAIM_ACCOUNTS, APPROVAL_FIELDS, CLOSING, VOUCHER, CASH)

    def process(self, notification_id: int, aggregate_id: str, version: int, topic: str, state: bytes) -> None:
        """Project one stored event (a row of the recorder's select_event_rows)."""
        try:
            event_class, handler = self._handlers[topic]
        except KeyError:
            raise ReadModelError(f"no read-model handler for topic {topic!r} at notification {notification_id}") from None
        handler(notification_id, aggregate_id, version, _state(event_class, state))
        self._writes.events += 1

    def process_rows(self, rows: list[tuple[int, str, int, str, bytes]]) -> None:
        """Project stored events in order (rows of the recorder's select_event_rows). With the C loop, it inserts
        the posted vouchers it can read without doubt (nearly all of a log) into the take's image and hands every
        other event to `process`."""
        if not self._compiled:
            for row in rows:
                self.process(*row)
            return
        writes = self._writes
        if writes.compiled_image is None:
            writes.compiled_image = compiled_rows.Image(IMAGE_TABLES)
        state = (writes.funds, writes.categories, self._references, self._voucher_nos, self._top_codes, self._top_code)
        projected = compiled_rows.project_posted(
            rows, Voucher.Posted.TOPIC, self.process, writes.compiled_image, self._posted_inserts, state, self._constants
        )
        writes.events += projected  # after the call: `process` counts the events it takes

    def take(self, end: int) -> Writes:
        """The rows of the events processed since the last take (packed, if packing); once written, the read model
        stands at `end`."""
        writes, self._writes = self._writes, Writes()
        writes.end = end
        self._references.clear()
        self._voucher_nos.clear()
        self._approval_texts.clear()
        if self.packing is not None:
            self.packing.pack_rows(writes)
        return writes

    def _insert(self, table: Table, row: tuple) -> None:
        self._writes.rows[table.name].append(row)

    def _update(self, table: Table, key: str, **values: Any) -> None:
        """UPDATE … SET values WHERE the table's primary key is `key`, when the batch is written."""
        self._writes.updates[table.name, tuple(values)].append((*values.values(), key))

    def _first_event(self, notification_id: int, aggregate_id: UUID | str, what: str, event_class: Any = None) -> dict:
        """The state of the first event of an aggregate that an event at `notification_id` refers to: an event of
        `event_class` if given, else of a projected topic."""
        stored = self.app.recorder.select_events(aggregate_id if isinstance(aggregate_id, UUID) else UUID(aggregate_id), lte=1)
        topic = stored[0].topic if stored else None
        if event_class is None and topic in self._handlers:
            event_class = self._handlers[topic][0]
        if event_class is None or topic != event_class.TOPIC:
            raise ReadModelError(f"notification {notification_id}: {what}")
        return _state(event_class, stored[0].state)

    def _fact(self, known: dict[str, str], field: str, notification_id: int, aggregate_id: str, what: str) -> str:
        """A field of an aggregate's first event, remembered in `known` for the rest of the run."""
        value = known.get(aggregate_id)
        if value is None:
            value = known[aggregate_id] = self._first_event(notification_id, aggregate_id, what)[field]
        return value

    def _chart_tops(self, chart: str) -> dict[str, str]:
        return self._top_codes.setdefault(chart, {})

    def _top_code(self, chart: str, code: str) -> str:
        top = self._chart_tops(chart)[code] = load_chart(chart).top_level(code).code
        return top

    # -- vouchers and fund movements ----------------------------------------------------------------------------

    def _opening(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        opening = {"date": e["date"], "summary": "期初余额", "lines": e["lines"], "tags": [], "approvals": [], "attachments": []}
        # Opening balances carry no chart of their own: the ledger's, which only its opening sets.
        chart = self._first_event(notification_id, aggregate_id, "opening balances of no ledger", Ledger.Opened)["chart"]
        self._voucher(notification_id, aggregate_id, OPENING_VOUCHER, chart, OPENING, opening, None, None, None, None)

    def _posted(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._keep_voucher_no(aggregate_id, version, e)
        kind = CLOSING if e["closing"] else VOUCHER
        self._voucher(
            notification_id, aggregate_id, e["voucher_no"], e["chart"], kind, e, None, e["decision"], e["contract"],
            e["counterparty"],
        )

    def _reversed(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._keep_voucher_no(aggregate_id, version, e)
        reverses = e["reverses"]
        original = self._references.get(reverses)
        if original is None:
            posted = self._first_event(
                notification_id, self.app.id_of("voucher", reverses), f"{e['voucher_no']} reverses unknown voucher {reverses}"
            )
            original = posted["decision"], posted["contract"], posted["counterparty"]
        # The red lines undo the original's references too (a reversed contract receipt is no longer received).
        self._voucher(notification_id, aggregate_id, e["voucher_no"], e["chart"], REVERSAL, e, reverses, *original)

    def _marked_reversed(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        voucher_no = self._fact(
            self._voucher_nos, "voucher_no", notification_id, aggregate_id, "reversal mark of a voucher never posted"
        )
        self._update(voucher_table, voucher_no, reversed_by=e["reversed_by"])

    def _keep_voucher_no(self, aggregate_id: str, version: int, e: dict) -> None:
        if version == 1:
            self._voucher_nos[aggregate_id] = e["voucher_no"]

    def _voucher(
        self,
        notification_id: int,
        aggregate_id: str,
        voucher_no: str,
        chart: str,
        kind: str,
        e: dict,
        reverses: str | None,
        decision: str | None,
        contract: str | None,
        counterparty: str | None,
    ) -> None:
        """Rows of a voucher whose date, summary, lines, tags, approvals and attachments are those of `e`."""
        day = e["date"]
        period = day[:7]
        absent = self.absent
        tops_of_chart = self._top_codes.get(chart) or self._chart_tops(chart)
        # (code, detail, top-level code, fund or None, debit 分, credit 分) per line
        parsed = []
        receipts = payments = cash_payments = fund_lines = 0
        for line in e["lines"]:
            code = line["code"]
            top = tops_of_chart.get(code) or self._top_code(chart, code)
            fund = FUND_OF_ACCOUNT.get(top, absent)
            debit, credit = _fen(line["debit"]), _fen(line["credit"])
            parsed.append((code, line["detail"], top, fund, debit, credit))
            if fund:
                fund_lines += 1
                receipts += debit
                payments += credit
                if fund == CASH:
                    cash_payments += credit
        is_transfer = kind != OPENING and fund_lines == len(parsed)
        moves_funds = not is_transfer and kind != OPENING
        writes = self._writes
        writes.rows[voucher_table.name].append((
            voucher_no, aggregate_id, notification_id, day, period, chart, kind, e["summary"],
            absent if reverses is None else reverses, absent, absent if decision is None else decision,
            absent if contract is None else contract, absent if counterparty is None else counterparty,
            _json_strings(e["tags"]), _json_approvals(e["approvals"], self._approval_texts),
            _json_strings(e["attachments"]), is_transfer, receipts if moves_funds else 0, payments if moves_funds else 0,
            cash_payments if moves_funds else 0,
        ))
        self._references[voucher_no] = (decision, contract, counterparty)
        posting_kind = VOUCHER if kind == REVERSAL else kind
        claim_codes = CLAIM_ACCOUNTS[chart]
        line_rows = writes.rows[voucher_line_table.name]
        fund_sums = writes.funds
        for line_no, (code, detail, top, fund, debit, credit) in enumerate(parsed, start=1):
            line_rows.append((voucher_no, line_no, day, chart, posting_kind, code, top, detail, debit, credit, fund))
            if fund:
                sums = fund_sums.get((period, fund))
                if sums is None:
                    sums = fund_sums[period, fund] = [0] * len(FUND_COLUMNS)
                if kind == OPENING:
                    sums[0] += debit - credit
                elif is_transfer:
                    sums[3] += debit
                    sums[4] += credit
                else:
                    sums[1] += debit
                    sums[2] += credit
            if top in claim_codes:
                writes.rows[claim_movement_table.name].append((voucher_no, line_no, day, top, detail, debit - credit))
        if moves_funds and (receipts or payments):
            self._categories(period, parsed, receipts, payments)
        if contract and receipts and not is_transfer:
            writes.rows[contract_receipt_table.name].append((voucher_no, contract, day, receipts))

    def _categories(self, period: str, parsed: list[tuple], receipts: int, payments: int) -> None:
        """Income and expense by the counter-account of the fund movement (for the charts)."""
        categories = self._writes.categories
        for _, _, top, fund, debit, credit in parsed:
            if fund:
                continue
            if payments and not receipts:
                categories[period, "expense", top] += debit - credit
            elif receipts and not payments:
                categories[period, "income", top] += credit - debit
            elif credit - debit > 0:
                categories[period, "income", top] += credit - debit
            else:
                categories[period, "expense", top] += debit - credit

    # -- periods ------------------------------------------------------------------------------------------------

    def _period_opened(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._periods[aggregate_id] = e["period"]
        self._insert(period_table, (e["period"], aggregate_id, None, None, None, None))

    def _period_closed(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        period = self._fact(self._periods, "period", notification_id, aggregate_id, "close of a period never opened")
        self._update(
            period_table, period, closed_on=e["date"], cash_counted=_fen(e["cash_counted"]),
            bank_statement=_fen(e["bank_statement"]), reconciliation_note=e["reconciliation_note"],
        )

    # -- contracts, assets, resources -----------------------------------------------------------------------------

    def _contract(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        contract_no = e["contract_no"]
        self._insert(contract_table, _row(
            contract_table, contract_no=contract_no, subject_kind=e["subject_kind"], subject_no=e["subject_no"],
            counterparty=e["counterparty"], counterparty_is_member=e["counterparty_is_member"], signed=e["signed"],
            start=e["start"], end=e["end"], annual_fee=_fen(e["annual_fee"]), decision=e["decision"],
            township_approval=e["township_approval"],
        ))
        for seq, instalment in enumerate(e["schedule"], start=1):
            self._insert(instalment_table, (contract_no, seq, instalment["due"], _fen(instalment["amount"])))

    def _asset(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._asset_nos[aggregate_id] = e["asset_no"]
        self._insert(asset_table, _row(
            asset_table, asset_no=e["asset_no"], aggregate_id=aggregate_id, name=e["name"], category=e["category"],
            use=e["use"], cost=_fen(e["cost"]), residual=_fen(e["residual"]), in_service=e["in_service"],
            life_months=e["life_months"], accumulated_at_registration=_fen(e["accumulated_depreciation"]),
            disposed=None, disposal_method=None,
        ))

    def _asset_no(self, notification_id: int, aggregate_id: str) -> str:
        return self._fact(self._asset_nos, "asset_no", notification_id, aggregate_id, "event of an asset never registered")

    def _depreciated(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        asset_no = self._asset_no(notification_id, aggregate_id)
        self._insert(asset_depreciation_table, (asset_no, e["month"], _fen(e["amount"]), e["voucher_no"]))

    def _leased(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._insert(asset_lease_table, (self._asset_no(notification_id, aggregate_id), e["contract_no"]))

    def _disposed(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        asset_no = self._asset_no(notification_id, aggregate_id)
        self._update(asset_table, asset_no, disposed=e["date"], disposal_method=e["method"])

    def _resource(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._insert(resource_table, _row(
            resource_table, resource_no=e["resource_no"], kind=e["kind"], name=e["name"], area_mu=e["area_mu"],
            location=e["location"], reference_fee_per_mu_year=_optional_fen(e["reference_fee_per_mu_year"]),
        ))

    # -- democratic decisions and approvals -----------------------------------------------------------------------

    def _decision(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._decision_ids[aggregate_id] = e["decision_id"]
        self._insert(decision_table, (e["decision_id"], aggregate_id, e["title"], e["matter"], _optional_fen(e["amount"])))

    def _step(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        decision_id = self._fact(
            self._decision_ids, "decision_id", notification_id, aggregate_id, "step of a decision never opened"
        )
        self._insert(decision_step_table, _row(
            decision_step_table, decision_id=decision_id, version=version, step=e["step"], date=e["date"],
            body=e["body"], due=e["due"], present=e["present"], votes_for=e["votes_for"],
            votes_against=e["votes_against"], abstentions=e["abstentions"], note=e["note"],
        ))

    def _approval(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._insert(township_approval_table, _row(
            township_approval_table, approval_id=e["approval_id"], subject=e["subject"], matter=e["matter"],
            date=e["date"], approver=e["approver"],
        ))

    def _disclosure(self, notification_id: int, aggregate_id: str, version: int, e: dict) -> None:
        self._insert(disclosure_table, _row(
            disclosure_table, period=e["period"], published=e["published"], sha256=e["sha256"],
            checkpoint_size=e["checkpoint_size"], notification_id=notification_id,
        ))


def update_read_model(app: Any, model: ReadModel, *, batch: int = 2000, jobs: int = 1) -> RunResult:
    """Process every event after the tracked position, one transaction per batch.

    A batch is `batch` projected events; with jobs > 1 and a SQLite ledger holding PARALLEL_FROM_EVENTS or more
    events after the position, it is instead a range of RANGE_SPAN notification ids, and the ranges are projected
    by `jobs` forked processes at once while this process writes them in log order.
    """
    return _project_log(app, model, batch=batch, jobs=jobs, rebuild=False)


def rebuild_read_model(app: Any, model: ReadModel, *, batch: int = 2000, jobs: int = 1) -> RunResult:
    """Empty the read model and process the whole log again (forked processes, if any, start projecting while this
    one empties it)."""
    return _project_log(app, model, batch=batch, jobs=jobs, rebuild=True)


def _project_log(app: Any, model: ReadModel, *, batch: int, jobs: int, rebuild: bool) -> RunResult:
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")

    def empty() -> None:
        model.clear(LedgerProjection.name)
        model.start_tracking(LedgerProjection.name, app.origin)

    start = position = 0 if rebuild else model.start_tracking(LedgerProjection.name, app.origin)
    last = app.recorder.max_notification_id() or 0
    if jobs > 1 and last - start >= PARALLEL_FROM_EVENTS and app.recorder.forks_safely():
        pending = _projected_ranges(app, model, start, last, jobs, once_started=empty if rebuild else None)
    else:
        if rebuild:
            empty()
        # Packing a batch and copying it costs less than binding its rows into the read model only with the C loop.
        packing = model if model.packs_rows and compiled_rows is not None else None
        pending = _projected_batches(LedgerProjection(app, model.absent, packing), start, batch)
    batches = events = 0
    with closing(pending):
        for writes in pending:
            with model.transaction():
                model.write(writes)
                model.insert_tracking(Tracking(LedgerProjection.name, writes.end))
            position = writes.end
            batches += 1
            events += writes.events
    return RunResult(start=start, end=position, batches=batches, events=events)


def _projected_batches(projection: LedgerProjection, position: int, batch: int) -> Generator[Writes, None, None]:
    """The writes of each `batch` projected events after `position`, read as they are asked for."""
    recorder = projection.app.recorder
    while True:
        rows = recorder.select_event_rows(position + 1, batch, TOPICS)
        if not rows:
            return
        projection.process_rows(rows)
        position = rows[-1][0]
        yield projection.take(end=position)
        if len(rows) < batch:
            return


# A range's worth of events is read in one query, and worker processes claim one range at a time.
RANGE_SPAN = 4096
AHEAD_PER_JOB = 2
CLAIM_BYTES = 8
# Below this many events after the position one process projects them: a fork costs about what it would save.
PARALLEL_FROM_EVENTS = 20_000


def _projected_ranges(
    app: Any, model: ReadModel, position: int, last: int, jobs: int, once_started: Callable[[], None] | None = None
) -> Generator[Writes, None, None]:
    """The writes of each range of RANGE_SPAN notification ids after `position` up to `last`, in log order; this
    process calls `once_started` while the workers start.

    `jobs` forked processes claim the ranges in order and send each range's writes; this process only writes them,
    so that writing (one core's work) never waits for its own projecting. It offers the workers one range for each
    it has written, so that at most AHEAD_PER_JOB × jobs projected ranges await writing, which bounds the memory held.
    """
    ranges = [(low, min(low + RANGE_SPAN, last + 1)) for low in range(position + 1, last + 1, RANGE_SPAN)]
    context = multiprocessing.get_context("fork")
    # Offered range indexes, CLAIM_BYTES each: a pipe gives each write of up to PIPE_BUF bytes whole to one reader.
    claims, offers = os.pipe()
    offering = True

    def offer(index: int) -> None:
        nonlocal offering
        if index < len(ranges):
            os.write(offers, index.to_bytes(CLAIM_BYTES, "little"))
        elif index == len(ranges):  # every range is offered: a worker that reads on now hears the end
            os.close(offers)
            offering = False

    workers = {}
    try:
        for _ in range(jobs):
            results, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_project_claimed, args=(sender, claims, offers, type(app), app.location, model, ranges)
            )
            process.start()
            sender.close()
            workers[results] = process
        for index in range(AHEAD_PER_JOB * jobs):
            offer(index)
        if once_started is not None:
            once_started()
        ready: dict[int, Writes] = {}
        for index in range(len(ranges)):
            while index not in ready:
                if not workers:
                    raise ReadModelError(f"notifications {ranges[index][0]}–{ranges[index][1] - 1}: no process projected them")
                _receive(connection_wait(list(workers)), workers, ready)
            yield ready.pop(index)
            offer(index + AHEAD_PER_JOB * jobs)
    finally:
        if offering:
            os.close(offers)
        for results, process in workers.items():
            process.terminate()
            process.join()
            results.close()
        os.close(claims)


def _receive(connections: list[Any], workers: dict[Any, Any], ready: dict[int, Writes]) -> None:
    """Take what the given workers sent: a range's writes, an exception to raise, or the end of their work."""
    for results in connections:
        try:
            index, sent = results.recv()
        except EOFError:
            process = workers.pop(results)
            process.join()
            results.close()
            if process.exitcode != 0:
                raise ReadModelError(f"a read-model worker process ended with exit code {process.exitcode}") from None
            continue
        if index is None:
            raise sent
        ready[index] = sent


def _project_range(projection: LedgerProjection, low: int, high: int) -> Writes:
    """The writes of the projected events with low <= notification id < high."""
    projection.process_rows(projection.app.recorder.select_event_rows(low, high - low, TOPICS, stop=high))
    return projection.take(end=high - 1)


def _project_claimed(
    sender: Any, claims: int, offers: int, app_class: type, location: str, model: ReadModel,
    ranges: list[tuple[int, int]],
) -> None:
    """In a worker process: project the ranges it claims until the offers end, sending (index, writes) for each (its
    rows packed for a SQLite read model), or (None, the exception) when one fails."""
    os.close(offers)  # the writer's end, forked: held open here, the writer's closing it would never end the claims
    # This process only projects: its collector need never look at the objects it was forked with.
    gc.freeze()
    try:
        app = app_class.reopened(location)
        try:
            projection = LedgerProjection(app, model.absent, model if model.packs_rows else None)
            while claimed := os.read(claims, CLAIM_BYTES):
                index = int.from_bytes(claimed, "little")
                sender.send((index, _project_range(projection, *ranges[index])))
        finally:
            app.close()
    except Exception as exc:  # the writer re-raises it
        sender.send((None, exc))
    finally:
        sender.close()


def _packed(creates: tuple[str, ...], inserts: list[tuple[str, list[tuple]]]) -> bytes:
    """A serialized in-memory SQLite database made by `creates`, each insert statement run for its rows (what
    ledger/projections/_rows.c's Image does, where it is built)."""
    image = sqlite3.connect(":memory:", isolation_level=None)
    try:
        image.execute("BEGIN")
        for statement in creates:
            image.execute(statement)
        for statement, rows in inserts:
            image.executemany(statement, rows)
        image.execute("COMMIT")
        return image.serialize()
    finally:
        image.close()


def open_read_model(app: Any, location: str | None = None) -> ReadModel:
    """The read model at `location`, by default next to the ledger itself."""
    return ReadModel(location or app.location)


# -- queries over the read model ----------------------------------------------------------------------------------


def postings(model: ReadModel, *, until: date | None = None) -> Iterator[Posting]:
    """Posting lines for ledger/projections/balances.py, in date then voucher order, streamed."""
    query = select(voucher_line_table).order_by(
        voucher_line_table.c.date, voucher_line_table.c.voucher_no, voucher_line_table.c.line_no
    )
    if until is not None:
        query = query.where(voucher_line_table.c.date <= until)
    with model.engine.connect() as conn:
        for row in conn.execution_options(yield_per=1000).execute(query):
            yield Posting(
                chart=row.chart, code=row.code, detail=row.detail, date=row.date, debit=row.debit, credit=row.credit,
                voucher_no=row.voucher_no, kind=row.kind,
            )

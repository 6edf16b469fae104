"""Read models of one ledger as SQLAlchemy tables, kept up to date by a tracked projection of the event log.

The projection follows eventsourcing's Projection/TrackingRecorder pattern, run as a batch job: it reads the
notification log in batches after its tracked position, and each batch's rows are written together with the new
tracking position in ONE SQLAlchemy transaction. A job killed mid-batch therefore leaves the previous batch's state
and position, and a rerun redoes exactly the missing batches. Every table is a sum or a set over events, never a
running state that depends on when the job ran, so a full rebuild gives the same rows as any sequence of
incremental runs.

The tables live next to the ledger (same SQLite file, same PostgreSQL schema) or in a database of their own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import singledispatchmethod
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..domain.aggregates import (
    Asset,
    Contract,
    Decision,
    Disclosure,
    Ledger,
    Period,
    PostingLine,
    Resource,
    TownshipApproval,
    Voucher,
)
from ..domain.charts import Chart, load_chart
from ..domain.money import CENT, ZERO, money
from .balances import CLOSING, OPENING, VOUCHER, Posting

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
# The backends the read model supports; both spell "add to the row already there" as ON CONFLICT DO UPDATE.
_DIALECT_INSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


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
    Column("aggregate_id", String(36), nullable=False, index=True),
    Column("notification_id", BigInteger, nullable=False),
    Column("date", Date, nullable=False),
    Column("period", String(7), nullable=False, index=True),
    Column("chart", String(4), nullable=False),
    Column("kind", String(10), nullable=False),  # opening, voucher, closing, reversal
    Column("summary", Text, nullable=False),
    Column("reverses", String(100)),
    Column("reversed_by", String(100)),
    Column("decision", String(100), index=True),
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

READ_MODEL_TABLES = tuple(t for t in metadata.sorted_tables if t is not tracking_table)

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
            # eventsourcing may hold the same file; wait for its write lock instead of failing at once.
            @event.listens_for(self.engine, "connect")
            def _sqlite_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute("PRAGMA busy_timeout = 30000")

        else:
            self.engine = self.engine.execution_options(schema_translate_map={None: schema})
        self._connection: Connection | None = None
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

    def insert_tracking(self, tracking: Tracking) -> None:
        """Move the position forward; refuse (and so roll the batch back) if another job moved it meanwhile."""
        conn = self.connection
        moved = conn.execute(
            update(tracking_table)
            .where(tracking_table.c.application_name == tracking.application_name)
            .where(tracking_table.c.notification_id < tracking.notification_id)
            .where(tracking_table.c.notification_id == self._expected_position)
            .values(notification_id=tracking.notification_id)
        )
        if moved.rowcount != 1:
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
            row = conn.execute(select(tracking_table).where(tracking_table.c.application_name == application_name)).first()
            if row is None:
                conn.execute(insert(tracking_table).values(application_name=application_name, origin=origin, notification_id=0))
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
                conn.execute(delete(table))
            conn.execute(delete(tracking_table).where(tracking_table.c.application_name == application_name))

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


class _Batch:
    """One batch's writes, held in memory until the batch ends and then written in a few set-based statements."""

    def __init__(self) -> None:
        self.rows: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        # SET values of rows written by earlier batches, with the aggregate id they are keyed by.
        self.updates: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        # This batch's rows by aggregate id, for later events of the same batch that update or look them up.
        self.by_aggregate: dict[tuple[Table, str], list[dict[str, Any]]] = defaultdict(list)
        self.vouchers: dict[str, dict[str, Any]] = {}
        self.funds: dict[tuple[str, str], dict[str, Decimal]] = {}
        self.categories: dict[tuple[str, str, str], Decimal] = defaultdict(lambda: ZERO)


class LedgerProjection(Projection[ReadModel]):
    """Gathers each batch's rows in memory; write_pending puts them into the view's current transaction."""

    name = "ledger_read_model"
    topics = TOPICS

    def __init__(self, view: ReadModel, chart: str):
        super().__init__(view)
        self.chart = load_chart(chart)  # opening balances carry no chart of their own
        self._batch = _Batch()

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        raise ReadModelError(f"no read-model handler for {type(domain_event).__qualname__} at notification {tracking.notification_id}")

    # -- the batch: rows kept until write_pending -----------------------------------------------------------------

    def _insert(self, table: Table, row: dict[str, Any], aggregate_id: str | None = None) -> None:
        self._batch.rows[table].append(row)
        if aggregate_id is not None:
            self._batch.by_aggregate[table, aggregate_id].append(row)

    def _update(self, table: Table, aggregate_id: str, **values: Any) -> None:
        """UPDATE … WHERE aggregate_id: this batch's rows at once, earlier batches' rows when the batch is written."""
        for row in self._batch.by_aggregate.get((table, aggregate_id), ()):
            row.update(values)
        self._batch.updates[table].append({"target_aggregate_id": aggregate_id, **values})

    def _key_of(self, column: Column, aggregate_id: str) -> Any:
        """`column` of the row of an aggregate (unique per aggregate in its table), or None."""
        pending = self._batch.by_aggregate.get((column.table, aggregate_id))
        if pending:
            return pending[0][column.name]
        return self.view.connection.execute(
            select(column).where(column.table.c.aggregate_id == aggregate_id)
        ).scalar_one_or_none()

    def write_pending(self) -> None:
        """Write the batch into the view's transaction (the one that also moves the tracking position).

        Updates go first so that, as when each event was written at once, they reach only rows of earlier
        batches; this batch's rows already carry them. Fund and category sums are added to the stored ones.
        """
        conn = self.view.connection
        batch, self._batch = self._batch, _Batch()
        for table, values in batch.updates.items():
            conn.execute(update(table).where(table.c.aggregate_id == bindparam("target_aggregate_id")), values)
        for table in READ_MODEL_TABLES:
            if batch.rows.get(table):
                conn.execute(insert(table), batch.rows[table])
        if batch.funds:
            _add_to(conn, fund_month_table, [{"period": p, "fund": f, **sums} for (p, f), sums in batch.funds.items()])
        if batch.categories:
            _add_to(
                conn,
                fund_category_table,
                [{"period": p, "direction": d, "code": c, "amount": a} for (p, d, c), a in batch.categories.items()],
            )

    # -- vouchers and fund movements ----------------------------------------------------------------------------

    @process_event.register
    def _opening(self, e: Ledger.OpeningBalancesRecorded, tracking: Tracking) -> None:
        self._voucher(
            tracking, aggregate_id=str(e.originator_id), voucher_no=OPENING_VOUCHER, day=e.date, chart=self.chart,
            kind=OPENING, summary="期初余额", lines=e.lines,
        )

    @process_event.register
    def _posted(self, e: Voucher.Posted, tracking: Tracking) -> None:
        self._voucher(
            tracking, aggregate_id=str(e.originator_id), voucher_no=e.voucher_no, day=e.date, chart=load_chart(e.chart),
            kind=CLOSING if e.closing else VOUCHER, summary=e.summary, lines=e.lines, decision=e.decision,
            contract=e.contract, counterparty=e.counterparty, tags=e.tags, approvals=[a.model_dump(mode="json") for a in e.approvals],
            attachments=e.attachments,
        )

    @process_event.register
    def _reversed(self, e: Voucher.Reversed, tracking: Tracking) -> None:
        original = self._batch.vouchers.get(e.reverses) or self.view.connection.execute(
            select(voucher_table.c.decision, voucher_table.c.contract, voucher_table.c.counterparty).where(
                voucher_table.c.voucher_no == e.reverses
            )
        ).mappings().first()
        if original is None:
            raise ReadModelError(f"notification {tracking.notification_id}: {e.voucher_no} reverses unknown voucher {e.reverses}")
        # The red lines undo the original's references too (a reversed contract receipt is no longer received).
        self._voucher(
            tracking, aggregate_id=str(e.originator_id), voucher_no=e.voucher_no, day=e.date, chart=load_chart(e.chart),
            kind=REVERSAL, summary=e.summary, lines=e.lines, reverses=e.reverses, decision=original["decision"],
            contract=original["contract"], counterparty=original["counterparty"], tags=e.tags,
            approvals=[a.model_dump(mode="json") for a in e.approvals], attachments=e.attachments,
        )

    @process_event.register
    def _marked_reversed(self, e: Voucher.MarkedReversed, tracking: Tracking) -> None:
        self._update(voucher_table, str(e.originator_id), reversed_by=e.reversed_by)

    def _voucher(
        self,
        tracking: Tracking,
        *,
        aggregate_id: str,
        voucher_no: str,
        day: date,
        chart: Chart,
        kind: str,
        summary: str,
        lines: Sequence[PostingLine],
        reverses: str | None = None,
        decision: str | None = None,
        contract: str | None = None,
        counterparty: str | None = None,
        tags: Sequence[str] = (),
        approvals: Sequence[dict] = (),
        attachments: Sequence[str] = (),
    ) -> None:
        period = month_of(day)
        tops = [chart.top_level(line.code).code for line in lines]
        funds = [FUND_OF_ACCOUNT.get(top) for top in tops]
        is_transfer = kind != OPENING and all(funds)
        receipts = sum((line.debit for line, fund in zip(lines, funds) if fund), ZERO)
        payments = sum((line.credit for line, fund in zip(lines, funds) if fund), ZERO)
        cash_payments = sum((line.credit for line, fund in zip(lines, funds) if fund == CASH), ZERO)
        row = {
            "voucher_no": voucher_no, "aggregate_id": aggregate_id, "notification_id": tracking.notification_id, "date": day,
            "period": period, "chart": chart.version, "kind": kind, "summary": summary, "reverses": reverses, "reversed_by": None,
            "decision": decision, "contract": contract, "counterparty": counterparty,
            "tags": json.dumps(list(tags), ensure_ascii=False), "approvals": json.dumps(list(approvals), ensure_ascii=False),
            "attachments": json.dumps(list(attachments), ensure_ascii=False), "is_transfer": is_transfer,
            "fund_receipts": ZERO if is_transfer or kind == OPENING else receipts,
            "fund_payments": ZERO if is_transfer or kind == OPENING else payments,
            "cash_payments": ZERO if is_transfer or kind == OPENING else cash_payments,
        }
        self._insert(voucher_table, row, aggregate_id)
        self._batch.vouchers[voucher_no] = row
        posting_kind = VOUCHER if kind == REVERSAL else kind
        claim_codes = CLAIM_ACCOUNTS[chart.version]
        for line_no, (line, top, fund) in enumerate(zip(lines, tops, funds), start=1):
            self._insert(
                voucher_line_table,
                {
                    "voucher_no": voucher_no, "line_no": line_no, "date": day, "chart": chart.version, "kind": posting_kind,
                    "code": line.code, "top_code": top, "detail": line.detail, "debit": line.debit, "credit": line.credit, "fund": fund,
                },
            )
            if fund:
                if kind == OPENING:
                    self._add_fund(period, fund, opening=line.debit - line.credit)
                elif is_transfer:
                    self._add_fund(period, fund, transfers_in=line.debit, transfers_out=line.credit)
                else:
                    self._add_fund(period, fund, receipts=line.debit, payments=line.credit)
            if top in claim_codes:
                self._insert(
                    claim_movement_table,
                    {
                        "voucher_no": voucher_no, "line_no": line_no, "date": day, "code": top, "detail": line.detail,
                        "amount": line.debit - line.credit,
                    },
                )
        if kind != OPENING and not is_transfer and (receipts or payments):
            self._categories(period, tops, funds, lines, receipts, payments)
        if contract and receipts and not is_transfer:
            self._insert(contract_receipt_table, {"voucher_no": voucher_no, "contract_no": contract, "date": day, "amount": receipts})

    def _categories(
        self, period: str, tops: list[str], funds: list[str | None], lines: Sequence[PostingLine], receipts: Decimal,
        payments: Decimal,
    ) -> None:
        """Income and expense by the counter-account of the fund movement (for the charts)."""
        categories = self._batch.categories
        for top, fund, line in zip(tops, funds, lines):
            if fund:
                continue
            if payments and not receipts:
                categories[period, "expense", top] += line.debit - line.credit
            elif receipts and not payments:
                categories[period, "income", top] += line.credit - line.debit
            elif line.credit - line.debit > 0:
                categories[period, "income", top] += line.credit - line.debit
            else:
                categories[period, "expense", top] += line.debit - line.credit

    def _add_fund(self, period: str, fund: str, **amounts: Decimal) -> None:
        sums = self._batch.funds.setdefault((period, fund), dict.fromkeys(FUND_COLUMNS, ZERO))
        for column, amount in amounts.items():
            sums[column] += amount

    # -- periods ------------------------------------------------------------------------------------------------

    @process_event.register
    def _period_opened(self, e: Period.Opened, tracking: Tracking) -> None:
        aggregate_id = str(e.originator_id)
        self._insert(
            period_table,
            {
                "period": e.period, "aggregate_id": aggregate_id, "closed_on": None, "cash_counted": None, "bank_statement": None,
                "reconciliation_note": None,
            },
            aggregate_id,
        )

    @process_event.register
    def _period_closed(self, e: Period.Closed, tracking: Tracking) -> None:
        self._update(
            period_table, str(e.originator_id), closed_on=e.date, cash_counted=e.cash_counted,
            bank_statement=e.bank_statement, reconciliation_note=e.reconciliation_note,
        )

    # -- contracts, assets, resources -----------------------------------------------------------------------------

    @process_event.register
    def _contract(self, e: Contract.Signed, tracking: Tracking) -> None:
        self._insert(
            contract_table,
            {
                "contract_no": e.contract_no, "subject_kind": e.subject_kind, "subject_no": e.subject_no,
                "counterparty": e.counterparty, "counterparty_is_member": e.counterparty_is_member, "signed": e.signed,
                "start": e.start, "end": e.end, "annual_fee": e.annual_fee, "decision": e.decision,
                "township_approval": e.township_approval,
            },
        )
        for seq, instalment in enumerate(e.schedule, start=1):
            self._insert(instalment_table, {"contract_no": e.contract_no, "seq": seq, "due": instalment.due, "amount": instalment.amount})

    @process_event.register
    def _asset(self, e: Asset.Registered, tracking: Tracking) -> None:
        aggregate_id = str(e.originator_id)
        self._insert(
            asset_table,
            {
                "asset_no": e.asset_no, "aggregate_id": aggregate_id, "name": e.name, "category": e.category, "use": e.use,
                "cost": e.cost, "residual": e.residual, "in_service": e.in_service, "life_months": e.life_months,
                "accumulated_at_registration": e.accumulated_depreciation, "disposed": None, "disposal_method": None,
            },
            aggregate_id,
        )

    def _asset_no(self, e: Any, tracking: Tracking) -> str:
        asset_no = self._key_of(asset_table.c.asset_no, str(e.originator_id))
        if asset_no is None:
            raise ReadModelError(f"notification {tracking.notification_id}: event of an asset never registered")
        return asset_no

    @process_event.register
    def _depreciated(self, e: Asset.Depreciated, tracking: Tracking) -> None:
        self._insert(
            asset_depreciation_table,
            {"asset_no": self._asset_no(e, tracking), "month": e.month, "amount": e.amount, "voucher_no": e.voucher_no},
        )

    @process_event.register
    def _leased(self, e: Asset.Leased, tracking: Tracking) -> None:
        self._insert(asset_lease_table, {"asset_no": self._asset_no(e, tracking), "contract_no": e.contract_no})

    @process_event.register
    def _disposed(self, e: Asset.Disposed, tracking: Tracking) -> None:
        self._update(asset_table, str(e.originator_id), disposed=e.date, disposal_method=e.method)

    @process_event.register
    def _resource(self, e: Resource.Registered, tracking: Tracking) -> None:
        self._insert(
            resource_table,
            {
                "resource_no": e.resource_no, "kind": e.kind, "name": e.name, "area_mu": str(e.area_mu), "location": e.location,
                "reference_fee_per_mu_year": e.reference_fee_per_mu_year,
            },
        )

    # -- democratic decisions and approvals -----------------------------------------------------------------------

    @process_event.register
    def _decision(self, e: Decision.Opened, tracking: Tracking) -> None:
        aggregate_id = str(e.originator_id)
        self._insert(
            decision_table,
            {"decision_id": e.decision_id, "aggregate_id": aggregate_id, "title": e.title, "matter": e.matter, "amount": e.amount},
            aggregate_id,
        )

    @process_event.register
    def _step(self, e: Decision.StepRecorded, tracking: Tracking) -> None:
        decision_id = self._key_of(decision_table.c.decision_id, str(e.originator_id))
        if decision_id is None:
            raise ReadModelError(f"notification {tracking.notification_id}: step of a decision never opened")
        self._insert(
            decision_step_table,
            {
                "decision_id": decision_id, "version": e.originator_version, "step": e.step, "date": e.date, "body": e.body,
                "due": e.due, "present": e.present, "votes_for": e.votes_for, "votes_against": e.votes_against,
                "abstentions": e.abstentions, "note": e.note,
            },
        )

    @process_event.register
    def _approval(self, e: TownshipApproval.Recorded, tracking: Tracking) -> None:
        self._insert(
            township_approval_table,
            {"approval_id": e.approval_id, "subject": e.subject, "matter": e.matter, "date": e.date, "approver": e.approver},
        )

    @process_event.register
    def _disclosure(self, e: Disclosure.Published, tracking: Tracking) -> None:
        self._insert(
            disclosure_table,
            {
                "period": e.period, "published": e.published, "sha256": e.sha256, "checkpoint_size": e.checkpoint_size,
                "notification_id": tracking.notification_id,
            },
        )


def _add_to(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows keyed by the table's primary key, adding their other columns to a row already there."""
    statement = _DIALECT_INSERT[conn.dialect.name](table)
    sums = {c.name: c + statement.excluded[c.name] for c in table.c if not c.primary_key}
    conn.execute(statement.on_conflict_do_update(index_elements=list(table.primary_key), set_=sums), rows)


def update_read_model(app: Any, model: ReadModel, *, batch: int = 500) -> RunResult:
    """Process every event after the tracked position, one transaction per batch of notifications."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    projection = LedgerProjection(model, app.ledger().chart)
    start = position = model.start_tracking(LedgerProjection.name, app.origin)
    batches = events = 0
    while True:
        notifications = app.recorder.select_notifications(position + 1, batch, topics=TOPICS)
        if not notifications:
            break
        with model.transaction():
            for notification in notifications:
                tracking = Tracking(app.name, notification.id)
                projection.process_event(app.mapper.to_domain_event(notification), tracking)
            projection.write_pending()
            model.insert_tracking(Tracking(LedgerProjection.name, notifications[-1].id))
        position = notifications[-1].id
        batches += 1
        events += len(notifications)
        if len(notifications) < batch:
            break
    return RunResult(start=start, end=position, batches=batches, events=events)


def rebuild_read_model(app: Any, model: ReadModel, *, batch: int = 500) -> RunResult:
    """Empty the read model and process the whole log again."""
    model.clear(LedgerProjection.name)
    return update_read_model(app, model, batch=batch)


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

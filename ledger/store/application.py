"""The ledger application: journal records are the commands; each is checked, then stored whole or not at all.

Every save passes the application's signer and origin to the chained recorder, which appends one signed log entry
per stored event inside the same transaction.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper, Notification, StoredEvent

from ..crypto.keys import check_registrable_public_key
from ..crypto.logformat import EntrySigner, b64, key_id, parse_leaf
from ..domain import journal as j
from ..domain.aggregates import (
    Asset,
    Contract,
    Decision,
    FUND_ACCOUNTS,
    Fund,
    JournalRecord,
    KeySpec,
    Ledger,
    Period,
    PostingLine,
    Resource,
    TownshipApproval,
    Voucher,
    child_id,
    ledger_id,
)
from ..domain.charts import Chart, load_chart
from ..domain.model import Aggregate, AggregateSnapshot, Event, canonical_json, class_for_topic, json_data, load_state
from ..domain.money import ZERO, round_money
from ..domain.policy import EXAMPLE_POLICY, Policy, describe_missing, missing_signers, missing_steps, spending
from ..domain.validation import Problem, Rejected, check_lines, refuse_if
from ..projections.balances import Posting
from .location import env_for_location

POSTING_TOPICS = (Ledger.OpeningBalancesRecorded.TOPIC, Voucher.Posted.TOPIC, Voucher.Reversed.TOPIC)
CLOSING_TAG = "CLOSE"
# Writers to one ledger meet on shared aggregates (the month's Period); a conflict means re-read and decide again.
_CONFLICT_RETRIES = 30
_CONFLICT_BACKOFF_SECONDS = 0.005


class BatchRejected(Rejected):
    """The record at `index` of a batch was refused; none of the batch was stored."""

    def __init__(self, index: int, rejected: Rejected):
        self.index, self.rejected = index, rejected
        super().__init__(rejected.problems)


class PydanticMapper(Mapper):
    """Maps events to stored events by their explicit topic and their own JSON state."""

    def to_stored_event(self, domain_event: Event) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=type(domain_event).TOPIC,
            state=domain_event.to_state(),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Event:
        originator_id = stored_event.originator_id
        if not isinstance(originator_id, UUID):
            originator_id = UUID(str(originator_id))
        return class_for_topic(stored_event.topic).from_state(
            originator_id, stored_event.originator_version, stored_event.state
        )


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def record_digest(record: j.Record) -> str:
    canonical = canonical_json(json_data(record))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def posting_line(line: j.Line) -> PostingLine:
    """The stored form of a journal line; its amounts were validated with the record."""
    return PostingLine.trusted(code=line.account, detail=line.detail, debit=line.debit or ZERO, credit=line.credit or ZERO)


def _project(aggregate: Aggregate | None, events: Iterable[Event]) -> Aggregate | None:
    # eventsourcing's project_aggregate asserts a runtime-checkable Protocol per event, which is slow on Python 3.11.
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


_NOTHING_PENDING: Mapping[UUID, Aggregate] = MappingProxyType({})


@dataclass
class UnitOfWork:
    """The aggregates one or more records touch, saved together in one transaction.

    With a write pipeline, the batch before this one may still be being written: its aggregates are read from the
    pipeline as they will be stored (`pending`), and a check that queries the store rather than reading aggregates
    by id first waits for that write (`settle`).
    """

    app: "LedgerApplication"
    pipeline: "WritePipeline | None" = None
    aggregates: dict[UUID, Aggregate] = field(default_factory=dict)
    # Ids read from the store and found to have no events; an aggregate created by this unit is in `aggregates`.
    absent: set[UUID] = field(default_factory=set)

    @property
    def pending(self) -> Mapping[UUID, Aggregate]:
        return self.pipeline.pending if self.pipeline is not None else _NOTHING_PENDING

    def settle(self) -> None:
        """Wait until the store holds every batch before this one (WriteConflict if that write failed)."""
        if self.pipeline is not None:
            self.pipeline.settle()

    def find(self, aggregate_id: UUID) -> Any | None:
        if aggregate_id in self.aggregates:
            return self.aggregates[aggregate_id]
        pending = self.pending.get(aggregate_id)
        if pending is not None:
            # A copy: if this batch is refused, the aggregate must still be as the batch before left it.
            self.aggregates[aggregate_id] = deepcopy(pending)
            return self.aggregates[aggregate_id]
        if aggregate_id in self.absent:
            return None
        try:
            aggregate = self.app.repository.get(aggregate_id, projector_func=_project)
        except AggregateNotFoundError:
            return None
        self.aggregates[aggregate_id] = aggregate
        return aggregate

    def load(self, aggregate_ids: Iterable[UUID]) -> None:
        """Read the given aggregates (or learn that they do not exist) in one query, for `find` to answer from.

        They are rebuilt from all their events, bypassing snapshots and the repository cache: meant for aggregates
        of few events (journal markers, vouchers, ids a record is about to create).
        """
        pending = self.pending
        wanted = {i for i in aggregate_ids if i not in self.aggregates and i not in self.absent and i not in pending}
        if not wanted:
            return
        mapper = self.app.mapper
        for stored in self.app.recorder.select_events_of(wanted):
            event = mapper.to_domain_event(stored)
            self.aggregates[event.originator_id] = event.mutate(self.aggregates.get(event.originator_id))
        self.absent.update(wanted - self.aggregates.keys())

    def add(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate

    def new_voucher_lines(self) -> Iterator[tuple[str, str, date, Decimal]]:
        """(code, detail, date, net) of vouchers posted earlier in this batch and not stored yet."""
        for aggregate in self.aggregates.values():
            if isinstance(aggregate, Voucher) and any(
                isinstance(e, (Voucher.Posted, Voucher.Reversed)) for e in aggregate._pending
            ):
                for line in aggregate.lines:
                    yield line.code, line.detail, aggregate.date, line.debit - line.credit

    def posted_nets(self, voucher_ids: list[UUID]) -> list[list[tuple[str, Decimal]]]:
        """(code, debit − credit) of each line of the given vouchers as posted, one list per voucher.

        A voucher's lines are those of the event that posted it (version 1; a later event only marks it reversed),
        so the vouchers this unit does not hold are read from those stored states alone: a month close reads back
        a month of vouchers, and rebuilding each through pydantic cost more than the rest of the close.
        """
        posted: dict[UUID, list[tuple[str, Decimal]]] = {}
        held = {**self.pending, **self.aggregates}
        stored_ids = [i for i in voucher_ids if i not in held]
        for stored in self.app.recorder.select_events_of(stored_ids) if stored_ids else ():
            if stored.originator_version == 1:
                state = class_for_topic(stored.topic).upcast_state(load_state(stored.state))
                originator_id = stored.originator_id
                posted[originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))] = [
                    (line["code"], Decimal(line["debit"]) - Decimal(line["credit"])) for line in state["lines"]
                ]
        for voucher_id in voucher_ids:
            voucher = held.get(voucher_id)
            if voucher is not None:
                posted[voucher_id] = [(line.code, line.debit - line.credit) for line in voucher.lines]
        return [posted[i] for i in voucher_ids]


@dataclass(frozen=True)
class PreparedWrite:
    """A batch's stored events and snapshots, ready to be written by another process."""

    events: list[StoredEvent]
    snapshots: list[StoredEvent]  # of aggregates whose state at the snapshot's version was at hand
    snapshots_to_take: list[tuple[UUID, int]]  # the others: rebuilt from the store once the events are in it
    aggregates: list[Aggregate]  # as they will be once written


class WriteConflict(RuntimeError):
    """A batch handed to a write pipeline met another writer's events; nothing of it was stored, and whatever
    was prepared against it is void. Execute `records` again."""

    def __init__(self, records: list[j.Record]):
        self.records = records
        super().__init__(f"a batch of {len(records)} records met another writer; execute it again")


class WritePipeline:
    """Stores each batch in a forked writer process while the caller checks the next one (SQLite ledgers).

    Signing, inserting and committing a batch take about a third of an import; here they overlap the checks of the
    next batch, which reads the aggregates of the batch being written as they will be stored (`pending`). The
    writer opens the ledger anew and writes exactly what LedgerApplication.save would (events with their log
    entries in one transaction, then snapshots). `on_stored(outcomes)` hears of each batch once it is in the store.
    Use as a context manager: leaving it waits for the last write.
    """

    def __init__(self, app: LedgerApplication, on_stored: Callable[[list[str]], None]):
        if app.signer is None:
            raise PermissionError("this ledger was opened without a signing key; it is read-only")
        self.app = app
        self.on_stored = on_stored
        self.pending: dict[UUID, Aggregate] = {}
        self._in_flight: tuple[list[j.Record], list[str], list[Aggregate]] | None = None
        context = multiprocessing.get_context("fork")
        self._replies, sender = context.Pipe(duplex=False)
        receiver, self._batches = context.Pipe(duplex=False)
        self._writer = context.Process(
            target=_write_batches,
            args=(receiver, sender, (self._batches, self._replies), type(app), app.location, app.signer, app.clock, app.origin),
        )
        self._writer.start()
        sender.close()
        receiver.close()

    def submit(self, records: list[j.Record], outcomes: list[str], prepared: PreparedWrite) -> None:
        """Hand a batch to the writer; the batch before it must be stored (settle)."""
        if self._in_flight is not None:
            raise AssertionError("submit follows settle: one batch is written at a time")
        self._batches.send((prepared.events, prepared.snapshots, prepared.snapshots_to_take))
        self._in_flight = records, outcomes, prepared.aggregates
        self.pending = {aggregate.id: aggregate for aggregate in prepared.aggregates}

    def settle(self) -> None:
        """Wait for the batch being written, if any: report it stored, or raise WriteConflict (or the writer's
        error) after forgetting it and every aggregate read meanwhile from the repository cache."""
        if self._in_flight is None:
            return
        records, outcomes, aggregates = self._in_flight
        try:
            reply, error = self._replies.recv()
        except EOFError:
            self._writer.join()
            reply, error = "error", RuntimeError(f"the writer process ended (exit code {self._writer.exitcode})")
        self._in_flight, self.pending = None, {}
        if reply != "stored":
            if self.app.repository.cache:
                self.app.repository.cache.clear()
            raise WriteConflict(records) if reply == "conflict" else error
        self.app._cache_saved(aggregates)
        self.on_stored(outcomes)

    def close(self) -> None:
        self._batches.close()  # the writer ends when it reads the end of the pipe
        self._writer.join()
        self._replies.close()

    def __enter__(self) -> WritePipeline:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if exc_info[0] is None:
                self.settle()
        finally:
            self.close()


def _write_batches(
    batches: Any, replies: Any, callers_ends: tuple[Any, Any], app_class: type, location: str, signer: EntrySigner,
    clock: Any, origin: str,
) -> None:
    """The writer process of a WritePipeline: each batch as LedgerApplication.save writes it, replying "stored",
    "conflict" (another writer's events came first) or "error" with the exception, until the caller closes its
    end of `batches`."""
    for end in callers_ends:  # forked copies: kept open here, the caller's closing would never end the loop
        end.close()
    # This process only writes: its collector need never look at the objects it was forked with.
    gc.freeze()
    app = app_class.reopened(location, signer=signer, clock=clock)
    while True:
        try:
            events, snapshots, to_take = batches.recv()
        except EOFError:
            break
        try:
            app.recorder.insert_events(events, signer=signer, origin=origin, clock=clock)
        except IntegrityError:
            replies.send(("conflict", None))
            continue
        except Exception as exc:  # the caller raises it
            replies.send(("error", exc))
            continue
        try:
            if snapshots:
                app.snapshots.recorder.insert_events(snapshots)
            for aggregate_id, version in to_take:
                app.take_snapshot(aggregate_id, version, projector_func=_project)
        except Exception as exc:  # the events are stored; the caller raises it
            replies.send(("error", exc))
        else:
            replies.send(("stored", None))
    app.close()


class LedgerApplication(Application):
    """One village's books (one ledger = one origin), signed as they are written."""

    name = "VillageLedger"
    # An asset gains an event a month for its whole life (decades of depreciation): read back each month, it is
    # replayed from a snapshot of the year at most, so that a month's import costs the same whatever the history.
    snapshotting_intervals = {Period: 100, Ledger: 100, Asset: 12}
    snapshotting_projectors = {Period: _project, Ledger: _project, Asset: _project}
    snapshot_class = AggregateSnapshot

    def __init__(
        self,
        location: str,
        *,
        signer: EntrySigner | None = None,
        clock: Callable[[], datetime] | None = None,
        env: dict[str, str] | None = None,
    ):
        settings = env_for_location(location)
        settings.setdefault("AGGREGATE_CACHE_MAXSIZE", "2000")
        settings.update(env or {})
        super().__init__(env=settings)
        self.location = location
        self.signer = signer
        self.clock = clock
        self._origin: str | None = None

    @classmethod
    def reopened(cls, location: str, **options: Any) -> LedgerApplication:
        """The ledger at `location` opened in a process forked from one that has it open: its tables exist, so the
        schema statements an opening runs are skipped (a few ms of every worker's start)."""
        return cls(location, env={"CREATE_TABLE": "no"}, **options)

    def construct_mapper(self) -> Mapper:
        return PydanticMapper(transcoder=JSONTranscoder())

    # -- identity -------------------------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        if self._origin is None:
            first = next(iter(self.recorder.read_log(0, 1)), None)
            if first is None:
                raise LookupError(f"{self.location} holds no ledger yet (run `village-ledger init`)")
            self._origin = parse_leaf(first.leaf).fields["origin"]
        return self._origin

    def ledger(self) -> Ledger:
        return self.repository.get(ledger_id(self.origin))

    @property
    def chart(self) -> Chart:
        return load_chart(self.ledger().chart)

    def id_of(self, kind: str, key: str) -> UUID:
        return child_id(self.origin, kind, key)

    # -- writing ----------------------------------------------------------------------------------------------------

    def save(self, *objs: Aggregate, **kwargs: Any):
        processing_event = self._processing_event(objs, kwargs)
        # Before the write: without cache fast-forwarding, recording replaces the cached copy a replay starts from.
        snapshots_due = self._snapshots_due(processing_event)
        recordings = self._record(processing_event)
        for aggregate_id, version, aggregate in snapshots_due:
            if aggregate is None:
                self.take_snapshot(aggregate_id, version, projector_func=_project)
            else:
                self.snapshots.put([self.snapshot_class.take(aggregate)])
        self._notify(recordings)
        return recordings

    def _processing_event(self, objs: Iterable[Aggregate], kwargs: dict[str, Any]) -> ProcessingEvent:
        """The events of the aggregates to save, and how to sign them.

        Application.save of the pinned eventsourcing 9.5.6 without ProcessingEvent.collect_events, whose two
        runtime-checkable Protocol isinstance checks per object (~16 µs on Python 3.11) cost more than signing a
        batch's entries; everything saved here is one of our aggregates. (Its no-op, deprecated `notify` hook is
        not called: nothing here overrides it.)
        """
        if self.signer is None:
            raise PermissionError("this ledger was opened without a signing key; it is read-only")
        kwargs.setdefault("signer", self.signer)
        kwargs.setdefault("origin", self.origin)
        kwargs.setdefault("clock", self.clock)
        processing_event = ProcessingEvent()
        for aggregate in objs:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        return processing_event

    def _prepared_write(self, objs: list[Aggregate]) -> PreparedWrite:
        """What save(*objs) would write, for a WritePipeline's writer process to write."""
        processing_event = self._processing_event(objs, {})
        snapshots_due = self._snapshots_due(processing_event)
        return PreparedWrite(
            events=[self.mapper.to_stored_event(event) for event in processing_event.events],
            snapshots=[
                self.snapshots.mapper.to_stored_event(self.snapshot_class.take(a)) for _, _, a in snapshots_due if a is not None
            ],
            snapshots_to_take=[(aggregate_id, version) for aggregate_id, version, a in snapshots_due if a is None],
            aggregates=objs,
        )

    def _snapshots_due(self, processing_event: ProcessingEvent) -> list[tuple[UUID, int, Aggregate | None]]:
        """(id, version, the aggregate at that version if memory holds it) of each snapshot this save calls for,
        in eventsourcing's order.

        eventsourcing's take_snapshot rebuilds each from the store after the write, decoding and validating a
        Period's first 100 events again; usually the state is at hand instead (`_state_at`). None: rebuild it.
        """
        due = []
        if not self.snapshots:
            return due
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is not None and event.originator_version % interval == 0:
                state = self._state_at(aggregate, processing_event.events, event.originator_version)
                due.append((event.originator_id, event.originator_version, state))
        return due

    def _state_at(self, aggregate: Aggregate, events: list[Event], version: int) -> Aggregate | None:
        """The saved aggregate as it was at `version`: itself when that is its last version, else its events of
        this save replayed on a blank aggregate (it was created by this save) or on the repository cache's copy
        of the version it was read at (the cache is never mutated: commands get deep copies of it)."""
        if version == aggregate.version:
            return aggregate
        own = [e for e in events if e.originator_id == aggregate.id and e.originator_version <= version]
        first = own[0].originator_version
        base = None
        if first > 1:
            try:
                base = self.repository.cache.get(aggregate.id) if self.repository.cache else None
            except KeyError:
                return None
            if base is None or base.version != first - 1:
                return None
            base = deepcopy(base)
        return _project(base, own)

    def create_ledger(
        self,
        *,
        origin: str,
        name: str,
        chart: str,
        policy: Policy = EXAMPLE_POLICY,
        log_public_key: bytes | None = None,
        holder: str | None = None,
    ) -> Ledger:
        """Genesis: the ledger's identity and policy, the signer's key and (optionally) the log key."""
        if self.signer is None:
            raise PermissionError("creating a ledger needs the signer's key")
        if self.recorder.log_size() != 0:
            raise Rejected([Problem("LEDGER", f"{self.location} already holds a ledger")])
        check_origin(origin)
        load_chart(chart)
        keys = [_key_spec(self.signer.name, "signer", self.signer.public_key_bytes, holder)]
        if log_public_key is not None:
            keys.append(_key_spec(origin, "log", log_public_key, None))
        self._origin = origin
        ledger = Ledger.create(
            ledger_id(origin), Ledger.Opened, origin=origin, name=name, chart=chart, policy=policy, keys=keys
        )
        try:
            self.save(ledger)
        except Exception:
            self._origin = None
            raise
        return ledger

    def adopt_policy(self, policy: Policy) -> None:
        """A further dated policy of the ledger's jurisdiction; `Ledger.policy_at` picks it from its effective date."""
        ledger = self.ledger()
        current = ledger.policies[0].jurisdiction
        problems = []
        if policy.jurisdiction != current:
            problems.append(Problem("jurisdiction", f"policy is for {policy.jurisdiction!r}, this ledger follows {current!r}"))
        if any(p.effective == policy.effective for p in ledger.policies):
            problems.append(Problem("effective", f"a policy effective {policy.effective} is already adopted"))
        refuse_if(problems)
        ledger.trigger(Ledger.PolicyAdopted, policy=policy)
        self.save(ledger)

    def register_key(self, name: str, role: str, public_key: bytes, holder: str | None = None) -> None:
        ledger = self.ledger()
        self._register_key(ledger, name, role, public_key, holder)
        self.save(ledger)

    def revoke_key(self, name: str, public_key: bytes, reason: str) -> None:
        ledger = self.ledger()
        kid = key_id(name, public_key).hex()
        if not any(k.name == name and k.key_id == kid and k.revoked_version is None for k in ledger.keys):
            raise Rejected([Problem("key", f"no active key {name}+{kid}")])
        ledger.trigger(Ledger.KeyRevoked, name=name, key_id=kid, reason=reason)
        self.save(ledger)

    def record_checkpoint(self, *, size: int, root_hash: bytes, note: str, period: str | None) -> None:
        """Append a signed, cosigned checkpoint note to the log (ledger.checkpoints builds and checks it)."""
        for attempt in range(_CONFLICT_RETRIES):
            ledger = self.ledger()
            ledger.trigger(Ledger.CheckpointRecorded, size=size, root_hash=b64(root_hash), note=note, period=period)
            try:
                self.save(ledger)
                return
            except IntegrityError:
                # Another writer moved the Ledger aggregate; the cached copy now holds our unsaved event too.
                if self.repository.cache:
                    self.repository.cache.clear()
                if attempt == _CONFLICT_RETRIES - 1:
                    raise

    @staticmethod
    def _register_key(ledger: Ledger, name: str, role: str, public_key: bytes, holder: str | None) -> None:
        spec = _key_spec(name, role, public_key, holder)
        if any((k.name, k.key_id, k.role) == (spec.name, spec.key_id, spec.role) for k in ledger.keys):
            raise Rejected([Problem("key", f"key {name}+{spec.key_id} is already registered for role {role}")])
        ledger.trigger(Ledger.KeyRegistered, **spec.model_dump())

    def check_signer(self, ledger: Ledger) -> None:
        signer = self.signer
        if signer is None or ledger.active_key(signer.name, key_id(signer.name, signer.public_key_bytes).hex(), "signer") is None:
            label = signer.label if signer else "(none)"
            raise Rejected([Problem("key", f"signer {label} is not a registered, unrevoked signer key of this ledger")])

    def execute(self, record: j.Record) -> str:
        """Apply one journal record atomically. Returns "applied" or "skipped" (same id, same content)."""
        return self.execute_batch([record])[0]

    def execute_batch(self, records: list[j.Record], *, pipeline: WritePipeline | None = None) -> list[str]:
        """Apply records in order and store them in one transaction; any refusal stores none of the batch.

        With a pipeline, the batch is handed to its writer process once the batch before it is stored, and the
        outcomes are returned before this one is: the pipeline reports each batch it stores, and a WriteConflict
        (from this call or a later one) means the batch it names must be executed again.
        """
        for attempt in range(_CONFLICT_RETRIES):
            uow = UnitOfWork(self, pipeline)
            ledger = uow.find(ledger_id(self.origin))
            self.check_signer(ledger)
            uow.load(self._ids_to_load(records))
            outcomes = []
            for index, record in enumerate(records):
                try:
                    outcomes.append(self._apply(uow, ledger, record))
                except Rejected as refusal:
                    raise BatchRejected(index, refusal) from None
            # Only the changed ones: each aggregate handed to save costs eventsourcing a few Protocol checks.
            changed = [a for a in uow.aggregates.values() if a.has_pending()]
            if pipeline is not None:
                # Stored first: snapshots of this batch replay its events on the cached state the last one left.
                pipeline.settle()
                pipeline.submit(records, outcomes, self._prepared_write(changed))
                return outcomes
            try:
                self.save(*changed)
            except IntegrityError:
                # Another writer moved an aggregate we read; re-read and decide again.
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
                if self.repository.cache:
                    self.repository.cache.clear()
                # Jitter, so that writers that collided do not collide again in lockstep.
                time.sleep(_CONFLICT_BACKOFF_SECONDS * random.uniform(1, 2 ** min(attempt, 6)))
                continue
            self._cache_saved(changed)
            return outcomes
        raise AssertionError("unreachable")

    def _cache_saved(self, aggregates: list[Aggregate]) -> None:
        """Put the aggregates with long histories (those with snapshots: Ledger, Period, Asset) just saved into the
        repository cache, for the next batch to start from; most others are written once.

        With fast-forwarding on, eventsourcing caches an aggregate only when it reads one, so the next batch rebuilt
        each from its snapshot and events, or fast-forwarded the cached copy through every event this batch wrote,
        decoding and validating each. These are at the version just committed and nothing else holds them; a later
        read still fast-forwards them through any events another writer has appended since.
        """
        if self.repository.cache:
            for aggregate in aggregates:
                if type(aggregate) in self.snapshotting_intervals:
                    self.repository.cache.put(aggregate.id, aggregate)

    def _ids_to_load(self, records: list[j.Record]) -> Iterator[UUID]:
        """The journal markers of the records and the aggregates they create: usually new, so one query finds none."""
        for record in records:
            yield self.id_of("journal", record.id)
            created = _CREATES.get(type(record))
            if created is not None:
                yield self.id_of(created[0], getattr(record, created[1]))

    def _apply(self, uow: UnitOfWork, ledger: Ledger, record: j.Record) -> str:
        marker_id = self.id_of("journal", record.id)
        digest = record_digest(record)
        marker = uow.find(marker_id)
        if marker is not None:
            if marker.digest == digest:
                return "skipped"
            raise Rejected([Problem("id", f"id {record.id!r} was already imported with different content")])
        handler = _HANDLERS[type(record)]
        handler(self, uow, ledger, record)
        uow.add(JournalRecord.create(marker_id, JournalRecord.Applied, trusted=True, record_id=record.id, record_type=record.type, digest=digest))
        return "applied"

    # -- reading ----------------------------------------------------------------------------------------------------

    def notifications(self, topics: tuple[str, ...], *, batch: int = 2000) -> Iterator[Notification]:
        """Stored events of the given topics in log order, read in batches."""
        start = 1
        while True:
            notifications = self.recorder.select_notifications(start, batch, topics=topics)
            yield from notifications
            if len(notifications) < batch:
                return
            start = notifications[-1].id + 1

    def _states(
        self, topics: tuple[str, ...], *, start: int = 1, stop: int | None = None, batch: int = 2000
    ) -> Iterator[tuple[str, bytes]]:
        """(topic, state) of the stored events of the given topics with start <= notification id < stop, in log
        order, read in batches."""
        while True:
            rows = self.recorder.select_states(start, batch, topics)
            for row in rows:
                if stop is not None and row[0] >= stop:
                    return
                yield row[1], row[2]
            if len(rows) < batch:
                return
            start = rows[-1][0] + 1

    def postings(self, start: int = 1, stop: int | None = None) -> Iterator[Posting]:
        """Every posting line (opening balances, vouchers, reversals) in log order; of the events with
        start <= notification id < stop when given (a reader can split the log among processes)."""
        chart = None
        for topic, stored in self._states(POSTING_TOPICS, start=start, stop=stop):
            state = load_state(stored)
            if topic == Ledger.OpeningBalancesRecorded.TOPIC:
                chart = chart or self.ledger().chart
                yield from _postings(chart, state["date"], "OPENING", "opening", state["lines"])
            else:
                kind = "closing" if state.get("closing") else "voucher"
                yield from _postings(state["chart"], state["date"], state["voucher_no"], kind, state["lines"])

    def vouchers_of(self, period: str) -> list[Voucher]:
        found = self._find(self.id_of("period", period))
        return [self.repository.get(self.id_of("voucher", no)) for no in (found.voucher_nos if found else [])]

    def _find(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None


def _postings(chart: str, day: str, voucher_no: str, kind: str, lines: list[dict]) -> Iterator[Posting]:
    on = date.fromisoformat(day)
    for line in lines:
        yield Posting.stored(
            chart, line["code"], line["detail"], on, Decimal(line["debit"]), Decimal(line["credit"]), voucher_no, kind
        )


def _key_spec(name: str, role: str, public_key: bytes, holder: str | None) -> KeySpec:
    """A key fit for registration; low-order keys are refused (TLOG.md §7)."""
    try:
        check_registrable_public_key(public_key)
    except ValueError as exc:
        raise Rejected([Problem("key", f"{name}: {exc}")]) from None
    return KeySpec(name=name, role=role, public_key=b64(public_key), key_id=key_id(name, public_key).hex(), holder=holder)


def check_origin(origin: str) -> None:
    """TLOG.md §6.2: ASCII, no spaces, no '+', no scheme."""
    problems = []
    if not origin or not origin.isascii() or any(c.isspace() for c in origin) or "+" in origin:
        problems.append(Problem("origin", "must be non-empty printable ASCII without spaces or '+'"))
    elif "://" in origin:
        problems.append(Problem("origin", "is schema-less, e.g. ledger.example-county.gov.cn/village/330100000000/v1"))
    refuse_if(problems)


# -- command handlers: check everything first, then trigger events (nothing raises after the first trigger) ---------


def _require_open_period(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, day: date, where: str) -> Period:
    problems = []
    if ledger.opening_date is not None and day < ledger.opening_date:
        problems.append(Problem(where, f"{day} is before the opening of the books ({ledger.opening_date})"))
    period_key = month_of(day)
    period = uow.find(app.id_of("period", period_key))
    if period is not None and period.closed:
        problems.append(Problem(where, f"period {period_key} is closed; post a correction in an open period"))
    refuse_if(problems)
    if period is None:
        period = Period.create(app.id_of("period", period_key), Period.Opened, trusted=True, period=period_key)
        uow.add(period)
    return period


def _require_absent(uow: UnitOfWork, aggregate_id: UUID, field_name: str, what: str) -> None:
    if uow.find(aggregate_id) is not None:
        raise Rejected([Problem(field_name, f"{what} already exists")])


def _require_present(uow: UnitOfWork, aggregate_id: UUID, field_name: str, what: str) -> Any:
    found = uow.find(aggregate_id)
    if found is None:
        raise Rejected([Problem(field_name, f"{what} does not exist")])
    return found


def _check_references(app: LedgerApplication, uow: UnitOfWork, record: j.Record) -> None:
    # Only the fields its type has: getattr with a default would raise and catch an error in pydantic for the others.
    fields = type(record).__pydantic_fields__
    for field_name, kind in (("decision", "decision"), ("contract", "contract"), ("township_approval", "approval")):
        key = getattr(record, field_name) if field_name in fields else None
        if key is not None:
            _require_present(uow, app.id_of(kind, key), field_name, f"{kind} {key!r}")


def _post_voucher(app, uow, ledger, voucher_id, period, *, voucher_no, event, trusted=False, **fields) -> Voucher:
    voucher = Voucher.create(voucher_id, event, trusted=trusted, voucher_no=voucher_no, chart=ledger.chart, **fields)
    uow.add(voucher)
    period.trigger(Period.VoucherEntered, trusted=True, voucher_no=voucher_no)
    return voucher


def handle_voucher(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.Voucher) -> None:
    chart = load_chart(ledger.chart)
    refuse_if(check_lines(chart, r.lines))
    voucher_id = app.id_of("voucher", r.voucher_no)
    _require_absent(uow, voucher_id, "voucher_no", f"voucher {r.voucher_no}")
    _check_references(app, uow, r)
    policy = ledger.policy_at(r.date)
    if policy.strict:
        refuse_if(_governance_problems(app, uow, chart, policy, r))
    period = _require_open_period(app, uow, ledger, r.date, "date")
    closing = CLOSING_TAG in r.tags or any(chart.top_level(line.account).code == "321" for line in r.lines)
    # Every field from the validated record, the ledger's chart or computed here: no validation needed.
    _post_voucher(
        app, uow, ledger, voucher_id, period,
        voucher_no=r.voucher_no, event=Voucher.Posted, trusted=True, date=r.date, summary=r.summary,
        lines=[posting_line(line) for line in r.lines], attachments=r.attachments, approvals=r.approvals,
        tags=r.tags, decision=r.decision, contract=r.contract, counterparty=r.counterparty, asset=None,
        closing=closing,
    )


def _governance_problems(app: LedgerApplication, uow: UnitOfWork, chart: Chart, policy: Policy, r: j.Voucher) -> list[Problem]:
    """Strict mode: a payment must carry its band's approvals and follow the decision steps due before it."""
    amount, accounts = spending(chart, ((x.account, x.debit or ZERO, x.credit or ZERO) for x in r.lines))
    if amount <= ZERO:
        return []
    decision: Decision | None = uow.find(app.id_of("decision", r.decision)) if r.decision else None
    ladder = policy.ladder_for(decision.matter if decision else None, accounts)
    tier = ladder.tier_for(amount)
    band = f"{amount:.2f} is a {tier.name} matter ({tier.name_zh}, {tier.band_text()}) under the policy of {policy.effective}"
    problems = []
    signers = missing_signers(tier, (a.role for a in r.approvals))
    if signers:
        problems.append(Problem("approvals", f"payment {band}: missing approval by {', '.join(signers)}"))
    steps = [(s.step, s.date) for s in decision.steps] if decision else []
    commitment = next((d for s, d in steps if s == "contract_signed"), r.date)
    missing = missing_steps(tier, steps, commitment, after_by=None)
    if missing:
        items = "; ".join(f"{zh} / {en}" for zh, en in map(describe_missing, missing))
        lacks = f"decision {r.decision} lacks" if decision else "no decision is referenced; it needs"
        problems.append(Problem("decision", f"payment {band}: {lacks} {items}"))
    return problems


def handle_reversal(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.Reversal) -> None:
    voucher_id = app.id_of("voucher", r.voucher_no)
    _require_absent(uow, voucher_id, "voucher_no", f"voucher {r.voucher_no}")
    original: Voucher = _require_present(uow, app.id_of("voucher", r.reverses), "reverses", f"voucher {r.reverses}")
    problems = []
    if original.reverses is not None:
        problems.append(Problem("reverses", f"{r.reverses} is itself a reversal; post a new voucher instead"))
    if original.reversed_by is not None:
        problems.append(Problem("reverses", f"{r.reverses} was already reversed by {original.reversed_by}"))
    if original.closing:
        problems.append(Problem("reverses", f"{r.reverses} is a year-end closing voucher"))
    if r.date < original.date:
        problems.append(Problem("date", f"a reversal cannot predate the voucher it reverses ({original.date})"))
    refuse_if(problems)
    period = _require_open_period(app, uow, ledger, r.date, "date")
    red_lines = [PostingLine(code=x.code, detail=x.detail, debit=-x.debit, credit=-x.credit) for x in original.lines]
    _post_voucher(
        app, uow, ledger, voucher_id, period,
        voucher_no=r.voucher_no, event=Voucher.Reversed, date=r.date, summary=r.summary, reverses=r.reverses,
        reason=r.reason, lines=red_lines, attachments=r.attachments, approvals=r.approvals, tags=r.tags,
    )
    original.trigger(Voucher.MarkedReversed, reversed_by=r.voucher_no)


def monthly_depreciation(asset: Asset) -> Decimal:
    """Straight line (年限平均法), capped so that accumulated depreciation never passes cost less residual."""
    remaining = asset.cost - asset.residual - asset.accumulated
    return min(round_money((asset.cost - asset.residual) / asset.life_months), remaining)


def handle_depreciation(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.Depreciation) -> None:
    asset: Asset = _require_present(uow, app.id_of("asset", r.asset_no), "asset_no", f"asset {r.asset_no}")
    voucher_id = app.id_of("voucher", r.voucher_no)
    _require_absent(uow, voucher_id, "voucher_no", f"voucher {r.voucher_no}")
    problems = []
    if month_of(r.date) != r.month:
        problems.append(Problem("date", f"{r.date} is not in month {r.month}"))
    if r.month <= month_of(asset.in_service):
        problems.append(Problem("month", f"depreciation starts the month after the asset entered service ({asset.in_service})"))
    if asset.disposed is not None and r.month > month_of(asset.disposed):
        problems.append(Problem("month", f"asset {r.asset_no} was disposed of on {asset.disposed}"))
    if r.month in asset.depreciated_months:
        problems.append(Problem("month", f"asset {r.asset_no} is already depreciated for {r.month}"))
    amount = monthly_depreciation(asset)
    if amount <= ZERO:
        problems.append(Problem("asset_no", f"asset {r.asset_no} is fully depreciated"))
    refuse_if(problems)
    period = _require_open_period(app, uow, ledger, r.date, "date")
    summary = r.summary or f"计提{int(r.month[5:])}月折旧:{asset.name}"
    _post_voucher(
        app, uow, ledger, voucher_id, period,
        voucher_no=r.voucher_no, event=Voucher.Posted, date=r.date, summary=summary,
        lines=[
            PostingLine(code=asset.depreciation_account, detail=asset.depreciation_detail, debit=amount, credit=ZERO),
            PostingLine(code="152", detail=asset.name, debit=ZERO, credit=amount),
        ],
        asset=r.asset_no,
    )
    asset.trigger(Asset.Depreciated, month=r.month, amount=amount, voucher_no=r.voucher_no)


def handle_asset(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.AssetRegistered) -> None:
    asset_id = app.id_of("asset", r.asset_no)
    _require_absent(uow, asset_id, "asset_no", f"asset {r.asset_no}")
    problems = []
    if r.depreciation_account not in load_chart(ledger.chart):
        problems.append(Problem("depreciation_account", f"account {r.depreciation_account!r} is not in chart {ledger.chart}"))
    if r.residual > r.cost:
        problems.append(Problem("residual", "residual value exceeds cost"))
    if r.accumulated_depreciation > r.cost - r.residual:
        problems.append(Problem("accumulated_depreciation", "exceeds cost less residual"))
    if r.voucher_no is not None and uow.find(app.id_of("voucher", r.voucher_no)) is None:
        problems.append(Problem("voucher_no", f"voucher {r.voucher_no} does not exist"))
    refuse_if(problems)
    fields = r.model_dump(exclude={"id", "type"})
    uow.add(Asset.create(asset_id, Asset.Registered, **fields))


def handle_asset_disposed(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.AssetDisposed) -> None:
    asset: Asset = _require_present(uow, app.id_of("asset", r.asset_no), "asset_no", f"asset {r.asset_no}")
    if asset.disposed is not None:
        raise Rejected([Problem("asset_no", f"asset {r.asset_no} was already disposed of on {asset.disposed}")])
    _check_references(app, uow, r)
    if r.voucher_no is not None:
        _require_present(uow, app.id_of("voucher", r.voucher_no), "voucher_no", f"voucher {r.voucher_no}")
    asset.trigger(Asset.Disposed, date=r.date, method=r.method, decision=r.decision, voucher_no=r.voucher_no)


def handle_fund(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.FundOpened) -> None:
    fund_id = app.id_of("fund", r.fund_id)
    _require_absent(uow, fund_id, "fund_id", f"fund {r.fund_id}")
    chart = load_chart(ledger.chart)
    problems = []
    if r.account not in chart:
        problems.append(Problem("account", f"account {r.account!r} is not in chart {ledger.chart}"))
    elif chart.top_level(r.account).code not in FUND_ACCOUNTS[r.kind]:
        allowed = ", ".join(FUND_ACCOUNTS[r.kind])
        problems.append(Problem("account", f"a {r.kind} fund is carried on {allowed}, not {r.account}"))
    refuse_if(problems)
    uow.add(Fund.create(fund_id, Fund.Opened, **r.model_dump(exclude={"id", "type"})))


def handle_fund_closed(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.FundClosed) -> None:
    fund: Fund = _require_present(uow, app.id_of("fund", r.fund_id), "fund_id", f"fund {r.fund_id}")
    if fund.closed is not None:
        raise Rejected([Problem("fund_id", f"fund {r.fund_id} was already closed on {fund.closed}")])
    uow.settle()
    stored = ((p.code, p.detail, p.date, p.debit - p.credit) for p in app.postings())
    balance = sum(
        (net for code, detail, day, net in [*stored, *uow.new_voucher_lines()]
         if (code, detail) == (fund.account, fund.detail) and day <= r.closed),
        ZERO,
    )
    if balance != ZERO:
        raise Rejected([Problem("closed", f"fund {r.fund_id} still holds {balance:.2f} on {fund.account} {fund.detail}".rstrip())])
    fund.trigger(Fund.Closed, closed=r.closed)


def _create_from_record(
    app: LedgerApplication, uow: UnitOfWork, kind: str, key_field: str, aggregate: type[Aggregate], event: type[Event], r: j.Record
) -> None:
    """A new aggregate whose first event carries the record's fields, refused if its key is taken."""
    key = getattr(r, key_field)
    aggregate_id = app.id_of(kind, key)
    _require_absent(uow, aggregate_id, key_field, f"{kind} {key}")
    uow.add(aggregate.create(aggregate_id, event, **r.model_dump(exclude={"id", "type"})))


def handle_resource(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.ResourceRegistered) -> None:
    _create_from_record(app, uow, "resource", "resource_no", Resource, Resource.Registered, r)


def handle_contract(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.ContractSigned) -> None:
    contract_id = app.id_of("contract", r.contract_no)
    _require_absent(uow, contract_id, "contract_no", f"contract {r.contract_no}")
    subject = _require_present(uow, app.id_of(r.subject_kind, r.subject_no), "subject_no", f"{r.subject_kind} {r.subject_no}")
    _check_references(app, uow, r)
    problems = []
    if r.end < r.start:
        problems.append(Problem("end", "contract ends before it starts"))
    for index, instalment in enumerate(r.schedule):
        if instalment.amount <= ZERO:
            problems.append(Problem(f"schedule[{index}].amount", "instalments are positive"))
    refuse_if(problems)
    uow.add(Contract.create(contract_id, Contract.Signed, **r.model_dump(exclude={"id", "type"})))
    if r.subject_kind == "resource":
        subject.trigger(Resource.ContractedOut, contract_no=r.contract_no)
    else:
        subject.trigger(Asset.Leased, contract_no=r.contract_no)


def handle_decision(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.DecisionOpened) -> None:
    _create_from_record(app, uow, "decision", "decision_id", Decision, Decision.Opened, r)


def handle_decision_step(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.DecisionStep) -> None:
    decision: Decision = _require_present(uow, app.id_of("decision", r.decision_id), "decision_id", f"decision {r.decision_id}")
    problems = []
    if r.present is not None and r.due is not None and r.present > r.due:
        problems.append(Problem("present", f"{r.present} present exceeds {r.due} due"))
    votes = [v for v in (r.votes_for, r.votes_against, r.abstentions) if v is not None]
    limit = r.present if r.present is not None else r.due
    if votes and limit is not None and sum(votes) > limit:
        problems.append(Problem("votes_for", f"{sum(votes)} votes exceed the {limit} who could vote"))
    refuse_if(problems)
    decision.trigger(Decision.StepRecorded, **r.model_dump(exclude={"id", "type", "decision_id"}))


def handle_township_approval(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.TownshipApproval) -> None:
    _create_from_record(app, uow, "approval", "approval_id", TownshipApproval, TownshipApproval.Recorded, r)


def handle_official(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.OfficialAppointed) -> None:
    problems = []
    if r.official_id in ledger.officials:
        problems.append(Problem("official_id", f"official {r.official_id} already exists"))
    if r.term_end is not None and r.term_end < r.term_start:
        problems.append(Problem("term_end", "term ends before it starts"))
    refuse_if(problems)
    ledger.trigger(Ledger.OfficialAppointed, **r.model_dump(exclude={"id", "type"}))


def handle_official_departed(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.OfficialDeparted) -> None:
    official = ledger.officials.get(r.official_id)
    problems = []
    if official is None:
        problems.append(Problem("official_id", f"official {r.official_id} does not exist"))
    elif official.departed is not None:
        problems.append(Problem("official_id", f"official {r.official_id} already departed on {official.departed}"))
    elif r.departed < official.term_start:
        problems.append(Problem("departed", f"departure precedes the term's start {official.term_start}"))
    if r.handover_date < r.departed:
        problems.append(Problem("handover_date", "handover cannot precede departure"))
    refuse_if(problems)
    ledger.trigger(Ledger.OfficialDeparted, **r.model_dump(exclude={"id", "type"}))


def handle_opening_balances(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.OpeningBalances) -> None:
    problems = check_lines(load_chart(ledger.chart), r.lines)
    if ledger.opening_date is not None:
        problems.append(Problem("type", f"opening balances were already recorded for {ledger.opening_date}"))
    refuse_if(problems)
    # Vouchers before the opening would silently escape the opening balances.
    first_period = uow.find(app.id_of("period", month_of(r.date)))
    if first_period is not None and first_period.voucher_nos:
        raise Rejected([Problem("date", "vouchers were already posted; opening balances come first")])
    ledger.trigger(Ledger.OpeningBalancesRecorded, date=r.date, lines=[posting_line(x) for x in r.lines])


def handle_distribution_plan(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.DistributionPlan) -> None:
    problems = []
    if r.year in ledger.distribution_plans:
        problems.append(Problem("year", f"a distribution plan for {r.year} was already adopted"))
    refuse_if(problems)
    _check_references(app, uow, r)
    ledger.trigger(Ledger.DistributionPlanAdopted, **r.model_dump(exclude={"id", "type"}))


def _net_by_code(lines: Iterable[PostingLine], into: dict[str, Decimal]) -> dict[str, Decimal]:
    for line in lines:
        into[line.code] = into.get(line.code, ZERO) + line.debit - line.credit
    return into


def handle_period_close(app: LedgerApplication, uow: UnitOfWork, ledger: Ledger, r: j.PeriodClose) -> None:
    """Month close (SCENARIOS S10): in order, cash counted = 101, bank statement = 102 (or explained), depreciation posted."""
    chart = load_chart(ledger.chart)
    period: Period | None = uow.find(app.id_of("period", r.period))
    problems = []
    if period is not None and period.closed:
        raise Rejected([Problem("period", f"period {r.period} is already closed")])
    if month_of(r.date) < r.period:
        problems.append(Problem("date", f"{r.date} is before the end of {r.period}"))
    previous: Period | None = uow.find(app.id_of("period", previous_month(r.period)))
    opening_month = month_of(ledger.opening_date) if ledger.opening_date else None
    if previous is not None and not previous.closed:
        problems.append(Problem("period", f"the previous period {previous.period} is not closed yet"))
    if previous is None and opening_month is not None and r.period > opening_month:
        problems.append(Problem("period", f"the previous period {previous_month(r.period)} was never closed"))
    refuse_if(problems)
    balances = dict(previous.closing_balances) if previous is not None else _net_by_code(ledger.opening_lines, {})
    voucher_ids = [app.id_of("voucher", no) for no in (period.voucher_nos if period else [])]
    for nets in uow.posted_nets(voucher_ids):
        for code, net in nets:
            balances[code] = balances.get(code, ZERO) + net
    cash = sum((v for code, v in balances.items() if chart.top_level(code).code == "101"), ZERO)
    bank = sum((v for code, v in balances.items() if chart.top_level(code).code == "102"), ZERO)
    if r.cash_counted != cash:
        problems.append(Problem("cash_counted", f"counted {r.cash_counted:.2f} but the books show {cash:.2f} in 101"))
    if r.bank_statement != bank and not r.reconciliation_note:
        problems.append(
            Problem("bank_statement", f"statement {r.bank_statement:.2f} differs from 102 {bank:.2f} and no reconciliation note explains it")
        )
    for asset in _assets(app, uow):
        due = asset.disposed is None and month_of(asset.in_service) < r.period and monthly_depreciation(asset) > ZERO
        if due and r.period not in asset.depreciated_months:
            problems.append(Problem("period", f"asset {asset.asset_no} ({asset.name}) has no depreciation for {r.period}"))
    refuse_if(problems)
    if period is None:
        period = Period.create(app.id_of("period", r.period), Period.Opened, period=r.period)
        uow.add(period)
    period.trigger(
        Period.Closed,
        date=r.date,
        cash_counted=r.cash_counted,
        bank_statement=r.bank_statement,
        reconciliation_note=r.reconciliation_note,
        vouchers=len(voucher_ids),
        closing_balances={code: amount for code, amount in sorted(balances.items()) if amount != ZERO},
    )


def _assets(app: LedgerApplication, uow: UnitOfWork) -> list[Asset]:
    """Stored assets and those registered earlier in the same batch or in the batch being written."""
    ids = set(app.recorder.select_originator_ids(Asset.Registered.TOPIC))
    ids.update(a.id for a in (*uow.aggregates.values(), *uow.pending.values()) if isinstance(a, Asset))
    return [uow.find(i) for i in sorted(ids, key=str)]


# The aggregate each kind of record creates: (id kind, record field holding its key).
_CREATES: dict[type, tuple[str, str]] = {
    j.Voucher: ("voucher", "voucher_no"),
    j.Reversal: ("voucher", "voucher_no"),
    j.Depreciation: ("voucher", "voucher_no"),
    j.AssetRegistered: ("asset", "asset_no"),
    j.FundOpened: ("fund", "fund_id"),
    j.ResourceRegistered: ("resource", "resource_no"),
    j.ContractSigned: ("contract", "contract_no"),
    j.DecisionOpened: ("decision", "decision_id"),
    j.TownshipApproval: ("approval", "approval_id"),
}

_HANDLERS: dict[type, Callable[..., None]] = {
    j.Voucher: handle_voucher,
    j.Reversal: handle_reversal,
    j.Depreciation: handle_depreciation,
    j.AssetRegistered: handle_asset,
    j.AssetDisposed: handle_asset_disposed,
    j.FundOpened: handle_fund,
    j.FundClosed: handle_fund_closed,
    j.ResourceRegistered: handle_resource,
    j.ContractSigned: handle_contract,
    j.DecisionOpened: handle_decision,
    j.DecisionStep: handle_decision_step,
    j.TownshipApproval: handle_township_approval,
    j.OfficialAppointed: handle_official,
    j.OfficialDeparted: handle_official_departed,
    j.OpeningBalances: handle_opening_balances,
    j.DistributionPlan: handle_distribution_plan,
    j.PeriodClose: handle_period_close,
}

"""Conformance suite for chained recorders, shipped with the package like eventsourcing.tests.persistence.

A backend's test module subclasses ``ChainedRecorderConformance`` in a class named ``Test...`` and supplies
``create_recorder``, ``persistence_env`` and ``execute_sql``. The suite is pytest-style (plain asserts).
``run_writer_processes`` drives several spawned processes against one ledger, for the process-level test.
"""

from __future__ import annotations

import multiprocessing
import threading
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, IntegrityError, StoredEvent

from ledger.crypto.logformat import (
    GENESIS_PREV,
    EntrySigner,
    encode_entry,
    leaf_hash,
    parse_leaf,
    state_hash,
    verify_entry_signature,
)
from ledger.store.recorders import IDS_PER_SELECT, ChainWriter, LogRecord, OriginMismatchError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from multiprocessing.synchronize import Event

    class ChainedRecorder(ChainWriter, ApplicationRecorder):
        """What the suite tests: an application recorder with the chain API."""


CONFORMANCE_SIGNER_NAME = "test.example/village/000000000000/v1/signer/clerk"
CONFORMANCE_ORIGIN = "test.example/village/000000000000"
FIXED_TIME = datetime(2025, 1, 15, 8, 0, tzinfo=timezone.utc)
FIXED_TIME_TEXT = "2025-01-15T08:00:00.000000Z"
PROCESS_COUNT = 3
WRITES_PER_PROCESS = 20
EVENTS_PER_WRITE = 2


def conformance_signer() -> EntrySigner:
    """The fixed test signer: deterministic Ed25519 signatures make every leaf reproducible."""
    return EntrySigner(
        name=CONFORMANCE_SIGNER_NAME, private_key=Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    )


def fixed_clock() -> datetime:
    return FIXED_TIME


class DefaultSigning:
    """Mix in before a chained recorder class so callers that know nothing of signing (eventsourcing's own
    recorder tests) still write signed entries. Test use only: production recorders refuse unsigned writes."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        kwargs.setdefault("signer", conformance_signer())
        kwargs.setdefault("origin", CONFORMANCE_ORIGIN)
        return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]


def new_events(count: int, *, topic: str = "ledger/Tested", originator_id: UUID | None = None) -> list[StoredEvent]:
    """Events 1..count of one (new) originator, with distinct state bytes."""
    originator_id = originator_id or uuid4()
    return [
        StoredEvent(
            originator_id=originator_id,
            originator_version=version,
            topic=topic,
            state=f'{{"n":{version},"of":"{originator_id}"}}'.encode(),
        )
        for version in range(1, count + 1)
    ]


def verify_chain(
    records: Sequence[LogRecord], *, signer: EntrySigner, origin: str, start: int = 0
) -> list[dict[str, Any]]:
    """Assert records are the entries start.. of a well-formed chain; return their decoded fields."""
    assert [r.seq for r in records] == list(range(start, start + len(records)))
    fields = []
    prev = GENESIS_PREV if start == 0 else None
    for record in records:
        parsed = parse_leaf(record.leaf)
        assert parsed.seq == record.seq
        if prev is not None:
            assert parsed.prev == prev, f"seq {record.seq} does not link to its predecessor"
        assert record.leaf_hash == leaf_hash(record.leaf)
        assert verify_entry_signature(signer.public_key_bytes, parsed), f"bad signature at seq {record.seq}"
        assert parsed.fields["signer"] == signer.label
        assert parsed.fields["origin"] == origin
        assert record.state is not None, f"seq {record.seq} has no stored event"
        assert parsed.state_digest == state_hash(record.state)
        prev = record.leaf_hash
        fields.append(parsed.fields)
    return fields


def assert_chain_covers_events(recorder: ChainedRecorder, *, signer: EntrySigner, origin: str) -> int:
    """The log verifies and holds exactly the stored events, in notification order; returns the count."""
    fields = verify_chain(list(recorder.read_log()), signer=signer, origin=origin)
    notifications = recorder.select_notifications(start=None, limit=len(fields) + 1)
    assert [(f["id"], f["version"]) for f in fields] == [
        (str(n.originator_id), n.originator_version) for n in notifications
    ]
    return len(fields)


def _write_from_process(env: dict[str, str], writes: int, origin: str, start: Event) -> None:
    factory = InfrastructureFactory.construct({**env, "CREATE_TABLE": "no"})
    try:
        recorder = factory.application_recorder()
        signer = conformance_signer()
        start.wait()
        for _ in range(writes):
            recorder.insert_events(new_events(EVENTS_PER_WRITE), signer=signer, origin=origin)
    finally:
        factory.close()


def run_writer_processes(
    env: dict[str, str],
    *,
    processes: int = PROCESS_COUNT,
    writes: int = WRITES_PER_PROCESS,
    origin: str = CONFORMANCE_ORIGIN,
    timeout: float = 120.0,
) -> None:
    """Write EVENTS_PER_WRITE events per write from several spawned processes at once; tables must exist."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=_write_from_process, args=(env, writes, origin, start), name=f"ledger-writer-{i}")
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout)
    stuck = [w.name for w in workers if w.exitcode is None]
    for worker in workers:
        if worker.exitcode is None:
            worker.terminate()
            worker.join()
    failed = {w.name: w.exitcode for w in workers if w.exitcode != 0}
    assert not stuck, f"writer processes still running after {timeout}s: {stuck}"
    assert not failed, f"writer processes failed (exit codes; tracebacks on stderr): {failed}"


class ChainedRecorderConformance(ABC):
    """What every chained recorder must do; see DESIGN.md "Log format v1" and docs/ARCHITECTURE.md."""

    THREADS = 4
    WRITES_PER_THREAD = 25

    @abstractmethod
    def create_recorder(self) -> ChainedRecorder:
        """A chained recorder on a fresh, empty ledger (tables created); the same ledger on repeated calls."""

    @abstractmethod
    def persistence_env(self) -> dict[str, str]:
        """eventsourcing environment variables for the ledger create_recorder() uses."""

    @abstractmethod
    def execute_sql(self, recorder: ChainedRecorder, statement: str) -> None:
        """Run one statement in a committed transaction; ``{log}`` and ``{events}`` name the two tables."""

    def write(self, recorder: ChainedRecorder, events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        kwargs.setdefault("signer", conformance_signer())
        kwargs.setdefault("origin", CONFORMANCE_ORIGIN)
        return recorder.insert_events(events, **kwargs)

    def test_chain_of_writes_verifies(self) -> None:
        recorder = self.create_recorder()
        signer = conformance_signer()
        writes = [new_events(1), new_events(3, topic="ledger/Other"), new_events(2)]
        for events in writes:
            self.write(recorder, events, clock=fixed_clock)

        assert recorder.log_size() == 6
        records = list(recorder.read_log())
        fields = verify_chain(records, signer=signer, origin=CONFORMANCE_ORIGIN)
        stored = [event for events in writes for event in events]
        assert [(f["id"], f["version"], f["topic"]) for f in fields] == [
            (str(e.originator_id), e.originator_version, e.topic) for e in stored
        ]
        assert [r.state for r in records] == [e.state for e in stored]
        # Byte-exact against an independent encoding: same fields, same order, same deterministic signature.
        prev = GENESIS_PREV
        for seq, (record, event) in enumerate(zip(records, stored, strict=True)):
            entry = encode_entry(
                origin=CONFORMANCE_ORIGIN,
                seq=seq,
                prev=prev,
                time=FIXED_TIME_TEXT,
                signer=signer.label,
                originator_id=str(event.originator_id),
                version=event.originator_version,
                topic=event.topic,
                state_digest=state_hash(event.state),
            )
            assert record.leaf == entry + signer.sign(entry)
            prev = record.leaf_hash

    def test_writes_by_signers_in_turn_are_each_signed_by_its_own_key(self) -> None:
        recorder = self.create_recorder()
        clerk = conformance_signer()
        treasurer = EntrySigner(
            name=CONFORMANCE_SIGNER_NAME.replace("clerk", "treasurer"),
            private_key=Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64))),
        )
        turns = [clerk, treasurer, clerk, treasurer]
        for signer in turns:
            self.write(recorder, new_events(1), signer=signer, clock=fixed_clock)
        records = list(recorder.read_log())
        for seq, (record, signer) in enumerate(zip(records, turns, strict=True)):
            verify_chain([record], signer=signer, origin=CONFORMANCE_ORIGIN, start=seq)

    def test_notification_ids_are_returned(self) -> None:
        recorder = self.create_recorder()
        assert self.write(recorder, new_events(2)) == [1, 2]
        assert self.write(recorder, new_events(3)) == [3, 4, 5]
        assert recorder.max_notification_id() == 5
        assert recorder.log_size() == 5

    def test_default_clock_is_utc_now(self) -> None:
        recorder = self.create_recorder()
        before = datetime.now(timezone.utc)
        self.write(recorder, new_events(1))
        after = datetime.now(timezone.utc)
        (record,) = recorder.read_log()
        time = datetime.strptime(parse_leaf(record.leaf).fields["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert before <= time.replace(tzinfo=timezone.utc) <= after

    def test_write_without_signer_or_origin_writes_nothing(self) -> None:
        recorder = self.create_recorder()
        events = new_events(2)
        with pytest.raises(ValueError, match="without signer"):
            recorder.insert_events(events, origin=CONFORMANCE_ORIGIN)
        with pytest.raises(ValueError, match="without origin"):
            recorder.insert_events(events, signer=conformance_signer())
        with pytest.raises(ValueError, match="without signer"):
            recorder.insert_events(events)
        assert recorder.log_size() == 0
        assert recorder.max_notification_id() is None
        assert recorder.select_events(events[0].originator_id) == []

    def test_write_of_no_events_needs_no_signer_and_writes_nothing(self) -> None:
        recorder = self.create_recorder()
        recorder.insert_events([])
        assert recorder.log_size() == 0
        assert recorder.max_notification_id() is None

    def test_naive_clock_writes_nothing(self) -> None:
        recorder = self.create_recorder()
        events = new_events(1)
        with pytest.raises(ValueError, match="timezone-aware"):
            self.write(recorder, events, clock=lambda: datetime(2025, 1, 15, 8, 0))
        assert recorder.log_size() == 0
        assert recorder.max_notification_id() is None
        assert recorder.select_events(events[0].originator_id) == []

    def test_failed_write_leaves_no_events_and_no_entries(self) -> None:
        recorder = self.create_recorder()
        first = new_events(1)
        self.write(recorder, first)
        fresh = new_events(2)
        with pytest.raises(IntegrityError):
            self.write(recorder, [*fresh, first[0]])
        assert recorder.log_size() == 1
        assert recorder.max_notification_id() == 1
        assert recorder.select_events(fresh[0].originator_id) == []

        # The chain resumes from the last committed entry: the failed write left no hole and no dangling head.
        self.write(recorder, fresh)
        assert recorder.log_size() == 3
        fields = verify_chain(list(recorder.read_log()), signer=conformance_signer(), origin=CONFORMANCE_ORIGIN)
        assert [(f["id"], f["version"]) for f in fields] == [
            (str(e.originator_id), e.originator_version) for e in [*first, *fresh]
        ]

    def test_origin_mismatch_refused(self) -> None:
        recorder = self.create_recorder()
        self.write(recorder, new_events(1))
        other = new_events(1)
        with pytest.raises(OriginMismatchError, match="test.example/village/999999999999"):
            self.write(recorder, other, origin="test.example/village/999999999999")
        assert recorder.log_size() == 1
        assert recorder.max_notification_id() == 1
        assert recorder.select_events(other[0].originator_id) == []
        self.write(recorder, other)
        assert recorder.log_size() == 2

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE {log} SET originator_version = originator_version + 100",
            "UPDATE {log} SET leaf_hash = leaf_hash",
            "DELETE FROM {log}",
            "DELETE FROM {log} WHERE seq = 1",
            "UPDATE {events} SET state = state",
            "UPDATE {events} SET topic = 'forged'",
            "DELETE FROM {events}",
            "DELETE FROM {events} WHERE originator_version = 2",
        ],
    )
    def test_update_and_delete_refused(self, statement: str) -> None:
        recorder = self.create_recorder()
        self.write(recorder, new_events(2))
        before = list(recorder.read_log())
        with pytest.raises(IntegrityError, match="append-only"):
            self.execute_sql(recorder, statement)
        assert list(recorder.read_log()) == before
        assert recorder.max_notification_id() == 2

    def test_concurrent_threads_never_fork_or_gap(self) -> None:
        recorder = self.create_recorder()
        barrier = threading.Barrier(self.THREADS)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                barrier.wait()
                for _ in range(self.WRITES_PER_THREAD):
                    self.write(recorder, new_events(EVENTS_PER_WRITE))
            except BaseException as exc:  # noqa: BLE001 - reported by the asserting thread below
                errors.append(exc)

        threads = [threading.Thread(target=writer) for _ in range(self.THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

        total = self.THREADS * self.WRITES_PER_THREAD * EVENTS_PER_WRITE
        assert recorder.log_size() == total
        assert assert_chain_covers_events(recorder, signer=conformance_signer(), origin=CONFORMANCE_ORIGIN) == total
        self.assert_writes_not_interleaved(recorder)

    def test_concurrent_processes_never_fork_or_gap(self) -> None:
        recorder = self.create_recorder()
        run_writer_processes(self.persistence_env())
        total = PROCESS_COUNT * WRITES_PER_PROCESS * EVENTS_PER_WRITE
        assert recorder.log_size() == total
        assert assert_chain_covers_events(recorder, signer=conformance_signer(), origin=CONFORMANCE_ORIGIN) == total
        self.assert_writes_not_interleaved(recorder)

    @staticmethod
    def assert_writes_not_interleaved(recorder: ChainedRecorder) -> None:
        # Every write here is one originator's versions 1..EVENTS_PER_WRITE, so they must sit in a run.
        fields = [parse_leaf(record.leaf).fields for record in recorder.read_log()]
        for index in range(0, len(fields), EVENTS_PER_WRITE):
            run = fields[index : index + EVENTS_PER_WRITE]
            assert {f["id"] for f in run} == {run[0]["id"]}
            assert [f["version"] for f in run] == list(range(1, EVENTS_PER_WRITE + 1))

    def test_read_log_streams_in_batches_with_start_and_stop(self) -> None:
        recorder = self.create_recorder()
        for count in (3, 4):
            self.write(recorder, new_events(count))
        recorder.read_batch_size = 3
        batches: list[tuple[int, int | None, int]] = []
        select_log_batch = recorder._select_log_batch

        def counting(start: int, stop: int | None, limit: int) -> list[LogRecord]:
            batches.append((start, stop, limit))
            return select_log_batch(start, stop, limit)

        recorder._select_log_batch = counting  # type: ignore[method-assign]

        stream = recorder.read_log()
        assert next(stream).seq == 0
        assert batches == [(0, None, 3)]
        assert [r.seq for r in stream] == [1, 2, 3, 4, 5, 6]
        assert batches == [(0, None, 3), (3, None, 3), (6, None, 3)]

        batches.clear()
        assert [r.seq for r in recorder.read_log(2, 5)] == [2, 3, 4]
        assert batches == [(2, 5, 3)]
        assert [r.seq for r in recorder.read_log(start=5)] == [5, 6]
        assert [r.seq for r in recorder.read_log(stop=4)] == [0, 1, 2, 3]
        assert [r.seq for r in recorder.read_log(0, 100)] == [0, 1, 2, 3, 4, 5, 6]
        assert list(recorder.read_log(7)) == []
        assert list(recorder.read_log(4, 4)) == []
        with pytest.raises(ValueError, match="non-negative"):
            list(recorder.read_log(-1))
        verify_chain(list(recorder.read_log(4)), signer=conformance_signer(), origin=CONFORMANCE_ORIGIN, start=4)

    def test_entries_survive_reopening(self) -> None:
        recorder = self.create_recorder()
        self.write(recorder, new_events(2))
        reopened = self.create_recorder()
        self.write(reopened, new_events(1))
        assert reopened.log_size() == 3
        assert assert_chain_covers_events(recorder, signer=conformance_signer(), origin=CONFORMANCE_ORIGIN) == 3

    def test_select_event_rows_of_topics_from_start_before_stop(self) -> None:
        recorder = self.create_recorder()
        written = [new_events(2), new_events(3, topic="ledger/Other"), new_events(2), new_events(1, topic="ledger/Other")]
        ids = self.write(recorder, [event for events in written for event in events])
        assert ids is not None and len(ids) == 8
        rows = [
            (notification_id, str(event.originator_id), event.originator_version, event.topic, event.state)
            for notification_id, event in zip(ids, (e for events in written for e in events), strict=True)
        ]
        tested = [row for row in rows if row[3] == "ledger/Tested"]
        assert recorder.select_event_rows(ids[0], 100, ("ledger/Tested",)) == tested
        assert recorder.select_event_rows(ids[1], 2, ("ledger/Tested",)) == tested[1:3]
        assert recorder.select_event_rows(ids[0], 100, ("ledger/Tested", "ledger/Other"), stop=ids[6]) == rows[:6]
        assert recorder.select_event_rows(ids[2], 100, ("ledger/Other",), stop=ids[7] + 1) == rows[2:5] + rows[7:]
        assert recorder.select_event_rows(ids[7] + 1, 100, ("ledger/Tested", "ledger/Other")) == []

    def test_no_fork_while_another_thread_runs(self) -> None:
        recorder = self.create_recorder()
        release = threading.Event()
        other = threading.Thread(target=release.wait)
        other.start()
        try:
            assert recorder.forks_safely() is False
        finally:
            release.set()
            other.join()

    def test_select_events_of_many_aggregates(self) -> None:
        recorder = self.create_recorder()
        # More ids than one SQLite `IN (...)` list holds, so the chunks must join up.
        writes = [new_events(n % 3 + 1) for n in range(2 * IDS_PER_SELECT + 40)]
        self.write(recorder, [event for events in writes for event in events])
        wanted = writes[::2]
        found = recorder.select_events_of([events[0].originator_id for events in wanted] + [uuid4()])
        runs = [e.originator_id for i, e in enumerate(found) if i == 0 or found[i - 1].originator_id != e.originator_id]
        assert len(runs) == len(set(runs)) == len(wanted)
        by_originator: dict[UUID, list[StoredEvent]] = {}
        for event in found:
            by_originator.setdefault(event.originator_id, []).append(event)
        assert {
            originator: [(e.originator_version, e.topic, e.state) for e in run] for originator, run in by_originator.items()
        } == {events[0].originator_id: [(e.originator_version, e.topic, e.state) for e in events] for events in wanted}
        assert recorder.select_events_of([uuid4()]) == []

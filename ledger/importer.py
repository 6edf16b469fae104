"""Import a JSON Lines journal: check the whole file first, then apply records in order, each stored whole or not at all."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from .domain.journal import Record, journal_record_adapter
from .domain.validation import Rejected
from .store.application import BatchRejected, LedgerApplication, WriteConflict, WritePipeline


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """A journal line that cannot be imported: where it is, which field, and why."""

    path: str
    line: int
    record_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        record = f" (id {self.record_id})" if self.record_id else ""
        subject = f"{self.field}: " if self.field else ""
        return f"{where}{record}: {subject}{self.message}"


@dataclass
class ImportResult:
    applied: int = 0
    skipped: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class NumberedRecord:
    line: int
    record: Record


def _location(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc[1:]:  # loc[0] is the record type chosen by the discriminator
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def read_journal(path: Path) -> tuple[list[NumberedRecord], list[ImportProblem]]:
    """Parse and validate every line; duplicate ids within the file are problems too."""
    records: list[NumberedRecord] = []
    problems: list[ImportProblem] = []
    first_line_of: dict[str, int] = {}
    name = str(path)
    with open(path, "rb") as journal:
        for number, line in enumerate(journal, start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(ImportProblem(name, number, None, "", f"not UTF-8: byte {exc.start + 1} of the line"))
                continue
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(ImportProblem(name, number, None, "", f"not valid JSON: {exc.msg} at column {exc.colno}"))
                continue
            record_id = raw.get("id") if isinstance(raw, dict) else None
            record_id = record_id if isinstance(record_id, str) else None
            try:
                record = journal_record_adapter.validate_python(raw)
            except ValidationError as exc:
                for error in exc.errors():
                    message = error["msg"].removeprefix("Value error, ")
                    problems.append(ImportProblem(name, number, record_id, _location(error["loc"]), message))
                continue
            if record.id in first_line_of:
                problems.append(
                    ImportProblem(name, number, record.id, "id", f"duplicate id; first used on line {first_line_of[record.id]}")
                )
                continue
            first_line_of[record.id] = number
            records.append(NumberedRecord(number, record))
    return records, problems


def import_journal(
    app: LedgerApplication,
    path: Path,
    *,
    batch_size: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a journal. Stops at the first refused record: later records may depend on it.

    Records before it are stored; re-running the import after fixing the line skips them by id. A journal of
    several batches into a SQLite ledger is written through a WritePipeline: each batch is signed and stored by a
    writer process while the next one is checked.
    """
    with _collector_paused():
        records, problems = read_journal(path)
    if problems:
        return ImportResult(problems=problems)
    with _frozen_out_of_collections():
        return _import_records(app, path, records, batch_size, progress)


def _import_records(
    app: LedgerApplication,
    path: Path,
    records: list[NumberedRecord],
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> ImportResult:
    """Apply the records of a journal read without problems, batch by batch (import_journal)."""
    result = ImportResult()
    batches = [records[start : start + batch_size] for start in range(0, len(records), batch_size)]
    stored = 0

    def on_stored(outcomes: list[str]) -> None:
        nonlocal stored
        _count(result, outcomes)
        stored += len(outcomes)
        if progress:
            progress(stored, len(records))

    with _write_pipeline(app, len(batches), on_stored) as pipeline:
        index = 0
        submitted = None  # the batch the pipeline is writing, or wrote last
        again = False  # execute batches[index] without the pipeline: its pipelined write met another writer
        while True:
            try:
                if index == len(batches):
                    if pipeline is not None:
                        pipeline.settle()
                    return result
                batch = [n.record for n in batches[index]]
                if pipeline is None or again:
                    on_stored(app.execute_batch(batch))
                    again = False
                else:
                    app.execute_batch(batch, pipeline=pipeline)
                    submitted = index
                index += 1
            except WriteConflict:
                index, again = submitted, True
            except BatchRejected as refusal:
                if pipeline is not None:
                    try:
                        pipeline.settle()  # the batch before may have been void, and this one refused for it
                    except WriteConflict:
                        index, again = submitted, True
                        continue
                accepted = batches[index][: refusal.index]
                if accepted:
                    on_stored(app.execute_batch([n.record for n in accepted]))
                bad = batches[index][refusal.index]
                result.problems = [
                    ImportProblem(str(path), bad.line, bad.record.id, p.field, p.message) for p in refusal.rejected.problems
                ]
                return result


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a journal's records are built: all of them are kept, so a collection
    would free nothing, yet each would walk every record built so far."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def _frozen_out_of_collections() -> Iterator[None]:
    """Every object alive now, the journal's records among them, left out of the collector's passes until the import
    ends. The records live until then, and each full collection walked them all: a fifth of a 10-year import's time.
    Objects freed meanwhile are freed as ever; only cycles among them wait for the end. A host that freezes objects
    itself (before forking workers, say) is left as it is: unfreezing would undo its freeze."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _write_pipeline(
    app: LedgerApplication, batches: int, on_stored: Callable[[list[str]], None]
) -> WritePipeline | nullcontext[None]:
    """A WritePipeline when there is a next batch to check while one is written and a forked process may write the
    ledger; else nothing (batches are stored by this process)."""
    if batches < 2 or not app.recorder.forks_safely():
        return nullcontext()
    return WritePipeline(app, on_stored)


def _count(result: ImportResult, outcomes: list[str]) -> None:
    result.applied += outcomes.count("applied")
    result.skipped += outcomes.count("skipped")


__all__ = ["ImportProblem", "ImportResult", "Rejected", "import_journal", "read_journal"]

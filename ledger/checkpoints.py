"""Checkpoints of a ledger's log and the month-close flow: sign, gather witness cosignatures, record in the log.

The tree is the RFC 9162 tree over the leaf hashes stored in `ledger_log`; the checkpoint is the C2SP note
(origin, size, root) signed by the ledger's log key (TLOG.md §3), and each witness adds a cosignature/v1 line
(TLOG.md §4, §5). The cosigned note is then stored as a `Ledger.CheckpointRecorded` event, so that publication
is itself in the log: the verifier and the disclosure read the `note` field of those events.

Month close (TLOG.md §6.4): after a period_close record, `close_month_checkpoint` signs the log at its current
size, asks every witness for a cosignature (retrying once from the size a witness reports with 409) and records
the result for that period.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from .crypto.checkpoint import Checkpoint, CosignatureV1Verifier, open_checkpoint
from .crypto.keys import ROLE_LOG, ROLE_WITNESS, KeyFile, generate_key_file
from .crypto.logformat import key_id, parse_leaf, unb64
from .crypto.merkle import EMPTY_ROOT, ProofError, StreamingRoot, SubtreeHash, consistency_proof, node_hash
from .crypto.note import Ed25519Signer, NoteSignature, format_note, parse_note, parse_signature_lines, sign_note
from .domain.aggregates import Ledger, Period
from .domain.model import load_state
from .domain.validation import Problem, Rejected
from .store.application import LedgerApplication
from .store.recorders import LogRecord
from .witness import HTTPWitness, OldSizeMismatch, Witness, WitnessError, init_witness_state

CHECKPOINT_TOPIC = Ledger.CheckpointRecorded.TOPIC
PERIOD_CLOSED_TOPIC = Period.Closed.TOPIC
# One retry after a 409 is enough: the witness told us its size, and the proof is rebuilt from it.
_CONFLICT_ATTEMPTS = 2
# How far back from the log's end a month's close is looked for (~25 ms to read and parse): a village's month
# of entries is a few hundred, so a month disclosed by its deadline, a few weeks after its close, is found there.
_RECENT_ENTRIES = 1024


class CheckpointFlowError(RuntimeError):
    """The checkpoint could not be signed, cosigned or recorded; nothing was recorded."""


class CosigningWitness(Protocol):
    """What the flow needs of a witness: witness.Witness (offline, local state) and witness.HTTPWitness."""

    @property
    def name(self) -> str: ...

    def add_checkpoint(self, note: str, old_size: int, proof: Sequence[bytes]) -> str: ...


# -- the tree over the stored leaf hashes ---------------------------------------------------------------------------


def leaf_hashes(app: LedgerApplication, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """The stored leaf hashes of entries start <= seq < stop, in seq order, through the recorder's batched reader."""
    for record in app.recorder.read_log(start, stop):
        yield bytes(record.leaf_hash)


def tree_root(app: LedgerApplication, size: int, start: int = 0) -> bytes:
    """MTH(D[start:size]) streamed from the store; refuses a range the log does not hold."""
    stream = StreamingRoot()
    for leaf in leaf_hashes(app, start, size):
        stream.append(leaf)
    if stream.size != size - start:
        raise CheckpointFlowError(
            f"{app.location}: the log holds {start + stream.size} entries, fewer than the {size} asked for"
        )
    return stream.root()


def stored_subtree_hash(app: LedgerApplication) -> SubtreeHash:
    """A merkle.SubtreeHash reading each subtree's leaf hashes from the store (O(log n) ranges per proof)."""
    return lambda start, end: tree_root(app, end, start)


def log_consistency_proof(app: LedgerApplication, old_size: int, new_size: int) -> tuple[bytes, ...]:
    """RFC 9162 consistency proof between two sizes of this ledger's log, from the stored leaf hashes."""
    return consistency_proof(old_size, new_size, stored_subtree_hash(app))


def memoized_subtree_hash(hashes: Sequence[bytes]) -> SubtreeHash:
    """A SubtreeHash over leaf hashes held in memory that computes each subtree once.

    For checkpointing many sizes of one log in a row: successive trees share their complete left subtrees, so
    the months of a year cost about one pass over the leaves instead of one pass per root and per proof.
    """
    known: dict[tuple[int, int], bytes] = {}

    def subtree_hash(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(hashes):
            raise ProofError(f"subtree [{start}, {end}) is outside the {len(hashes)} leaves")
        if end - start == 1:
            return hashes[start]
        found = known.get((start, end))
        if found is None:
            # RFC 9162 split: the left part is the largest power of two smaller than the range.
            k = 1 << ((end - start - 1).bit_length() - 1)
            found = known[(start, end)] = node_hash(subtree_hash(start, start + k), subtree_hash(start + k, end))
        return found

    return subtree_hash


def _root(tree: SubtreeHash, size: int) -> bytes:
    return tree(0, size) if size else EMPTY_ROOT


# -- signing ----------------------------------------------------------------------------------------------------------


def check_log_key(app: LedgerApplication, log_key: KeyFile) -> None:
    """The key must be this ledger's registered, unrevoked log key, named after the origin (TLOG.md §6.1)."""
    origin = app.origin
    if log_key.role != ROLE_LOG:
        raise Rejected([Problem("key", f"密钥角色应为 log / key {log_key.name!r} has role {log_key.role!r}, not {ROLE_LOG!r}")])
    if log_key.name != origin:
        raise Rejected([Problem("key", f"日志密钥名须为账簿标识 / log key {log_key.name!r} must be named after the origin {origin!r}")])
    kid = key_id(log_key.name, log_key.public_key).hex()
    if app.ledger().active_key(log_key.name, kid, ROLE_LOG) is None:
        raise Rejected([
            Problem("key", f"日志密钥未登记或已吊销 / log key {log_key.name}+{kid} is not a registered, unrevoked log key of {origin}")
        ])


def sign_checkpoint(
    app: LedgerApplication, log_key: KeyFile, size: int | None = None, tree: SubtreeHash | None = None
) -> tuple[Checkpoint, str]:
    """The checkpoint of the log at `size` (default: its current size) and its note signed by the log key.

    `tree` defaults to the stored leaf hashes; bulk callers pass memoized_subtree_hash over hashes read once.
    """
    check_log_key(app, log_key)
    size = app.recorder.log_size() if size is None else size
    checkpoint = Checkpoint(app.origin, size, _root(tree or stored_subtree_hash(app), size))
    note = sign_note(checkpoint.text, [Ed25519Signer(log_key.name, log_key.private_key)])
    return checkpoint, note


# -- recorded checkpoints ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCheckpoint:
    """A CheckpointRecorded event as read back from the log."""

    size: int
    root_hash: bytes
    note: str
    period: str | None


def recorded_checkpoints(app: LedgerApplication) -> list[RecordedCheckpoint]:
    """Every checkpoint recorded in the log, in log order."""
    found = []
    for notification in app.notifications((CHECKPOINT_TOPIC,)):
        state = load_state(notification.state)
        found.append(
            RecordedCheckpoint(state["size"], unb64(state["root_hash"], size=32, what="root_hash"), state["note"], state["period"])
        )
    return found


def checkpoints(app: LedgerApplication) -> list[str]:
    """The recorded checkpoint notes, in log order, exactly as published."""
    return [c.note for c in recorded_checkpoints(app)]


def cosigned_checkpoint_for_period(app: LedgerApplication, period: str) -> str | None:
    """The note recorded for that month's close, or None if the month has no checkpoint of its own.

    The flow records a month's checkpoint only after the month's close entry (checkpoint_and_record refuses an
    open month). A month disclosed soon after its close finds that entry among the log's newest entries, read
    backwards, and costs the same however long the history; an older month falls back to reading every
    checkpoint event, a scan of the whole events table (which has no topic index).
    """
    try:
        month = app.repository.get(app.id_of("period", period))
    except AggregateNotFoundError:
        return None
    if not month.closed:
        return None
    close_id, found = str(month.id), None
    for record in _newest_entries(app, _RECENT_ENTRIES):
        fields = parse_leaf(record.leaf).fields
        if fields["topic"] == CHECKPOINT_TOPIC and record.state is not None:  # None: an event row gone missing
            state = load_state(record.state)
            if state["period"] == period:
                found = state["note"]  # reading backwards, the last one found is the first recorded
        elif fields["topic"] == PERIOD_CLOSED_TOPIC and fields["id"] == close_id:
            return found
    return next((c.note for c in recorded_checkpoints(app) if c.period == period), None)


def _newest_entries(app: LedgerApplication, count: int, first_batch: int = 64) -> Iterator[LogRecord]:
    """Up to `count` of the log's newest entries, newest first, read in ranges doubling from `first_batch`."""
    stop = app.recorder.log_size()
    oldest, batch = max(stop - count, 0), first_batch
    while stop > oldest:
        start = max(stop - batch, oldest)
        yield from reversed(list(app.recorder.read_log(start, stop)))
        stop, batch = start, batch * 2


# -- gathering cosignatures -------------------------------------------------------------------------------------------


def gather_cosignatures(
    tree: SubtreeHash, note: str, checkpoint: Checkpoint, witnesses: Sequence[CosigningWitness], old_size_hint: int
) -> tuple[list[NoteSignature], list[str]]:
    """Ask each witness; returns (cosignature lines gathered, one failure description per witness that refused)."""
    gathered: list[NoteSignature] = []
    failures: list[str] = []
    for witness in witnesses:
        old_size = min(old_size_hint, checkpoint.size)
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                proof = consistency_proof(old_size, checkpoint.size, tree)
                lines = witness.add_checkpoint(note, old_size, proof)
            except OldSizeMismatch as conflict:
                if conflict.size > checkpoint.size:
                    # The witness has cosigned a larger tree of this origin than the log now holds.
                    raise CheckpointFlowError(
                        f"见证方 {witness.name} 已见证 {conflict.size} 条, 账簿只有 {checkpoint.size} 条: 日志可能被截断 / "
                        f"witness {witness.name} has cosigned size {conflict.size} but the log has only "
                        f"{checkpoint.size} entries: the log was truncated or rolled back"
                    ) from None
                if attempt == _CONFLICT_ATTEMPTS - 1:
                    failures.append(f"{witness.name}: {conflict}")
                old_size = conflict.size
                continue
            except (WitnessError, OSError) as exc:
                failures.append(f"{witness.name}: {exc}")
                break
            gathered.extend(parse_signature_lines(lines))
            break
    return gathered, failures


def checkpoint_and_record(
    app: LedgerApplication,
    log_key: KeyFile,
    witnesses: Sequence[CosigningWitness] = (),
    *,
    period: str | None = None,
    size: int | None = None,
    quorum: int | None = None,
    witness_vkeys: Sequence[str] = (),
    tree: SubtreeHash | None = None,
) -> str:
    """Sign the log at `size` (default: now), gather cosignatures, record the cosigned note; returns the note.

    `quorum` is how many witnesses must cosign (default: all of them); below it nothing is recorded, so the
    month can be checkpointed again once the missing witness is back. Every cosignature whose witness vkey is in
    `witness_vkeys` must verify; lines from other keys are kept for the verifier's policy to judge.
    """
    if app.signer is None:
        raise PermissionError("recording a checkpoint needs the ledger opened with a signer key")
    if period is not None:
        _check_period(app, period)
    required = len(witnesses) if quorum is None else quorum
    if not 0 <= required <= len(witnesses):
        raise ValueError(f"quorum {required} is outside 0..{len(witnesses)} (the number of witnesses)")
    cosigners = [CosignatureV1Verifier.from_vkey(v) for v in witness_vkeys]
    tree = tree or stored_subtree_hash(app)
    checkpoint, note = sign_checkpoint(app, log_key, size, tree)
    previous = recorded_checkpoints(app)
    hint = previous[-1].size if previous else 0
    gathered, failures = gather_cosignatures(tree, note, checkpoint, witnesses, hint)
    if len(witnesses) - len(failures) < required:
        raise CheckpointFlowError(
            f"见证签名不足 / only {len(witnesses) - len(failures)} of {len(witnesses)} witnesses cosigned "
            f"{app.origin} at size {checkpoint.size} (quorum {required}); nothing recorded:\n" + "\n".join(failures)
        )
    signed = parse_note(note)
    cosigned = format_note(signed.text, (*signed.signatures, *dict.fromkeys(gathered)))
    try:
        open_checkpoint(cosigned, Ed25519Signer(log_key.name, log_key.private_key).verifier, cosigners)
    except ValueError as exc:
        raise CheckpointFlowError(f"a witness returned a cosignature that does not verify: {exc}") from None
    app.record_checkpoint(size=checkpoint.size, root_hash=checkpoint.root_hash, note=cosigned, period=period)
    return cosigned


def close_month_checkpoint(
    app: LedgerApplication,
    log_key: KeyFile,
    witnesses: Sequence[CosigningWitness],
    period: str,
    *,
    quorum: int | None = None,
    witness_vkeys: Sequence[str] = (),
) -> str:
    """The month-close flow, run after the period_close record of `period`: sign, gather, record."""
    return checkpoint_and_record(app, log_key, witnesses, period=period, quorum=quorum, witness_vkeys=witness_vkeys)


def _check_period(app: LedgerApplication, period: str) -> None:
    try:
        closed = app.repository.get(app.id_of("period", period)).closed
    except AggregateNotFoundError:
        closed = False
    if not closed:
        raise Rejected([Problem("period", f"{period} 尚未结账 / period {period} is not closed; checkpoint it after its period_close")])
    if cosigned_checkpoint_for_period(app, period) is not None:
        raise Rejected([Problem("period", f"{period} 已有检查点 / period {period} already has a recorded checkpoint")])


def closed_periods(app: LedgerApplication, hashes: list[bytes] | None = None) -> list[tuple[str, int]]:
    """(period, log size right after its close entry) of every closed month, in log order.

    If `hashes` is given, the leaf hashes read on the way are appended to it (one pass serves both).
    """
    closes = []
    for record in app.recorder.read_log():
        if hashes is not None:
            hashes.append(bytes(record.leaf_hash))
        fields = parse_leaf(record.leaf).fields
        if fields["topic"] == PERIOD_CLOSED_TOPIC:
            closes.append((UUID(fields["id"]), record.seq + 1))
    return [(app.repository.get(period_id).period, size) for period_id, size in closes]


# -- the demo's two witnesses -----------------------------------------------------------------------------------------

TOWNSHIP_WITNESS = "witness.township-agency.demo-county.example/v1"
COMMITTEE_WITNESS = "witness.supervision-committee.village-330100000000.demo-county.example/v1"


@dataclass(frozen=True)
class DemoCheckpoints:
    notes: dict[str, str]
    witness_vkeys: tuple[str, str]
    state_files: tuple[Path, Path]
    notes_dir: Path


def checkpoint_closed_months(
    app: LedgerApplication,
    log_key: KeyFile,
    witnesses: Sequence[CosigningWitness],
    *,
    witness_vkeys: Sequence[str] = (),
) -> dict[str, str]:
    """Checkpoint every closed month that has none yet, at the log size right after its close, oldest first.

    For a ledger whose journal was imported in bulk: each month is sealed as of its close. A month closed before
    the newest recorded checkpoint is already covered by it and gets none of its own (witnesses never go back).
    """
    recorded = recorded_checkpoints(app)
    done = {c.period for c in recorded}
    newest = recorded[-1].size if recorded else 0
    hashes: list[bytes] = []
    # The months' trees are all prefixes of the log as read now; the checkpoint events appended meanwhile lie beyond.
    tree = memoized_subtree_hash(hashes)
    notes = {}
    for period, size in closed_periods(app, hashes):
        if period in done or size < newest:
            continue
        notes[period] = checkpoint_and_record(
            app, log_key, witnesses, period=period, size=size, witness_vkeys=witness_vkeys, tree=tree
        )
        newest = size
    return notes


def demo_checkpoints(app: LedgerApplication, directory: Path, log_key: KeyFile, passphrase: str) -> DemoCheckpoints:
    """Seal every closed month of the demo ledger with two witnesses and write the notes to directory/checkpoints.

    The township agency (镇三资中心) runs as an HTTP witness on a loopback port for the duration; the supervision
    committee (村务监督委员会) cosigns offline from its own state file. Keys go to directory/keys, witness state
    to directory/witnesses (both recreated, like the rest of the demo).
    """
    keys, states, notes_dir = directory / "keys", directory / "witnesses", directory / "checkpoints"
    for folder in (keys, states, notes_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for stale in (*keys.glob("witness-*.key"), *states.glob("*.sqlite"), *notes_dir.glob("*.note")):
        stale.unlink()
    log_vkey = log_key.vkey()
    township_key = generate_key_file(TOWNSHIP_WITNESS, ROLE_WITNESS, keys / "witness-township.key", passphrase)
    committee_key = generate_key_file(COMMITTEE_WITNESS, ROLE_WITNESS, keys / "witness-committee.key", passphrase)
    township_state, committee_state = states / "township.sqlite", states / "committee.sqlite"
    for state in (township_state, committee_state):
        init_witness_state(state, app.origin, [log_vkey])
    township = Witness(township_state, township_key)
    committee = Witness(committee_state, committee_key)
    vkeys = (township_key.vkey(), committee_key.vkey())
    server = township.server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="township-witness", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        notes = checkpoint_closed_months(
            app, log_key, [HTTPWitness(f"http://{host}:{port}"), committee], witness_vkeys=vkeys
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    for period, note in notes.items():
        (notes_dir / f"{period}.note").write_text(note, "utf-8")
    return DemoCheckpoints(notes, vkeys, (township_state, committee_state), notes_dir)


__all__ = [
    "CheckpointFlowError",
    "CosigningWitness",
    "DemoCheckpoints",
    "RecordedCheckpoint",
    "checkpoint_and_record",
    "checkpoint_closed_months",
    "checkpoints",
    "close_month_checkpoint",
    "closed_periods",
    "cosigned_checkpoint_for_period",
    "demo_checkpoints",
    "leaf_hashes",
    "log_consistency_proof",
    "memoized_subtree_hash",
    "recorded_checkpoints",
    "sign_checkpoint",
    "tree_root",
]

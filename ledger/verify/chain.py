"""Full verification of a ledger: every entry of log format v1 (DESIGN.md), the RFC 9162 tree, and checkpoints.

Per entry, in seq order: strict parse, origin, seq, prev, state digest, signer key, tenure, Ed25519 signature.
Keys come from the log itself: the genesis entry's `keys` are valid from seq 0; a key registered at seq k is valid
from k+1; a key revoked at seq r is invalid from r+1. Only entries that pass every check change the verifier's
view of keys, officials and checkpoints, so a forged key event registers nothing.

Tenure rule. A key registered with a `holder` (an official id) signs for that official only while in office:
the entry's `time`, converted to the local date in China Standard Time (Asia/Shanghai, UTC+8 without daylight
saving since 1991), must not be before the official's `term_start` (ledger/Ledger/OfficialAppointed) nor after the
`handover_date` of the official's departure (ledger/Ledger/OfficialDeparted). As with keys, the verifier knows an
appointment or departure from the entry after the one recording it; an entry appended before the departure was
recorded is judged by the tenure known then (docs/THREATS.md says what this leaves open).

The tree: leaf hashes are streamed into an RFC 9162 tree; the root at every claimed checkpoint size is compared
with the checkpoint (checkpoints.py). The per-entry work that depends on no other entry (parse, hashes, local date,
signature: entries.py) runs on all cores (signatures.py); this module stitches the chain from its results in seq
order. With a state file the run resumes after the last checkpoint it verified (state.py).

Chain-only mode (signatures=False) does everything except the entries' Ed25519 signature checks; its summary says
"signatures not checked" and it never writes a state file.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import multiprocessing
from binascii import a2b_base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from multiprocessing.sharedctypes import RawArray
from pathlib import Path

from .ed25519 import verify_leaf
from ..crypto.logformat import GENESIS_PREV, SIGNATURE_SIZE, key_id, leaf_hash
from ..crypto.merkle import (
    EMPTY_ROOT,
    ProofError,
    StreamingRoot,
    consistency_proof,
    node_hash,
    verify_consistency,
)
from ..crypto.merkle import root as merkle_root
from ..crypto.note import Ed25519Verifier
from .bundle import key_line, listed_keys
from .checkpoints import CheckpointBook, Claim, Finding, claimed_size, short
from .policy import TrustPolicy
from .entries import WRITER_ENTRY, local_day, parse_entry, process
from .signatures import EntryPool, default_jobs
from .sources import CHECKPOINT_TOPIC, SourceEntry, open_source, sqlite_range_rows
from .state import StateError, VerifierState, load_state, save_state

GENESIS_TOPIC = "ledger/Ledger/Opened"
KEY_REGISTERED_TOPIC = "ledger/Ledger/KeyRegistered"
KEY_REVOKED_TOPIC = "ledger/Ledger/KeyRevoked"
OFFICIAL_APPOINTED_TOPIC = "ledger/Ledger/OfficialAppointed"
OFFICIAL_DEPARTED_TOPIC = "ledger/Ledger/OfficialDeparted"
# Entries that change what the verifier believes: their signatures are checked at once, in order.
CONFIG_TOPICS = frozenset(
    {GENESIS_TOPIC, KEY_REGISTERED_TOPIC, KEY_REVOKED_TOPIC, OFFICIAL_APPOINTED_TOPIC, OFFICIAL_DEPARTED_TOPIC, CHECKPOINT_TOPIC}
)
SIGNER_ROLE = "signer"
LOG_ROLE = "log"
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
# Below this many entries, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 4000
# The same for chain-only runs of SQLite logs (_ChainReader): some 5 µs of work per entry against a few
# milliseconds to fork a worker and see it exit.
CHAIN_PARALLEL_THRESHOLD = 2048
RANGES_PER_JOB = 16
MIN_RANGE_WIDTH = 64
MAX_RANGE_WIDTH = 4096

__all__ = ["Finding", "IntegrityError", "VerificationResult", "verify_entries", "verify_source"]


@dataclass
class VerificationResult:
    """What verification established. `intact` only when there are entries and no finding at all."""

    source: str
    origin: str | None = None
    entries: int = 0  # entries checked by this run
    size: int = 0  # entries in the log
    resumed_from: int = 0  # first seq checked (> 0 when a state file let the run skip verified entries)
    head: bytes = GENESIS_PREV
    root: bytes = b""
    checkpoints: int = 0  # checkpoint notes that verified against the policy and the recomputed tree
    verified_checkpoint: tuple[int, bytes] | None = None
    findings: list[Finding] = field(default_factory=list)
    signatures_checked: bool = True  # False in chain-only mode: entry signatures were not verified

    @property
    def intact(self) -> bool:
        return not self.findings and self.size > 0

    def summary(self) -> str:
        unchecked = "" if self.signatures_checked else " (chain only: signatures not checked)"
        if self.intact:
            resumed = f" (checked from seq {self.resumed_from})" if self.resumed_from else ""
            what = "intact" if self.signatures_checked else "chain intact, signatures not checked"
            return (
                f"{what}: {self.size} entries of {self.origin}, head {self.head.hex()[:16]}, "
                f"{self.checkpoints} checkpoint(s) verified{resumed}"
            )
        if self.size == 0 and not self.findings:
            return f"{self.source}: no entries to verify{unchecked}"
        return f"{len(self.findings)} finding(s) in {self.size} entries of {self.origin or self.source}{unchecked}"

    def raise_for_findings(self) -> None:
        if not self.intact:
            raise IntegrityError(self)


class IntegrityError(Exception):
    """The thin wrapper that turns a failed VerificationResult into an exception."""

    def __init__(self, result: VerificationResult):
        self.result = result
        super().__init__(result.summary() + "".join(f"\n{f}" for f in result.findings))


@dataclass
class _Key:
    public_key: bytes
    role: str
    valid_from: int
    revoked_at: int | None = None
    holder: str | None = None


class _KeyRing:
    """Keys as the log registers and revokes them, by their `name+keyid` label."""

    def __init__(self) -> None:
        self.keys: dict[str, _Key] = {}

    def add(self, spec: dict, valid_from: int) -> str | None:
        try:
            public = base64.b64decode(spec["public_key"], validate=True)
            name, role = spec["name"], spec["role"]
            holder = spec.get("holder")
        except (KeyError, TypeError, ValueError, AttributeError):
            return "malformed key registration"
        label = f"{name}+{key_id(name, public).hex()}"
        if key_id(name, public).hex() != spec.get("key_id"):
            return f"registered key id {spec.get('key_id')} does not match {label}"
        self.keys.setdefault(label, _Key(public, role, valid_from, None, holder))
        return None

    def revoke(self, spec: dict, seq: int) -> None:
        label = f"{spec.get('name')}+{spec.get('key_id')}"
        if label in self.keys and self.keys[label].revoked_at is None:
            self.keys[label].revoked_at = seq

    def check(self, label: str, seq: int) -> tuple[_Key | None, str | None]:
        key = self.keys.get(label)
        if key is None:
            return None, f"key {label} was never registered in this log"
        if key.valid_from > seq:
            return key, f"key {label} is registered only from seq {key.valid_from}"
        if key.revoked_at is not None and seq > key.revoked_at:
            return key, f"key {label} was revoked at seq {key.revoked_at}"
        if key.role != SIGNER_ROLE:
            return key, f"key {label} has role {key.role!r}, not {SIGNER_ROLE!r}"
        return key, None

    def log_verifiers(self, seq: int) -> list[Ed25519Verifier]:
        return [
            Ed25519Verifier(label.split("+", 1)[0], key.public_key)
            for label, key in self.keys.items()
            if key.role == LOG_ROLE and key.valid_from <= seq and (key.revoked_at is None or seq <= key.revoked_at)
        ]

    def to_json(self) -> dict:
        return {
            label: {"public_key": base64.b64encode(k.public_key).decode(), "role": k.role, "valid_from": k.valid_from,
                    "revoked_at": k.revoked_at, "holder": k.holder}
            for label, k in self.keys.items()
        }

    @classmethod
    def from_json(cls, data: dict) -> _KeyRing:
        ring = cls()
        for label, k in data.items():
            ring.keys[label] = _Key(base64.b64decode(k["public_key"]), k["role"], k["valid_from"], k["revoked_at"], k["holder"])
        return ring


@dataclass
class _Tenure:
    term_start: date | None = None
    handover: date | None = None


def local_date(time: str) -> date:
    """The entry's time as a date in China Standard Time; raises ValueError unless it is RFC 3339 UTC ('...Z')."""
    if not time.endswith("Z"):
        raise ValueError(f"time {time!r} is not UTC ('Z')")
    return datetime.fromisoformat(time).astimezone(CHINA_STANDARD_TIME).date()


@dataclass
class _Snapshot:
    """What the verifier believed just before the entry at `size`: enough to resume there."""

    size: int
    prev: bytes
    frontier: tuple[bytes, ...]
    ring: dict
    officials: dict


class _Run:
    """One verification pass over a source's entries."""

    def __init__(
        self,
        *,
        source_name: str,
        policy: TrustPolicy | None,
        jobs: int,
        progress: Callable[..., None] | None,
        total: int,
        state: VerifierState | None,
        wanted_sizes: Iterable[int] = (),
        signatures: bool = True,
    ):
        self.result = VerificationResult(source=source_name, signatures_checked=signatures)
        self.book = CheckpointBook(policy)
        self.signatures = signatures
        self.pool = EntryPool(jobs) if signatures and jobs > 1 else None
        self.progress, self.total = progress, total
        self._slot = itertools.count()
        self._findings: list[tuple[int, Finding]] = []
        self.wanted = set(wanted_sizes)
        self.roots: dict[int, bytes] = {}
        self.late_sizes: set[int] = set()
        self.snapshots: dict[int, _Snapshot] = {}
        self.last_checkpoint_size = -1
        self.state = state
        if state is None:
            self.ring, self.officials = _KeyRing(), {}
            self.prev, self.stream, self.expected_seq = GENESIS_PREV, StreamingRoot(), 0
            self.new_hashes = None
        else:
            self.result.origin = state.origin
            self.result.resumed_from = state.size
            self.ring = _KeyRing.from_json(state.ring)
            self.officials = {k: _Tenure(*(v and date.fromisoformat(v) for v in pair)) for k, pair in state.officials.items()}
            self.prev, self.stream, self.expected_seq = state.prev, StreamingRoot.from_frontier(state.size, state.frontier), state.size
            # The consistency proof from the remembered checkpoint needs the hashes of the entries after it.
            self.new_hashes = []

    def add(self, finding: Finding) -> None:
        self._findings.append((next(self._slot), finding))

    def findings(self) -> list[Finding]:
        return [f for _, f in sorted(self._findings, key=lambda pair: pair[0])]

    # -- entries -------------------------------------------------------------------------------------------------

    def run(self, batches: Iterable[Sequence[tuple[int, bytes, bytes | None]]]) -> None:
        """Check the rows (seq, leaf, state) of `batches`, in order."""
        result, progress = self.result, self.progress
        try:
            if self.pool is None:
                entry = self.entry
                for batch in batches:
                    for seq, leaf, state in batch:
                        entry(seq, leaf, state, process(seq, leaf, state, None))
                    result.entries += len(batch)
                    if progress:
                        progress(result.entries, self.total)
            else:
                for (seq, leaf, state), processed in self.pool.results(batches, self.known_keys):
                    self.entry(seq, leaf, state, processed)
                    result.entries += 1
                    if progress and result.entries % 1000 == 0:
                        progress(result.entries, self.total)
        finally:
            if self.pool is not None:
                self.pool.close()
        self.finish()

    def finish(self) -> None:
        if self.progress:
            self.progress(self.result.entries, self.total)
        self.result.size = self.stream.size
        self.result.head = self.prev
        self.result.root = self.stream.root()
        self.roots[self.stream.size] = self.result.root
        if self.stream.size in self.wanted:
            self.snapshot(self.stream.size)

    def run_chain_parallel(self, reader: _ChainReader) -> None:
        """Chain-only run over a SQLite source whose seqs are exactly 0..end-1, read and processed a range at a time
        (_chain_range) by this process and `reader`'s workers. Ordinary stretches of a range come back as their leaf
        hashes, subtree hash and (signer, day) spans and are accepted here after the checks that depend on earlier
        entries (prev, origin, keys, tenure); every other entry is stitched by entry() exactly as run() does. Rows
        past `end` (appended meanwhile) are read as run() reads them. The caller closes the reader: its workers'
        exit need not hold up the rest of the run."""
        for lo, hi, segments in reader.outcomes():
            for segment in segments:
                if segment[0]:
                    self.clean_segment(reader.source, *segment[1:])
                else:
                    entry = self.entry
                    for seq, state, processed in segment[1]:
                        entry(seq, b"", state, processed)
                    self.result.entries += len(segment[1])
            if self.progress:
                self.progress(self.result.entries, self.total)
        entry = self.entry
        for batch in reader.source.batches(reader.end):
            for seq, leaf, state in batch:
                entry(seq, leaf, state, process(seq, leaf, state, None))
            self.result.entries += len(batch)
        self.finish()

    def clean_segment(self, source, lo: int, hi: int, first_prev: bytes, origin: str, blob: bytes, top, spans) -> None:
        """Rows lo <= seq < hi that _chain_range found ordinary among themselves."""
        stream, wanted = self.stream, self.wanted
        if not (
            lo == self.expected_seq == stream.size and first_prev == self.prev and origin == self.result.origin
            and all(self.signer_ok(signer, a, day) and self.signer_ok(signer, b, day) for signer, day, a, b in spans)
        ):
            entry = self.entry
            for seq, leaf, state in source.rows(lo, hi):
                entry(seq, leaf, state, process(seq, leaf, state, None))
                self.result.entries += 1
            return
        n = hi - lo
        if top is not None and not any(lo <= size < hi for size in wanted):
            self.stream = _append_subtree(stream, top, n)
            self.prev = blob[-32:]
        else:
            for i in range(0, 32 * n, 32):
                if stream.size in wanted:
                    self.roots[stream.size] = stream.root()
                    self.snapshot(stream.size)
                digest = blob[i:i + 32]
                stream.append(digest)
                self.prev = digest
        self.expected_seq = hi
        self.result.entries += n

    def known_keys(self) -> dict[str, bytes]:
        return {label: key.public_key for label, key in self.ring.keys.items()}

    def entry(self, seq: int, leaf: bytes, state: bytes | None, processed: tuple) -> None:
        size = self.stream.size
        if size in self.wanted:
            self.roots[size] = self.stream.root()
            self.snapshot(size)
        _, digest, parsed, state_ok, day, verdict = processed
        if parsed.__class__ is str:
            self.add(Finding(seq, "parse", parsed))
        elif (
            # The common case, decided without building anything: every check below passes and nothing changes.
            parsed[0] == seq == self.expected_seq and parsed[1] == self.prev and state_ok
            and parsed[3] == self.result.origin and parsed[5] not in CONFIG_TOPICS
            and self.fast_entry(seq, leaf, parsed, day, verdict)
        ):
            pass
        else:
            self.check(seq, leaf, state, parsed, state_ok, day, verdict, size)
        self.expected_seq = seq + 1  # resynchronise so that one gap is one finding
        self.prev = digest
        self.stream.append(digest)
        if self.new_hashes is not None:
            self.new_hashes.append(digest)
        if self.state is not None and self.stream.size == self.state.head_size and digest != self.state.head:
            self.add(Finding(seq, "head", "this entry differs from the one the previous verification ended at"))

    def signer_ok(self, signer: str, seq: int, day) -> _Key | None:
        """The signer's key when it is valid at seq and, for a holder's key, `day` is within the holder's tenure."""
        key = self.ring.keys.get(signer)
        if key is None or key.valid_from > seq or (key.revoked_at is not None and seq > key.revoked_at) or key.role != SIGNER_ROLE:
            return None
        if key.holder is not None:
            tenure = self.officials.get(key.holder)
            if tenure is not None:
                if day.__class__ is str:
                    return None
                if (tenure.term_start is not None and day < tenure.term_start) or (tenure.handover is not None and day > tenure.handover):
                    return None
        return key

    def fast_entry(self, seq: int, leaf: bytes, parsed: tuple, day, verdict) -> bool:
        """True when the signer key, tenure and signature of an otherwise clean, ordinary entry all pass."""
        key = self.signer_ok(parsed[4], seq, day)
        if key is None:
            return False
        if not self.signatures:
            return True
        if verdict is not None and verdict[0] == key.public_key:
            return verdict[1]
        return False

    def check(
        self, seq: int, leaf: bytes, state: bytes | None, parsed: tuple, state_ok: bool | None, day, verdict, size: int
    ) -> None:
        fseq, claimed_prev, _, origin, signer, topic, time, eid, version = parsed
        fields = {"seq": fseq, "origin": origin, "signer": signer, "topic": topic, "time": time, "id": eid, "version": version}
        result = self.result
        clean = True

        def fail(check: str, detail: str) -> None:
            nonlocal clean
            clean = False
            self.add(Finding(seq, check, detail))

        if result.origin is None:
            result.origin = fields["origin"]
        if topic == GENESIS_TOPIC and seq != 0:
            fail("keys", "a genesis entry after seq 0")
        if fields["origin"] != result.origin:
            fail("origin", f"entry belongs to {fields['origin']!r}, not {result.origin!r}")
        if seq != self.expected_seq or fields["seq"] != seq:
            fail("seq", f"expected seq {self.expected_seq}, row {seq} claims {fields['seq']}")
        if claimed_prev != self.prev:
            fail("prev", f"prev {claimed_prev.hex()[:16]} does not match the previous leaf hash {self.prev.hex()[:16]}")
        event = None
        if state_ok is None:
            fail("state", f"no stored event {fields['id']} version {fields['version']}")
        elif not state_ok:
            fail("state", "stored event bytes do not hash to the signed state digest")
        elif topic in CONFIG_TOPICS:
            try:
                event = json.loads(state)
            except ValueError as exc:
                fail("event", f"{topic} state is not JSON: {exc}")
            if event is not None and not isinstance(event, dict):
                fail("event", f"{topic} state is not a JSON object")
                event = None
            if event is not None and seq == 0 and topic == GENESIS_TOPIC:
                # Genesis carries the first keys and is signed by one of them; it is anchored by the checkpoints
                # that witnesses cosign, not by anything earlier in the log.
                for spec in _list(event.get("keys")):
                    problem = self.ring.add(spec, 0)
                    if problem:
                        fail("keys", problem)
        key, problem = self.ring.check(fields["signer"], seq)
        if problem:
            fail("signer", problem)
        if key is not None and key.holder is not None:
            self.check_tenure(fields, day, key.holder, fail)
        if key is not None and self.signatures:
            if verdict is not None and verdict[0] == key.public_key:
                valid = verdict[1]
            else:
                valid = verify_leaf(key.public_key, leaf)
            if not valid:
                fail("signature", f"Ed25519 signature does not verify under {fields['signer']}")
        if clean and event is not None:
            self.apply(seq, size, topic, event)

    def check_tenure(self, fields: dict, day: date | str, holder: str, fail: Callable[[str, str], None]) -> None:
        tenure = self.officials.get(holder)
        if tenure is None:
            return
        if isinstance(day, str):
            fail("tenure", f"cannot place the entry in {holder}'s tenure: {day}")
            return
        if tenure.term_start is not None and day < tenure.term_start:
            fail("tenure", f"signed on {day} (UTC+8) by {fields['signer']}, before holder {holder}'s term began on {tenure.term_start}")
        if tenure.handover is not None and day > tenure.handover:
            fail("tenure", f"signed on {day} (UTC+8) by {fields['signer']}, after holder {holder} handed over on {tenure.handover}")

    def apply(self, seq: int, size: int, topic: str, event: dict) -> None:
        """The effects of a verified configuration entry."""
        if topic == KEY_REGISTERED_TOPIC:
            problem = self.ring.add(event, seq + 1)
            if problem:
                self.add(Finding(seq, "keys", problem))
        elif topic == KEY_REVOKED_TOPIC:
            self.ring.revoke(event, seq)
        elif topic in (OFFICIAL_APPOINTED_TOPIC, OFFICIAL_DEPARTED_TOPIC):
            self.apply_tenure(seq, topic, event)
        elif topic == CHECKPOINT_TOPIC:
            self.recorded_checkpoint(seq, size, event)

    def apply_tenure(self, seq: int, topic: str, event: dict) -> None:
        try:
            official = event["official_id"]
            if topic == OFFICIAL_APPOINTED_TOPIC:
                self.officials[official] = _Tenure(date.fromisoformat(event["term_start"]))
            else:
                self.officials.setdefault(official, _Tenure()).handover = date.fromisoformat(event["handover_date"])
        except (KeyError, TypeError, ValueError) as exc:
            self.add(Finding(seq, "event", f"{topic} state lacks a valid official_id or date: {exc!r}"))

    def recorded_checkpoint(self, seq: int, size: int, event: dict) -> None:
        label = f"checkpoint recorded at seq {seq}"
        note = event.get("note")
        if not isinstance(note, str):
            self.add(Finding(seq, "checkpoint", f"{label} has no note"))
            return
        claim, findings = self.book.check_note(
            note, label=label, seq=seq, origin=self.result.origin, log_keys=self.ring.log_verifiers(seq)
        )
        for finding in findings:
            self.add(finding)
        if claim is None:
            return
        if event.get("size") != claim.size or event.get("root_hash") != base64.b64encode(claim.root).decode():
            self.add(Finding(seq, "checkpoint", f"{label}: its size and root_hash fields differ from its note's"))
        if claim.size > seq:
            self.add(Finding(seq, "checkpoint", f"{label} claims {claim.size} entries; it can cover only the {seq} before it"))
        if claim.size < self.last_checkpoint_size:
            self.add(Finding(seq, "checkpoint", f"{label} has size {claim.size}, smaller than the earlier {self.last_checkpoint_size}: rollback"))
        self.last_checkpoint_size = max(self.last_checkpoint_size, claim.size)
        if claim.size == size:
            self.roots[size] = self.stream.root()
            self.snapshot(size)
        elif claim.size > size:
            self.wanted.add(claim.size)
        elif claim.size not in self.roots:
            self.late_sizes.add(claim.size)

    def snapshot(self, size: int) -> None:
        self.snapshots[size] = _Snapshot(
            size, self.prev, self.stream.frontier, self.ring.to_json(),
            {k: [v.term_start and v.term_start.isoformat(), v.handover and v.handover.isoformat()] for k, v in self.officials.items()},
        )


def _append_subtree(stream: StreamingRoot, top: bytes, width: int) -> StreamingRoot:
    """The stream with a complete subtree of `width` (a power of two dividing stream.size) leaves appended."""
    stack = list(stream.frontier)
    stack.append(top)
    index = stream.size // width
    while index & 1:
        right = stack.pop()
        stack.append(node_hash(stack.pop(), right))
        index >>= 1
    return StreamingRoot.from_frontier(stream.size + width, stack)


class _ChainReader:
    """The ranges of a SQLite ledger for a chain-only run: aligned blocks of a power of two rows (_range_width),
    shared between this process and `jobs - 1` worker processes. This process claims ranges from the front and
    hands each over as soon as it is read (outcomes); the workers claim from the back and send what they made
    once the two sides meet. So the split follows the cores actually free, and the workers, started before the
    caller's own set-up queries, run while those do.

    Processes are forked where the platform can (as in signatures.py: spawn re-imports the caller's __main__).
    A forked worker uses nothing it inherits but this module's code: it opens its own read-only connection and
    ends with os._exit, so the parent's connections are neither used nor closed in the child; the verifier runs
    no threads of its own. A fork and the worker's exit take a few milliseconds, less than an executor's start."""

    def __init__(self, source, end: int, jobs: int):
        self.source, self.end = source, end
        self.width = _range_width(end, jobs)
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        # The unclaimed ranges are those with first <= index < stop.
        self._unclaimed = RawArray("q", [0, -(-end // self.width)])
        self._lock = context.Lock()
        self._complete = False
        self._workers: list[tuple] = []
        for _ in range(jobs - 1):
            receiver, sender = context.Pipe(duplex=False)
            worker = context.Process(
                target=_chain_worker, args=(source.uri, end, self.width, self._unclaimed, self._lock, sender), daemon=True
            )
            worker.start()
            sender.close()
            self._workers.append((worker, receiver))

    def outcomes(self):
        """(lo, hi, segments) per range, in seq order."""
        width, end = self.width, self.end
        while (index := _claim(self._unclaimed, self._lock, front=True)) is not None:
            lo, hi = index * width, min(index * width + width, end)
            yield lo, hi, _chain_range(self.source.rows(lo, hi), lo, hi)
        made = []
        for worker, pipe in self._workers:
            try:
                outcome = pipe.recv()
            except EOFError:
                raise RuntimeError(f"chain-only worker {worker.pid} ended without sending its ranges") from None
            if isinstance(outcome, Exception):
                raise outcome
            made.extend(outcome)
        for index, segments in sorted(made, key=lambda pair: pair[0]):
            yield index * width, min(index * width + width, end), segments
        self._complete = True

    def close(self) -> None:
        for worker, pipe in self._workers:
            if not self._complete:
                worker.terminate()
            worker.join()
            pipe.close()
        self._workers = []


def _claim(unclaimed, lock, *, front: bool) -> int | None:
    """The index of an unclaimed range, the first (front) or the last; None when none is left."""
    with lock:
        first, stop = unclaimed
        if first >= stop:
            return None
        if front:
            unclaimed[0] = first + 1
            return first
        unclaimed[1] = stop - 1
        return stop - 1


def _range_width(entries: int, jobs: int) -> int:
    """A power of two giving each process about RANGES_PER_JOB ranges, so that the sides meet close to the same
    time, within [MIN_RANGE_WIDTH, MAX_RANGE_WIDTH] (narrow ranges cost a query each, wide ones memory)."""
    share = entries // (jobs * RANGES_PER_JOB)
    return max(MIN_RANGE_WIDTH, min(MAX_RANGE_WIDTH, 1 << max(share.bit_length() - 1, 0)))


def _chain_worker(uri: str, end: int, width: int, unclaimed, lock, results) -> None:
    """A worker process: _chain_range for ranges claimed from the back until none is left, then all of them,
    as (index, segments), in one message; or the exception that stopped it."""
    try:
        made = []
        while (index := _claim(unclaimed, lock, front=False)) is not None:
            lo, hi = index * width, min(index * width + width, end)
            made.append((index, _chain_range(sqlite_range_rows(uri, lo, hi), lo, hi)))
        results.send(made)
    except Exception as exc:
        results.send(exc)
    finally:
        results.close()


def _chain_range(rows: list[tuple[int, bytes, bytes | None]], lo: int, hi: int) -> list[tuple]:
    """The rows (seq, leaf, state) with lo <= seq < hi of a SQLite ledger, read for a chain-only run, as segments
    in order.

    A row is ordinary when it is canonical with seq equal to its row's, has a stored state that hashes to its
    digest, and is not a configuration entry. Consecutive ordinary rows with one origin, each prev the leaf hash of
    the row before, make a clean segment: (True, first seq, end seq, first prev, origin, leaf hashes concatenated,
    subtree hash when the segment is the whole range and that is an aligned power of two else None,
    [(signer, local day, first seq, last seq)]). Every other row is (False, [(seq, state of a configuration entry
    else None, entries.process result)]), for the caller to stitch entry by entry."""
    n = hi - lo
    if len(rows) != n:
        return [(False, [_processed(seq, leaf, state) for seq, leaf, state in rows])]
    sha256 = hashlib.sha256
    segments: list[tuple] = []
    digests: list[bytes] = []
    spans: dict = {}
    prev = first_prev = origin = None
    start = lo

    def close(end: int) -> None:
        top = None
        if start == lo and end == hi and n & (n - 1) == 0 and lo % n == 0:
            # RFC 9162 MTH of a power of two of leaves: hash neighbouring pairs level by level.
            level = digests
            while len(level) > 1:
                level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
            top = level[0]
        segments.append((
            True, start, end, first_prev, origin, b"".join(digests), top,
            [(signer, day, a, b) for (signer, day), (a, b) in spans.items()],
        ))

    writer_entry, a2b, config_topics = WRITER_ENTRY, a2b_base64, CONFIG_TOPICS
    days: dict = {}  # UTC hour -> local_day of the times in it
    last_signer = last_day = last_span = None
    for seq, leaf, state in rows:
        # The writer's entries are decided by one pattern; anything else by parse_entry, as everywhere.
        try:
            match = writer_entry(leaf[:-SIGNATURE_SIZE].decode("ascii"))
        except UnicodeDecodeError:
            match = None
        if match is not None:
            _, origin_field, prev_field, seq_field, signer, digest_field, time, hour, topic, _ = match.groups()
            ordinary = (
                int(seq_field) == seq and state is not None and topic not in config_topics
                and sha256(state).digest() == a2b(digest_field)
            )
            if ordinary:
                claimed_prev = a2b(prev_field)
                day = days.get(hour)
                if day is None:
                    day = days[hour] = local_day(time)
        else:
            parsed = parse_entry(leaf)
            ordinary = (
                parsed.__class__ is not str and parsed[0] == seq and state is not None
                and parsed[5] not in config_topics and sha256(state).digest() == parsed[2]
            )
            if ordinary:
                claimed_prev, origin_field, signer, day = parsed[1], parsed[3], parsed[4], local_day(parsed[6])
        if not ordinary:
            if digests:
                close(seq)
                digests, spans = [], {}
            segments.append((False, [_processed(seq, leaf, state)]))
            start, prev, last_signer = seq + 1, None, None
            continue
        if prev is not None and (claimed_prev != prev or origin_field != origin):
            close(seq)
            digests, spans, start, prev, last_signer = [], {}, seq, None, None
        if prev is None:
            first_prev, origin = claimed_prev, origin_field
        prev = sha256(b"\x00" + leaf).digest()
        digests.append(prev)
        if signer == last_signer and day == last_day:
            last_span[1] = seq
            continue
        span = spans.get((signer, day))
        if span is None:
            span = spans[(signer, day)] = [seq, seq]
        else:
            span[1] = seq
        last_signer, last_day, last_span = signer, day, span
    if digests:
        close(hi)
    return segments


def _processed(seq: int, leaf: bytes, state: bytes | None) -> tuple:
    processed = process(seq, leaf, state, None)
    parsed = processed[2]
    return seq, state if parsed.__class__ is not str and parsed[5] in CONFIG_TOPICS else None, processed


def _list(value) -> list:
    return value if isinstance(value, list) else []


def verify_entries(
    entries: Iterable[SourceEntry],
    *,
    source: str = "",
    expected_origin: str | None = None,
    progress: Callable[..., None] | None = None,
) -> VerificationResult:
    """Check entries in order, in this process, without checkpoints: the chain alone."""
    run = _Run(source_name=source, policy=None, jobs=1, progress=progress, total=0, state=None)
    run.result.origin = expected_origin
    run.run([(e.seq, e.leaf, e.state)] for e in entries)
    run.result.findings = run.findings() + run.book.final_findings(run.result.size, run.roots)
    return run.result


def verify_source(
    location: str,
    *,
    policy: TrustPolicy | None = None,
    checkpoints: Sequence[str | Path] = (),
    state_path: str | Path | None = None,
    jobs: int | None = None,
    progress: Callable[..., None] | None = None,
    signatures: bool = True,
) -> VerificationResult:
    """Verify a ledger (SQLite path or PostgreSQL URL) or a bundle directory.

    policy: the auditor's trust policy; without one, checkpoints are checked against the log key registered in
    the log and no cosignature is required. checkpoints: paths of published checkpoint notes to check too.
    state_path: incremental mode (see state.py); the file is written only when the result is intact.
    jobs: processes for signature verification (default: every core). signatures=False: chain-only mode, every
    check except the entries' Ed25519 signatures (a SQLite log of CHAIN_PARALLEL_THRESHOLD entries or more is read
    by `jobs` processes, this one included); the result says so (`signatures_checked`, summary "signatures not
    checked") and cannot be combined with a state file. Raises OSError/ValueError for unreadable input or that
    combination (the CLI's exit 2); integrity problems are findings in the result.
    """
    if not signatures and state_path is not None:
        raise ValueError("chain-only verification does not check signatures and cannot update a state file")
    files = []
    for path in checkpoints:
        try:
            files.append((str(path), Path(path).read_text("utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the checkpoint note: {exc}") from None
    state = load_state(state_path) if state_path is not None else None
    source = open_source(location)
    reader = None
    try:
        notes = files + source.published_checkpoints()
        start = state.size if state else 0
        total = max(source.size() - start, 0)
        workers = jobs if jobs is not None else default_jobs()
        if not signatures and start == 0 and workers > 1 and total >= CHAIN_PARALLEL_THRESHOLD and hasattr(source, "uri"):
            dense = source.dense_seqs(0)
            if dense is not None and dense[0] == 0:
                reader = _ChainReader(source, dense[1], workers)
                source.prefetch_unlogged()
        if total < PARALLEL_THRESHOLD:
            workers = 1
        wanted = {s for s in (claimed_size(text) for _, text in notes) if s is not None and s >= start}
        wanted |= {s for s in map(_stored_size, source.stored_checkpoint_states()) if s is not None and s >= start}
        run = _Run(
            source_name=source.description, policy=policy, jobs=workers, progress=progress, total=total,
            state=state, wanted_sizes=wanted, signatures=signatures,
        )
        if reader is not None:
            run.run_chain_parallel(reader)
        else:
            run.run(source.batches(start))
        result = run.result
        if state is not None and result.origin != state.origin:
            raise StateError(f"{state_path}: remembers {state.origin!r}, but {location} holds {result.origin!r}")
        for label, text in notes:
            _, findings = run.book.check_note(
                text, label=label, seq=None, origin=result.origin, log_keys=run.ring.log_verifiers(result.size)
            )
            for finding in findings:
                run.add(finding)
        missing = {c.size for c in run.book.claims if c.size <= result.size and c.size not in run.roots}
        if missing:
            run.roots.update(_roots_at(source, missing))
        for finding in run.book.final_findings(result.size, run.roots):
            run.add(finding)
        if state is not None:
            _check_resumed(run, state)
        listing = source.keys_listing()
        if listing is not None:
            _check_keys_listing(run, listing)
        for originator_id, version in source.unlogged_events():
            run.add(Finding(None, "event", f"stored event {originator_id} version {version} has no log entry"))
        result.findings = run.findings()
        good = [c for c in run.book.good() if c.size in run.snapshots or (state and c.size == state.size)]
        result.checkpoints = sum(1 for _ in run.book.good())
        newest = max(good, key=lambda c: c.size, default=None)
        if newest is not None:
            result.verified_checkpoint = (newest.size, newest.root)
        if state_path is not None and result.intact:
            _save(run, state, newest, Path(state_path))
        return result
    finally:
        if reader is not None:
            reader.close()
        source.close()


def _check_keys_listing(run: _Run, listing: str) -> None:
    """A bundle's keys.txt must list exactly the keys the log registers, with their validity."""
    expected = {
        key_line(label.split("+", 1)[0], k.public_key, k.role, k.valid_from, k.revoked_at, k.holder)
        for label, k in run.ring.keys.items()
    }
    listed = set(listed_keys(listing))
    for line in sorted(listed - expected):
        run.add(Finding(None, "bundle", f"keys.txt lists a key the log does not register so: {line}"))
    for line in sorted(expected - listed):
        run.add(Finding(None, "bundle", f"keys.txt omits a key the log registers: {line}"))


def _stored_size(state: bytes) -> int | None:
    try:
        size = json.loads(state).get("size")
    except (ValueError, AttributeError):
        return None
    return size if type(size) is int else None


def _roots_at(source, sizes: set[int]) -> dict[int, bytes]:
    """A second, hash-only pass for sizes whose root was not kept during the first (a checkpoint recorded late)."""
    roots, stream, last = {}, StreamingRoot(), max(sizes)
    if 0 in sizes:
        roots[0] = stream.root()
    for entry in source.entries(0):
        stream.append(leaf_hash(entry.leaf))
        if stream.size in sizes:
            roots[stream.size] = stream.root()
        if stream.size >= last:
            break
    return roots


def _check_resumed(run: _Run, state: VerifierState) -> None:
    """Incremental mode: the remembered checkpoint must be consistent with the newest one, and nothing lost."""
    result = run.result
    if result.size < state.head_size:
        run.add(Finding(result.size, "truncated", f"the log has {result.size} entries; the previous verification saw {state.head_size}"))
    newest = max((c for c in run.book.claims if state.size <= c.size <= result.size), key=lambda c: c.size, default=None)
    if newest is None:
        return
    try:
        proof = consistency_proof(state.size, newest.size, _resumed_subtree_hash(state, run.new_hashes))
        verify_consistency(state.size, newest.size, state.root, newest.root, proof)
    except ProofError as exc:
        run.add(Finding(
            None, "consistency",
            f"the remembered checkpoint (size {state.size}, root {short(state.root)}…) is not consistent with "
            f"{newest.label}: {exc}; refusing to update the state",
        ))


def _resumed_subtree_hash(state: VerifierState, new_hashes: list[bytes]):
    """MTH of [start, end) from the remembered frontier (entries before state.size) and the new leaf hashes."""
    blocks, offset = {}, 0
    for width_bit in reversed(range(state.size.bit_length())):
        width = 1 << width_bit
        if state.size & width:
            blocks[(offset, offset + width)] = state.frontier[len(blocks)]
            offset += width

    def mth(start: int, end: int) -> bytes:
        if start >= state.size:
            return merkle_root(new_hashes[start - state.size:end - state.size])
        if (start, end) in blocks:
            return blocks[(start, end)]
        if end - start == 1:
            raise ProofError(f"entry {start} precedes the remembered checkpoint and is not part of its frontier")
        k = 1 << ((end - start - 1).bit_length() - 1)
        return node_hash(mth(start, start + k), mth(start + k, end))

    return mth


def _save(run: _Run, state: VerifierState | None, newest: Claim | None, path: Path) -> None:
    result = run.result
    if newest is None or newest.size not in run.snapshots:
        if state is None:
            # Nothing verified to resume from: remember only the head, so that a shrinking log is noticed.
            save_state(path, VerifierState(result.origin, 0, EMPTY_ROOT, GENESIS_PREV, (), {}, {}, result.size, result.head))
        else:
            save_state(path, VerifierState(
                state.origin, state.size, state.root, state.prev, state.frontier, state.ring, state.officials,
                result.size, result.head,
            ))
        return
    snap = run.snapshots[newest.size]
    save_state(path, VerifierState(
        result.origin, newest.size, newest.root, snap.prev, snap.frontier, snap.ring, snap.officials, result.size, result.head,
    ))


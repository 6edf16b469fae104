"""A witness for village ledgers: C2SP tlog-witness v1.0.0 (TLOG.md §5), online over HTTP or offline.

A witness (the township agency, the village supervision committee) follows logs it was told about, keeps the
latest (size, root) it cosigned for each, and cosigns a new checkpoint only if the log signed it and a consistency
proof shows that it extends that state. It never needs the ledger's database: that independence is what lets it
catch an insider who rewrites the whole history (TLOG.md §6.6).

State lives in the witness's own SQLite file:

    witness_logs       origin TEXT PRIMARY KEY, log_vkeys TEXT (newline-separated, type 0x01),
                       size INTEGER, root_hash BLOB(32), updated TEXT (RFC 3339 UTC)
    witness_cosigned   id INTEGER PRIMARY KEY, origin, size, root_hash, timestamp INTEGER (POSIX seconds),
                       note TEXT (the checkpoint as received plus this witness's cosignature line)
    witness_refusals   id INTEGER PRIMARY KEY, time TEXT, origin TEXT NULL, status INTEGER, reason TEXT,
                       request TEXT (kept as evidence: a refused checkpoint may prove log misbehaviour)

Trust on first use: a witness cosigns the first checkpoint of a log only for an origin it was initialised with
(`init_witness_state`), starting from size 0, or from a published checkpoint given at initialisation, which is
what TLOG.md §6.6 recommends for a witness that restarts or joins late. An unknown origin is always refused (404).

Status codes (tlog-witness v1.0.0, in the order the checks run): 400 malformed request or old size above the
checkpoint size; 404 unknown origin; 403 no valid signature from a trusted log key, or a trusted key's signature
fails; 409 old size differs from the stored size (body "<stored size>\\n", Content-Type text/x.tlog.size);
409 same size with a different root (plain text; TLOG.md §5 says 422, the spec says 409 and the spec rules);
422 a non-empty proof from size 0, a size-0 checkpoint whose root is not SHA-256(""), or a proof that fails.
"""

from __future__ import annotations

import base64
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ledger.crypto.checkpoint import CheckpointError, CosignatureV1Signer, parse_checkpoint
from ledger.crypto.keys import ROLE_WITNESS, KeyFile, VkeyError
from ledger.crypto.logformat import format_time
from ledger.crypto.merkle import EMPTY_ROOT, HASH_SIZE, ProofError, verify_consistency
from ledger.crypto.note import (
    Ed25519Verifier,
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    NoteSignature,
    UnverifiedNoteError,
    format_note,
    open_note,
    parse_note,
    parse_signature_lines,
)

ADD_CHECKPOINT_PATH = "/add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
MAX_PROOF_LINES = 63
# The Go witness caps request bodies at 16 KiB; a checkpoint with 100 signature lines stays far below it.
MAX_REQUEST_BYTES = 16 * 1024
MAX_RESPONSE_BYTES = 64 * 1024

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS witness_logs ("
        "origin TEXT PRIMARY KEY, log_vkeys TEXT NOT NULL, size INTEGER NOT NULL CHECK (size >= 0), "
        "root_hash BLOB NOT NULL CHECK (length(root_hash) = 32), updated TEXT NOT NULL)"
    ),
    (
        "CREATE TABLE IF NOT EXISTS witness_cosigned ("
        "id INTEGER PRIMARY KEY, origin TEXT NOT NULL, size INTEGER NOT NULL, "
        "root_hash BLOB NOT NULL CHECK (length(root_hash) = 32), timestamp INTEGER NOT NULL, note TEXT NOT NULL)"
    ),
    (
        "CREATE TABLE IF NOT EXISTS witness_refusals ("
        "id INTEGER PRIMARY KEY, time TEXT NOT NULL, origin TEXT, status INTEGER NOT NULL, "
        "reason TEXT NOT NULL, request TEXT NOT NULL)"
    ),
)


class WitnessError(Exception):
    """A refused add-checkpoint request; `status` is the tlog-witness HTTP status it maps to."""

    status: int = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class MalformedRequest(WitnessError):
    status = HTTPStatus.BAD_REQUEST


class UnknownOrigin(WitnessError):
    status = HTTPStatus.NOT_FOUND


class UntrustedCheckpoint(WitnessError):
    status = HTTPStatus.FORBIDDEN


class OldSizeMismatch(WitnessError):
    """The client's old size is not the witness's size; it should retry from `size` (the response body)."""

    status = HTTPStatus.CONFLICT

    def __init__(self, message: str, size: int):
        super().__init__(message)
        self.size = size


class ConflictingRoot(WitnessError):
    """Same size, different root: two signed checkpoints that prove the log forked."""

    status = HTTPStatus.CONFLICT


class InconsistentCheckpoint(WitnessError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class WitnessStateError(ValueError):
    """A witness state file that cannot be created, read or initialised as asked."""


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def body(self) -> bytes:
        lines = [f"old {self.old_size}\n", *(base64.b64encode(h).decode("ascii") + "\n" for h in self.proof), "\n"]
        return ("".join(lines) + self.note).encode("utf-8")


def _decimal(text: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise MalformedRequest(f"{what} {text!r} is not a canonical decimal number")
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Strict parse of an add-checkpoint body: 'old N', up to 63 base64 hashes, a blank line, the signed note."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedRequest(f"request body is not UTF-8: {exc}") from None
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise MalformedRequest("request body has no blank line between the proof and the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise MalformedRequest(f"request body must start with 'old <size>', got {lines[0]!r}")
    old_size = _decimal(lines[0][4:], "old size")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise MalformedRequest(f"consistency proof has {len(lines) - 1} lines; at most {MAX_PROOF_LINES} are allowed")
    proof = []
    for position, line in enumerate(lines[1:]):
        try:
            node = base64.b64decode(line.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise MalformedRequest(f"consistency proof line {position + 1} is not base64: {line!r}") from None
        if len(node) != HASH_SIZE or base64.b64encode(node).decode("ascii") != line:
            raise MalformedRequest(f"consistency proof line {position + 1} is not canonical base64 of 32 bytes")
        proof.append(node)
    return AddCheckpointRequest(old_size, tuple(proof), note)


def _utc_now_text() -> str:
    return format_time(datetime.now(timezone.utc))


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    # isolation_level=None: transactions are explicit, so BEGIN IMMEDIATE below is what serializes writers.
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        for statement in _SCHEMA:
            connection.execute(statement)
        yield connection
    finally:
        connection.close()


def _log_verifiers(origin: str, vkeys: Iterable[str]) -> tuple[Ed25519Verifier, ...]:
    verifiers = []
    for vkey in vkeys:
        try:
            verifiers.append(Ed25519Verifier.from_vkey(vkey))
        except VkeyError as exc:
            raise WitnessStateError(f"log key for {origin}: {exc}") from None
    if not verifiers:
        raise WitnessStateError(f"no log key given for {origin}")
    return tuple(verifiers)


def init_witness_state(
    path: str | Path, origin: str, log_vkeys: Sequence[str], published_checkpoint: str | None = None
) -> tuple[int, bytes]:
    """Start following `origin`: from size 0 (trust on first use), or from a published checkpoint the log signed.

    Returns the (size, root) the witness starts from. Refuses an origin the state already follows, so that
    re-running init can never roll the witness back.
    """
    verifiers = _log_verifiers(origin, log_vkeys)
    size, root = 0, EMPTY_ROOT
    if published_checkpoint is not None:
        try:
            opened = open_note(published_checkpoint, verifiers)
            checkpoint = parse_checkpoint(opened.text)
        except NoteError as exc:
            raise WitnessStateError(f"published checkpoint for {origin}: {exc}") from None
        if checkpoint.origin != origin:
            raise WitnessStateError(f"published checkpoint is for {checkpoint.origin!r}, not {origin!r}")
        size, root = checkpoint.size, checkpoint.root_hash
    with _connect(Path(path)) as connection:
        try:
            connection.execute(
                "INSERT INTO witness_logs (origin, log_vkeys, size, root_hash, updated) VALUES (?, ?, ?, ?, ?)",
                (origin, "\n".join(v.vkey for v in verifiers), size, root, _utc_now_text()),
            )
        except sqlite3.IntegrityError:
            raise WitnessStateError(f"{path} already follows {origin}; refusing to reset its state") from None
    return size, root


@dataclass(frozen=True)
class LogState:
    origin: str
    size: int
    root_hash: bytes
    updated: str


class Witness:
    """One witness key and its state file; `cosign` is the whole add-checkpoint check, done atomically."""

    def __init__(self, state_path: str | Path, key: KeyFile, *, clock: Callable[[], float] = time.time):
        if key.role != ROLE_WITNESS:
            raise WitnessStateError(f"key {key.name!r} has role {key.role!r}; a witness needs a {ROLE_WITNESS!r} key")
        self.state_path = Path(state_path)
        if not self.state_path.is_file():
            raise WitnessStateError(f"witness state {self.state_path} does not exist (run `village-ledger witness init`)")
        self.key = key
        self.clock = clock

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def vkey(self) -> str:
        return self.key.vkey()

    def state(self, origin: str) -> LogState | None:
        with _connect(self.state_path) as connection:
            row = connection.execute(
                "SELECT size, root_hash, updated FROM witness_logs WHERE origin = ?", (origin,)
            ).fetchone()
        return None if row is None else LogState(origin, row[0], bytes(row[1]), row[2])

    def cosigned(self, origin: str) -> list[str]:
        """Every checkpoint this witness cosigned for origin, oldest first, with its cosignature appended."""
        with _connect(self.state_path) as connection:
            rows = connection.execute("SELECT note FROM witness_cosigned WHERE origin = ? ORDER BY id", (origin,))
            return [row[0] for row in rows]

    def refusals(self) -> list[tuple[int, str]]:
        """(status, reason) of every refused request, oldest first."""
        with _connect(self.state_path) as connection:
            return [(row[0], row[1]) for row in connection.execute("SELECT status, reason FROM witness_refusals ORDER BY id")]

    def add_checkpoint(self, note: str, old_size: int, proof: Sequence[bytes]) -> str:
        """The flow's witness interface (shared with HTTPWitness): the cosignature line(s) for the note."""
        return self.cosign(note, old_size, proof)

    def cosign(self, note_text: str, old_size: int, consistency_proof: Sequence[bytes]) -> str:
        """Check and cosign; returns the signature line(s). Raises a WitnessError carrying the HTTP status."""
        request = AddCheckpointRequest(old_size, tuple(consistency_proof), note_text)
        with _connect(self.state_path) as connection:
            # Check and update under one write lock, so two requests can never both pass the size check and
            # roll the state back (the race tlog-witness spells out).
            connection.execute("BEGIN IMMEDIATE")
            try:
                line = self._check_and_store(connection, request)
            except WitnessError as refusal:
                connection.execute("ROLLBACK")
                self._record_refusal(connection, request, refusal)
                raise
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return line

    def handle_request(self, body: bytes) -> str:
        """An add-checkpoint request body, as received over HTTP or carried offline."""
        try:
            request = parse_add_checkpoint(body)
        except WitnessError as refusal:
            with _connect(self.state_path) as connection:
                self._record_refusal(connection, None, refusal, raw=body)
            raise
        return self.cosign(request.note, request.old_size, request.proof)

    def _check_and_store(self, connection: sqlite3.Connection, request: AddCheckpointRequest) -> str:
        try:
            note = parse_note(request.note)
            checkpoint = parse_checkpoint(note.text)
        except (MalformedNoteError, CheckpointError) as exc:
            raise MalformedRequest(f"checkpoint is malformed: {exc}") from None
        origin = checkpoint.origin
        row = connection.execute(
            "SELECT log_vkeys, size, root_hash FROM witness_logs WHERE origin = ?", (origin,)
        ).fetchone()
        if row is None:
            raise UnknownOrigin(f"this witness does not follow {origin!r}")
        vkeys, stored_size, stored_root = row[0].split("\n"), row[1], bytes(row[2])
        try:
            open_note(request.note, _log_verifiers(origin, vkeys))
        except (InvalidSignatureError, UnverifiedNoteError) as exc:
            raise UntrustedCheckpoint(f"checkpoint of {origin!r} is not signed by its log key: {exc}") from None
        except NoteError as exc:
            raise MalformedRequest(f"checkpoint is malformed: {exc}") from None
        if request.old_size > checkpoint.size:
            raise MalformedRequest(f"old size {request.old_size} is larger than the checkpoint size {checkpoint.size}")
        if request.old_size != stored_size:
            raise OldSizeMismatch(
                f"old size {request.old_size} is not the size {stored_size} this witness last cosigned for {origin!r}",
                stored_size,
            )
        if request.old_size == 0 and request.proof:
            raise InconsistentCheckpoint("the consistency proof from size 0 must be empty")
        if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
            raise InconsistentCheckpoint("a size-0 checkpoint must carry the empty-tree root SHA-256(\"\")")
        if checkpoint.size == stored_size and checkpoint.root_hash != stored_root:
            raise ConflictingRoot(
                f"{origin!r} at size {stored_size} already has root {base64.b64encode(stored_root).decode()}; "
                f"this checkpoint claims {base64.b64encode(checkpoint.root_hash).decode()}: the log has forked"
            )
        try:
            verify_consistency(stored_size, checkpoint.size, stored_root, checkpoint.root_hash, request.proof)
        except ProofError as exc:
            raise InconsistentCheckpoint(f"checkpoint of {origin!r} is not consistent with size {stored_size}: {exc}") from None
        timestamp = int(self.clock())
        signer = CosignatureV1Signer(self.key.name, self.key.private_key, timestamp)
        cosignature = NoteSignature(signer.name, signer.key_id, signer.sign(note.text.encode("utf-8")))
        connection.execute(
            "UPDATE witness_logs SET size = ?, root_hash = ?, updated = ? WHERE origin = ?",
            (checkpoint.size, checkpoint.root_hash, _utc_now_text(), origin),
        )
        connection.execute(
            "INSERT INTO witness_cosigned (origin, size, root_hash, timestamp, note) VALUES (?, ?, ?, ?, ?)",
            (origin, checkpoint.size, checkpoint.root_hash, timestamp, format_note(note.text, (*note.signatures, cosignature))),
        )
        return cosignature.line

    def _record_refusal(
        self, connection: sqlite3.Connection, request: AddCheckpointRequest | None, refusal: WitnessError, raw: bytes = b""
    ) -> None:
        origin = None
        if request is not None:
            origin = request.note.split("\n", 1)[0] or None
            text = request.body().decode("utf-8")
        else:
            text = raw.decode("utf-8", errors="replace")
        connection.execute(
            "INSERT INTO witness_refusals (time, origin, status, reason, request) VALUES (?, ?, ?, ?, ?)",
            (_utc_now_text(), origin, int(refusal.status), str(refusal), text),
        )

    # -- HTTP -------------------------------------------------------------------------------------------------------

    def server(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """An HTTP server for POST /add-checkpoint, bound but not yet serving (loopback unless told otherwise)."""
        handler = type("AddCheckpointHandler", (_AddCheckpointHandler,), {"witness": self})
        return ThreadingHTTPServer((host, port), handler)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve until interrupted."""
        with self.server(host, port) as httpd:
            httpd.serve_forever()


class _AddCheckpointHandler(BaseHTTPRequestHandler):
    witness: Witness
    protocol_version = "HTTP/1.1"
    server_version = "village-ledger-witness"

    def do_POST(self) -> None:
        if self.path != ADD_CHECKPOINT_PATH:
            self._reply(HTTPStatus.NOT_FOUND, f"no such endpoint {self.path}; POST {ADD_CHECKPOINT_PATH}\n")
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._reply(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required\n")
            return
        length = int(length_header)
        if length > MAX_REQUEST_BYTES:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body is over {MAX_REQUEST_BYTES} bytes\n")
            return
        body = self.rfile.read(length)
        try:
            lines = self.witness.handle_request(body)
        except OldSizeMismatch as conflict:
            self._reply(HTTPStatus.CONFLICT, f"{conflict.size}\n", SIZE_CONTENT_TYPE)
        except WitnessError as refusal:
            self._reply(refusal.status, f"{refusal}\n")
        else:
            self._reply(HTTPStatus.OK, lines)

    def do_GET(self) -> None:
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, f"use POST {ADD_CHECKPOINT_PATH}\n", extra={"Allow": "POST"})

    def _reply(self, status: int, text: str, content_type: str = TEXT_CONTENT_TYPE, extra: dict | None = None) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        # Refusals are kept in the state file; per-request stderr lines would only add noise to the CLI.
        return


# -- client -------------------------------------------------------------------------------------------------------


def request_cosignature(url: str, note: str, old_size: int, proof: Sequence[bytes], *, timeout: float = 30) -> str:
    """POST an add-checkpoint request to a witness's submission prefix; returns its signature line(s).

    Raises the WitnessError subclass matching the response status; OldSizeMismatch carries the witness's size.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"witness URL {url!r} must start with http:// or https://")
    body = AddCheckpointRequest(old_size, tuple(proof), note).body()
    request = urllib.request.Request(
        url.rstrip("/") + ADD_CHECKPOINT_PATH, data=body, method="POST", headers={"Content-Type": TEXT_CONTENT_TYPE}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read(MAX_RESPONSE_BYTES).decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            detail = error.read(MAX_RESPONSE_BYTES).decode("utf-8", errors="replace")
            content_type = error.headers.get("Content-Type", "")
        raise _refusal_from_response(url, error.code, content_type, detail) from None
    try:
        parse_signature_lines(text)
    except MalformedNoteError as exc:
        raise WitnessError(f"witness {url} answered with malformed signature lines: {exc}", HTTPStatus.BAD_GATEWAY) from None
    return text


def _refusal_from_response(url: str, status: int, content_type: str, detail: str) -> WitnessError:
    message = f"witness {url} refused the checkpoint ({status}): {detail.strip()}"
    if status == HTTPStatus.CONFLICT and content_type == SIZE_CONTENT_TYPE:
        size_text = detail[:-1] if detail.endswith("\n") else None
        if size_text is None or not size_text.isdigit() or (len(size_text) > 1 and size_text[0] == "0"):
            return WitnessError(f"witness {url} sent a malformed size {detail!r}", HTTPStatus.BAD_GATEWAY)
        return OldSizeMismatch(message, int(size_text))
    kinds = {
        HTTPStatus.BAD_REQUEST: MalformedRequest,
        HTTPStatus.NOT_FOUND: UnknownOrigin,
        HTTPStatus.FORBIDDEN: UntrustedCheckpoint,
        HTTPStatus.CONFLICT: ConflictingRoot,
        HTTPStatus.UNPROCESSABLE_ENTITY: InconsistentCheckpoint,
    }
    return kinds.get(status, WitnessError)(message, status)


@dataclass(frozen=True)
class HTTPWitness:
    """A witness reached over HTTP at its submission prefix, for the checkpoint flow."""

    url: str
    timeout: float = 30

    @property
    def name(self) -> str:
        return self.url

    def add_checkpoint(self, note: str, old_size: int, proof: Sequence[bytes]) -> str:
        return request_cosignature(self.url, note, old_size, proof, timeout=self.timeout)

"""C2SP tlog-checkpoint v1.0.0 and tlog-cosignature v1.0.1 (Ed25519, type 0x04); TLOG.md §3 and §4.

Checkpoint text (the note text that the log key signs):
    <origin>\\n<size, canonical decimal>\\n<base64(32-byte root)>\\n[<extension line>\\n]*

Cosignature line, appended to the checkpoint note:
    — <cosigner name> base64(key_id[4] || u64be(timestamp) || Ed25519 signature[64])
    key_id  = SHA-256(name || 0x0A || 0x04 || public key)[:4]
    message = "cosignature/v1\\ntime <timestamp>\\n" || checkpoint text
The message does not bind the cosigner's name, hence one key per role (TLOG.md §4).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.crypto.keys import COSIGNATURE_V1, check_key_name
from ledger.crypto.logformat import key_id
from ledger.crypto.merkle import HASH_SIZE
from ledger.crypto.note import Ed25519KeyVerifier, NoteError, NoteSignature, OpenedNote, Verifier, open_note

MAX_TREE_SIZE = 2**64 - 1
MAX_TIMESTAMP = 2**63 - 1
COSIGNATURE_SIZE = 8 + 64
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(NoteError):
    """A checkpoint or cosignature that does not follow the C2SP formats, or lacks the log's signature."""


def _size(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise CheckpointError(f"{what} {text!r} is not a canonical decimal number")
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise CheckpointError(f"{what} {value} does not fit in 64 bits")
    return value


@dataclass(frozen=True)
class Checkpoint:
    """A log's claim: the tree of this origin has `size` leaves and this RFC 9162 root."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise CheckpointError("checkpoint origin is empty")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {self.size} is outside 0..2^64-1")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}")
        for line in (self.origin, *self.extensions):
            if not line or any(ch < " " for ch in line):
                raise CheckpointError(f"checkpoint line {line!r} is empty or contains a control character")

    @property
    def text(self) -> str:
        """The note text, with its final newline."""
        lines = (self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii"), *self.extensions)
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Strict: three mandatory lines, canonical decimal size, canonical base64 of exactly 32 bytes."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(f"checkpoint needs origin, size and root lines, got {len(lines)} line(s)")
    origin, size_text, root_b64, *extensions = lines
    try:
        root_hash = base64.b64decode(root_b64.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise CheckpointError(f"checkpoint root {root_b64!r} is not standard base64") from exc
    if base64.b64encode(root_hash).decode("ascii") != root_b64:
        raise CheckpointError(f"checkpoint root {root_b64!r} is not canonical base64")
    return Checkpoint(origin, _size(size_text, "checkpoint size"), root_hash, tuple(extensions))


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a cosigner signs: 'cosignature/v1\\ntime <T>\\n' followed by the whole checkpoint text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return f"cosignature/v1\ntime {timestamp}\n".encode("ascii") + checkpoint_text.encode("utf-8")


def cosignature_timestamp(signature: bytes) -> int:
    """The timestamp inside a cosignature/v1 signature (the bytes after the key ID)."""
    if len(signature) != COSIGNATURE_SIZE:
        raise CheckpointError(f"cosignature/v1 signature must be {COSIGNATURE_SIZE} bytes, got {len(signature)}")
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return timestamp


@dataclass(frozen=True)
class CosignatureV1Verifier(Ed25519KeyVerifier):
    """Type 0x04 verifier for one witness key; plugs into note.open_note."""

    SIGNATURE_TYPE: ClassVar[int] = COSIGNATURE_V1
    TYPE_NAME: ClassVar[str] = "cosignature/v1"

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != COSIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        return self._verifies(signature[8:], cosignature_message(text.decode("utf-8"), timestamp))


@dataclass(frozen=True)
class CosignatureV1Signer:
    """Type 0x04 signer bound to the time of cosigning; refuses to sign anything but a checkpoint."""

    name: str
    private_key: Ed25519PrivateKey
    timestamp: int

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not 0 <= self.timestamp <= MAX_TIMESTAMP:
            raise CheckpointError(f"cosignature timestamp {self.timestamp} is outside 0..2^63-1")

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key, COSIGNATURE_V1)

    @property
    def verifier(self) -> CosignatureV1Verifier:
        return CosignatureV1Verifier(self.name, self.public_key)

    def sign(self, text: bytes) -> bytes:
        checkpoint_text = text.decode("utf-8")
        parse_checkpoint(checkpoint_text)
        message = cosignature_message(checkpoint_text, self.timestamp)
        return self.timestamp.to_bytes(8, "big") + self.private_key.sign(message)

    def cosignature(self, checkpoint: Checkpoint) -> NoteSignature:
        """The signature line a witness returns for this checkpoint."""
        return NoteSignature(self.name, self.key_id, self.sign(checkpoint.text.encode("utf-8")))


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: which witness vouched for the checkpoint, and as of when (POSIX seconds)."""

    name: str
    key_id: bytes
    timestamp: int


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint carrying a valid log signature, with the cosignatures that verified."""

    checkpoint: Checkpoint
    note: OpenedNote
    cosignatures: tuple[Cosignature, ...]

    @property
    def cosigner_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.name for c in self.cosignatures))


def open_checkpoint(
    data: bytes | str, log_verifier: Verifier, cosigners: Iterable[CosignatureV1Verifier] = ()
) -> SignedCheckpoint:
    """Verify a checkpoint note: the log key must have signed; known witnesses' lines must verify.

    Whether enough witnesses cosigned is policy (TLOG.md §6.4) and left to the caller.
    """
    cosigners = tuple(cosigners)
    note = open_note(data, (log_verifier, *cosigners))
    log_handle = (log_verifier.name, log_verifier.key_id)
    if not any((sig.name, sig.key_id) == log_handle for sig in note.verified):
        raise CheckpointError(f"checkpoint is not signed by the log key {log_verifier.name!r}")
    checkpoint = parse_checkpoint(note.text)
    witness_handles = {(c.name, c.key_id) for c in cosigners}
    cosignatures = tuple(
        Cosignature(sig.name, sig.key_id, cosignature_timestamp(sig.signature))
        for sig in note.verified
        if (sig.name, sig.key_id) in witness_handles
    )
    return SignedCheckpoint(checkpoint, note, cosignatures)

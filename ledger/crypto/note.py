"""C2SP signed notes (c2sp.org/signed-note v1.0.0, TLOG.md §2).

    note     = text "\\n" sig_line+            text: one or more lines, each ending "\\n"
    sig_line = "— " key_name " " base64(key_id[4] || signature) "\\n"

The signed bytes are the text including its final newline; the separator is the last blank line.
Verification (TLOG.md §2.3): lines from unknown (name, key ID) pairs are ignored; a line from a known key
that fails to verify rejects the whole note; a note with no verified signature is rejected. Which
verified signers are enough is policy and belongs to the caller.

Signature types are pluggable: anything with `name`, `key_id` and `verify(text, signature)` is a Verifier,
anything with `name`, `key_id` and `sign(text)` a Signer. This module provides type 0x01 (Ed25519);
checkpoint.py provides type 0x04 (cosignature/v1).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.crypto.keys import ED25519, VkeyError, check_key_name, format_vkey, parse_vkey
from ledger.crypto.logformat import key_id

SIGNATURE_PREFIX = "— "  # U+2014 EM DASH, space
MAX_SIGNATURES = 100  # the spec requires accepting at least 16; Go's x/mod caps at 100
KEY_ID_SIZE = 4
ED25519_SIGNATURE_SIZE = 64


class NoteError(ValueError):
    """Base class of the note errors below."""


class MalformedNoteError(NoteError):
    """The bytes are not a syntactically valid signed note."""


class InvalidSignatureError(NoteError):
    """A signature from a known key does not verify; the whole note is rejected."""


class UnverifiedNoteError(NoteError):
    """No signature from a known key: the note's text must not be trusted."""


class Verifier(Protocol):
    """Checks signatures of one key over note texts."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...


class Signer(Protocol):
    """Signs note texts with one key."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes: ...


@dataclass(frozen=True)
class Ed25519KeyVerifier:
    """A named Ed25519 public key of one signature type: what the verifier key (vkey) text carries."""

    SIGNATURE_TYPE: ClassVar[int]
    TYPE_NAME: ClassVar[str]

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != 32:
            raise VkeyError(f"Ed25519 public key must be 32 bytes, got {len(self.public_key)}")

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        parsed = parse_vkey(vkey)
        if parsed.signature_type != cls.SIGNATURE_TYPE:
            raise VkeyError(
                f"vkey {vkey!r} has type 0x{parsed.signature_type:02x}, expected 0x{cls.SIGNATURE_TYPE:02x} ({cls.TYPE_NAME})"
            )
        return cls(parsed.name, parsed.public_key)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key, self.SIGNATURE_TYPE)

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, self.SIGNATURE_TYPE, self.public_key)

    def _verifies(self, signature: bytes, message: bytes) -> bool:
        """The pinned rule: pyca/cryptography Ed25519 (TLOG.md §7)."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Ed25519Verifier(Ed25519KeyVerifier):
    """Type 0x01: plain RFC 8032 Ed25519 over the note text, verified with pyca/cryptography (the pinned rule)."""

    SIGNATURE_TYPE: ClassVar[int] = ED25519
    TYPE_NAME: ClassVar[str] = "Ed25519"

    def verify(self, text: bytes, signature: bytes) -> bool:
        return len(signature) == ED25519_SIGNATURE_SIZE and self._verifies(signature, text)


@dataclass(frozen=True)
class Ed25519Signer:
    """Type 0x01 signer; Ed25519 is deterministic, so equal key and text give equal bytes."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key, ED25519)

    @property
    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.public_key)

    def sign(self, text: bytes) -> bytes:
        return self.private_key.sign(text)


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the signature bytes after the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    """A parsed note: the signed text and its signature lines in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __bytes__(self) -> bytes:
        return format_note(self.text, self.signatures).encode("utf-8")


@dataclass(frozen=True)
class OpenedNote:
    """A note whose text is vouched for by at least one known key."""

    text: str
    verified: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]

    @property
    def verified_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(sig.name for sig in self.verified))


def _check_characters(text: str, what: str) -> None:
    for position, ch in enumerate(text):
        if ch < " " and ch != "\n":
            raise MalformedNoteError(f"{what} contains control character U+{ord(ch):04X} at offset {position}")


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedNoteError(f"note is not valid UTF-8: {exc}") from exc
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNoteError(f"note is not valid UTF-8: {exc}") from exc


def parse_signature_line(line: str) -> NoteSignature:
    """One line without its newline: '— <name> <base64(key id || signature)>'."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNoteError(f"signature line {line!r} does not start with an em dash and a space")
    name, space, blob_b64 = line[len(SIGNATURE_PREFIX):].partition(" ")
    if not space:
        raise MalformedNoteError(f"signature line {line!r} has no space between key name and signature")
    try:
        check_key_name(name)
    except VkeyError as exc:
        raise MalformedNoteError(f"signature line {line!r}: {exc}") from exc
    try:
        blob = base64.b64decode(blob_b64.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise MalformedNoteError(f"signature of {name!r} is not standard base64") from exc
    # Canonical base64 only, so each signature has exactly one textual form.
    if base64.b64encode(blob).decode("ascii") != blob_b64:
        raise MalformedNoteError(f"signature of {name!r} is not canonical base64")
    if len(blob) <= KEY_ID_SIZE:
        raise MalformedNoteError(f"signature of {name!r} is only {len(blob)} bytes; a key ID and a signature need more")
    return NoteSignature(name, blob[:KEY_ID_SIZE], blob[KEY_ID_SIZE:])


def parse_signature_lines(block: bytes | str) -> tuple[NoteSignature, ...]:
    """A block of signature lines, each ending in a newline (e.g. a witness's add-checkpoint response)."""
    text = _decode(block)
    _check_characters(text, "signature block")
    if not text or not text.endswith("\n"):
        raise MalformedNoteError("signature block is empty or does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has {len(lines)} signatures; at most {MAX_SIGNATURES} are accepted")
    return tuple(parse_signature_line(line) for line in lines)


def parse_note(data: bytes | str) -> Note:
    """Strict syntax check only; nothing is verified. Use open_note before trusting the text."""
    message = _decode(data)
    _check_characters(message, "note")
    split = message.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2:]
    return Note(text, parse_signature_lines(block))


def format_note(text: str, signatures: Iterable[NoteSignature]) -> str:
    """text, a blank line, then the signature lines."""
    lines = "".join(sig.line for sig in signatures)
    if not lines:
        raise MalformedNoteError("a signed note needs at least one signature")
    return text + "\n" + lines


def check_text(text: str) -> None:
    """A note text: non-empty UTF-8 lines, each ending in a newline, no control characters."""
    _decode(text)
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    _check_characters(text, "note text")


def sign_note(text: str, signers: Iterable[Signer], existing: Iterable[NoteSignature] = ()) -> str:
    """The signed note; existing signature lines come first, then one new line per signer."""
    check_text(text)
    signed = text.encode("utf-8")
    new = []
    for signer in signers:
        check_key_name(signer.name)
        new.append(NoteSignature(signer.name, signer.key_id, signer.sign(signed)))
    return format_note(text, (*existing, *new))


def open_note(data: bytes | str, verifiers: Iterable[Verifier]) -> OpenedNote:
    """Parse strictly and verify against the known keys (TLOG.md §2.3); raises NoteError subclasses."""
    note = parse_note(data)
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        handle = (verifier.name, verifier.key_id)
        if handle in known:
            raise NoteError(f"two known keys share name {verifier.name!r} and key ID {verifier.key_id.hex()}")
        known[handle] = verifier
    signed = note.text.encode("utf-8")
    verified, unverified = [], []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified.append(sig)
        elif verifier.verify(signed, sig.signature):
            verified.append(sig)
        else:
            raise InvalidSignatureError(f"signature by {sig.name!r} (key ID {sig.key_id.hex()}) does not verify")
    if not verified:
        raise UnverifiedNoteError("note has no signature from a known key")
    return OpenedNote(note.text, tuple(verified), tuple(unverified))

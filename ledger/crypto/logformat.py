"""Log format v1 (DESIGN.md): the signed entry written for every stored event.

entry = compact UTF-8 JSON, sorted ASCII keys:
        {"v":1,"origin":O,"seq":i,"prev":B64(prev leaf hash),"time":RFC3339-UTC,
         "signer":NAME+"+"+HEX8(key id),"id":originator id,"version":n,"topic":T,
         "state":B64(SHA-256(stored state bytes))}
sig   = Ed25519(signer key, ENTRY_CONTEXT || entry)
leaf  = entry || sig      (the signature is always the last 64 bytes)
hash  = SHA-256(0x00 || leaf), which is also the next entry's prev; prev of seq 0 is 32 zero bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from json.encoder import encode_basestring_ascii as _json_string

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FORMAT_VERSION = 1
ENTRY_CONTEXT = b"village-ledger/entry/v1\x00"
GENESIS_PREV = bytes(32)
SIGNATURE_SIZE = 64
ENTRY_KEYS = frozenset({"v", "origin", "seq", "prev", "time", "signer", "id", "version", "topic", "state"})


class LogFormatError(ValueError):
    """A leaf or entry that does not follow log format v1."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, *, size: int | None = None, what: str = "value") -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise LogFormatError(f"{what} is not standard base64: {text!r}") from exc
    if b64(data) != text:
        raise LogFormatError(f"{what} is not canonical base64: {text!r}")
    if size is not None and len(data) != size:
        raise LogFormatError(f"{what} must decode to {size} bytes, got {len(data)}")
    return data


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 leaf hash, also the chain link to the next entry."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def state_hash(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2025-01-15T08:00:00.000000Z."""
    if moment.tzinfo is None:
        raise ValueError("log times must be timezone-aware")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_id(name: str, public_key: bytes, signature_type: int = 0x01) -> bytes:
    """C2SP signed-note key ID: first 4 bytes of SHA-256(name || 0x0A || type || public key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def signer_label(name: str, public_key: bytes) -> str:
    return f"{name}+{key_id(name, public_key).hex()}"


def encode_entry(
    *,
    origin: str,
    seq: int,
    prev: bytes,
    time: str,
    signer: str,
    originator_id: str,
    version: int,
    topic: str,
    state_digest: bytes,
) -> bytes:
    """The canonical entry bytes; the one serializer for what gets signed.

    Byte for byte `json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)` (what `parse_leaf`
    re-encodes to check), spelled out in sorted key order with json's own string escaper: a writer encodes one
    entry per stored event, and building the dict and encoder each time cost as much as a third of a signature.
    """
    if len(prev) != 32 or len(state_digest) != 32:
        raise LogFormatError("prev and state digests must be 32 bytes")
    if type(seq) is not int or type(version) is not int:
        raise LogFormatError("seq and version must be integers")
    return (
        f'{{"id":{_json_string(originator_id)},"origin":{_json_string(origin)},"prev":"{b64(prev)}",'
        f'"seq":{seq},"signer":{_json_string(signer)},"state":"{b64(state_digest)}",'
        f'"time":{_json_string(time)},"topic":{_json_string(topic)},"v":{FORMAT_VERSION},"version":{version}}}'
    ).encode("ascii")


def signed_message(entry: bytes) -> bytes:
    return ENTRY_CONTEXT + entry


@dataclass(frozen=True)
class EntrySigner:
    """A named Ed25519 key that signs log entries."""

    name: str
    private_key: Ed25519PrivateKey

    # Cached: derived from the private key on each call otherwise, and every write names its signer.
    @cached_property
    def public_key_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @cached_property
    def label(self) -> str:
        return signer_label(self.name, self.public_key_bytes)

    def sign(self, entry: bytes) -> bytes:
        return self.private_key.sign(signed_message(entry))


@dataclass(frozen=True)
class ParsedLeaf:
    """A leaf split into its entry bytes, decoded entry fields and signature."""

    entry_bytes: bytes
    signature: bytes
    fields: dict

    @property
    def seq(self) -> int:
        return self.fields["seq"]

    @property
    def prev(self) -> bytes:
        return unb64(self.fields["prev"], size=32, what="prev")

    @property
    def state_digest(self) -> bytes:
        return unb64(self.fields["state"], size=32, what="state")


def parse_leaf(leaf: bytes) -> ParsedLeaf:
    """Split and strictly parse a leaf; the entry must be byte-identical to its canonical re-encoding."""
    if len(leaf) <= SIGNATURE_SIZE:
        raise LogFormatError("leaf is too short to hold an entry and a signature")
    entry_bytes, signature = leaf[:-SIGNATURE_SIZE], leaf[-SIGNATURE_SIZE:]
    try:
        fields = json.loads(entry_bytes.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogFormatError(f"entry is not ASCII JSON: {exc}") from exc
    if not isinstance(fields, dict) or set(fields) != ENTRY_KEYS:
        raise LogFormatError(f"entry must have exactly the keys {sorted(ENTRY_KEYS)}")
    if fields["v"] != FORMAT_VERSION:
        raise LogFormatError(f"unsupported entry format version {fields['v']!r}")
    for name in ("seq", "version"):
        if type(fields[name]) is not int or fields[name] < 0:
            raise LogFormatError(f"entry field {name!r} must be a non-negative integer")
    for name in ("origin", "prev", "time", "signer", "id", "topic", "state"):
        if not isinstance(fields[name], str):
            raise LogFormatError(f"entry field {name!r} must be a string")
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    if canonical != entry_bytes:
        raise LogFormatError("entry is not in canonical form (compact JSON, sorted keys, ASCII)")
    return ParsedLeaf(entry_bytes=entry_bytes, signature=signature, fields=fields)


def verify_entry_signature(public_key: bytes, parsed: ParsedLeaf) -> bool:
    """Pinned rule: pyca/cryptography Ed25519 verification (TLOG.md §7)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(parsed.signature, signed_message(parsed.entry_bytes))
    except Exception:
        return False
    return True

"""Entry-by-entry verification of log format v1 (DESIGN.md): parse, origin, seq, prev, state digest, signer, signature.

Keys come from the log itself: the genesis entry's `keys` are valid from seq 0; a key registered at seq k is valid
from k+1; a key revoked at seq r is invalid from r+1. The verifier reads these events' JSON by topic and needs no
code of the writer.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..crypto.logformat import (
    GENESIS_PREV,
    LogFormatError,
    key_id,
    leaf_hash,
    parse_leaf,
    state_hash,
    verify_entry_signature,
)
from .sources import SourceEntry, open_source

GENESIS_TOPIC = "ledger/Ledger/Opened"
KEY_REGISTERED_TOPIC = "ledger/Ledger/KeyRegistered"
KEY_REVOKED_TOPIC = "ledger/Ledger/KeyRevoked"
SIGNER_ROLE = "signer"


@dataclass(frozen=True, slots=True)
class Finding:
    """One integrity problem, pinpointed: the entry's seq (None for the ledger as a whole), the check, the detail."""

    seq: int | None
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{'-' if self.seq is None else self.seq}\t{self.check}\t{self.detail}"


@dataclass
class VerificationResult:
    """What verification established. `intact` only when every entry passed every check."""

    source: str
    origin: str | None = None
    entries: int = 0
    head: bytes = GENESIS_PREV
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings and self.entries > 0

    def summary(self) -> str:
        if self.intact:
            return f"intact: {self.entries} entries of {self.origin}, head {self.head.hex()[:16]}"
        if self.entries == 0 and not self.findings:
            return f"{self.source}: no entries to verify"
        return f"{len(self.findings)} finding(s) in {self.entries} entries of {self.origin or self.source}"

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


class _KeyRing:
    """Signer keys as the log registers and revokes them, by their `name+keyid` label."""

    def __init__(self) -> None:
        self.keys: dict[str, _Key] = {}

    def add(self, spec: dict, valid_from: int) -> str | None:
        try:
            public = base64.b64decode(spec["public_key"], validate=True)
            name, role = spec["name"], spec["role"]
        except (KeyError, TypeError, ValueError):
            return "malformed key registration"
        label = f"{name}+{key_id(name, public).hex()}"
        if key_id(name, public).hex() != spec.get("key_id"):
            return f"registered key id {spec.get('key_id')} does not match {label}"
        self.keys.setdefault(label, _Key(public, role, valid_from))
        return None

    def revoke(self, spec: dict, seq: int) -> None:
        label = f"{spec.get('name')}+{spec.get('key_id')}"
        if label in self.keys and self.keys[label].revoked_at is None:
            self.keys[label].revoked_at = seq

    def check(self, label: str, seq: int) -> tuple[bytes | None, str | None]:
        key = self.keys.get(label)
        if key is None:
            return None, f"key {label} was never registered in this log"
        if key.valid_from > seq:
            return key.public_key, f"key {label} is registered only from seq {key.valid_from}"
        if key.revoked_at is not None and seq > key.revoked_at:
            return key.public_key, f"key {label} was revoked at seq {key.revoked_at}"
        if key.role != SIGNER_ROLE:
            return key.public_key, f"key {label} has role {key.role!r}, not {SIGNER_ROLE!r}"
        return key.public_key, None


def verify_entries(
    entries: Iterable[SourceEntry],
    *,
    source: str = "",
    expected_origin: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerificationResult:
    """Check every entry in order; keep going after a finding so that every problem is reported once."""
    result = VerificationResult(source=source, origin=expected_origin)
    ring = _KeyRing()
    expected_seq = 0
    prev = GENESIS_PREV
    for entry in entries:
        result.entries += 1
        findings = _check_entry(entry, expected_seq, prev, result, ring)
        result.findings.extend(findings)
        expected_seq = entry.seq + 1  # resynchronise so that one gap is one finding
        prev = leaf_hash(entry.leaf)
        if progress and result.entries % 1000 == 0:
            progress(result.entries)
    result.head = prev
    if progress:
        progress(result.entries)
    return result


def _check_entry(entry: SourceEntry, expected_seq: int, prev: bytes, result: VerificationResult, ring: _KeyRing) -> list[Finding]:
    seq = entry.seq
    try:
        parsed = parse_leaf(entry.leaf)
        claimed_prev, claimed_state = parsed.prev, parsed.state_digest
    except LogFormatError as exc:
        return [Finding(seq, "parse", str(exc))]
    fields = parsed.fields
    findings = []
    if result.origin is None:
        result.origin = fields["origin"]
    if fields["topic"] == GENESIS_TOPIC and seq != 0:
        findings.append(Finding(seq, "keys", "a genesis entry after seq 0"))
    if fields["origin"] != result.origin:
        findings.append(Finding(seq, "origin", f"entry belongs to {fields['origin']!r}, not {result.origin!r}"))
    if seq != expected_seq or fields["seq"] != seq:
        findings.append(Finding(seq, "seq", f"expected seq {expected_seq}, row {seq} claims {fields['seq']}"))
    if claimed_prev != prev:
        findings.append(Finding(seq, "prev", f"prev {claimed_prev.hex()[:16]} does not match the previous leaf hash {prev.hex()[:16]}"))
    if entry.state is None:
        findings.append(Finding(seq, "state", f"no stored event {fields['id']} version {fields['version']}"))
    elif state_hash(entry.state) != claimed_state:
        findings.append(Finding(seq, "state", "stored event bytes do not hash to the signed state digest"))
    elif seq == 0 and fields["topic"] == GENESIS_TOPIC:
        # Genesis carries the first keys and is signed by one of them; it is anchored by the checkpoints that
        # witnesses cosign, not by anything earlier in the log.
        findings.extend(_register_keys(seq, fields["topic"], entry.state, ring))
    public_key, problem = ring.check(fields["signer"], seq)
    if problem:
        findings.append(Finding(seq, "signer", problem))
    if public_key is not None and not verify_entry_signature(public_key, parsed):
        findings.append(Finding(seq, "signature", f"Ed25519 signature does not verify under {fields['signer']}"))
    if not findings and entry.state is not None and fields["topic"] != GENESIS_TOPIC:
        findings.extend(_register_keys(seq, fields["topic"], entry.state, ring))
    return findings


def _register_keys(seq: int, topic: str, state: bytes, ring: _KeyRing) -> list[Finding]:
    """Keys only ever come from entries that verified: a forged registration registers nothing."""
    if topic not in (GENESIS_TOPIC, KEY_REGISTERED_TOPIC, KEY_REVOKED_TOPIC):
        return []
    try:
        event = json.loads(state)
    except ValueError:
        return [Finding(seq, "keys", "key event state is not JSON")]
    problems = []
    if topic == GENESIS_TOPIC:
        problems = [ring.add(spec, 0) for spec in event.get("keys", [])]
    elif topic == KEY_REGISTERED_TOPIC:
        problems = [ring.add(event, seq + 1)]
    else:
        ring.revoke(event, seq)
    return [Finding(seq, "keys", p) for p in problems if p]


def verify_source(location: str, *, progress: Callable[[int], None] | None = None) -> VerificationResult:
    """Verify a ledger (SQLite path or PostgreSQL URL) or a bundle directory."""
    source = open_source(location)
    try:
        result = verify_entries(source.entries(), source=source.description, progress=progress)
        for originator_id, version in source.unlogged_events():
            result.findings.append(Finding(None, "event", f"stored event {originator_id} version {version} has no log entry"))
        return result
    finally:
        source.close()

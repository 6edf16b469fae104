"""Receipts: offline proof that one ledger entry is in a cosigned checkpoint (c2sp.org/tlog-proof@v1, TLOG.md §6.4).

File format (UTF-8, lines end in "\\n"), the tlog-proof format with the entry carried in its `extra` line:

    c2sp.org/tlog-proof@v1
    extra <base64( u32be(len(leaf)) || leaf || state )>
    index <seq, decimal, no leading zeros>
    <base64(hash)>                  zero or more lines: the RFC 9162 inclusion path, leaf's sibling first
    <blank line>
    <the checkpoint note exactly as published: origin, size, root, blank line, signature lines>

leaf is the log entry (DESIGN.md: entry JSON || 64-byte signature) and state the stored event bytes it commits to,
so the payee can read the voucher and nothing else is needed. Checking a receipt: the leaf parses and its seq is the
index; SHA-256(state) is the entry's `state`; the checkpoint is signed by the policy's log key for the entry's
origin and cosigned to the quorum; the inclusion path leads from SHA-256(0x00 || leaf) to the checkpoint's root.
The entry's own signature is not checked here: its key is registered in the log, which a receipt does not carry;
the checkpoint's signers vouch for the whole tree, that entry included. Files should end in `.tlog-proof`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from ..crypto.checkpoint import parse_checkpoint
from ..crypto.logformat import LogFormatError, leaf_hash, parse_leaf, state_hash
from ..crypto.merkle import ProofError, verify_inclusion
from ..crypto.note import NoteError, parse_note
from .checkpoints import CheckpointBook, Finding
from .policy import TrustPolicy

HEADER = "c2sp.org/tlog-proof@v1"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class ReceiptError(ValueError):
    """A receipt file that does not follow the format; the message names the line."""


@dataclass(frozen=True)
class Receipt:
    index: int
    path: tuple[bytes, ...]
    leaf: bytes
    state: bytes
    note: str


def format_receipt(receipt: Receipt) -> str:
    extra = len(receipt.leaf).to_bytes(4, "big") + receipt.leaf + receipt.state
    lines = [HEADER, f"extra {_b64(extra)}", f"index {receipt.index}", *(_b64(h) for h in receipt.path)]
    return "\n".join(lines) + "\n\n" + receipt.note


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, line: int) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise ReceiptError(f"line {line}: {text[:40]!r} is not standard base64") from None
    if _b64(data) != text:
        raise ReceiptError(f"line {line}: base64 is not canonical")
    return data


def parse_receipt(text: str) -> Receipt:
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise ReceiptError("no blank line between the proof and the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise ReceiptError(f"line 1: expected {HEADER!r}, got {lines[0][:60]!r}")
    if len(lines) < 3 or not lines[1].startswith("extra "):
        raise ReceiptError("line 2: expected `extra <base64>` carrying the entry (this receipt would not be self-contained)")
    extra = _unb64(lines[1][len("extra "):], 2)
    if len(extra) < 4 or len(extra) < 4 + int.from_bytes(extra[:4], "big"):
        raise ReceiptError("line 2: extra is shorter than the leaf length it announces")
    leaf_size = int.from_bytes(extra[:4], "big")
    leaf, state = extra[4:4 + leaf_size], extra[4 + leaf_size:]
    if not lines[2].startswith("index ") or not _DECIMAL.fullmatch(lines[2][len("index "):]):
        raise ReceiptError("line 3: expected `index <decimal>`")
    index = int(lines[2][len("index "):])
    path = []
    for number, line in enumerate(lines[3:], start=4):
        digest = _unb64(line, number)
        if len(digest) != 32:
            raise ReceiptError(f"line {number}: an inclusion proof hash must be 32 bytes, got {len(digest)}")
        path.append(digest)
    return Receipt(index, tuple(path), leaf, state, note)


def verify_receipt(text: str, policy: TrustPolicy) -> list[Finding]:
    """Findings (seq = the receipt's index); none means the entry is in a checkpoint that meets the policy.

    Raises ReceiptError when the file is not a receipt at all.
    """
    receipt = parse_receipt(text)
    index = receipt.index
    findings = []
    try:
        parsed = parse_leaf(receipt.leaf)
        origin = parsed.fields["origin"]
        if parsed.seq != index:
            findings.append(Finding(index, "seq", f"the entry claims seq {parsed.seq}, the receipt index {index}"))
        if state_hash(receipt.state) != parsed.state_digest:
            findings.append(Finding(index, "state", "the event bytes do not hash to the entry's signed state digest"))
    except LogFormatError as exc:
        findings.append(Finding(index, "parse", str(exc)))
        origin = None
    if origin is None:
        try:
            origin = parse_checkpoint(parse_note(receipt.note).text).origin
        except NoteError as exc:
            raise ReceiptError(f"checkpoint: {exc}") from None
    claim, problems = CheckpointBook(policy).check_note(receipt.note, label="the receipt's checkpoint", seq=index, origin=origin, log_keys=())
    findings.extend(problems)
    if claim is not None:
        try:
            verify_inclusion(index, claim.size, leaf_hash(receipt.leaf), receipt.path, claim.root)
        except ProofError as exc:
            findings.append(Finding(index, "inclusion", str(exc)))
    return findings

"""Checkpoint notes checked against the trust policy and against the tree the verifier recomputed.

Every note, wherever it comes from (a CheckpointRecorded entry, a bundle's checkpoints/*.note, a `--checkpoint`
file), must be signed by the log key and cosigned to the policy's quorum. Every note that is signed becomes a
claim "the tree of size m has root r"; at the end each claim is compared with the recomputed root at m, a claim
beyond the end of the log is a truncated (or withheld) tail, and two claims with different roots for one size are
reported as a conflict: together they are portable proof that the log key signed two histories.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..crypto.checkpoint import open_checkpoint, parse_checkpoint
from ..crypto.note import Ed25519Verifier, NoteError, parse_note
from .policy import TrustPolicy


@dataclass(frozen=True, slots=True)
class Finding:
    """One integrity problem, pinpointed: the entry's seq (None for the ledger as a whole), the check, the detail."""

    seq: int | None
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{'-' if self.seq is None else self.seq}\t{self.check}\t{self.detail}"


@dataclass
class Claim:
    """A log-signed checkpoint: where it came from and what it claims."""

    label: str
    seq: int | None
    size: int
    root: bytes
    cosigners: tuple[str, ...]
    quorum_met: bool
    # Set at the end: the recomputed root matched.
    matches: bool = False


def short(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")[:12]


def claimed_size(text: str) -> int | None:
    """The size a note claims, read without verifying anything (to know which roots to keep while streaming)."""
    try:
        return parse_checkpoint(parse_note(text).text).size
    except NoteError:
        return None


class CheckpointBook:
    """Collects and checks checkpoint notes; `policy` None means: the log key registered in the log, no quorum."""

    def __init__(self, policy: TrustPolicy | None):
        self.policy = policy
        self.claims: list[Claim] = []

    def check_note(
        self, text: str, *, label: str, seq: int | None, origin: str | None, log_keys: Sequence[Ed25519Verifier]
    ) -> tuple[Claim | None, list[Finding]]:
        """Verify one note; `log_keys` are the log's own registered keys, used only when there is no policy."""
        candidates = self.policy.log_verifiers(origin or "") if self.policy else tuple(log_keys)
        if not candidates:
            where = "the policy has no log key" if self.policy else "the log registers no log key"
            return None, [Finding(seq, "checkpoint", f"{label}: {where} for origin {origin!r}")]
        try:
            note = parse_note(text)
        except NoteError as exc:
            return None, [Finding(seq, "checkpoint", f"{label}: {exc}")]
        handles = {(sig.name, sig.key_id) for sig in note.signatures}
        log_key = next((k for k in candidates if (k.name, k.key_id) in handles), candidates[0])
        witnesses = self.policy.witness_verifiers if self.policy else ()
        try:
            signed = open_checkpoint(text, log_key, witnesses)
        except NoteError as exc:
            return None, [Finding(seq, "checkpoint", f"{label}: {exc}")]
        checkpoint = signed.checkpoint
        findings = []
        if origin is not None and checkpoint.origin != origin:
            findings.append(Finding(seq, "checkpoint", f"{label}: origin {checkpoint.origin!r} is not this log's {origin!r}"))
        quorum_met = True
        cosigners = signed.cosigner_names
        if self.policy is not None:
            named = self.policy.witnesses_named((c.name, c.key_id) for c in signed.cosignatures)
            quorum_met = self.policy.quorum_met(named)
            if not quorum_met:
                have = ", ".join(sorted(named)) or "no witness"
                findings.append(Finding(seq, "quorum", f"{label}: cosigned by {have}; policy quorum {self.policy.quorum!r} is not met"))
        claim = Claim(label, seq, checkpoint.size, checkpoint.root_hash, cosigners, quorum_met)
        self.claims.append(claim)
        return claim, findings

    def final_findings(self, log_size: int, roots: dict[int, bytes]) -> list[Finding]:
        """Compare every claim with the recomputed roots (which must cover every claimed size up to log_size)."""
        findings = []
        for claim in self.claims:
            if claim.size > log_size:
                findings.append(Finding(
                    log_size, "truncated",
                    f"{claim.label} is signed for {claim.size} entries but the log has {log_size}: "
                    "its tail was cut off or is withheld",
                ))
                continue
            actual = roots[claim.size]
            claim.matches = actual == claim.root
            if not claim.matches:
                findings.append(Finding(
                    claim.seq, "root",
                    f"{claim.label}: root {short(claim.root)}… of size {claim.size} differs from the recomputed root {short(actual)}…",
                ))
        findings.extend(conflicts(self.claims))
        return findings

    def good(self) -> Iterable[Claim]:
        return (c for c in self.claims if c.matches and c.quorum_met)


def conflicts(claims: Iterable[Claim]) -> list[Finding]:
    """Two log-signed roots for one size: the log key signed two different histories."""
    by_size: dict[int, dict[bytes, str]] = {}
    for claim in claims:
        by_size.setdefault(claim.size, {}).setdefault(claim.root, claim.label)
    return [
        Finding(None, "conflict", f"size {size} has {len(roots)} signed roots: " + "; ".join(
            f"{short(root)}… in {label}" for root, label in roots.items()
        ))
        for size, roots in sorted(by_size.items())
        if len(roots) > 1
    ]


"""The auditor's verifier. It reads a ledger database or an exported bundle with its own code and ledger.crypto only:
an auditor's trust must not depend on the code that wrote the books (no eventsourcing, ledger.domain or ledger.store).
"""

from .chain import (
    Finding,
    IntegrityError,
    VerificationResult,
    verify_entries,
    verify_source,
)
from .policy import PolicyError, TrustPolicy, load_policy, parse_policy

__all__ = [
    "Finding",
    "IntegrityError",
    "PolicyError",
    "TrustPolicy",
    "VerificationResult",
    "load_policy",
    "parse_policy",
    "verify_entries",
    "verify_source",
]

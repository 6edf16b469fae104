"""The auditor's verifier. It reads a ledger database or an exported bundle with its own code and ledger.crypto only:
an auditor's trust must not depend on the code that wrote the books (no eventsourcing, ledger.domain or ledger.store).
"""

from .chain import Finding, VerificationResult, verify_entries, verify_source

__all__ = ["Finding", "VerificationResult", "verify_entries", "verify_source"]

"""Entry signature verification: the pinned pyca/cryptography rule, with libsodium accepting first when installed.

DESIGN.md: verification pins pyca/cryptography's Ed25519 rule (TLOG.md §7). libsodium (PyNaCl, the optional `fast`
extra) is about 2x faster and stricter: tests/test_ed25519_sodium.py shows over ../shared/vectors that every
signature it accepts the pinned rule accepts too. So a libsodium acceptance is final, and anything libsodium rejects
is decided by the pinned rule: the verdict is always the pinned rule's. The accelerator lives with the verifier, not
in ledger.crypto, whose only dependency is the pinned library. LEDGER_ED25519=pyca turns it off (writer and verifier).
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..crypto.logformat import ENTRY_CONTEXT, SIGNATURE_SIZE

try:
    if os.environ.get("LEDGER_ED25519", "").lower() == "pyca":
        raise ImportError("libsodium disabled by LEDGER_ED25519=pyca")
    from nacl.bindings import crypto_sign_open as _sodium_open
except ImportError:
    _sodium_open = None

__all__ = ["SODIUM", "pinned_verify", "verify_leaf"]

SODIUM = _sodium_open is not None


def pinned_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """The pinned rule (TLOG.md §7)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except Exception:
        return False
    return True


def verify_leaf(public_key: bytes, leaf: bytes) -> bool:
    """Whether the leaf's last 64 bytes are a valid signature of its entry under the pinned rule."""
    signature, message = leaf[-SIGNATURE_SIZE:], ENTRY_CONTEXT + leaf[:-SIGNATURE_SIZE]
    if _sodium_open is not None:
        try:
            _sodium_open(signature + message, public_key)
            return True
        except Exception:
            pass
    return pinned_verify(public_key, signature, message)

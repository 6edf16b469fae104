"""The pinned Ed25519 rule (pyca/cryptography, TLOG.md §7) and the key-registration check, over all 914
C2SP/CCTV edge-case vectors in ../shared/vectors/ed25519_cctv_edge_cases.json."""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from vectors_support import load_vectors, needs_vectors, vector_params

from ledger.crypto.keys import (
    LOW_ORDER_ENCODINGS,
    WeakPublicKeyError,
    check_registrable_public_key,
    is_low_order_point,
)
from ledger.crypto.note import Ed25519Verifier

FILE = "ed25519_cctv_edge_cases.json"


def pinned_rule_accepts(key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("vector", vector_params(FILE, "vectors", "number"))
def test_pinned_rule_matches_go_crypto_ed25519(vector):
    key, signature, message = bytes.fromhex(vector["key"]), bytes.fromhex(vector["sig"]), vector["msg"].encode()
    assert pinned_rule_accepts(key, signature, message) is vector["expect_go_crypto_ed25519"]
    # The note verifier uses the same rule.
    assert Ed25519Verifier("cctv", key).verify(message, signature) is vector["expect_go_crypto_ed25519"]


@needs_vectors
def test_vector_counts():
    vectors = load_vectors(FILE)["vectors"]
    assert len(vectors) == 914
    assert Counter(v["expect_go_crypto_ed25519"] for v in vectors) == {True: 208, False: 706}


@needs_vectors
def test_low_order_detection_matches_the_low_order_a_flag():
    flags_by_key: dict[str, set[str]] = {}
    for vector in load_vectors(FILE)["vectors"]:
        flags_by_key.setdefault(vector["key"], set()).update(vector["flags"] or ())
    low_order = {key for key, flags in flags_by_key.items() if "low_order_A" in flags}
    assert {bytes.fromhex(key) for key in low_order} == LOW_ORDER_ENCODINGS
    assert len(LOW_ORDER_ENCODINGS) == 14  # 8 points plus 6 non-canonical encodings (CCTV README)
    for key in flags_by_key:
        assert is_low_order_point(bytes.fromhex(key)) is (key in low_order), key


def registration_outcome(key: bytes) -> str:
    try:
        check_registrable_public_key(key)
    except WeakPublicKeyError as exc:
        return str(exc).removeprefix(f"public key {key.hex()} ")
    return "accepted"


@needs_vectors
def test_registration_check_over_every_vector_key():
    flags_by_key: dict[str, set[str]] = {}
    for vector in load_vectors(FILE)["vectors"]:
        flags_by_key.setdefault(vector["key"], set()).update(vector["flags"] or ())
    outcomes = Counter()
    for key, flags in flags_by_key.items():
        outcome = registration_outcome(bytes.fromhex(key))
        if "non_canonical_A" in flags:
            assert outcome == "is a non-canonical encoding (y >= p or x = -0)", key
        elif "low_order_A" in flags:
            assert outcome == "is a low-order (small-order) point", key
        elif "low_order_component_A" in flags:
            assert outcome == "has a low-order component (not in the prime-order subgroup)", key
        else:
            assert outcome == "accepted", key
        outcomes[outcome] += 1
    assert outcomes == {
        "is a non-canonical encoding (y >= p or x = -0)": 6,
        "is a low-order (small-order) point": 8,
        "has a low-order component (not in the prime-order subgroup)": 7,
        "accepted": 1,
    }


def test_honest_keys_are_registrable():
    for seed in range(64):
        key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key().public_bytes_raw()
        check_registrable_public_key(key)
        assert not is_low_order_point(key)


def test_registration_check_errors():
    with pytest.raises(WeakPublicKeyError, match="must be 32 bytes, got 31"):
        check_registrable_public_key(bytes(31))
    # y = 2 is not on the curve: (y^2 - 1) / (d y^2 + 1) has no square root.
    not_a_point = (2).to_bytes(32, "little")
    with pytest.raises(WeakPublicKeyError, match="is not an edwards25519 point"):
        check_registrable_public_key(not_a_point)
    assert not is_low_order_point(not_a_point)
    identity = bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000")
    with pytest.raises(WeakPublicKeyError, match=f"public key {identity.hex()} is a low-order \\(small-order\\) point"):
        check_registrable_public_key(identity)

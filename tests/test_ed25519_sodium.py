"""libsodium (PyNaCl) may accept entry signatures first (DESIGN.md): over all 914 C2SP/CCTV edge-case vectors,
everything it accepts the pinned pyca rule accepts too, and verify_leaf's verdict is always the pinned rule's."""

from __future__ import annotations

import importlib.util

import pytest
from vectors_support import load_vectors, needs_vectors

from ledger.verify import ed25519
from ledger.crypto.logformat import ENTRY_CONTEXT

FILE = "ed25519_cctv_edge_cases.json"


def cases():
    for v in load_vectors(FILE)["vectors"]:
        yield v, bytes.fromhex(v["key"]), bytes.fromhex(v["sig"]), v["msg"].encode()


@needs_vectors
def test_everything_libsodium_accepts_the_pinned_rule_accepts():
    bindings = pytest.importorskip("nacl.bindings")

    def sodium_accepts(key, sig, msg):
        try:
            bindings.crypto_sign_open(sig + msg, key)
        except Exception:
            return False
        return True

    accepted = [v["number"] for v, key, sig, msg in cases() if sodium_accepts(key, sig, msg)]
    assert accepted, "libsodium accepted no vector: the test would prove nothing"
    for v, key, sig, msg in cases():
        if v["number"] in accepted:
            assert ed25519.pinned_verify(key, sig, msg), v["number"]


def test_libsodium_is_used_when_installed_unless_turned_off():
    import os

    installed = importlib.util.find_spec("nacl") is not None
    assert ed25519.SODIUM is (installed and os.environ.get("LEDGER_ED25519", "").lower() != "pyca")


@needs_vectors
def test_leaf_verdict_is_the_pinned_rules_on_every_vector():
    # verify_leaf signs ENTRY_CONTEXT + entry; a vector's message stands in for context + entry here.
    for v, key, sig, msg in cases():
        if not msg.startswith(ENTRY_CONTEXT):
            leaf_entry = msg  # verify_leaf prefixes the context: check the same bytes both ways
            expected = ed25519.pinned_verify(key, sig, ENTRY_CONTEXT + leaf_entry)
            assert ed25519.verify_leaf(key, leaf_entry + sig) is expected, v["number"]
        assert ed25519.pinned_verify(key, sig, msg) is v["expect_go_crypto_ed25519"], v["number"]

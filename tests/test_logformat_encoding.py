"""The writer's fast paths: entries encoded without json.dumps and signed by libsodium must be the same bytes."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger.crypto.logformat import (
    FORMAT_VERSION,
    EntrySigner,
    LogFormatError,
    b64,
    encode_entry,
    parse_leaf,
    signed_message,
)
from ledger.store.recorders import entry_signing

texts = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('"\\/\n\t\x00\x1f\x7f\u2028é中😀'))


@given(
    origin=texts, signer=texts, time=texts, originator_id=texts, topic=texts,
    seq=st.integers(0, 2**63), version=st.integers(0, 2**63), prev=st.binary(min_size=32, max_size=32),
    state=st.binary(min_size=32, max_size=32),
)
def test_entry_is_json_canonical_form(origin, signer, time, originator_id, topic, seq, version, prev, state):
    entry = encode_entry(
        origin=origin, seq=seq, prev=prev, time=time, signer=signer, originator_id=originator_id, version=version,
        topic=topic, state_digest=state,
    )
    fields = {
        "v": FORMAT_VERSION, "origin": origin, "seq": seq, "prev": b64(prev), "time": time, "signer": signer,
        "id": originator_id, "version": version, "topic": topic, "state": b64(state),
    }
    assert entry == json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    assert parse_leaf(entry + bytes(64)).fields == fields


@pytest.mark.parametrize("seq", [True, 1.0, "1"])
def test_entry_refuses_a_non_integer_seq(seq):
    with pytest.raises(LogFormatError, match="integers"):
        encode_entry(
            origin="o", seq=seq, prev=bytes(32), time="t", signer="s", originator_id="i", version=1, topic="t",
            state_digest=bytes(32),
        )


@given(seed=st.binary(min_size=32, max_size=32), entry=st.binary(max_size=600))
def test_writer_signature_is_the_pinned_librarys(seed, entry):
    """Whichever library the writer signs with (libsodium when installed), the bytes are pyca/cryptography's."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    signer = EntrySigner("s", key)
    assert entry_signing(signer)(entry) == signer.sign(entry) == key.sign(signed_message(entry))

"""The witness: C2SP tlog-witness checks and status codes, offline and over HTTP on a loopback port."""

from __future__ import annotations

import base64
import hashlib
import threading
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.crypto.checkpoint import Checkpoint, CosignatureV1Verifier, open_checkpoint
from ledger.crypto.keys import KeyFile
from ledger.crypto.merkle import EMPTY_ROOT, consistency_proof, list_subtree_hash, root
from ledger.crypto.note import Ed25519Signer, format_note, parse_note, parse_signature_lines, sign_note
from ledger.witness import (
    AddCheckpointRequest,
    ConflictingRoot,
    InconsistentCheckpoint,
    MalformedRequest,
    OldSizeMismatch,
    UnknownOrigin,
    UntrustedCheckpoint,
    Witness,
    WitnessStateError,
    init_witness_state,
    parse_add_checkpoint,
    request_cosignature,
)

ORIGIN = "ledger.test.example/village/330100000000/v1"
WITNESS_NAME = "witness.township-agency.test.example/v1"
NOW = 1785456000
LEAVES = [hashlib.sha256(b"\x00" + f"entry {i}".encode()).digest() for i in range(20)]
OTHER_LEAVES = [hashlib.sha256(b"\x00" + f"forged {i}".encode()).digest() for i in range(20)]


def ed25519(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


LOG_SIGNER = Ed25519Signer(ORIGIN, ed25519(7))
LOG_VKEY = LOG_SIGNER.verifier.vkey


def witness_key(seed: int = 9, name: str = WITNESS_NAME) -> KeyFile:
    private = ed25519(seed)
    return KeyFile(name, "witness", private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def note_for(size: int, leaves=LEAVES, signer=LOG_SIGNER, origin=ORIGIN) -> str:
    return sign_note(Checkpoint(origin, size, root(leaves[:size])).text, [signer])


def proof(old: int, new: int, leaves=LEAVES) -> tuple[bytes, ...]:
    return consistency_proof(old, new, list_subtree_hash(leaves[:new]))


@pytest.fixture
def witness(tmp_path) -> Witness:
    state = tmp_path / "township.sqlite"
    assert init_witness_state(state, ORIGIN, [LOG_VKEY]) == (0, EMPTY_ROOT)
    return Witness(state, witness_key(), clock=lambda: NOW)


def cosigned(note: str, lines: str) -> str:
    parsed = parse_note(note)
    return format_note(parsed.text, (*parsed.signatures, *parse_signature_lines(lines)))


def test_first_checkpoint_is_trusted_on_first_use_and_the_cosignature_verifies(witness):
    lines = witness.cosign(note_for(5), 0, ())
    assert lines.startswith(f"— {WITNESS_NAME} ") and lines.count("\n") == 1
    opened = open_checkpoint(cosigned(note_for(5), lines), LOG_SIGNER.verifier, [CosignatureV1Verifier.from_vkey(witness.vkey)])
    assert (opened.checkpoint.size, opened.checkpoint.root_hash) == (5, root(LEAVES[:5]))
    assert [(c.name, c.timestamp) for c in opened.cosignatures] == [(WITNESS_NAME, NOW)]
    state = witness.state(ORIGIN)
    assert (state.size, state.root_hash) == (5, root(LEAVES[:5]))
    assert witness.cosigned(ORIGIN) == [cosigned(note_for(5), lines)]


def test_a_consistent_larger_tree_advances_the_state(witness):
    witness.cosign(note_for(5), 0, ())
    witness.cosign(note_for(8), 5, proof(5, 8))
    witness.cosign(note_for(13), 8, proof(8, 13))
    assert (witness.state(ORIGIN).size, witness.state(ORIGIN).root_hash) == (13, root(LEAVES[:13]))
    assert len(witness.cosigned(ORIGIN)) == 3


def test_the_same_checkpoint_again_is_cosigned_again(witness):
    witness.cosign(note_for(8), 0, ())
    witness.cosign(note_for(8), 8, ())
    assert witness.state(ORIGIN).size == 8


def refused(witness, note, old, path) -> Exception:
    with pytest.raises(Exception) as caught:
        witness.cosign(note, old, path)
    return caught.value


def test_refusals_carry_the_spec_statuses_and_leave_the_state_alone(witness):
    witness.cosign(note_for(8), 0, ())
    smaller = refused(witness, note_for(5), 8, ())
    assert (type(smaller), smaller.status) == (MalformedRequest, 400)
    assert str(smaller) == "old size 8 is larger than the checkpoint size 5"

    stale = refused(witness, note_for(5), 5, ())
    assert (type(stale), stale.status, stale.size) == (OldSizeMismatch, 409, 8)

    forged_root = refused(witness, note_for(8, OTHER_LEAVES), 8, ())
    assert (type(forged_root), forged_root.status) == (ConflictingRoot, 409)

    bad_proof = refused(witness, note_for(12, OTHER_LEAVES), 8, proof(8, 12, OTHER_LEAVES))
    assert (type(bad_proof), bad_proof.status) == (InconsistentCheckpoint, 422)
    assert str(bad_proof) == (
        f"checkpoint of {ORIGIN!r} is not consistent with size 8: consistency proof does not reproduce the new root of size 12"
    )

    unknown = refused(witness, note_for(8, origin="ledger.other.example/v1"), 8, ())
    assert (type(unknown), unknown.status) == (UnknownOrigin, 404)

    impostor = Ed25519Signer(ORIGIN, ed25519(8))
    unsigned = refused(witness, note_for(12, signer=impostor), 8, proof(8, 12))
    assert (type(unsigned), unsigned.status) == (UntrustedCheckpoint, 403)

    # A line under the trusted key ID whose signature is over other text: the whole note is refused.
    good, other = parse_note(note_for(12)), parse_note(note_for(11))
    tampered = format_note(good.text, other.signatures)
    bad_signature = refused(witness, tampered, 8, proof(8, 12))
    assert (type(bad_signature), bad_signature.status) == (UntrustedCheckpoint, 403)

    assert (witness.state(ORIGIN).size, witness.state(ORIGIN).root_hash) == (8, root(LEAVES[:8]))
    assert [status for status, _ in witness.refusals()] == [400, 409, 409, 422, 404, 403, 403]
    assert len(witness.cosigned(ORIGIN)) == 1


def test_size_zero_rules(witness):
    nonempty = refused(witness, note_for(4), 0, (LEAVES[0],))
    assert (type(nonempty), nonempty.status, str(nonempty)) == (
        InconsistentCheckpoint, 422, "the consistency proof from size 0 must be empty"
    )
    bad_empty = sign_note(Checkpoint(ORIGIN, 0, LEAVES[0]).text, [LOG_SIGNER])
    assert refused(witness, bad_empty, 0, ()).status == 422
    witness.cosign(note_for(0), 0, ())
    assert witness.state(ORIGIN).size == 0


def test_initialised_from_a_published_checkpoint(tmp_path):
    state = tmp_path / "committee.sqlite"
    assert init_witness_state(state, ORIGIN, [LOG_VKEY], note_for(8)) == (8, root(LEAVES[:8]))
    witness = Witness(state, witness_key(10, "witness.committee.test.example/v1"), clock=lambda: NOW)
    assert refused(witness, note_for(12), 0, ()).size == 8
    witness.cosign(note_for(12), 8, proof(8, 12))
    with pytest.raises(WitnessStateError, match="already follows"):
        init_witness_state(state, ORIGIN, [LOG_VKEY])
    with pytest.raises(WitnessStateError, match="not signed|no signature"):
        init_witness_state(tmp_path / "x.sqlite", ORIGIN, [LOG_VKEY], note_for(8, signer=Ed25519Signer(ORIGIN, ed25519(8))))


def test_a_witness_needs_a_witness_key_and_an_initialised_state(tmp_path, witness):
    with pytest.raises(WitnessStateError, match="has role 'log'"):
        Witness(witness.state_path, KeyFile(ORIGIN, "log", ed25519(7), LOG_SIGNER.public_key))
    with pytest.raises(WitnessStateError, match="does not exist"):
        Witness(tmp_path / "missing.sqlite", witness_key())


@pytest.mark.parametrize(
    "body, message",
    [
        (b"old 05\n\n" + note_for(5).encode(), "old size '05' is not a canonical decimal number"),
        (b"new 5\n\n" + note_for(5).encode(), "request body must start with 'old <size>', got 'new 5'"),
        (b"old 5\n", "request body has no blank line between the proof and the checkpoint"),
        (b"old 5\nAAAA\n\n" + note_for(5).encode(), "consistency proof line 1 is not canonical base64 of 32 bytes"),
        (b"old 0\n" + b"".join(base64.b64encode(LEAVES[0]) + b"\n" for _ in range(64)) + b"\n" + note_for(5).encode(),
         "consistency proof has 64 lines; at most 63 are allowed"),
    ],
)
def test_malformed_requests_are_400(witness, body, message):
    with pytest.raises(MalformedRequest) as caught:
        witness.handle_request(body)
    assert (caught.value.status, str(caught.value)) == (400, message)
    assert witness.refusals() == [(400, message)]


def test_request_body_round_trips():
    request = AddCheckpointRequest(5, proof(5, 8), note_for(8))
    assert parse_add_checkpoint(request.body()) == request


# -- HTTP --------------------------------------------------------------------------------------------------------


@pytest.fixture
def served(witness):
    server = witness.server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield witness, f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def post(url: str, body: bytes, method: str = "POST") -> tuple[int, str, str]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


def test_http_add_checkpoint_statuses(served):
    witness, url = served
    lines = request_cosignature(url, note_for(5), 0, (), timeout=5)
    verifier = CosignatureV1Verifier.from_vkey(witness.vkey)
    opened = open_checkpoint(cosigned(note_for(5), lines), LOG_SIGNER.verifier, [verifier])
    assert [(c.name, c.timestamp) for c in opened.cosignatures] == [(WITNESS_NAME, NOW)]

    endpoint = url + "/add-checkpoint"
    assert post(endpoint, AddCheckpointRequest(0, (), note_for(8)).body()) == (409, "text/x.tlog.size", "5\n")
    status, content_type, text = post(endpoint, AddCheckpointRequest(5, proof(5, 8), note_for(8)).body())
    assert (status, content_type, text.startswith(f"— {WITNESS_NAME} ")) == (200, "text/plain; charset=utf-8", True)
    assert post(endpoint, AddCheckpointRequest(8, (), note_for(8, OTHER_LEAVES)).body())[0] == 409
    assert post(endpoint, AddCheckpointRequest(9, (), note_for(8)).body())[0] == 400
    assert post(endpoint, AddCheckpointRequest(8, proof(8, 12, OTHER_LEAVES), note_for(12, OTHER_LEAVES)).body())[0] == 422
    assert post(endpoint, AddCheckpointRequest(8, (), note_for(8, origin="ledger.other.example/v1")).body())[0] == 404
    impostor = Ed25519Signer(ORIGIN, ed25519(8))
    assert post(endpoint, AddCheckpointRequest(8, proof(8, 12), note_for(12, signer=impostor)).body())[0] == 403
    assert post(endpoint, b"old x\n\n")[0] == 400
    assert post(url + "/other", b"")[0] == 404
    assert post(endpoint, b"", method="GET")[0] == 405
    assert witness.state(ORIGIN).size == 8


def test_http_client_maps_a_409_to_the_witness_size(served):
    _, url = served
    request_cosignature(url, note_for(8), 0, (), timeout=5)
    with pytest.raises(OldSizeMismatch) as caught:
        request_cosignature(url, note_for(12), 0, (), timeout=5)
    assert (caught.value.status, caught.value.size) == (409, 8)
    with pytest.raises(InconsistentCheckpoint) as bad:
        request_cosignature(url, note_for(12, OTHER_LEAVES), 8, proof(8, 12, OTHER_LEAVES), timeout=5)
    assert bad.value.status == 422

"""Checkpoints and cosignatures against ../shared/vectors/{checkpoint,cosignature}_vectors.json."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from vectors_support import cases_by_id, go_skey_seed, needs_vectors

from ledger.crypto.checkpoint import (
    Checkpoint,
    CheckpointError,
    CosignatureV1Signer,
    CosignatureV1Verifier,
    cosignature_message,
    cosignature_timestamp,
    open_checkpoint,
    parse_checkpoint,
)
from ledger.crypto.keys import VkeyError, parse_vkey
from ledger.crypto.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from ledger.crypto.note import (
    Ed25519Signer,
    Ed25519Verifier,
    InvalidSignatureError,
    NoteSignature,
    format_note,
    parse_note,
    parse_signature_line,
    parse_signature_lines,
    sign_note,
)

CHECKPOINTS = "checkpoint_vectors.json"
COSIGNATURES = "cosignature_vectors.json"


def checkpoint_case(case_id: str) -> dict:
    return cases_by_id(CHECKPOINTS)[case_id]


def cosignature_case(case_id: str) -> dict:
    return cases_by_id(COSIGNATURES)[case_id]


def openssh_ed25519(line: str) -> bytes:
    """The raw key of an 'ssh-ed25519 AAAA...' line: the wire format ends with a 32-byte string."""
    kind, blob = line.split(" ")[:2]
    wire = base64.b64decode(blob, validate=True)
    assert kind == "ssh-ed25519" and wire[-36:-32] == (32).to_bytes(4, "big")
    return wire[-32:]


# --- checkpoint_vectors.json ---


@needs_vectors
def test_c2sp_example_checkpoint_parses():
    example = checkpoint_case("c2sp-example-parse-only")
    checkpoint = parse_checkpoint(parse_note(example["checkpoint"]).text)
    assert checkpoint.origin == example["expect"]["origin"]
    assert checkpoint.size == example["expect"]["size"]
    assert base64.b64encode(checkpoint.root_hash).decode() == example["expect"]["root_b64"]
    assert checkpoint.extensions == ()


@needs_vectors
def test_go_sumdb_tree_note_body():
    body = checkpoint_case("go-sumdb-tree-note-body")
    checkpoint = parse_checkpoint(body["body"])
    assert checkpoint.origin == "go.sum database tree"  # origin SHOULD avoid spaces; parsing accepts them
    assert checkpoint.size == 123456789012
    assert checkpoint.root_hash == leaf_hash(b"hello world")
    assert checkpoint.text == body["body"]


@needs_vectors
def test_sigsum_signed_checkpoint_reproduced_byte_for_byte():
    vector = checkpoint_case("sigsum-signed-checkpoint-seed17")
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["ed25519_seed_hex"]))
    public_key = Ed25519Signer("x", key).public_key
    origin = "sigsum.org/v1/tree/" + hashlib.sha256(public_key).hexdigest()
    note = parse_note(vector["checkpoint"])
    checkpoint = parse_checkpoint(note.text)
    assert (checkpoint.origin, checkpoint.size) == (origin, vector["expect"]["size"])
    assert sign_note(checkpoint.text, [Ed25519Signer(origin, key)]) == vector["checkpoint"]
    signed = open_checkpoint(vector["checkpoint"], Ed25519Verifier(origin, public_key))
    assert signed.checkpoint == checkpoint and signed.cosignatures == ()


@needs_vectors
def test_sigsum_zero_key_checkpoint_body():
    vector = checkpoint_case("sigsum-checkpoint-body-zero-key")
    origin = "sigsum.org/v1/tree/" + hashlib.sha256(bytes.fromhex(vector["pubkey_hex"])).hexdigest()
    checkpoint = Checkpoint(origin, vector["size"], bytes.fromhex(vector["root_hex"]))
    assert checkpoint.text == vector["body"]
    assert parse_checkpoint(vector["body"]) == checkpoint


@needs_vectors
def test_witness_update_monkeys_5_to_8():
    vector = checkpoint_case("witness-monkeys-5-to-8")
    name, _, seed = go_skey_seed(vector["log_skey"])
    log_signer = Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(seed))
    log = Ed25519Verifier.from_vkey(vector["log_vkey"])
    assert log_signer.verifier == log
    old = open_checkpoint(vector["old_checkpoint"], log).checkpoint
    new = open_checkpoint(vector["new_checkpoint"], log).checkpoint
    assert (old.size, new.size) == (vector["expect"]["old_size"], vector["expect"]["new_size"])
    assert sign_note(old.text, [log_signer]) == vector["old_checkpoint"]
    assert sign_note(new.text, [log_signer]) == vector["new_checkpoint"]
    proof = [bytes.fromhex(h) for h in vector["consistency_proof_hex"]]
    verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    with pytest.raises(ProofError, match="too short"):
        verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof[:-1])


# --- cosignature_vectors.json ---


@needs_vectors
def test_c2sp_cosignature_message_layout():
    vector = cosignature_case("c2sp-signed-message-example")
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    assert cosignature_message(text, 1679315147) == vector["signed_message"].encode()


@needs_vectors
def test_c2sp_cosigned_checkpoint_parses():
    vector = cosignature_case("c2sp-cosigned-checkpoint-parse-only")
    note = parse_note(vector["checkpoint"])
    witness = note.signatures[1]
    assert witness.name == vector["expect"]["witness_name"]
    assert witness.key_id.hex() == vector["expect"]["witness_key_id_hex"]
    assert cosignature_timestamp(witness.signature) == vector["expect"]["timestamp"]


@needs_vectors
def test_c2sp_add_checkpoint_request_and_response_parse():
    vector = cosignature_case("c2sp-witness-add-checkpoint-example-parse-only")
    # tlog-witness request: "old N\n", proof lines, blank line, then the signed checkpoint note.
    head, _, note_text = vector["request_body"].partition("\n\n")
    old_line, *proof_lines = head.split("\n")
    assert old_line == "old 20852014"
    assert [len(base64.b64decode(line, validate=True)) for line in proof_lines] == [32, 32, 32, 32]
    note = parse_note(note_text)
    checkpoint = parse_checkpoint(note.text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    response = parse_signature_lines(vector["response_body"])
    assert [(sig.name, sig.key_id.hex(), len(sig.signature)) for sig in response] == [
        ("witness.example/w1", "08ca7ee8", 72),
        ("witness.example/w1", "23bac4a6", 72),
        ("witness.example/w2", "016ba2f1", 72),
    ]


@needs_vectors
def test_sigsum_real_witness_cosignature():
    vector = cosignature_case("sigsum-real-cosignature")
    fields = {}
    for line in vector["proof_ascii"].splitlines():
        if line:
            key, _, value = line.partition("=")
            fields.setdefault(key, []).append(value)
    log_key = openssh_ed25519(vector["keys_openssh"]["logKey"])
    witness_key = openssh_ed25519(vector["keys_openssh"]["witnessKey"])
    submit_key = openssh_ed25519(vector["keys_openssh"]["submitKey"])
    assert fields["log"] == [hashlib.sha256(log_key).hexdigest()]

    origin = "sigsum.org/v1/tree/" + hashlib.sha256(log_key).hexdigest()
    root_hash = bytes.fromhex(fields["root_hash"][0])
    checkpoint = Checkpoint(origin, int(fields["size"][0]), root_hash)
    assert Ed25519Verifier(origin, log_key).verify(checkpoint.text.encode(), bytes.fromhex(fields["signature"][0]))

    witness_hash, timestamp_text, signature_hex = fields["cosignature"][0].split(" ")
    assert witness_hash == hashlib.sha256(witness_key).hexdigest()
    timestamp = int(timestamp_text)
    assert timestamp == 1683202758
    # As a C2SP cosignature line: the key name is not signed, so any name shows the real signature verifies.
    witness = CosignatureV1Verifier("witness.sigsum.example", witness_key)
    blob = timestamp.to_bytes(8, "big") + bytes.fromhex(signature_hex)
    assert witness.verify(checkpoint.text.encode(), blob)
    moved = (timestamp + 1).to_bytes(8, "big") + bytes.fromhex(signature_hex)
    assert not witness.verify(checkpoint.text.encode(), moved)

    log_line = NoteSignature(origin, Ed25519Verifier(origin, log_key).key_id, bytes.fromhex(fields["signature"][0]))
    cosigned = format_note(checkpoint.text, [log_line, NoteSignature(witness.name, witness.key_id, blob)])
    signed = open_checkpoint(cosigned, Ed25519Verifier(origin, log_key), [witness])
    assert signed.cosigner_names == ("witness.sigsum.example",)
    assert signed.cosignatures[0].timestamp == 1683202758

    # The logged leaf and its inclusion proof in the same tree.
    submit_hash, leaf_signature_hex = fields["leaf"][0].split(" ")
    assert submit_hash == hashlib.sha256(submit_key).hexdigest()
    checksum = hashlib.sha256(vector["message_32_bytes_ascii"].encode()).digest()
    leaf_signature = bytes.fromhex(leaf_signature_hex)
    assert Ed25519Verifier("submitter", submit_key).verify(b"sigsum.org/v1/tree-leaf\x00" + checksum, leaf_signature)
    leaf = checksum + leaf_signature + bytes.fromhex(submit_hash)
    path = [bytes.fromhex(h) for h in fields["node_hash"]]
    verify_inclusion(int(fields["leaf_index"][0]), checkpoint.size, leaf_hash(leaf), path, root_hash)


@needs_vectors
def test_sigsum_cosigned_data_layout():
    vector = cosignature_case("sigsum-cosigned-data-layout")
    assert cosignature_message(vector["checkpoint_body"], vector["timestamp"]) == vector["signed_message"].encode()


@needs_vectors
def test_sigsum_line_layout_timestamp_beyond_2_63_is_refused():
    # Deviation: sigsum reads this synthetic 8-byte field as the u64 16690333448463043101; tlog-cosignature caps
    # timestamps at 2^63-1, so we parse the line but refuse the timestamp.
    vector = cosignature_case("sigsum-cosignature-line-layout")
    signature = parse_signature_line(vector["line"].rstrip("\n"))
    assert signature.name == vector["expect"]["key_name"]
    assert list(signature.key_id) == vector["expect"]["key_id"]
    assert int.from_bytes(signature.signature[:8], "big") == vector["expect"]["timestamp"]
    assert list(signature.signature[8:11]) == vector["expect"]["signature_prefix"]
    with pytest.raises(CheckpointError, match="timestamp 16690333448463043101 is outside 0..2\\^63-1"):
        cosignature_timestamp(signature.signature)


@needs_vectors
def test_formats_timestamp_extraction():
    vector = cosignature_case("formats-timestamp-extraction")
    ok = base64.b64decode(vector["ok"]["signature_b64"])
    assert cosignature_timestamp(ok[4:]) == vector["ok"]["timestamp"]
    plain = base64.b64decode(vector["must_fail"]["signature_b64"])
    with pytest.raises(CheckpointError, match="must be 72 bytes, got 64"):
        cosignature_timestamp(plain[4:])


@needs_vectors
def test_formats_cosigner_vkeys():
    vector = cosignature_case("formats-cosigner-vkeys")
    converted, native = (parse_vkey(item["vkey"]) for item in vector["accept"])
    assert (converted.signature_type, converted.key_id.hex()) == (0x01, "7997405c")
    # formats turns a type-0x01 key into a cosigner by recomputing its key ID with type 0x04.
    as_cosigner = CosignatureV1Verifier(converted.name, converted.public_key)
    assert as_cosigner.key_id != converted.key_id
    assert as_cosigner.vkey.startswith("TEST+" + as_cosigner.key_id.hex() + "+B")
    assert (native.name, native.signature_type, native.key_id.hex()) == ("remora.n621.de", 0x04, "da77ade7")
    assert CosignatureV1Verifier.from_vkey(vector["accept"][1]["vkey"]).vkey == vector["accept"][1]["vkey"]
    messages = {
        "wrong number of parts": "must have the form name\\+keyid\\+key",
        "invalid base64": "is not standard base64",
        "invalid algo": "unsupported signature type 0x03",
        "invalid keyhash": "key ID 'NOT_A_NUMBER' must be 8 lowercase hex digits",
        "incorrect keyhash": "unsupported signature type 0x02",
    }
    for item in vector["reject"]:
        with pytest.raises(VkeyError, match=messages[item["desc"]]):
            parse_vkey(item["vkey"])


@needs_vectors
def test_unattributed_cosigned_checkpoint_reproduced_from_seeds():
    vector = cosignature_case("unattributed-fixed-seed-cosigned-checkpoint")
    log_name, _, log_seed = go_skey_seed(vector["log_skey"])
    witness_name, witness_type, witness_seed = go_skey_seed(vector["witness_skey"])
    assert witness_type == 0x04
    log_signer = Ed25519Signer(log_name, Ed25519PrivateKey.from_private_bytes(log_seed))
    witness_signer = CosignatureV1Signer(
        witness_name, Ed25519PrivateKey.from_private_bytes(witness_seed), vector["timestamp"]
    )
    assert log_signer.verifier.vkey == vector["log_vkey"]
    assert witness_signer.verifier.vkey == vector["witness_vkey"]
    assert witness_signer.key_id.hex() == vector["expect"]["witness_key_id_hex"]

    checkpoint = parse_checkpoint(parse_note(vector["checkpoint"]).text)
    assert sign_note(checkpoint.text, [log_signer, witness_signer]) == vector["checkpoint"]

    signed = open_checkpoint(
        vector["checkpoint"],
        Ed25519Verifier.from_vkey(vector["log_vkey"]),
        [CosignatureV1Verifier.from_vkey(vector["witness_vkey"])],
    )
    assert signed.checkpoint == checkpoint
    assert signed.cosigner_names == (witness_name,)
    assert signed.cosignatures[0].timestamp == vector["timestamp"]


# --- our own cases ---


def _log_signer() -> Ed25519Signer:
    return Ed25519Signer("example.org/log", Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32))


def _witness(timestamp: int = 1785456000) -> CosignatureV1Signer:
    return CosignatureV1Signer("witness.example.org/w1", Ed25519PrivateKey.from_private_bytes(bytes([2]) * 32), timestamp)


def test_cosign_round_trip_and_tampering():
    checkpoint = Checkpoint("example.org/log", 3, hashlib.sha256(b"root").digest())
    log, witness = _log_signer(), _witness()
    note = sign_note(checkpoint.text, [log])
    cosigned = sign_note(checkpoint.text, [], parse_note(note).signatures + (witness.cosignature(checkpoint),))
    assert cosigned == sign_note(checkpoint.text, [log, witness])
    signed = open_checkpoint(cosigned, log.verifier, [witness.verifier])
    assert signed.cosigner_names == ("witness.example.org/w1",)
    assert signed.cosignatures[0].timestamp == 1785456000

    tampered = cosigned.replace("\n3\n", "\n4\n")
    with pytest.raises(InvalidSignatureError, match="'example.org/log'"):
        open_checkpoint(tampered, log.verifier, [witness.verifier])


def test_checkpoint_without_the_log_signature_is_refused():
    checkpoint = Checkpoint("example.org/log", 3, hashlib.sha256(b"root").digest())
    witness = _witness()
    cosigned_only = sign_note(checkpoint.text, [witness])
    with pytest.raises(CheckpointError, match="not signed by the log key 'example.org/log'"):
        open_checkpoint(cosigned_only, _log_signer().verifier, [witness.verifier])


def test_log_key_as_cosigner_gets_a_different_key_id():
    log = _log_signer()
    as_witness = CosignatureV1Verifier(log.name, log.public_key)
    assert as_witness.key_id != log.key_id


def test_cosigner_refuses_to_sign_anything_but_a_checkpoint():
    with pytest.raises(CheckpointError, match="checkpoint needs origin, size and root lines"):
        sign_note("just some text\n", [_witness()])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "'01' is not a canonical decimal"),
        ("o\n+1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "'\\+1' is not a canonical decimal"),
        ("o\n١\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "is not a canonical decimal"),
        ("o\n18446744073709551616\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "does not fit in 64 bits"),
        ("o\n1\nAAAA\n", "root hash must be 32 bytes, got 3"),
        ("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n", "is not canonical base64"),
        ("o\n1\n AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "is not standard base64"),
        ("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "must end with a newline"),
        ("o\n1\n", "needs origin, size and root lines, got 2"),
        ("\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "origin is empty"),
        ("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n", "line '' is empty"),
    ],
)
def test_strict_checkpoint_parsing(text, message):
    with pytest.raises(CheckpointError, match=message):
        parse_checkpoint(text)


def test_checkpoint_with_extension_lines_round_trips():
    text = "o\n18446744073709551615\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next one\next two\n"
    checkpoint = parse_checkpoint(text)
    assert checkpoint.extensions == ("ext one", "ext two")
    assert checkpoint.size == 2**64 - 1
    assert checkpoint.text == text


def test_cosignature_timestamp_bounds():
    with pytest.raises(CheckpointError, match="timestamp 9223372036854775808 is outside"):
        cosignature_message("o\n0\n" + base64.b64encode(bytes(32)).decode() + "\n", 2**63)
    with pytest.raises(CheckpointError, match="timestamp -1 is outside"):
        _witness(-1)


def test_wrong_type_vkeys_are_refused():
    log, witness = _log_signer(), _witness()
    with pytest.raises(VkeyError, match="type 0x01, expected 0x04"):
        CosignatureV1Verifier.from_vkey(log.verifier.vkey)
    with pytest.raises(VkeyError, match="type 0x04, expected 0x01"):
        Ed25519Verifier.from_vkey(witness.verifier.vkey)

"""C2SP signed notes and vkeys against ../shared/vectors/signed_note_vectors.json, plus strict-parsing cases."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from vectors_support import cases_by_id, go_skey_seed, needs_vectors

from ledger.crypto.keys import VerifierKey, VkeyError, format_vkey, parse_vkey
from ledger.crypto.note import (
    Ed25519Signer,
    Ed25519Verifier,
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    NoteSignature,
    UnverifiedNoteError,
    open_note,
    parse_note,
    parse_signature_lines,
    sign_note,
)

FILE = "signed_note_vectors.json"


def case(case_id: str) -> dict:
    return cases_by_id(FILE)[case_id]


def signer_from_skey(skey: str) -> Ed25519Signer:
    name, signature_type, seed = go_skey_seed(skey)
    assert signature_type == 0x01
    return Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


@needs_vectors
def test_c2sp_example_verifies():
    example = case("c2sp-example")
    verifier = Ed25519Verifier.from_vkey(example["vkey"])
    opened = open_note(example["note"], [verifier])
    assert opened.text == example["expect"]["text"]
    assert opened.verified_names == ("example.com/foo",)
    assert opened.unverified == ()
    assert verifier.vkey == example["vkey"]


@needs_vectors
def test_quasimodo_text_contains_a_blank_line():
    quasimodo = case("c2sp-quasimodo-parse-only")
    note = parse_note(quasimodo["note"])
    assert note.text == quasimodo["expect"]["text"]
    assert [sig.name for sig in note.signatures] == quasimodo["expect"]["signature_names"]
    assert bytes(note) == quasimodo["note"].encode("utf-8")


@needs_vectors
def test_peter_neumann_note_is_reproduced_byte_for_byte():
    peter = case("go-peterneumann-sign")
    signer = signer_from_skey(peter["skey"])
    assert signer.key_id.hex() == peter["expect"]["key_id_hex"]
    assert signer.verifier.vkey == peter["vkey"]
    assert sign_note(peter["text"], [signer]) == peter["expect"]["signed_note"]


@needs_vectors
def test_two_signers_reproduced_from_seeds():
    two = case("go-two-signers")
    peter = signer_from_skey(case("go-peterneumann-sign")["skey"])
    enoch = Ed25519Signer("EnochRoot", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    assert enoch.verifier.vkey == two["vkeys"]["EnochRoot"]
    text = case("go-peterneumann-sign")["text"]
    assert sign_note(text, [peter, enoch]) == two["note"]


@needs_vectors
def test_two_signers_verification_depends_on_known_keys():
    two = case("go-two-signers")
    peter = Ed25519Verifier.from_vkey(two["vkeys"]["PeterNeumann"])
    enoch = Ed25519Verifier.from_vkey(two["vkeys"]["EnochRoot"])

    only_peter = open_note(two["note"], [peter])
    assert list(only_peter.verified_names) == two["expect"]["with_only_peter_key"]["verified"]
    assert [sig.name for sig in only_peter.unverified] == two["expect"]["with_only_peter_key"]["unverified"]

    both = open_note(two["note"], [peter, enoch])
    assert list(both.verified_names) == two["expect"]["with_both_keys"]["verified"]

    with pytest.raises(UnverifiedNoteError, match="no signature from a known key"):
        open_note(two["note"], [])


@needs_vectors
def test_bad_vkeys_are_rejected():
    for vkey in case("go-bad-vkeys")["vkeys_must_be_rejected"]:
        with pytest.raises(VkeyError):
            parse_vkey(vkey)


@needs_vectors
def test_every_substring_and_byte_increment_of_a_good_vkey_is_rejected():
    # The same mutation sweep as upstream note_test.go.
    good = case("go-peterneumann-sign")["vkey"]
    parse_vkey(good)
    mutants = {good[i:j] for i in range(len(good)) for j in range(i, len(good) + 1)} - {good}
    mutants |= {good[:i] + chr(ord(good[i]) + 1) + good[i + 1:] for i in range(len(good))}
    for mutant in mutants:
        with pytest.raises(VkeyError):
            parse_vkey(mutant)


@needs_vectors
def test_malformed_notes_are_rejected_with_the_reason():
    malformed = case("go-malformed-notes")
    verifier = Ed25519Verifier.from_vkey(malformed["vkey"])
    expected = [
        (MalformedNoteError, "no blank line before its signatures"),
        (MalformedNoteError, "signature block is empty"),
        (MalformedNoteError, "does not end with a newline"),
        (MalformedNoteError, "control character U\\+0001 at offset 0"),
        (MalformedNoteError, "does not end with a newline"),
        (MalformedNoteError, "'Unexpected line.' does not start with an em dash"),
        (InvalidSignatureError, "signature by 'PeterNeumann' \\(key ID c74f20a3\\) does not verify"),
    ]
    notes = malformed["notes_must_be_rejected"]
    assert len(notes) == len(expected)
    for note, (error, message) in zip(notes, expected):
        with pytest.raises(error, match=message):
            open_note(note, [verifier])


@needs_vectors
def test_name_with_space_is_rejected_even_with_a_final_newline():
    # The upstream case also lacks its final newline; this isolates the key-name rule.
    note = case("go-malformed-notes")["notes_must_be_rejected"][4] + "\n"
    # A name cannot contain a space, so everything after "Bad" is read as the signature, which is not base64.
    with pytest.raises(MalformedNoteError, match="signature of 'Bad' is not standard base64"):
        parse_note(note)


@needs_vectors
def test_invalid_utf8_is_rejected():
    # Upstream also rejects a leading 0xff byte; JSON cannot carry it, so it is built here.
    note = b"\xff" + case("go-peterneumann-sign")["expect"]["signed_note"].encode("utf-8")
    with pytest.raises(MalformedNoteError, match="not valid UTF-8"):
        parse_note(note)


@needs_vectors
def test_witness_test_keys():
    keys = case("witness-test-keys")["keys"]
    for public, private in (("mPK", "mSK"), ("bPK", "bSK"), ("wPK", "wSK")):
        signer = signer_from_skey(keys[private])
        assert signer.verifier.vkey == keys[public]
        parsed = parse_vkey(keys[public])
        assert parsed == VerifierKey(signer.name, signer.key_id, 0x01, signer.public_key)


# --- strictness beyond the vectors ---


def _signer(name: str = "example.org/log") -> Ed25519Signer:
    return Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def test_unknown_key_with_same_name_is_ignored_but_known_failure_rejects():
    signer = _signer()
    other = Ed25519Signer(signer.name, Ed25519PrivateKey.from_private_bytes(bytes(32)))
    note = sign_note("hello\n", [signer, other])
    opened = open_note(note, [signer.verifier])
    assert opened.verified_names == (signer.name,)
    assert [sig.key_id for sig in opened.unverified] == [other.key_id]

    parsed = parse_note(note)
    forged = NoteSignature(signer.name, signer.key_id, other.sign(b"hello\n"))
    with pytest.raises(InvalidSignatureError, match="does not verify"):
        open_note("hello\n\n" + forged.line + parsed.signatures[1].line, [signer.verifier])


def test_sign_refuses_text_without_final_newline_or_with_control_characters():
    with pytest.raises(MalformedNoteError, match="must end with a newline"):
        sign_note("hello", [_signer()])
    with pytest.raises(MalformedNoteError, match="control character U\\+0009"):
        sign_note("a\tb\n", [_signer()])


def test_non_canonical_signature_base64_is_rejected():
    note = sign_note("hello\n", [_signer()])
    # Canonical Ed25519 blobs (68 bytes) end in one '='; set the unused low bits of the last character.
    line = note.split("\n")[-2]
    last = line[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    tweaked = line[:-2] + alphabet[alphabet.index(last) | 1] + "="
    assert tweaked != line and base64.b64decode(tweaked.split(" ")[-1]) == base64.b64decode(line.split(" ")[-1])
    with pytest.raises(MalformedNoteError, match="not canonical base64"):
        parse_note("hello\n\n" + tweaked + "\n")


def test_too_many_signatures_are_refused():
    line = parse_note(sign_note("hello\n", [_signer()])).signatures[0].line
    parse_signature_lines(line * 100)
    with pytest.raises(MalformedNoteError, match="101 signatures; at most 100"):
        parse_signature_lines(line * 101)


def test_duplicate_known_keys_are_ambiguous():
    verifier = _signer().verifier
    with pytest.raises(NoteError, match="two known keys share name"):
        open_note(sign_note("hello\n", [_signer()]), [verifier, verifier])


def test_vkey_round_trip_and_plus_in_base64():
    # TEST+7997405c+AQcC+FTV... : the key's base64 itself contains '+' (formats-cosigner-vkeys vector).
    signer = _signer()
    vkey = format_vkey(signer.name, 0x01, signer.public_key)
    assert parse_vkey(vkey) == VerifierKey(signer.name, signer.key_id, 0x01, signer.public_key)
    with pytest.raises(VkeyError, match="8 lowercase hex digits"):
        parse_vkey(vkey.replace(signer.key_id.hex(), signer.key_id.hex().upper()))
    with pytest.raises(VkeyError, match="key ID 'b' must be 8 lowercase hex digits"):
        parse_vkey("a+b+" + vkey)
    with pytest.raises(VkeyError, match="key name 'a b' contains whitespace"):
        parse_vkey("a b+" + vkey.split("+", 1)[1])

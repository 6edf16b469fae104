"""Receipts (c2sp.org/tlog-proof@v1 with the entry in `extra`): made from a ledger, checked offline."""

from __future__ import annotations

import base64

import pytest
import test_verify_sqlite

from ledger.cli import EXIT_FINDING, EXIT_OK, EXIT_USAGE, main
from ledger.crypto.logformat import leaf_hash
from ledger.receipts import ReceiptRefused, make_receipt
from ledger.verify.checkpoints import Finding
from ledger.verify.conformance import policy_text, signed_checkpoint
from ledger.verify.policy import parse_policy
from ledger.verify.receipt import (
    ReceiptError,
    format_receipt,
    parse_receipt,
    verify_receipt,
)


@pytest.fixture
def ledger(tmp_path):
    suite = test_verify_sqlite.TestVerifierOnSQLite()
    suite._path = tmp_path / "ledger.sqlite"
    location, checkpoints = suite.checkpointed_ledger(tmp_path)
    return suite, location, checkpoints


def test_receipt_for_a_voucher_verifies(ledger, tmp_path):
    _, location, [_, (_, _, note2)] = ledger
    receipt = make_receipt(location, voucher="记-202501-003")
    text = format_receipt(receipt)
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert text.endswith("\n\n" + note2)
    assert parse_receipt(text) == receipt
    assert (receipt.index, len(receipt.path)) == (14, 6)  # the third voucher's posting; tree of 33 leaves
    assert '"voucher_no":"记-202501-003"'.encode() in receipt.state
    assert verify_receipt(text, parse_policy(policy_text())) == []


def test_cli_receipt_and_verify_receipt(ledger, tmp_path, capsys):
    _, location, _ = ledger
    out, policy = tmp_path / "r.tlog-proof", tmp_path / "policy.txt"
    policy.write_text(policy_text(), "utf-8")
    assert main(["receipt", location, "--seq", "5", "--out", str(out)]) == EXIT_OK
    assert main(["verify-receipt", str(out), "--policy", str(policy)]) == EXIT_OK
    policy.write_text(policy_text("all3"), "utf-8")
    capsys.readouterr()
    assert main(["verify-receipt", str(out), "--policy", str(policy)]) == EXIT_FINDING
    assert capsys.readouterr().out == (
        "5\tquorum\tthe receipt's checkpoint: cosigned by committee, township; policy quorum 'all3' is not met\n"
    )
    out.write_text("not a receipt\n\n", "utf-8")
    assert main(["verify-receipt", str(out), "--policy", str(policy)]) == EXIT_USAGE


def test_tampered_inclusion_path_is_a_finding(ledger):
    _, location, _ = ledger
    receipt = make_receipt(location, seq=5)
    path = list(receipt.path)
    path[2] = bytes(32)
    tampered = format_receipt(receipt.__class__(receipt.index, tuple(path), receipt.leaf, receipt.state, receipt.note))
    assert verify_receipt(tampered, parse_policy(policy_text())) == [
        Finding(5, "inclusion", "inclusion proof for leaf 5 does not lead to the root of tree size 33")
    ]


def test_tampered_entry_is_a_finding(ledger):
    _, location, _ = ledger
    receipt = make_receipt(location, seq=5)
    state = receipt.state.replace(b"-202501-", b"-202502-", 1)
    assert state != receipt.state
    tampered = format_receipt(receipt.__class__(5, receipt.path, receipt.leaf, state, receipt.note))
    assert verify_receipt(tampered, parse_policy(policy_text())) == [
        Finding(5, "state", "the event bytes do not hash to the entry's signed state digest")
    ]


def test_receipt_against_the_wrong_checkpoint_is_a_finding(ledger):
    _, location, [(_, _, note1), _] = ledger
    receipt = make_receipt(location, seq=5)
    # A genuine, cosigned checkpoint, but of size 22: the size-33 path does not lead to its root.
    wrong = format_receipt(receipt.__class__(5, receipt.path, receipt.leaf, receipt.state, note1))
    assert verify_receipt(wrong, parse_policy(policy_text())) == [
        Finding(5, "inclusion", "inclusion proof for leaf 5 in tree size 22 is too long (6 hashes)")
    ]
    forged = signed_checkpoint(33, leaf_hash(b"another history"))
    other = format_receipt(receipt.__class__(5, receipt.path, receipt.leaf, receipt.state, forged))
    assert verify_receipt(other, parse_policy(policy_text())) == [
        Finding(5, "inclusion", "inclusion proof for leaf 5 does not lead to the root of tree size 33")
    ]


def test_quorum_unmet_is_a_finding(ledger):
    _, location, _ = ledger
    receipt = make_receipt(location, seq=5)
    assert verify_receipt(format_receipt(receipt), parse_policy(policy_text("all3"))) == [
        Finding(5, "quorum", "the receipt's checkpoint: cosigned by committee, township; policy quorum 'all3' is not met")
    ]


def test_no_receipt_before_a_checkpoint_covers_the_entry(ledger):
    _, location, _ = ledger
    with pytest.raises(ReceiptRefused) as caught:
        make_receipt(location, seq=33)
    assert str(caught.value) == "no recorded checkpoint covers seq 33 yet; record and cosign one first"
    with pytest.raises(ReceiptRefused) as caught:
        make_receipt(location, voucher="记-209901-001")
    assert str(caught.value) == f"{location} has no entry for voucher '记-209901-001'"


def test_malformed_receipt_names_the_line():
    extra = base64.b64encode(b"\x00\x00\x00\x01x").decode()
    with pytest.raises(ReceiptError) as caught:
        parse_receipt(f"c2sp.org/tlog-proof@v1\nextra {extra}\nindex 01\n\nnote\n")
    assert str(caught.value) == "line 3: expected `index <decimal>`"

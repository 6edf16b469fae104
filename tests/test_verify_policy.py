"""Trust policy files: sigsum syntax with C2SP vkeys, line-numbered errors, quorum evaluation, round trip."""

from __future__ import annotations

import pytest

from ledger.crypto.keys import ED25519, format_vkey
from ledger.verify.conformance import LOG_KEY, WITNESS_NAMES, policy_text, witness_vkey
from ledger.verify.policy import PolicyError, parse_policy

LOG_VKEY = format_vkey(LOG_KEY.name, ED25519, LOG_KEY.public_key)


def test_parse_and_format_round_trip():
    policy = parse_policy(policy_text("both"))
    assert [w.name for w in policy.witnesses] == ["township", "committee", "county"]
    assert [(g.name, g.threshold, g.members) for g in policy.groups] == [
        ("both", 2, ("township", "committee")), ("all3", 3, ("township", "committee", "county"))
    ]
    assert policy.quorum == "both"
    assert policy.format() == policy_text("both")
    assert [v.name for v in policy.log_verifiers(LOG_KEY.name)] == [LOG_KEY.name]
    assert policy.log_verifiers("another.example/log") == ()


def test_comments_urls_and_thresholds():
    text = (
        "# county policy\n"
        f"log {LOG_VKEY} https://ledger.example/log   # the log\n"
        "\n"
        f"witness a {witness_vkey('township')} https://w.example\n"
        f"witness b {witness_vkey('committee')}\n"
        f"witness c {witness_vkey('county')}\n"
        "group two 2 a b c\n"
        "group either any a b\n"
        "group top all two either\n"
        "quorum top\n"
    )
    policy = parse_policy(text)
    assert (policy.logs[0].url, policy.witnesses[0].url, policy.witnesses[1].url) == ("https://ledger.example/log", "https://w.example", None)
    assert [policy.quorum_met(s) for s in ({"a", "b"}, {"a", "c"}, {"b", "c"}, {"c"}, {"a"}, set())] == [
        True, True, True, False, False, False
    ]


def test_quorum_none_needs_no_witness():
    policy = parse_policy(f"log {LOG_VKEY}\nquorum none\n")
    assert (policy.quorum_met(set()), policy.witnesses) == (True, ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quorum none\n", "policy.txt: no `log KEY` line; a policy must name the log key"),
        (f"log {LOG_VKEY}\n", "policy.txt: no `quorum NAME|none` line"),
        (f"log {LOG_VKEY}\nwitnes x y\n", "policy.txt:2: unknown statement 'witnes' (expected log, witness, group or quorum)"),
        (f"log {LOG_VKEY}\nquorum w\n", "policy.txt:2: quorum 'w' is not a witness or group defined on an earlier line"),
        (f"log {LOG_VKEY}\ngroup g any w\n", "policy.txt:2: group member 'w' is not a witness or group defined on an earlier line"),
        (f"log {LOG_VKEY}\nquorum none\nquorum none\n", "policy.txt:3: a second quorum line; the policy has exactly one"),
        (f"log {witness_vkey('township')}\n",
         f"policy.txt:1: vkey {witness_vkey('township')!r} has type 0x04; log keys are type 0x01 (Ed25519)"),
        (f"log {LOG_VKEY}\nwitness w {LOG_VKEY}\n",
         f"policy.txt:2: vkey {LOG_VKEY!r} has type 0x01; witness keys are type 0x04 (cosignature/v1)"),
        (f"log {LOG_VKEY}\nwitness w {witness_vkey('township')}\nwitness w {witness_vkey('county')}\n",
         "policy.txt:3: name 'w' is already defined"),
        (f"log {LOG_VKEY}\nwitness w {witness_vkey('township')}\ngroup g 2 w\n",
         "policy.txt:3: group threshold '2' must be any, all or a number from 1 to 1"),
        (f"log {LOG_VKEY}\nwitness none {witness_vkey('township')}\n",
         "policy.txt:2: 'none' is reserved and cannot name a witness or group"),
        ("log example.com+00000000+AAAA\n", "policy.txt:1: unsupported signature type 0x00 (supported: 0x01 Ed25519, 0x04 cosignature/v1)"),
        (f"log {LOG_VKEY} a b\n", "policy.txt:1: expected `log KEY [URL]`"),
    ],
)
def test_errors_name_the_line(text, message):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, where="policy.txt")
    assert str(caught.value) == message


def test_witness_names_map_to_cosigner_keys():
    policy = parse_policy(policy_text())
    township = policy.witnesses[0].verifier
    assert policy.witnesses_named([(WITNESS_NAMES["township"], township.key_id), ("stranger", b"1234")]) == {"township"}

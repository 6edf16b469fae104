"""Chain-only verification (verify_source(signatures=False), `verify --chain-only`) and the fast entry parser."""

from __future__ import annotations

import json

import pytest
from test_verify_parallel import tampered  # noqa: F401  (fixture)

from ledger.cli import EXIT_OK, EXIT_USAGE, main
from ledger.crypto.logformat import LogFormatError, encode_entry, parse_leaf
from ledger.verify import chain, verify_source
from ledger.verify.conformance import policy_text
from ledger.verify.entries import parse_entry
from ledger.verify.policy import parse_policy


def test_chain_only_reports_every_finding_but_the_signatures(tampered, monkeypatch):  # noqa: F811
    policy = parse_policy(policy_text())
    full = verify_source(tampered, policy=policy, jobs=1)
    chain_only = verify_source(tampered, policy=policy, signatures=False)
    assert chain_only.findings == [f for f in full.findings if f.check != "signature"]
    assert (chain_only.head, chain_only.root, chain_only.size) == (full.head, full.root, full.size)
    assert chain_only.signatures_checked is False and full.signatures_checked is True
    assert "signatures not checked" in chain_only.summary()
    # The same log read in ranges by worker processes.
    monkeypatch.setattr(chain, "CHAIN_PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(chain, "MAX_RANGE_WIDTH", 8)
    monkeypatch.setattr(chain, "MIN_RANGE_WIDTH", 8)
    assert verify_source(tampered, policy=policy, jobs=2, signatures=False).findings == chain_only.findings


def test_intact_chain_only_summary_is_qualified(tmp_path, capsys):
    import test_verify_sqlite

    suite = test_verify_sqlite.TestVerifierOnSQLite()
    suite._path = tmp_path / "ledger.sqlite"
    location, _ = suite.checkpointed_ledger(tmp_path)
    result = verify_source(location, policy=parse_policy(policy_text()), signatures=False)
    assert result.intact
    assert result.summary().startswith("chain intact, signatures not checked: ")
    assert not verify_source(location, policy=parse_policy(policy_text())).summary().startswith("chain")
    with pytest.raises(ValueError):
        verify_source(location, signatures=False, state_path=tmp_path / "state")
    policy_file = tmp_path / "policy.txt"
    policy_file.write_text(policy_text(), "utf-8")
    assert main(["verify", location, "--policy", str(policy_file), "--chain-only"]) == EXIT_OK
    assert capsys.readouterr().err.splitlines()[-1].startswith("chain intact, signatures not checked: ")
    state = ["--state", str(tmp_path / "state")]
    assert main(["verify", location, "--policy", str(policy_file), "--chain-only", *state]) == EXIT_USAGE


def _leaf() -> bytes:
    return encode_entry(
        origin="o.example/v1", seq=3, prev=bytes(range(32)), time="2025-01-15T08:00:00.000000Z", signer="k+0a0b0c0d",
        originator_id="id-1", version=2, topic="ledger/Voucher/Posted", state_digest=bytes(range(32, 64)),
    ) + bytes(64)


@pytest.mark.parametrize("edit", [
    None,
    ('"v":1', '"v":true'), ('"v":1', '"v":1.0'), ('"v":1', '"v":2'), ('"seq":3', '"seq":03'), ('"seq":3', '"seq":-3'),
    ('"id":"id-1"', '"id":"id\\u00e9"'), ('"id":"id-1"', '"id":"\\u0069d"'), ('"id":"id-1"', '"id":"id\\"1"'),
    ('"origin":"o.example/v1"', '"origin":"\\u4e2d"'), ('"id":"id-1",', '"id":"id-1", '), ('AAECAwQF', 'AAECAwQf'),
    ('"version":2', '"version":2,"x":1'), ('"state":"ICEi', '"state":"ICEj'), ('=","seq"', '","seq"'),
    ('"time":"2025', '"time":"\\t2025'), ('"id":"id-1"', '"id":"id\x7f"'), ('"id":"id-1"', '"id":"id\xe9"'),
])
def test_fast_parser_decides_exactly_like_parse_leaf(edit):
    leaf = _leaf()
    if edit is not None:
        text = leaf[:-64].decode("latin-1")
        assert edit[0] in text, edit
        leaf = text.replace(edit[0], edit[1], 1).encode("latin-1") + bytes(64)
    try:
        parsed = parse_leaf(leaf)
        f = parsed.fields
        expected = (f["seq"], parsed.prev, parsed.state_digest, f["origin"], f["signer"], f["topic"], f["time"], f["id"], f["version"])
    except LogFormatError as exc:
        expected = str(exc)
    assert parse_entry(leaf) == expected
    assert parse_entry(leaf[:64]) == "leaf is too short to hold an entry and a signature"
    assert json.loads(_leaf()[:-64])["seq"] == 3

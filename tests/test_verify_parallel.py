"""Signatures verified in worker processes give exactly the findings of a sequential run, in the same order."""

from __future__ import annotations

import sqlite3

import pytest
import test_verify_sqlite

from ledger.verify import chain, signatures, verify_source
from ledger.verify.conformance import policy_text
from ledger.verify.policy import parse_policy


@pytest.fixture
def tampered(tmp_path):
    suite = test_verify_sqlite.TestVerifierOnSQLite()
    suite._path = tmp_path / "ledger.sqlite"
    location, _ = suite.checkpointed_ledger(tmp_path)
    suite.append_vouchers(location, tmp_path, range(4, 28))
    for seq in (3, 17, 18, 40, 77):
        leaf, _ = suite.row(location, seq)
        changed = leaf.replace(b'"time":"2', b'"time":"3', 1)
        suite.tamper(location, "UPDATE ledger_log SET leaf = ? WHERE seq = ?", (changed, seq))
    with sqlite3.connect(location) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_log").fetchone() == (106,)
    return location


def test_parallel_findings_equal_sequential(tampered, monkeypatch):
    # Small chunks and no size threshold, so this small ledger is spread over many chunks and both workers.
    monkeypatch.setattr(chain, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(signatures, "CHUNK", 7)
    policy = parse_policy(policy_text())
    sequential = verify_source(tampered, policy=policy, jobs=1)
    parallel = verify_source(tampered, policy=policy, jobs=2)
    assert [(f.seq, f.check) for f in sequential.findings] == [
        (3, "signature"), (4, "prev"), (17, "signature"), (18, "prev"), (18, "signature"), (19, "prev"),
        (40, "signature"), (41, "prev"), (77, "signature"), (78, "prev"),
        # then what only the whole log shows: the recorded checkpoints' roots are not those of this tree
        (22, "root"), (33, "root"),
    ]
    assert parallel.findings == sequential.findings
    assert (parallel.head, parallel.root, parallel.size) == (sequential.head, sequential.root, sequential.size)

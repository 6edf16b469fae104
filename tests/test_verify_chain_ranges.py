"""Chain-only verification read by worker processes in aligned ranges gives exactly the single-process findings.

Production uses the range readers only for SQLite logs of 16k+ dense entries; the thresholds are lowered here so
that the Qinghe year (344 entries) is cut into many ranges, with tampering inside and across range boundaries.
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from conftest import FIXTURES
from ledger.importer import import_journal
from ledger.store.application import LedgerApplication
from ledger.verify import chain, signatures
from ledger.verify.chain import verify_source


@pytest.fixture(scope="module")
def qinghe_file(tmp_path_factory):
    from conftest import make_signer

    path = tmp_path_factory.mktemp("ranges") / "qinghe.sqlite"
    app = LedgerApplication(str(path), signer=make_signer())
    app.create_ledger(origin="qinghe.example/ledger", name="清河村", chart="2023")
    assert import_journal(app, FIXTURES / "qinghe_2025.jsonl").ok
    app.close()
    return path


def _tampered(source, target, *statements):
    shutil.copy(source, target)
    with sqlite3.connect(target) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        for sql, params in statements:
            conn.execute(sql, params)
    return str(target)


def _state_of(seq):
    return ("UPDATE stored_events SET state = state || x'20' WHERE rowid = (SELECT e.rowid FROM stored_events e "
            "JOIN ledger_log l ON e.originator_id = l.originator_id AND e.originator_version = l.originator_version "
            "WHERE l.seq = ?)", (seq,))


def _leaf_byte(seq):
    return ("UPDATE ledger_log SET leaf = CAST(replace(CAST(leaf AS TEXT), '\"time\":\"2', '\"time\":\"3') AS BLOB) "
            "WHERE seq = ?", (seq,))


def _swap(a, b):
    return ("UPDATE ledger_log SET leaf = CASE seq WHEN ? THEN (SELECT leaf FROM ledger_log WHERE seq = ?) "
            "ELSE (SELECT leaf FROM ledger_log WHERE seq = ?) END WHERE seq IN (?, ?)", (a, b, a, a, b))


CASES = {
    "untouched": (),
    "state inside a range": (_state_of(40),),
    "state at a range boundary": (_state_of(64),),
    "entry byte at the last row of a range": (_leaf_byte(95),),
    "swapped leaves across ranges": (_swap(31, 33),),
    "several ranges at once": (_state_of(5), _leaf_byte(100), _state_of(300)),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_range_readers_report_exactly_what_one_process_reports(qinghe_file, tmp_path, monkeypatch, case):
    location = _tampered(qinghe_file, tmp_path / "copy.sqlite", *CASES[case])
    single = verify_source(location, signatures=False, jobs=1)
    monkeypatch.setattr(chain, "PARALLEL_THRESHOLD", 16)
    monkeypatch.setattr(signatures, "CHUNK", 8)
    readers = []
    range_reader = chain._ChainReader
    monkeypatch.setattr(chain, "_ChainReader", lambda *args: readers.append(args) or range_reader(*args))
    ranged = verify_source(location, signatures=False, jobs=2)
    assert len(readers) == 1  # the range readers really ran
    assert (ranged.findings, ranged.head, ranged.root, ranged.size) == (
        single.findings, single.head, single.root, single.size
    )
    assert single.intact is (case == "untouched")

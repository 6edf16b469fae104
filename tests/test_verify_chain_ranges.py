"""Chain-only verification read by worker processes in aligned ranges gives exactly the single-process findings.

Production uses the range readers only for SQLite logs of CHAIN_PARALLEL_THRESHOLD+ dense entries; the threshold
and the range width are lowered here so that the Qinghe year (344 entries) and every ledger of the shipped suites
are cut into many ranges, with tampering inside and across range boundaries.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import FIXTURES
from test_verify_sqlite import SQLiteLedgers

from ledger.importer import import_journal
from ledger.store.application import LedgerApplication
from ledger.verify import chain, conformance, tamper_suite
from ledger.verify.chain import verify_source
from ledger.verify.conformance import VerifierConformance
from ledger.verify.sources import SQLiteSource
from ledger.verify.tamper_suite import TamperSuite


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


@pytest.mark.parametrize("width", [2, 8, 32])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_range_readers_report_exactly_what_one_process_reports(qinghe_file, tmp_path, monkeypatch, case, width):
    location = _tampered(qinghe_file, tmp_path / "copy.sqlite", *CASES[case])
    single = verify_source(location, signatures=False, jobs=1)
    monkeypatch.setattr(chain, "CHAIN_PARALLEL_THRESHOLD", 16)
    monkeypatch.setattr(chain, "MIN_RANGE_WIDTH", width)
    monkeypatch.setattr(chain, "MAX_RANGE_WIDTH", width)
    readers = []
    range_reader = chain._ChainReader
    monkeypatch.setattr(chain, "_ChainReader", lambda *args: readers.append(args) or range_reader(*args))
    ranged = verify_source(location, signatures=False, jobs=2)
    assert len(readers) == 1  # the range readers really ran
    assert (ranged.findings, ranged.head, ranged.root, ranged.size) == (
        single.findings, single.head, single.root, single.size
    )
    assert single.intact is (case == "untouched")


class TestShippedSuitesReadInRanges(SQLiteLedgers, VerifierConformance, TamperSuite):
    """Both shipped suites once more, each of their verifications preceded by a comparison: chain-only verification
    of the ledger as it is then, in one process and by the range readers (ranges of 4 rows, so that each edit falls
    inside, at the edge of or across ranges), gives the same result. The suites' own assertions then run as usual."""

    @pytest.fixture(autouse=True)
    def _compared_in_ranges(self, monkeypatch):
        def compared(location, **kwargs):
            if "state_path" not in kwargs:  # chain-only runs never use a state file
                in_process = verify_source(location, signatures=False, jobs=1, **kwargs)
                readers = []
                with monkeypatch.context() as patch:
                    patch.setattr(chain, "CHAIN_PARALLEL_THRESHOLD", 0)
                    patch.setattr(chain, "MIN_RANGE_WIDTH", 4)
                    patch.setattr(chain, "MAX_RANGE_WIDTH", 4)
                    patch.setattr(chain, "_ChainReader", lambda *args: readers.append(args) or range_reader(*args))
                    ranged = verify_source(location, signatures=False, jobs=2, **kwargs)
                assert (ranged.findings, ranged.head, ranged.root, ranged.size, ranged.checkpoints) == (
                    in_process.findings, in_process.head, in_process.root, in_process.size, in_process.checkpoints
                )
                assert len(readers) == _dense_sqlite_log(location)  # the range readers ran wherever they can
            return verify_source(location, **kwargs)

        range_reader = chain._ChainReader
        for suite in (conformance, tamper_suite):
            monkeypatch.setattr(suite, "verify_source", compared)


def _dense_sqlite_log(location: str) -> bool:
    if not Path(location).is_file():
        return False
    with sqlite3.connect(location) as conn:
        low, high, count = conn.execute("SELECT min(seq), max(seq), count(*) FROM ledger_log").fetchone()
    return count > 0 and low == 0 and high + 1 == count


def test_a_worker_error_stops_the_run(qinghe_file, monkeypatch):
    def unreadable(uri, lo, hi):
        raise sqlite3.OperationalError("disk I/O error")

    def claim_as_a_worker(unclaimed, lock, *, front):
        return None if front else claim(unclaimed, lock, front=False)

    claim = chain._claim
    monkeypatch.setattr(chain, "CHAIN_PARALLEL_THRESHOLD", 16)
    monkeypatch.setattr(chain, "sqlite_range_rows", unreadable)  # how workers read; this process reads its own
    monkeypatch.setattr(chain, "_claim", claim_as_a_worker)  # every range left to the worker: it meets the error
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        verify_source(str(qinghe_file), signatures=False, jobs=2)
    assert multiprocessing.active_children() == []


def test_an_error_in_this_process_ends_the_workers(qinghe_file, monkeypatch):
    def unreadable(self, lo, hi):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(chain, "CHAIN_PARALLEL_THRESHOLD", 16)
    monkeypatch.setattr(SQLiteSource, "rows", unreadable)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        verify_source(str(qinghe_file), signatures=False, jobs=2)
    assert multiprocessing.active_children() == []

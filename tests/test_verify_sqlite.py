"""The verifier conformance suite on SQLite ledgers, plus the verifier's independence from the writer."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from ledger.verify.conformance import VerifierConformance
from ledger.verify.tamper_suite import TamperSuite


class SQLiteLedgers:
    """The hooks the shipped suites need, for SQLite files."""

    @pytest.fixture(autouse=True)
    def _location(self, tmp_path):
        self._path = tmp_path / "ledger.sqlite"

    def new_location(self) -> str:
        return str(self._path)

    def tamper(self, location, sql, params=()):
        with sqlite3.connect(location) as conn:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute(sql, params)

    def fetch(self, location, sql, params=()):
        with sqlite3.connect(location) as conn:
            return conn.execute(sql, params).fetchall()


class TestVerifierOnSQLite(SQLiteLedgers, VerifierConformance, TamperSuite):
    pass


def test_verifier_imports_nothing_of_the_writer(tmp_path):
    probe = (
        "import sys, ledger.verify\n"
        "from ledger.verify.chain import verify_source\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('eventsourcing', 'pydantic') "
        "or m.startswith(('ledger.domain', 'ledger.store', 'ledger.projections')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

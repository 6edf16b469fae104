"""The verifier conformance suite on PostgreSQL ledgers (one schema per ledger)."""

from __future__ import annotations

import psycopg
import pytest

from conftest import POSTGRES_URL, _drop_schema, _postgres_schema_url
from ledger.verify.conformance import VerifierConformance
from ledger.verify.tamper_suite import TamperSuite


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="LEDGER_TEST_POSTGRES_URL is not set")
class TestVerifierOnPostgres(VerifierConformance, TamperSuite):
    placeholder = "%s"

    @pytest.fixture(autouse=True)
    def _schema(self):
        self._url, self._schema_name = _postgres_schema_url()
        yield
        _drop_schema(self._schema_name)

    def new_location(self) -> str:
        return self._url

    def _connect(self):
        conn = psycopg.connect(POSTGRES_URL, autocommit=True)
        conn.execute(f'SET search_path TO "{self._schema_name}"')
        return conn

    def tamper(self, location, sql, params=()):
        with self._connect() as conn:
            # An insider with superuser rights: replica mode skips the append-only triggers.
            conn.execute("SET session_replication_role = replica")
            conn.execute(sql, params)

    def fetch(self, location, sql, params=()):
        with self._connect() as conn:
            return conn.execute(sql, params).fetchall()

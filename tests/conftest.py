"""Shared fixtures: a test signer, and a fresh ledger location on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.crypto.logformat import EntrySigner

ORIGIN = "ledger.test.example/village/330100000000/v1"
POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")
FIXTURES = Path(__file__).parent / "fixtures"


def make_signer(seed: int = 1, name: str = ORIGIN + "/signer/clerk") -> EntrySigner:
    return EntrySigner(name=name, private_key=Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


@pytest.fixture
def signer() -> EntrySigner:
    return make_signer()


def _postgres_schema_url() -> tuple[str, str]:
    schema = "t_" + uuid.uuid4().hex[:12]
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}schema={schema}", schema


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_location(request, tmp_path):
    """A location for a new ledger: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
        return
    if not POSTGRES_URL:
        pytest.skip("LEDGER_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_schema_url()
    try:
        yield url
    finally:
        _drop_schema(schema)

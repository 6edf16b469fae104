"""The CLI's LEDGER argument (a SQLite file path or a PostgreSQL URL) as eventsourcing environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# Seconds a writer waits for another process's write lock before giving up.
SQLITE_LOCK_TIMEOUT_SECONDS = 30
DEFAULT_POSTGRES_SCHEMA = "public"
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Unquoted-identifier shape, at most PostgreSQL's 63 bytes: the schema name then means the same in psql.
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def env_for_location(location: str) -> dict[str, str]:
    """``PERSISTENCE_MODULE`` and its settings for LEDGER; ValueError naming LEDGER if it is neither form."""
    if not location or not location.strip():
        raise ValueError("LEDGER is empty: give a SQLite file path or postgresql://[user[:pw]@]host[:port]/db")
    scheme, separator, _ = location.partition("://")
    if separator:
        if scheme.lower() in POSTGRES_SCHEMES:
            return _postgres_env(location)
        raise ValueError(
            f"LEDGER {_redact(location)!r}: unsupported URL scheme {scheme!r}; "
            "give a SQLite file path or postgresql://[user[:pw]@]host[:port]/db[?schema=NAME]"
        )
    return _sqlite_env(location)


def _sqlite_env(location: str) -> dict[str, str]:
    # eventsourcing would treat these as an in-memory database, which cannot hold books.
    if ":memory:" in location or "mode=memory" in location:
        raise ValueError(f"LEDGER {location!r}: an in-memory database is not a ledger; give a file path")
    path = Path(location).expanduser().resolve()
    if path.is_dir():
        raise ValueError(f"LEDGER {location!r} is a directory; give a SQLite file path")
    if not path.parent.is_dir():
        raise ValueError(f"LEDGER {location!r}: directory {str(path.parent)!r} does not exist")
    return {
        "PERSISTENCE_MODULE": "ledger.store.sqlite",
        # Absolute, so the name never begins with "file:" and is never read as an SQLite URI.
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_SECONDS),
    }


def _postgres_env(location: str) -> dict[str, str]:
    shown = _redact(location)
    try:
        parts = urlsplit(location)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"LEDGER {shown!r} is not a valid URL: {exc}") from exc
    if not parts.hostname:
        raise ValueError(f"LEDGER {shown!r}: the URL needs a host")
    dbname = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not dbname or "/" in dbname:
        raise ValueError(f"LEDGER {shown!r}: the URL path must be exactly one database name")
    if parts.fragment:
        raise ValueError(f"LEDGER {shown!r}: unexpected #fragment")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ValueError(f"LEDGER {shown!r}: malformed query string") from exc
    unknown = sorted(set(query) - {"schema"})
    if unknown:
        raise ValueError(f"LEDGER {shown!r}: unknown parameter(s) {unknown}; only schema=NAME is understood")
    schemas = query.get("schema", [DEFAULT_POSTGRES_SCHEMA])
    if len(schemas) != 1 or not _SCHEMA_NAME.fullmatch(schemas[0]):
        raise ValueError(f"LEDGER {shown!r}: schema must be one name of letters, digits and _ (max 63)")
    return {
        "PERSISTENCE_MODULE": "ledger.store.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(port or 5432),
        # Empty user or password leaves libpq its defaults (OS user name, .pgpass, PGPASSWORD).
        "POSTGRES_USER": unquote(parts.username or ""),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schemas[0],
    }


def _redact(location: str) -> str:
    """The URL with any password masked, for error messages."""
    try:
        parts = urlsplit(location)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return location
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()

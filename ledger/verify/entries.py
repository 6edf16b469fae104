"""The per-entry work of verification, done once per entry (in the main process or in a worker).

`parse_entry` decides log format v1 exactly like `logformat.parse_leaf` (same fields, same errors), but cheaply: an
entry whose bytes match the canonical pattern below is canonical by construction (compact JSON, the ten keys in
sorted order, strings of printable ASCII that need no escape, integers without sign or leading zero, prev and state
canonical base64 of 32 bytes), so it needs no re-encoding. Anything the pattern does not match is decided by
`parse_leaf` itself, so no entry is accepted or rejected differently than before, and every error reads the same.

`process` does everything about one entry that does not depend on the entries before it: parse, leaf hash, stored
state digest, local date for the tenure rule and, given the key the entry claims, its signature. The caller
stitches the chain from these results in seq order (chain.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from binascii import a2b_base64
from datetime import date, datetime, timedelta, timezone

from .ed25519 import verify_leaf
from ..crypto.logformat import SIGNATURE_SIZE, LogFormatError, key_id, parse_leaf

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")
CONFIG_PREFIX = "ledger/Ledger/"

_S = r'([ !#-\[\]-~]*)'  # a JSON string body that json.dumps(ensure_ascii=True) writes unescaped
_B64_32 = r'([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)'  # canonical base64 of exactly 32 bytes
_N = r'(0|[1-9][0-9]{0,17})'
_TIME_PATTERN = r'(\d{4}-\d\d-\d\dT\d\d):[0-5]\d:[0-5]\d\.\d{6}Z'  # the writer's times; group: the UTC hour


def _entry_pattern(time: str) -> str:
    return (
        rf'\{{"id":"{_S}","origin":"{_S}","prev":"{_B64_32}","seq":{_N},"signer":"{_S}","state":"{_B64_32}",'
        rf'"time":"{time}","topic":"{_S}","v":1,"version":{_N}\}}'
    )


_CANONICAL = re.compile(_entry_pattern(_S)).fullmatch
_TIME = re.compile(_TIME_PATTERN).fullmatch
# A canonical entry whose time is of the writer's form, in one match: groups as _CANONICAL's, with the time's UTC
# hour (local_day's cache key) after the time. The entry text is ASCII, so \d is [0-9] here.
WRITER_ENTRY = re.compile(_entry_pattern(f"({_TIME_PATTERN})")).fullmatch

# Parsed entry: (seq, prev, state digest, origin, signer, topic, time, id, version)
Parsed = tuple


def parse_entry(leaf: bytes) -> Parsed | str:
    """The entry's fields, or the LogFormatError message that parse_leaf gives for it."""
    match = None
    if len(leaf) > SIGNATURE_SIZE:
        try:
            match = _CANONICAL(leaf[:-SIGNATURE_SIZE].decode("ascii"))
        except UnicodeDecodeError:
            match = None
    if match is not None:
        eid, origin, prev, seq, signer, state, time, topic, version = match.groups()
        return (int(seq), a2b_base64(prev), a2b_base64(state), origin, signer, topic, time, eid, int(version))
    try:
        parsed = parse_leaf(leaf)
        prev, state = parsed.prev, parsed.state_digest
    except LogFormatError as exc:
        return str(exc)
    f = parsed.fields
    return (f["seq"], prev, state, f["origin"], f["signer"], f["topic"], f["time"], f["id"], f["version"])


def local_date(time: str) -> date:
    """The entry's time as a date in China Standard Time; raises ValueError unless it is RFC 3339 UTC ('...Z')."""
    if not time.endswith("Z"):
        raise ValueError(f"time {time!r} is not UTC ('Z')")
    return datetime.fromisoformat(time).astimezone(CHINA_STANDARD_TIME).date()


_days: dict[str, date] = {}


def local_day(time: str) -> date | str:
    """local_date(time), or its ValueError message. Times of the writer's form (…THH:MM:SS.ffffffZ, minutes and
    seconds in range) share validity and local date with every time of the same UTC hour, so that is cached."""
    match = _TIME(time)
    if match is not None:
        day = _days.get(match.group(1))
        if day is not None:
            return day
    try:
        day = local_date(time)
    except ValueError as exc:
        return str(exc)
    if match is not None:
        if len(_days) > 100_000:
            _days.clear()
        _days[match.group(1)] = day
    return day


def key_candidates(state: bytes | None) -> list[tuple[str, bytes]]:
    """(label, public key) of the keys a configuration event's state names, trusting nothing: a worker uses them
    only to choose which key to try a signature with; the caller decides whether the key is valid for that entry."""
    try:
        event = json.loads(state)
    except (TypeError, ValueError):
        return []
    specs = event.get("keys") if isinstance(event, dict) else None
    specs = specs if isinstance(specs, list) else [event]
    found = []
    for spec in specs:
        try:
            public = a2b_base64(spec["public_key"].encode("ascii"))
            name = spec["name"]
            found.append((f"{name}+{key_id(name, public).hex()}", public))
        except Exception:
            continue
    return found


Result = tuple  # (seq, leaf hash, parsed or error, state ok (None: no stored event), day, signature verdict)


def process(seq: int, leaf: bytes, state: bytes | None, keys: dict[str, bytes] | None) -> Result:
    """Everything about one entry that does not depend on the entries before it.

    keys: label -> public key to try the signature with (None: signatures are not checked). The verdict is
    (public key, valid) for the key tried, or None when the claimed label is not among `keys`.
    """
    digest = hashlib.sha256(b"\x00" + leaf).digest()
    parsed = parse_entry(leaf)
    if parsed.__class__ is str:
        return seq, digest, parsed, None, None, None
    state_ok = None if state is None else hashlib.sha256(state).digest() == parsed[2]
    day = local_day(parsed[6])
    verdict = None
    if keys is not None:
        public = keys.get(parsed[4])
        if public is not None:
            verdict = (public, verify_leaf(public, leaf))
    return seq, digest, parsed, state_ok, day, verdict


def process_chunk(rows: list[tuple[int, bytes, bytes | None]], keys: dict[str, bytes] | None) -> list[Result]:
    """A worker's share: `process` for consecutive rows, learning keys registered within the chunk as it goes."""
    if keys is not None:
        keys = dict(keys)
    results = []
    for seq, leaf, state in rows:
        result = process(seq, leaf, state, keys)
        parsed = result[2]
        if keys is not None and parsed.__class__ is not str and parsed[5].startswith(CONFIG_PREFIX):
            for label, public in key_candidates(state):
                keys.setdefault(label, public)
        results.append(result)
    return results

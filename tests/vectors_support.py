"""Access to the shared external test vectors in ../shared/vectors (never copied into this repository).

Tests skip with "../shared/vectors missing" only when the folder is absent; CI checks its presence separately.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[2] / "shared" / "vectors"
MISSING = "../shared/vectors missing"

# Marks a test that reads the vectors; such tests skip (via vectors_dir) when the folder is absent.
needs_vectors = pytest.mark.vectors


def vectors_dir() -> Path:
    if not VECTORS_DIR.is_dir():
        pytest.skip(MISSING)
    return VECTORS_DIR


def load_vectors(name: str) -> dict:
    return json.loads((vectors_dir() / name).read_text(encoding="utf-8"))


def vector_params(name: str, key: str, id_field: str | None = None) -> list:
    """Parametrize over the list `key` of a vector file; a single skipped param when the folder is absent."""
    if not VECTORS_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="vectors-missing")]
    items = json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))[key]
    return [
        pytest.param(item, id=str(item[id_field]) if id_field else f"{key}-{position}", marks=needs_vectors)
        for position, item in enumerate(items)
    ]


def cases_by_id(name: str) -> dict:
    return {case["id"]: case for case in load_vectors(name)["cases"]}


def go_skey_seed(skey: str) -> tuple[str, int, bytes]:
    """Go x/mod private key 'PRIVATE+KEY+name+hex8+base64(type || seed)' -> (name, type, seed).

    Not a C2SP format (TLOG.md §2.2); only the vectors use it. Base64 may contain '+', so split on the first four.
    """
    prefix1, prefix2, name, _kid, blob = skey.split("+", 4)
    assert (prefix1, prefix2) == ("PRIVATE", "KEY")
    raw = base64.b64decode(blob, validate=True)
    return name, raw[0], raw[1:]

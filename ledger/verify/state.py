"""The incremental verifier's memory (`verify --state FILE`).

After an intact run the file remembers the newest checkpoint that verified (size C and root), what the verifier
believed just before entry C (chain link, tree frontier, keys, officials' tenures) and the head it saw (size and
last leaf hash). The next run reads only entries from seq C on, continues the tree from the frontier, checks the
entry at the old head against the remembered leaf hash, and checks a consistency proof from (C, root) to the
newest checkpoint; if that fails nothing is updated. The file is the auditor's own, so it is trusted: keep it
where the ledger's operators cannot write. UTF-8 JSON:

    {"format": "village-ledger verify state v1", "origin": O,
     "checkpoint": {"size": C, "root": B64}, "prev": B64, "frontier": [B64, ...],
     "keys": {LABEL: {"public_key": B64, "role": R, "valid_from": N, "revoked_at": N|null, "holder": ID|null}},
     "officials": {ID: [TERM_START|null, HANDOVER|null]},
     "head": {"size": N, "leaf_hash": B64}}
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_FORMAT = "village-ledger verify state v1"


class StateError(ValueError):
    """A state file that cannot be read, or that belongs to another ledger."""


@dataclass(frozen=True)
class VerifierState:
    origin: str | None
    size: int
    root: bytes
    prev: bytes
    frontier: tuple[bytes, ...]
    ring: dict
    officials: dict
    head_size: int
    head: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def load_state(path: str | os.PathLike) -> VerifierState | None:
    """The remembered state, or None when the file does not exist yet (the first run verifies everything)."""
    file = Path(path)
    if not file.exists():
        return None
    try:
        data = json.loads(file.read_text("utf-8"))
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {STATE_FORMAT!r}")
        return VerifierState(
            origin=data["origin"],
            size=int(data["checkpoint"]["size"]),
            root=base64.b64decode(data["checkpoint"]["root"], validate=True),
            prev=base64.b64decode(data["prev"], validate=True),
            frontier=tuple(base64.b64decode(h, validate=True) for h in data["frontier"]),
            ring=dict(data["keys"]),
            officials=dict(data["officials"]),
            head_size=int(data["head"]["size"]),
            head=base64.b64decode(data["head"]["leaf_hash"], validate=True),
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"{path}: not a verifier state file: {exc}") from None


def save_state(path: Path, state: VerifierState) -> None:
    """Write atomically, so that an interrupted run leaves the previous state in place."""
    data = {
        "format": STATE_FORMAT,
        "origin": state.origin,
        "checkpoint": {"size": state.size, "root": _b64(state.root)},
        "prev": _b64(state.prev),
        "frontier": [_b64(h) for h in state.frontier],
        "keys": state.ring,
        "officials": state.officials,
        "head": {"size": state.head_size, "leaf_hash": _b64(state.head)},
    }
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", "utf-8")
    os.replace(partial, path)

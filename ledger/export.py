"""`village-ledger export LEDGER --out DIR`: the auditor bundle of ../shared/INTERFACE.md, written in one streaming pass.

    entries.jsonl      {"seq": i, "leaf": B64(leaf), "state": B64(stored event bytes)} per line, in seq order
    checkpoints/       every recorded checkpoint note as published, named by size: 000000000342.note
                       (a second note for the same size gets -2, -3, ...)
    keys.txt           every key the log registered, with role and valid seqs (format: ledger/verify/bundle.py)
    policy.txt         the log key(s) the ledger registers, plus witnesses, groups and quorum from --policy
                       (format: ledger/verify/policy.py); without --policy, `quorum none`
    README.txt         how to verify the bundle by hand
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from .crypto.logformat import parse_leaf
from .crypto.note import Ed25519Verifier
from .verify.bundle import KEYS_COMMENT, key_line
from .verify.chain import (
    CHECKPOINT_TOPIC,
    GENESIS_TOPIC,
    KEY_REGISTERED_TOPIC,
    KEY_REVOKED_TOPIC,
)
from .verify.policy import Log, TrustPolicy, load_policy


class ExportError(ValueError):
    """An export that cannot be made; the message says what and where."""


@dataclass
class ExportSummary:
    directory: Path
    origin: str
    entries: int
    checkpoints: int
    keys: int


@dataclass
class _RegisteredKey:
    name: str
    public_key: bytes
    role: str
    valid_from: int
    revoked_at: int | None
    holder: str | None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def export_bundle(location: str, out: str | Path, *, policy_path: str | Path | None = None, progress=None) -> ExportSummary:
    """Write the bundle of the ledger at `location` into `out` (which must not exist or be empty)."""
    from .store.application import LedgerApplication

    directory = Path(out)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ExportError(f"{directory} exists and is not an empty directory; refusing to mix bundles")
    witnesses = load_policy(policy_path) if policy_path else None
    app = LedgerApplication(location)
    try:
        total = app.recorder.log_size()
        if total == 0:
            raise ExportError(f"{location} holds no ledger entries to export")
        (directory / "checkpoints").mkdir(parents=True, exist_ok=True)
        keys: dict[tuple[str, str], _RegisteredKey] = {}
        notes_by_size: dict[int, int] = {}
        origin = None
        count = 0
        with open(directory / "entries.jsonl", "w", encoding="ascii", newline="\n") as entries:
            for record in app.recorder.read_log():
                if record.state is None:
                    raise ExportError(f"{location}: log entry {record.seq} points at no stored event")
                entries.write(json.dumps({"seq": record.seq, "leaf": _b64(record.leaf), "state": _b64(record.state)}) + "\n")
                fields = parse_leaf(record.leaf).fields
                origin = origin or fields["origin"]
                _track(record.seq, fields["topic"], record.state, keys, notes_by_size, directory)
                count += 1
                if progress and count % 1000 == 0:
                    progress(count, total)
        if progress:
            progress(count, total)
        registered = list(keys.values())  # in the order the log registered them
        (directory / "keys.txt").write_text(
            KEYS_COMMENT + "\n"
            + "".join(key_line(k.name, k.public_key, k.role, k.valid_from, k.revoked_at, k.holder) + "\n" for k in registered),
            "utf-8",
        )
        (directory / "policy.txt").write_text(_policy_text(origin, registered, witnesses), "utf-8")
        (directory / "README.txt").write_text(README.format(origin=origin, entries=count), "utf-8")
        return ExportSummary(directory, origin, count, sum(notes_by_size.values()), len(registered))
    finally:
        app.close()


def _track(seq: int, topic: str, state: bytes, keys: dict, notes_by_size: dict, directory: Path) -> None:
    if topic not in (GENESIS_TOPIC, KEY_REGISTERED_TOPIC, KEY_REVOKED_TOPIC, CHECKPOINT_TOPIC):
        return
    event = json.loads(state)
    if topic == GENESIS_TOPIC:
        for spec in event["keys"]:
            _register(keys, spec, 0)
    elif topic == KEY_REGISTERED_TOPIC:
        _register(keys, event, seq + 1)
    elif topic == KEY_REVOKED_TOPIC:
        key = keys.get((event["name"], event["key_id"]))
        if key is not None and key.revoked_at is None:
            key.revoked_at = seq
    else:
        size = event["size"]
        notes_by_size[size] = notes_by_size.get(size, 0) + 1
        suffix = "" if notes_by_size[size] == 1 else f"-{notes_by_size[size]}"
        (directory / "checkpoints" / f"{size:012d}{suffix}.note").write_text(event["note"], "utf-8", newline="\n")


def _register(keys: dict, spec: dict, valid_from: int) -> None:
    public = base64.b64decode(spec["public_key"])
    label = (spec["name"], spec["key_id"])
    # The verifier keeps the first registration of a key; so does the listing.
    keys.setdefault(label, _RegisteredKey(spec["name"], public, spec["role"], valid_from, None, spec.get("holder")))


def _policy_text(origin: str, registered: list[_RegisteredKey], witnesses: TrustPolicy | None) -> str:
    logs = tuple(Log(Ed25519Verifier(k.name, k.public_key)) for k in registered if k.role == "log" and k.name == origin)
    header = (
        f"# Trust policy for {origin} (sigsum policy syntax with C2SP vkeys; see ledger/verify/policy.py).\n"
        "# The log key is the one the ledger registers: check it against the genesis disclosure before trusting it.\n"
    )
    if not logs:
        return header + "# This ledger registers no log key, so no checkpoint can be verified; add `log KEY` by hand.\nquorum none\n"
    if witnesses is None:
        return header + "# No witness policy was given to export: checkpoints need only the log's signature.\n" + TrustPolicy(logs).format()
    return header + TrustPolicy(logs, witnesses.witnesses, witnesses.groups, witnesses.quorum).format()


README = """Auditor bundle of the village ledger {origin} ({entries} entries)
================================================================================

Verify it with the village-ledger verifier (it reads this directory with its own code):

    village-ledger verify THIS_DIR --policy policy.txt        # exit 0 intact, 1 findings, 2 unreadable

Better: use a policy.txt you got from the township or the genesis disclosure, not the one in this bundle.

By hand (log format v1, ../shared/DESIGN.md):

1. entries.jsonl has one JSON object per line: {{"seq": i, "leaf": base64, "state": base64}}, seq = 0, 1, 2, ...
2. leaf = entry || sig. sig is the last 64 bytes; entry is compact JSON with sorted keys:
   {{"id","origin","prev","seq","signer","state","time","topic","v":1,"version"}}.
3. SHA-256(state bytes) must equal base64-decoded entry.state. Never re-serialise the state; hash it as stored.
4. leaf_hash(i) = SHA-256(0x00 || leaf_i). entry_i.prev = base64(leaf_hash(i-1)); entry_0.prev = 32 zero bytes.
5. sig = Ed25519 over b"village-ledger/entry/v1\\x00" || entry, under the key named by entry.signer
   ("name+hex8 key id"), which keys.txt lists with the seqs it may sign (first..last; "first.." = not revoked).
6. The Merkle tree over leaf_hash(0..n-1) is RFC 9162: node = SHA-256(0x01 || left || right), left subtree = the
   largest power of two smaller than n. Each checkpoints/NNNNNNNNNNNN.note is a C2SP signed note
   "origin\\nsize\\nbase64(root)\\n" + blank line + signature lines; its root must equal the tree over the first
   `size` leaves, its log signature must verify under policy.txt's log key, its witness cosignatures
   (cosignature/v1) must meet the quorum.

With a shell and Python 3 (no village-ledger code):

    python3 - <<'PY'
    import base64, hashlib, json
    prev = bytes(32)
    for line in open("entries.jsonl"):
        row = json.loads(line); leaf = base64.b64decode(row["leaf"]); entry = json.loads(leaf[:-64])
        assert entry["seq"] == row["seq"] and base64.b64decode(entry["prev"]) == prev, row["seq"]
        assert base64.b64decode(entry["state"]) == hashlib.sha256(base64.b64decode(row["state"])).digest(), row["seq"]
        prev = hashlib.sha256(b"\\x00" + leaf).digest()
    print("chain intact; head", prev.hex())
    PY

Signatures: verify each with any Ed25519 library (e.g. `openssl pkeyutl -verify -rawin`), message = the 24-byte
prefix above followed by the entry bytes; the public key is the last 32 bytes of base64-decoding the vkey's third
'+'-separated field.
"""


def cmd_export(args) -> int:
    from .cli import EXIT_OK, UsageError
    from .progress import ProgressBar
    from .verify.policy import PolicyError

    bar = ProgressBar("exporting / 导出", 0)
    try:
        summary = export_bundle(args.ledger, args.out, policy_path=args.policy, progress=bar.update)
    except (ExportError, PolicyError) as exc:
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
    print(
        f"导出 / exported {summary.entries} entries of {summary.origin}, {summary.checkpoints} checkpoint note(s), "
        f"{summary.keys} key(s) to {summary.directory}"
    )
    return EXIT_OK


def register(subparsers) -> None:
    export = subparsers.add_parser("export", help="write the auditor bundle (entries, checkpoints, keys, policy, README)")
    export.add_argument("ledger", help="SQLite file path or postgresql:// URL (?schema=NAME)")
    export.add_argument("--out", required=True, help="bundle directory (must not exist or be empty)")
    export.add_argument("--policy", help="policy file whose witnesses, groups and quorum go into policy.txt")
    export.set_defaults(func=cmd_export)

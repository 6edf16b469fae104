"""Conformance suite for the verifier, shipped in the package: each storage backend subclasses it.

A subclass says how to make a new ledger location and how an insider with database access runs SQL on it
(bypassing the append-only triggers). The suite then tampers with the rows and checks that verification pinpoints
each change. It builds ledgers with the writer's code; the verifier it tests does not import that code.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..crypto.checkpoint import Checkpoint, CosignatureV1Signer
from ..crypto.keys import COSIGNATURE_V1, ED25519, format_vkey
from ..crypto.logformat import (
    EntrySigner,
    encode_entry,
    leaf_hash,
    parse_leaf,
    state_hash,
)
from ..crypto.merkle import root as merkle_root
from ..crypto.note import Ed25519Signer, sign_note
from .chain import Finding, verify_source
from .checkpoints import short
from .policy import parse_policy
from .state import load_state

ORIGIN = "conformance.example/village/000000000000/v1"
SIGNER = EntrySigner(ORIGIN + "/signer/clerk", Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))
LOG_KEY = Ed25519Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32))
WITNESS_KEYS = {
    "township": Ed25519PrivateKey.from_private_bytes(bytes([10]) * 32),
    "committee": Ed25519PrivateKey.from_private_bytes(bytes([11]) * 32),
    "county": Ed25519PrivateKey.from_private_bytes(bytes([12]) * 32),
}
WITNESS_NAMES = {
    "township": "witness.township.example/2026",
    "committee": "witness.committee.example/2026",
    "county": "witness.county.example/2026",
}
COSIGN_TIME = 1785456000


def witness_vkey(role: str) -> str:
    return format_vkey(WITNESS_NAMES[role], COSIGNATURE_V1, Ed25519Signer(WITNESS_NAMES[role], WITNESS_KEYS[role]).public_key)


def policy_text(quorum: str = "both", *, log_key: Ed25519Signer = LOG_KEY) -> str:
    """Township and committee, 2-of-2 as `both`; the county witness is known but optional."""
    return (
        f"log {format_vkey(log_key.name, ED25519, log_key.public_key)}\n"
        + "".join(f"witness {role} {witness_vkey(role)}\n" for role in WITNESS_KEYS)
        + "group both all township committee\n"
        + "group all3 all township committee county\n"
        + f"quorum {quorum}\n"
    )


def signed_checkpoint(size: int, root: bytes, cosigners=("township", "committee"), *, log_key=LOG_KEY, origin=ORIGIN) -> str:
    """A checkpoint note signed by the log key and cosigned by the named witnesses."""
    text = Checkpoint(origin, size, root).text
    signers = [log_key] + [CosignatureV1Signer(WITNESS_NAMES[r], WITNESS_KEYS[r], COSIGN_TIME) for r in cosigners]
    return sign_note(text, signers)


def _journal(path: Path) -> Path:
    lines = [
        {"id": "open", "type": "opening_balances", "date": "2025-01-01",
         "lines": [{"account": "102", "debit": "5000.00"}, {"account": "301", "credit": "5000.00"}]},
    ]
    for day in range(1, 7):
        lines.append({
            "id": f"v{day}", "type": "voucher", "voucher_no": f"记-202501-{day:03d}", "date": f"2025-01-{day + 1:02d}",
            "summary": "收到租金", "lines": [{"account": "102", "debit": f"{day}00.00"},
                                        {"account": "50102", "credit": f"{day}00.00"}],
        })
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    return path


class VerifierConformance:
    """Subclass and implement the three hooks; pytest collects the subclass if its name starts with Test."""

    placeholder = "?"

    def new_location(self) -> str:
        raise NotImplementedError

    def tamper(self, location: str, sql: str, params: tuple = ()) -> None:
        """Run SQL as an insider would: directly on the database, append-only triggers bypassed."""
        raise NotImplementedError

    def fetch(self, location: str, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------------------

    def build_ledger(self, tmp_path: Path, *, log_key: bool = False) -> str:
        from ..importer import import_journal
        from ..store.application import LedgerApplication

        location = self.new_location()
        app = LedgerApplication(location, signer=SIGNER)
        app.create_ledger(
            origin=ORIGIN, name="一致性测试村", chart="2023", log_public_key=LOG_KEY.public_key if log_key else None
        )
        result = import_journal(app, _journal(tmp_path / "journal.jsonl"))
        assert result.ok, result.problems
        app.close()
        return location

    def root_at(self, location: str, size: int) -> bytes:
        p = self.placeholder
        rows = self.fetch(location, f"SELECT leaf FROM ledger_log WHERE seq < {p} ORDER BY seq", (size,))
        return merkle_root([leaf_hash(bytes(leaf)) for (leaf,) in rows])

    def record_checkpoint(self, location: str, cosigners=("township", "committee")) -> tuple[int, bytes, str]:
        """Sign and cosign the log as it is now and record the note in the log, as the month-close flow does."""
        from ..store.application import LedgerApplication

        app = LedgerApplication(location, signer=SIGNER)
        size = app.recorder.log_size()
        root = self.root_at(location, size)
        note = signed_checkpoint(size, root, cosigners)
        app.record_checkpoint(size=size, root_hash=root, note=note, period=None)
        app.close()
        return size, root, note

    def append_vouchers(self, location: str, tmp_path: Path, days: range) -> None:
        from ..importer import import_journal
        from ..store.application import LedgerApplication

        lines = [
            {"id": f"w{day}", "type": "voucher", "voucher_no": f"记-202502-{day:03d}", "date": f"2025-02-{day:02d}",
             "summary": "收到租金", "lines": [{"account": "102", "debit": "50.00"}, {"account": "50102", "credit": "50.00"}]}
            for day in days
        ]
        journal = tmp_path / f"more-{days.start}.jsonl"
        journal.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
        app = LedgerApplication(location, signer=SIGNER)
        assert import_journal(app, journal).ok
        app.close()

    def checkpointed_ledger(self, tmp_path: Path) -> tuple[str, list[tuple[int, bytes, str]]]:
        """The ledger with a log key, checkpointed twice (after January and after three February vouchers)."""
        location = self.build_ledger(tmp_path, log_key=True)
        first = self.record_checkpoint(location)
        self.append_vouchers(location, tmp_path, range(1, 4))
        second = self.record_checkpoint(location)
        return location, [first, second]

    def policy(self, quorum: str = "both"):
        return parse_policy(policy_text(quorum))

    def row(self, location: str, seq: int) -> tuple[bytes, bytes]:
        p = self.placeholder
        [(leaf, state)] = self.fetch(
            location,
            "SELECT l.leaf, e.state FROM ledger_log l JOIN stored_events e ON e.originator_id = l.originator_id "
            f"AND e.originator_version = l.originator_version WHERE l.seq = {p}",
            (seq,),
        )
        return bytes(leaf), bytes(state)

    # -- the suite -----------------------------------------------------------------------------------------------

    def test_untouched_ledger_is_intact(self, tmp_path):
        location = self.build_ledger(tmp_path)
        result = verify_source(location)
        assert (result.intact, result.findings, result.origin) == (True, [], ORIGIN)
        # genesis, opening (+ marker), 6 vouchers (+ period entry, + marker), the period opened once
        assert result.entries == 1 + 2 + 6 * 3 + 1

    def test_changed_byte_of_a_stored_event_is_pinpointed(self, tmp_path):
        location = self.build_ledger(tmp_path)
        _, state = self.row(location, 10)
        changed = state.replace(b"200.00", b"900.00", 1) if b"200.00" in state else bytes([state[0] ^ 1]) + state[1:]
        p = self.placeholder
        self.tamper(
            location,
            f"UPDATE stored_events SET state = {p} WHERE originator_id = (SELECT originator_id FROM ledger_log "
            f"WHERE seq = {p}) AND originator_version = (SELECT originator_version FROM ledger_log WHERE seq = {p})",
            (changed, 10, 10),
        )
        assert verify_source(location).findings == [
            Finding(10, "state", "stored event bytes do not hash to the signed state digest")
        ]

    def test_changed_byte_of_a_log_entry_is_pinpointed(self, tmp_path):
        location = self.build_ledger(tmp_path)
        leaf, _ = self.row(location, 5)
        changed = leaf.replace(b'"time":"2', b'"time":"3', 1)  # one byte of the signed entry
        assert len(changed) == len(leaf) and changed != leaf
        p = self.placeholder
        self.tamper(location, f"UPDATE ledger_log SET leaf = {p} WHERE seq = {p}", (changed, 5))
        findings = verify_source(location).findings
        assert [(f.seq, f.check) for f in findings] == [(5, "signature"), (6, "prev")]

    def test_deleted_middle_entry_is_pinpointed(self, tmp_path):
        location = self.build_ledger(tmp_path)
        self.tamper(location, f"DELETE FROM ledger_log WHERE seq = {self.placeholder}", (7,))
        findings = verify_source(location).findings
        assert [(f.seq, f.check) for f in findings] == [(8, "seq"), (8, "prev"), (None, "event")]

    def test_entry_signed_by_an_unregistered_key_is_pinpointed(self, tmp_path):
        location = self.build_ledger(tmp_path)
        size = verify_source(location).entries
        last_leaf, state = self.row(location, size - 1)
        forger = EntrySigner(ORIGIN + "/signer/clerk", Ed25519PrivateKey.from_private_bytes(bytes([8]) * 32))
        fields = parse_leaf(last_leaf).fields
        entry = encode_entry(
            origin=ORIGIN, seq=size, prev=leaf_hash(last_leaf), time=fields["time"], signer=forger.label,
            originator_id=fields["id"], version=fields["version"] + 1000, topic=fields["topic"],
            state_digest=state_hash(state),
        )
        p = self.placeholder
        [(originator_id,)] = self.fetch(location, f"SELECT originator_id FROM ledger_log WHERE seq = {p}", (size - 1,))
        self.tamper(
            location,
            f"INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES ({p}, {p}, {p}, {p})",
            (originator_id, fields["version"] + 1000, fields["topic"], state),
        )
        self.tamper(
            location,
            "INSERT INTO ledger_log (seq, leaf, leaf_hash, originator_id, originator_version) "
            f"VALUES ({p}, {p}, {p}, {p}, {p})",
            (size, entry + forger.sign(entry), leaf_hash(entry + forger.sign(entry)), originator_id, fields["version"] + 1000),
        )
        findings = verify_source(location).findings
        assert findings == [Finding(size, "signer", f"key {forger.label} was never registered in this log")]

    def test_bundle_rows_verify_like_the_database(self, tmp_path):
        location = self.build_ledger(tmp_path)
        rows = self.fetch(
            location,
            "SELECT l.seq, l.leaf, e.state FROM ledger_log l JOIN stored_events e ON e.originator_id = l.originator_id "
            "AND e.originator_version = l.originator_version ORDER BY l.seq",
        )
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        (bundle / "entries.jsonl").write_text(
            "".join(
                json.dumps({"seq": s, "leaf": base64.b64encode(bytes(l)).decode(), "state": base64.b64encode(bytes(st)).decode()})
                + "\n"
                for s, l, st in rows
            ),
            "ascii",
        )
        from_db, from_bundle = verify_source(location), verify_source(str(bundle))
        assert (from_bundle.intact, from_bundle.entries, from_bundle.head) == (True, from_db.entries, from_db.head)

    # -- checkpoints against the policy --------------------------------------------------------------------------

    def test_recorded_checkpoints_meet_the_policy(self, tmp_path):
        location, [(size1, _, _), (size2, root2, _)] = self.checkpointed_ledger(tmp_path)
        result = verify_source(location, policy=self.policy())
        assert (result.intact, result.findings) == (True, [])
        assert (size1, size2, result.size) == (22, 33, 34)
        assert (result.checkpoints, result.verified_checkpoint, result.root) == (2, (33, root2), self.root_at(location, 34))

    def test_unmet_quorum_is_a_finding_per_checkpoint(self, tmp_path):
        location, _ = self.checkpointed_ledger(tmp_path)
        findings = verify_source(location, policy=self.policy("all3")).findings
        detail = "cosigned by committee, township; policy quorum 'all3' is not met"
        assert findings == [
            Finding(22, "quorum", f"checkpoint recorded at seq 22: {detail}"),
            Finding(33, "quorum", f"checkpoint recorded at seq 33: {detail}"),
        ]

    def test_checkpoint_not_signed_by_the_policy_log_key_is_a_finding(self, tmp_path):
        location, _ = self.checkpointed_ledger(tmp_path)
        other = Ed25519Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes([13]) * 32))
        findings = verify_source(location, policy=parse_policy(policy_text(log_key=other))).findings
        assert [(f.seq, f.check) for f in findings] == [(22, "checkpoint"), (33, "checkpoint")]
        assert findings[0].detail == f"checkpoint recorded at seq 22: checkpoint is not signed by the log key {ORIGIN!r}"

    def test_truncated_tail_after_a_published_checkpoint(self, tmp_path):
        location, [_, (_, _, note2)] = self.checkpointed_ledger(tmp_path)
        published = tmp_path / "published.note"
        published.write_text(note2, "utf-8")
        p = self.placeholder
        # The insider drops the last three vouchers' entries and the checkpoint that recorded them.
        self.tamper(location, f"DELETE FROM ledger_log WHERE seq >= {p}", (23,))
        self.tamper(
            location,
            "DELETE FROM stored_events WHERE NOT EXISTS (SELECT 1 FROM ledger_log AS l WHERE l.originator_id = "
            "stored_events.originator_id AND l.originator_version = stored_events.originator_version)",
        )
        findings = verify_source(location, policy=self.policy(), checkpoints=[published]).findings
        assert findings == [Finding(
            23, "truncated",
            f"{published} is signed for 33 entries but the log has 23: its tail was cut off or is withheld",
        )]

    def test_published_checkpoint_with_another_root_is_pinpointed(self, tmp_path):
        location, _ = self.checkpointed_ledger(tmp_path)
        forged_root = bytes(32)
        forged = tmp_path / "forged.note"
        forged.write_text(signed_checkpoint(22, forged_root), "utf-8")
        findings = verify_source(location, policy=self.policy(), checkpoints=[forged]).findings
        actual = self.root_at(location, 22)
        assert findings == [
            Finding(None, "root", f"{forged}: root {short(forged_root)}… of size 22 differs from the recomputed root {short(actual)}…"),
            Finding(None, "conflict", f"size 22 has 2 signed roots: {short(actual)}… in checkpoint recorded at seq 22; "
                                      f"{short(forged_root)}… in {forged}"),
        ]

    def test_rewritten_history_contradicts_the_recorded_checkpoint(self, tmp_path):
        location, _ = self.checkpointed_ledger(tmp_path)
        leaf, _ = self.row(location, 3)
        fields = parse_leaf(leaf).fields
        # An insider holding the signer key re-signs entry 3 with another time: signature and chain links stay valid
        # at seq 3, the next prev breaks, and the tree no longer has the witnessed roots.
        entry = encode_entry(
            origin=ORIGIN, seq=3, prev=parse_leaf(leaf).prev, time=fields["time"][:-2] + ("8" if fields["time"][-2] == "9" else "9") + "Z",
            signer=SIGNER.label, originator_id=fields["id"], version=fields["version"], topic=fields["topic"],
            state_digest=parse_leaf(leaf).state_digest,
        )
        p = self.placeholder
        self.tamper(location, f"UPDATE ledger_log SET leaf = {p} WHERE seq = {p}", (entry + SIGNER.sign(entry), 3))
        findings = verify_source(location, policy=self.policy()).findings
        assert [(f.seq, f.check) for f in findings] == [(4, "prev"), (22, "root"), (33, "root")]

    # -- bundles -------------------------------------------------------------------------------------------------

    def test_exported_bundle_verifies_exactly_like_the_database(self, tmp_path):
        from ..export import export_bundle

        location, _ = self.checkpointed_ledger(tmp_path)
        policy_file = tmp_path / "policy.txt"
        policy_file.write_text(policy_text(), "utf-8")
        summary = export_bundle(location, tmp_path / "bundle", policy_path=policy_file)
        assert (summary.entries, summary.checkpoints, summary.keys) == (34, 2, 2)
        bundle = tmp_path / "bundle"
        assert sorted(p.name for p in (bundle / "checkpoints").iterdir()) == ["000000000022.note", "000000000033.note"]
        assert (bundle / "keys.txt").read_text("utf-8").splitlines()[1:] == [
            f"{format_vkey(SIGNER.name, ED25519, SIGNER.public_key_bytes)} signer 0..",
            f"{format_vkey(ORIGIN, ED25519, LOG_KEY.public_key)} log 0..",
        ]
        exported_policy = parse_policy((bundle / "policy.txt").read_text("utf-8"))
        assert exported_policy.format() == self.policy().format()
        from_db = verify_source(location, policy=self.policy())
        from_bundle = verify_source(str(bundle), policy=exported_policy)
        assert (from_bundle.intact, from_bundle.size, from_bundle.head, from_bundle.root, from_bundle.checkpoints) == (
            True, from_db.size, from_db.head, from_db.root, 4,  # the two recorded notes, and the same two as files
        )

    def test_tampered_bundle_is_pinpointed_like_the_database(self, tmp_path):
        from ..export import export_bundle

        location, _ = self.checkpointed_ledger(tmp_path)
        export_bundle(location, tmp_path / "bundle")
        bundle = tmp_path / "bundle"
        lines = (bundle / "entries.jsonl").read_text("ascii").splitlines(keepends=True)
        row = json.loads(lines[10])
        state = base64.b64decode(row["state"])
        assert b'"debit":"100.00"' in state
        row["state"] = base64.b64encode(state.replace(b'"debit":"100.00"', b'"debit":"900.00"', 1)).decode()
        lines[10] = json.dumps(row) + "\n"
        (bundle / "entries.jsonl").write_text("".join(lines), "ascii")
        keys = (bundle / "keys.txt").read_text("utf-8").replace(" signer 0..", " signer 0..5")
        (bundle / "keys.txt").write_text(keys, "utf-8")
        findings = verify_source(str(bundle), policy=self.policy()).findings
        signer_vkey = format_vkey(SIGNER.name, ED25519, SIGNER.public_key_bytes)
        assert findings == [
            Finding(10, "state", "stored event bytes do not hash to the signed state digest"),
            Finding(None, "bundle", f"keys.txt lists a key the log does not register so: {signer_vkey} signer 0..5"),
            Finding(None, "bundle", f"keys.txt omits a key the log registers: {signer_vkey} signer 0.."),
        ]

    # -- incremental mode ----------------------------------------------------------------------------------------

    def test_incremental_run_checks_only_new_entries(self, tmp_path):
        location, [_, (_, root2, _)] = self.checkpointed_ledger(tmp_path)
        state = tmp_path / "verify.state"
        first = verify_source(location, policy=self.policy(), state_path=state)
        assert (first.intact, first.entries, first.resumed_from) == (True, 34, 0)
        remembered = load_state(state)
        assert (remembered.size, remembered.root, remembered.head_size) == (33, root2, 34)
        self.append_vouchers(location, tmp_path, range(4, 6))
        size3, root3, _ = self.record_checkpoint(location)
        second = verify_source(location, policy=self.policy(), state_path=state)
        assert (second.intact, second.findings, second.resumed_from, second.entries, second.size) == (True, [], 33, 8, 41)
        assert (size3, second.verified_checkpoint, second.root) == (40, (40, root3), self.root_at(location, 41))
        assert (load_state(state).size, load_state(state).head_size) == (40, 41)

    def test_incremental_run_refuses_an_inconsistent_remembered_checkpoint(self, tmp_path):
        location, _ = self.checkpointed_ledger(tmp_path)
        state = tmp_path / "verify.state"
        verify_source(location, policy=self.policy(), state_path=state)
        self.append_vouchers(location, tmp_path, range(4, 5))
        self.record_checkpoint(location)
        # The auditor remembers another root for size 33 than the log's history now leads to.
        data = json.loads(state.read_text("utf-8"))
        data["checkpoint"]["root"] = base64.b64encode(bytes(32)).decode()
        state.write_text(json.dumps(data), "utf-8")
        before = state.read_text("utf-8")
        findings = verify_source(location, policy=self.policy(), state_path=state).findings
        assert [(f.seq, f.check) for f in findings] == [(None, "consistency")]
        assert findings[0].detail.startswith(f"the remembered checkpoint (size 33, root {short(bytes(32))}…) is not consistent")
        assert state.read_text("utf-8") == before

    def test_incremental_run_notices_a_shrunken_log(self, tmp_path):
        location, _ = self.checkpointed_ledger(tmp_path)
        state = tmp_path / "verify.state"
        verify_source(location, policy=self.policy(), state_path=state)
        self.tamper(location, f"DELETE FROM ledger_log WHERE seq = {self.placeholder}", (33,))
        findings = verify_source(location, policy=self.policy(), state_path=state).findings
        assert findings[0] == Finding(33, "truncated", "the log has 33 entries; the previous verification saw 34")

    # -- tenure --------------------------------------------------------------------------------------------------

    def test_entry_signed_after_the_holders_handover_is_pinpointed(self, tmp_path):
        from datetime import datetime

        from ..importer import import_journal
        from ..store.application import LedgerApplication

        location = self.new_location()
        clock = [datetime(2025, 1, 10, 2, 0, tzinfo=UTC)]
        app = LedgerApplication(location, signer=SIGNER, clock=lambda: clock[0])
        app.create_ledger(origin=ORIGIN, name="一致性测试村", chart="2023", holder="clerk-1")
        records = [
            {"id": "o1", "type": "official", "official_id": "clerk-1", "name": "王会计", "roles": ["accountant"],
             "term_start": "2025-01-01"},
            {"id": "d1", "type": "official_departed", "official_id": "clerk-1", "departed": "2025-03-31",
             "handover_date": "2025-04-01"},
            {"id": "open", "type": "opening_balances", "date": "2025-01-01",
             "lines": [{"account": "102", "debit": "5000.00"}, {"account": "301", "credit": "5000.00"}]},
        ]
        journal = tmp_path / "tenure.jsonl"
        journal.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[:2]), "utf-8")
        assert import_journal(app, journal).ok
        size = app.recorder.log_size()
        # 2025-04-01T16:30Z is 2025-04-02 00:30 in Shanghai: the day after the handover.
        clock[0] = datetime(2025, 4, 1, 16, 30, tzinfo=UTC)
        journal.write_text(json.dumps(records[2], ensure_ascii=False) + "\n", "utf-8")
        assert import_journal(app, journal).ok
        app.close()
        findings = verify_source(location).findings
        detail = f"signed on 2025-04-02 (UTC+8) by {SIGNER.label}, after holder clerk-1 handed over on 2025-04-01"
        assert findings == [Finding(seq, "tenure", detail) for seq in range(size, size + 2)]

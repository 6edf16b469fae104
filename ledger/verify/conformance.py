"""Conformance suite for the verifier, shipped in the package: each storage backend subclasses it.

A subclass says how to make a new ledger location and how an insider with database access runs SQL on it
(bypassing the append-only triggers). The suite then tampers with the rows and checks that verification pinpoints
each change. It builds ledgers with the writer's code; the verifier it tests does not import that code.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..crypto.logformat import EntrySigner, encode_entry, leaf_hash, parse_leaf, state_hash
from .chain import Finding, verify_source

ORIGIN = "conformance.example/village/000000000000/v1"
SIGNER = EntrySigner(ORIGIN + "/signer/clerk", Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))


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

    def build_ledger(self, tmp_path: Path) -> str:
        from ..importer import import_journal
        from ..store.application import LedgerApplication

        location = self.new_location()
        app = LedgerApplication(location, signer=SIGNER)
        app.create_ledger(origin=ORIGIN, name="一致性测试村", chart="2023")
        result = import_journal(app, _journal(tmp_path / "journal.jsonl"))
        assert result.ok, result.problems
        app.close()
        return location

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

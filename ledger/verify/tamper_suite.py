"""The tamper suite, shipped beside the conformance suite: every threat of DESIGN.md run on a realistic ledger.

A storage backend mixes TamperSuite into its VerifierConformance subclass; the suite uses the same three hooks
(new_location, tamper, fetch) and placeholder. Each test builds a small village ledger with the writer's code:
January and February closed and sealed by checkpoints that two witnesses with their own state files cosign
(the township agency and the supervision committee; the policy requires both), the clerk's key rotated between
the months, and an unwitnessed March tail. An insider then edits the database directly, and the test asserts
the exact findings, each naming the ledger (result.origin), after checking that the untouched build verifies clean.

Ledgers the insider prepares elsewhere (a second village, a rewritten history, a second set of books) are SQLite
files in the test's directory: an insider would build them offline and copy rows into the real database.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..crypto.checkpoint import parse_checkpoint
from ..crypto.keys import KeyFile
from ..crypto.logformat import (
    EntrySigner,
    encode_entry,
    leaf_hash,
    parse_leaf,
    state_hash,
)
from ..crypto.merkle import root as merkle_root
from ..crypto.note import Ed25519Signer, format_note, parse_note
from .chain import Finding, VerificationResult, verify_source
from .checkpoints import short
from .conformance import (
    COSIGN_TIME,
    LOG_KEY,
    ORIGIN,
    SIGNER,
    WITNESS_KEYS,
    WITNESS_NAMES,
    policy_text,
)
from .policy import parse_policy

OTHER_ORIGIN = "conformance.example/village/000000000001/v1"
OTHER_SIGNER = EntrySigner(OTHER_ORIGIN + "/signer/clerk", Ed25519PrivateKey.from_private_bytes(bytes([15]) * 32))
# The accountant who takes over after January; the first clerk's key is revoked at the handover.
NEW_CLERK = EntrySigner(ORIGIN + "/signer/clerk-2", Ed25519PrivateKey.from_private_bytes(bytes([16]) * 32))
LOG_KEY_FILE = KeyFile(ORIGIN, "log", LOG_KEY.private_key, LOG_KEY.public_key)
OPENING_BANK = 5000
RENTS = {"2025-01": (100, 200, 300, 400), "2025-02": (150, 250, 350, 450), "2025-03": (120, 80)}
CLOSED = ("2025-01", "2025-02")
# A log row with the event it points at: (seq, leaf, leaf_hash, originator_id, originator_version, topic, state).
ROWS = (
    "SELECT l.seq, l.leaf, l.leaf_hash, l.originator_id, l.originator_version, e.topic, e.state "
    "FROM ledger_log l JOIN stored_events e ON e.originator_id = l.originator_id "
    "AND e.originator_version = l.originator_version {where} ORDER BY l.seq"
)


def witness_key(role: str, private: Ed25519PrivateKey | None = None) -> KeyFile:
    private = private or WITNESS_KEYS[role]
    return KeyFile(WITNESS_NAMES[role], "witness", private, Ed25519Signer(WITNESS_NAMES[role], private).public_key)


def both_policy():
    return parse_policy(policy_text("both"))


def journal_lines(period: str, rents: tuple[int, ...], *, opening: bool, closed_bank: int | None) -> list[dict]:
    """One month of rent vouchers into the bank account; closed with the bank balance the books must show."""
    year, month = period.split("-")
    lines = []
    if opening:
        lines.append({"id": "open", "type": "opening_balances", "date": f"{period}-01", "lines": [
            {"account": "102", "debit": f"{OPENING_BANK}.00"}, {"account": "301", "credit": f"{OPENING_BANK}.00"}]})
    for n, rent in enumerate(rents, start=1):
        lines.append({
            "id": f"v-{period}-{n}", "type": "voucher", "voucher_no": f"记-{year}{month}-{n:03d}",
            "date": f"{period}-{n + 1:02d}", "summary": "收到租金",
            "lines": [{"account": "102", "debit": f"{rent}.00"}, {"account": "50102", "credit": f"{rent}.00"}],
        })
    if closed_bank is not None:
        lines.append({"id": f"close-{period}", "type": "period_close", "period": period, "date": f"{period}-28",
                      "cash_counted": "0.00", "bank_statement": f"{closed_bank}.00"})
    return lines


@dataclass
class Village:
    location: str
    notes: dict[str, str]  # period -> the cosigned checkpoint note, as recorded in the log and published
    sealed_at: dict[str, int]  # period -> seq of its CheckpointRecorded entry, which is also the size it signs
    revoked_at: int  # seq of the first clerk key's KeyRevoked entry
    size: int


Seal = Callable[..., str]


class TamperSuite:
    """Mix into a VerifierConformance subclass (it supplies new_location, tamper, fetch and placeholder)."""

    # -- building ----------------------------------------------------------------------------------------------

    def witnesses(self, tmp_path: Path) -> dict:
        """Witnesses following ORIGIN from size 0, each with its own state file, at a fixed cosigning time."""
        from ..witness import Witness, init_witness_state

        found = {}
        for role in ("township", "committee"):
            state = tmp_path / f"witness-{role}.sqlite"
            init_witness_state(state, ORIGIN, [LOG_KEY_FILE.vkey()])
            found[role] = Witness(state, witness_key(role), clock=lambda: COSIGN_TIME)
        return found

    def genuine_seal(self, witnesses: dict, quorum: int | None = None) -> Seal:
        """The month-close flow: the log key signs, the witnesses cosign (all of them unless quorum says fewer)."""
        from ..checkpoints import close_month_checkpoint

        vkeys = [w.vkey for w in witnesses.values()]
        return lambda app, period: close_month_checkpoint(
            app, LOG_KEY_FILE, list(witnesses.values()), period, quorum=quorum, witness_vkeys=vkeys
        )

    def write_village(self, location: str, tmp_path: Path, seal: Seal, *, rents=RENTS) -> Village:
        """January, the clerk's key handed over, February, each month closed and sealed; then the March tail."""
        from ..store.application import LedgerApplication

        app = LedgerApplication(location, signer=SIGNER)
        app.create_ledger(origin=ORIGIN, name="一致性测试村", chart="2023", log_public_key=LOG_KEY.public_key)
        notes, sealed_at, bank = {}, {}, OPENING_BANK
        for period in (*CLOSED, "2025-03"):
            if period == "2025-02":
                app.register_key(NEW_CLERK.name, "signer", NEW_CLERK.public_key_bytes)
                app.close()
                app = LedgerApplication(location, signer=NEW_CLERK)
                revoked_at = app.recorder.log_size()
                app.revoke_key(SIGNER.name, SIGNER.public_key_bytes, "会计换届 / accountant handed over")
            bank += sum(rents[period])
            closed_bank = bank if period in CLOSED else None
            _import(app, tmp_path, journal_lines(period, rents[period], opening=period == CLOSED[0], closed_bank=closed_bank))
            if period in CLOSED:
                sealed_at[period] = app.recorder.log_size()
                notes[period] = seal(app, period)
        size = app.recorder.log_size()
        app.close()
        return Village(location, notes, sealed_at, revoked_at, size)

    def other_village(self, tmp_path: Path) -> Path:
        """A neighbouring village's ledger: its own origin and clerk key, the same kind of January."""
        from ..store.application import LedgerApplication

        path = tmp_path / "other.sqlite"
        app = LedgerApplication(str(path), signer=OTHER_SIGNER)
        app.create_ledger(origin=OTHER_ORIGIN, name="邻村", chart="2023")
        january = journal_lines("2025-01", RENTS["2025-01"], opening=True, closed_bank=OPENING_BANK + sum(RENTS["2025-01"]))
        _import(app, tmp_path, january)
        app.close()
        return path

    def village(self, tmp_path: Path) -> tuple[Village, dict]:
        """The genuine village at the backend's location, verified clean before any test tampers with it."""
        witnesses = self.witnesses(tmp_path)
        village = self.write_village(self.new_location(), tmp_path, self.genuine_seal(witnesses))
        result = verify_source(village.location, policy=both_policy())
        assert (result.intact, result.findings, result.origin, result.size, result.checkpoints) == (
            True, [], ORIGIN, village.size, 2
        )
        return village, witnesses

    # -- the insider's edits -----------------------------------------------------------------------------------

    def rows(self, location: str, where: str = "", params: tuple = ()) -> list[tuple]:
        return _as_bytes(self.fetch(location, ROWS.format(where=where), params))

    def insert_row(self, location: str, seq: int, leaf: bytes, originator_id, version: int, topic: str, state: bytes) -> None:
        p = self.placeholder
        self.tamper(
            location,
            f"INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES ({p}, {p}, {p}, {p})",
            (originator_id, version, topic, state),
        )
        self.tamper(
            location,
            f"INSERT INTO ledger_log (seq, leaf, leaf_hash, originator_id, originator_version) VALUES ({p}, {p}, {p}, {p}, {p})",
            (seq, leaf, leaf_hash(leaf), originator_id, version),
        )

    def delete_row(self, location: str, seq: int) -> None:
        """The log row at seq and the event it points at."""
        p = self.placeholder
        [(_, _, _, originator_id, version, _, _)] = self.rows(location, f"WHERE l.seq = {p}", (seq,))
        self.tamper(location, f"DELETE FROM ledger_log WHERE seq = {p}", (seq,))
        self.tamper(
            location, f"DELETE FROM stored_events WHERE originator_id = {p} AND originator_version = {p}",
            (originator_id, version),
        )

    def shift_rows(self, location: str, start: int) -> None:
        """Every row from `start` on moves one seq up; through a distant range, since seq is unique at each row update."""
        p = self.placeholder
        self.tamper(location, f"UPDATE ledger_log SET seq = seq + {p} WHERE seq >= {p}", (1_000_000, start))
        self.tamper(location, f"UPDATE ledger_log SET seq = seq - {p} WHERE seq >= {p}", (999_999, 1_000_000))

    def swap_rows(self, location: str, a: int, b: int) -> None:
        p = self.placeholder
        for old, new in ((a, 1_000_000), (b, a), (1_000_000, b)):
            self.tamper(location, f"UPDATE ledger_log SET seq = {p} WHERE seq = {p}", (new, old))

    def swap_leaves(self, location: str, a: int, b: int) -> None:
        p = self.placeholder
        leaves = {seq: leaf for seq, leaf, *_ in self.rows(location, f"WHERE l.seq IN ({p}, {p})", (a, b))}
        for seq, other in ((a, b), (b, a)):
            self.tamper(
                location, f"UPDATE ledger_log SET leaf = {p}, leaf_hash = {p} WHERE seq = {p}",
                (leaves[other], leaf_hash(leaves[other]), seq),
            )

    def chained_entry(self, location: str, seq: int, signer: EntrySigner, like: int, state: bytes, version: int) -> bytes:
        """A leaf at seq, chained to the row before it and signed by signer, for an event of row `like`'s aggregate."""
        p = self.placeholder
        [(_, before, *_)] = self.rows(location, f"WHERE l.seq = {p}", (seq - 1,))
        [(_, model, *_)] = self.rows(location, f"WHERE l.seq = {p}", (like,))
        fields = parse_leaf(model).fields
        entry = encode_entry(
            origin=ORIGIN, seq=seq, prev=leaf_hash(before), time=parse_leaf(before).fields["time"], signer=signer.label,
            originator_id=fields["id"], version=version, topic=fields["topic"], state_digest=state_hash(state),
        )
        return entry + signer.sign(entry)

    def replace_history(self, location: str, forged: Path) -> None:
        """Every row of the real database replaced by the rows of a ledger written elsewhere."""
        rows = sqlite_rows(forged)
        self.tamper(location, "DELETE FROM ledger_log")
        self.tamper(location, "DELETE FROM stored_events")
        for seq, leaf, _, originator_id, version, topic, state in rows:
            self.insert_row(location, seq, leaf, originator_id, version, topic, state)

    def tree_root_at(self, location: str, size: int) -> bytes:
        return merkle_root([leaf_hash(leaf) for _, leaf, *_ in self.rows(location, f"WHERE l.seq < {self.placeholder}", (size,))])

    def checked(self, location: str, **kwargs) -> VerificationResult:
        result = verify_source(location, policy=both_policy(), **kwargs)
        assert result.origin == ORIGIN  # every finding below is about this ledger
        return result

    # -- the suite -----------------------------------------------------------------------------------------------

    def test_village_is_sealed_by_both_witnesses(self, tmp_path):
        village, witnesses = self.village(tmp_path)
        assert (village.sealed_at, village.revoked_at, village.size) == ({"2025-01": 18, "2025-02": 36}, 20, 44)
        feb_root = root_of(village.notes["2025-02"])
        for witness in witnesses.values():
            assert (witness.state(ORIGIN).size, witness.state(ORIGIN).root_hash) == (36, feb_root)
            assert witness.cosigned(ORIGIN) == [note_cosigned_by(village.notes[p], witness) for p in CLOSED]

    # Reordering: rows 27 and 29 are February's first two Voucher/Posted entries, sealed at seq 36.

    def test_swapped_rows_are_pinpointed_at_the_first_swapped_seq(self, tmp_path):
        village, _ = self.village(tmp_path)
        self.swap_rows(village.location, 27, 29)
        result = self.checked(village.location)
        assert [(f.seq, f.check) for f in result.findings] == [
            (27, "seq"), (27, "prev"), (28, "prev"), (29, "seq"), (29, "prev"), (30, "prev"), (36, "root"),
        ]
        assert (result.findings[0].detail, result.findings[3].detail) == (
            "expected seq 27, row 27 claims 29", "expected seq 29, row 29 claims 27"
        )
        assert result.findings[-1].detail.startswith("checkpoint recorded at seq 36: root ")

    def test_swapped_leaves_are_pinpointed_at_the_first_swapped_seq(self, tmp_path):
        village, _ = self.village(tmp_path)
        self.swap_leaves(village.location, 27, 29)
        result = self.checked(village.location)
        assert [(f.seq, f.check) for f in result.findings] == [
            (27, "seq"), (27, "prev"), (27, "state"), (28, "prev"),
            (29, "seq"), (29, "prev"), (29, "state"), (30, "prev"), (36, "root"),
        ]
        assert result.findings[2].detail == "stored event bytes do not hash to the signed state digest"

    # Replay from another ledger: the neighbouring village's signed Voucher/Posted entry, with its event.

    def test_entry_appended_from_another_ledger_is_pinpointed(self, tmp_path):
        village, _ = self.village(tmp_path)
        [(seq, leaf, _, originator_id, version, topic, state)] = sqlite_rows(self.other_village(tmp_path), "WHERE l.seq = ?", (9,))
        assert (seq, topic) == (9, "ledger/Voucher/Posted")
        [(_, head, *_)] = self.rows(village.location, f"WHERE l.seq = {self.placeholder}", (43,))
        self.insert_row(village.location, village.size, leaf, originator_id, version, topic, state)
        result = self.checked(village.location)
        claimed, actual = parse_leaf(leaf).prev.hex()[:16], leaf_hash(head).hex()[:16]
        assert result.findings == [
            Finding(44, "origin", f"entry belongs to {OTHER_ORIGIN!r}, not {ORIGIN!r}"),
            Finding(44, "seq", "expected seq 44, row 44 claims 9"),
            Finding(44, "prev", f"prev {claimed} does not match the previous leaf hash {actual}"),
            Finding(44, "signer", f"key {OTHER_SIGNER.label} was never registered in this log"),
        ]

    def test_entry_substituted_from_another_ledger_is_pinpointed(self, tmp_path):
        village, _ = self.village(tmp_path)
        [(seq, leaf, _, originator_id, version, topic, state)] = sqlite_rows(self.other_village(tmp_path), "WHERE l.seq = ?", (9,))
        # The same seq and topic in both ledgers: only what binds an entry to its ledger can tell them apart.
        assert (seq, topic) == (9, "ledger/Voucher/Posted")
        self.delete_row(village.location, 9)
        self.insert_row(village.location, 9, leaf, originator_id, version, topic, state)
        result = self.checked(village.location)
        assert [(f.seq, f.check) for f in result.findings] == [
            (9, "origin"), (9, "prev"), (9, "signer"), (10, "prev"), (18, "root"), (36, "root"),
        ]
        assert (result.findings[0].detail, result.findings[2].detail) == (
            f"entry belongs to {OTHER_ORIGIN!r}, not {ORIGIN!r}",
            f"key {OTHER_SIGNER.label} was never registered in this log",
        )

    # Insertion: the clerk in office signs an extra February voucher event and slots it in at seq 30.

    def test_inserted_entry_is_pinpointed(self, tmp_path):
        village, _ = self.village(tmp_path)
        notes = published(tmp_path, village)
        [(_, _, _, originator_id, _, topic, state)] = self.rows(village.location, f"WHERE l.seq = {self.placeholder}", (29,))
        forged_state = state.replace(b"250.00", b"950.00")
        assert forged_state != state
        leaf = self.chained_entry(village.location, 30, NEW_CLERK, like=29, state=forged_state, version=2)
        self.shift_rows(village.location, 30)
        self.insert_row(village.location, 30, leaf, originator_id, 2, topic, forged_state)
        result = self.checked(village.location, checkpoints=notes)
        # Every later row now sits one place after the seq it signed; the shifted seal at 37 is not trusted.
        assert [(f.seq, f.check) for f in result.findings] == [
            (31, "seq"), (31, "prev"), *((s, "seq") for s in range(32, 45)), (None, "root"),
        ]
        assert result.findings[0].detail == "expected seq 31, row 31 claims 30"
        old, new = root_of(village.notes["2025-02"]), self.tree_root_at(village.location, 36)
        assert result.findings[-1].detail == f"{notes[1]}: root {short(old)}… of size 36 differs from the recomputed root {short(new)}…"

    # A revoked key: the first clerk, whose key was revoked at the handover (seq 20), signs in March.

    def test_entry_signed_by_a_revoked_key_is_pinpointed_even_when_witnessed(self, tmp_path):
        from ..checkpoints import checkpoint_and_record
        from ..store.application import LedgerApplication

        village, witnesses = self.village(tmp_path)
        [(_, _, _, originator_id, _, topic, state)] = self.rows(village.location, f"WHERE l.seq = {self.placeholder}", (42,))
        leaf = self.chained_entry(village.location, 44, SIGNER, like=42, state=state, version=2)
        self.insert_row(village.location, 44, leaf, originator_id, 2, topic, state)
        # Witnesses check consistency, not entries: they cosign the tree that holds the forged entry.
        app = LedgerApplication(village.location, signer=NEW_CLERK)
        checkpoint_and_record(app, LOG_KEY_FILE, list(witnesses.values()), witness_vkeys=[w.vkey for w in witnesses.values()])
        app.close()
        result = self.checked(village.location)
        assert result.findings == [Finding(44, "signer", f"key {SIGNER.label} was revoked at seq 20")]
        assert result.checkpoints == 3

    # The insider holding every village key (both clerks' and the log key) rewrites the whole history with one
    # changed amount, re-signs and re-chains it, and re-records the two checkpoints with the log key.

    def rewritten(self, tmp_path: Path, village: Village, *, copy_cosignatures: bool) -> Village:
        from ..checkpoints import sign_checkpoint

        def insider_seal(app, period):
            checkpoint, note = sign_checkpoint(app, LOG_KEY_FILE)
            if copy_cosignatures:
                cosignatures = parse_note(village.notes[period]).signatures[1:]
                note = format_note(parse_note(note).text, (*parse_note(note).signatures, *cosignatures))
            app.record_checkpoint(size=checkpoint.size, root_hash=checkpoint.root_hash, note=note, period=period)
            return note

        rents = dict(RENTS, **{"2025-01": (100, 2000, 300, 400)})
        return self.write_village(str(tmp_path / "rewritten.sqlite"), tmp_path, insider_seal, rents=rents)

    def test_witnesses_refuse_to_cosign_the_rewritten_history(self, tmp_path):
        from ..witness import ConflictingRoot, OldSizeMismatch

        village, witnesses = self.village(tmp_path)
        forged = self.rewritten(tmp_path, village, copy_cosignatures=False)
        feb_root, forged_root = root_of(village.notes["2025-02"]), root_of(forged.notes["2025-02"])
        assert (forged.size, forged.sealed_at) == (village.size, village.sealed_at) and forged_root != feb_root
        for witness in witnesses.values():
            with pytest.raises(ConflictingRoot, match="the log has forked") as conflict:
                witness.cosign(forged.notes["2025-02"], 36, ())
            with pytest.raises(OldSizeMismatch) as behind:
                witness.cosign(forged.notes["2025-01"], 18, ())
            assert (conflict.value.status, behind.value.status, behind.value.size) == (409, 409, 36)
            assert (witness.state(ORIGIN).size, witness.state(ORIGIN).root_hash) == (36, feb_root)
            assert [status for status, _ in witness.refusals()] == [409, 409]

    def test_rewritten_history_without_cosignatures_is_caught_by_quorum_and_published_notes(self, tmp_path):
        village, _ = self.village(tmp_path)
        notes = published(tmp_path, village)
        forged = self.rewritten(tmp_path, village, copy_cosignatures=False)
        self.replace_history(village.location, tmp_path / "rewritten.sqlite")
        # Signed and chained throughout: without the policy and the published notes nothing is wrong.
        assert verify_source(village.location).intact
        quorum = "cosigned by no witness; policy quorum 'both' is not met"
        assert self.checked(village.location).findings == [
            Finding(18, "quorum", f"checkpoint recorded at seq 18: {quorum}"),
            Finding(36, "quorum", f"checkpoint recorded at seq 36: {quorum}"),
        ]
        old = [root_of(n) for n in village.notes.values()]
        new = [root_of(n) for n in forged.notes.values()]
        assert self.checked(village.location, checkpoints=notes).findings == [
            Finding(18, "quorum", f"checkpoint recorded at seq 18: {quorum}"),
            Finding(36, "quorum", f"checkpoint recorded at seq 36: {quorum}"),
            *(Finding(None, "root", f"{path}: root {short(o)}… of size {size} differs from the recomputed root {short(n)}…")
              for path, size, o, n in zip(notes, (18, 36), old, new)),
            *(Finding(None, "conflict", f"size {size} has 2 signed roots: {short(n)}… in checkpoint recorded at seq "
                                        f"{size}; {short(o)}… in {path}")
              for path, size, o, n in zip(notes, (18, 36), old, new)),
        ]

    def test_rewritten_history_with_copied_cosignatures_is_caught_by_the_cosignature_check(self, tmp_path):
        village, _ = self.village(tmp_path)
        notes = published(tmp_path, village)
        forged = self.rewritten(tmp_path, village, copy_cosignatures=True)
        self.replace_history(village.location, tmp_path / "rewritten.sqlite")
        township = witness_key("township").vkey().split("+")[1]
        bad = f"signature by {WITNESS_NAMES['township']!r} (key ID {township}) does not verify"
        old = [root_of(n) for n in village.notes.values()]
        new = [root_of(n) for n in forged.notes.values()]
        assert self.checked(village.location, checkpoints=notes).findings == [
            Finding(18, "checkpoint", f"checkpoint recorded at seq 18: {bad}"),
            Finding(36, "checkpoint", f"checkpoint recorded at seq 36: {bad}"),
            *(Finding(None, "root", f"{path}: root {short(o)}… of size {size} differs from the recomputed root {short(n)}…")
              for path, size, o, n in zip(notes, (18, 36), old, new)),
        ]

    def test_split_view_is_refused_by_the_witness_that_saw_the_other_view(self, tmp_path):
        """Two sets of books from genesis on, same origin and keys: the township is shown one, the villagers the other."""
        from ..witness import ConflictingRoot

        witnesses = self.witnesses(tmp_path)
        township, committee = witnesses["township"], witnesses["committee"]
        for_township = self.write_village(
            str(tmp_path / "township-books.sqlite"), tmp_path, self.genuine_seal({"township": township}),
            rents=dict(RENTS, **{"2025-02": (150, 250, 3500, 450)}),
        )
        for_villagers = self.write_village(self.new_location(), tmp_path, self.genuine_seal({"committee": committee}))
        # Each witness has one linear history and refuses the other view's checkpoint of the same size.
        for witness, other_view in ((township, for_villagers), (committee, for_township)):
            with pytest.raises(ConflictingRoot, match="the log has forked") as refused:
                witness.cosign(other_view.notes["2025-02"], 36, ())
            assert refused.value.status == 409
        notes = published(tmp_path, for_township)
        quorum = "policy quorum 'both' is not met"
        old = [root_of(n) for n in for_township.notes.values()]
        new = [root_of(n) for n in for_villagers.notes.values()]
        # Same shape, but no entry in common: every entry carries its own signing time.
        assert (old[0] != new[0], old[1] != new[1]) == (True, True)
        result = self.checked(for_villagers.location, checkpoints=notes)
        assert result.findings == [
            Finding(18, "quorum", f"checkpoint recorded at seq 18: cosigned by committee; {quorum}"),
            Finding(36, "quorum", f"checkpoint recorded at seq 36: cosigned by committee; {quorum}"),
            *(Finding(None, "quorum", f"{path}: cosigned by township; {quorum}") for path in notes),
            *(Finding(None, "root", f"{path}: root {short(o)}… of size {size} differs from the recomputed root {short(n)}…")
              for path, size, o, n in zip(notes, (18, 36), old, new)),
            *(Finding(None, "conflict", f"size {size} has 2 signed roots: {short(n)}… in checkpoint recorded at seq "
                                        f"{size}; {short(o)}… in {path}")
              for path, size, o, n in zip(notes, (18, 36), old, new)),
        ]

    # Seals that do not meet the policy, recorded by the insider for March (size 44, at seq 44).

    def test_checkpoint_cosigned_by_a_witness_key_not_in_the_policy(self, tmp_path):
        from ..checkpoints import checkpoint_and_record
        from ..store.application import LedgerApplication
        from ..witness import Witness, init_witness_state

        village, witnesses = self.village(tmp_path)
        # A stand-in for the supervision committee: its name, the insider's own key.
        state = tmp_path / "witness-stand-in.sqlite"
        init_witness_state(state, ORIGIN, [LOG_KEY_FILE.vkey()])
        stand_in = Witness(state, witness_key("committee", Ed25519PrivateKey.from_private_bytes(bytes([17]) * 32)))
        app = LedgerApplication(village.location, signer=NEW_CLERK)
        checkpoint_and_record(app, LOG_KEY_FILE, [witnesses["township"], stand_in], witness_vkeys=[stand_in.vkey])
        app.close()
        assert self.checked(village.location).findings == [
            Finding(44, "quorum", "checkpoint recorded at seq 44: cosigned by township; policy quorum 'both' is not met")
        ]

    def test_checkpoint_with_a_cosignature_over_another_root(self, tmp_path):
        from ..checkpoints import log_consistency_proof, sign_checkpoint
        from ..store.application import LedgerApplication

        village, witnesses = self.village(tmp_path)
        app = LedgerApplication(village.location, signer=NEW_CLERK)
        checkpoint, note = sign_checkpoint(app, LOG_KEY_FILE)
        township = witnesses["township"].cosign(note, 36, log_consistency_proof(app, 36, checkpoint.size))
        # The committee is not asked; its February cosignature is copied onto March's checkpoint.
        committee = parse_note(village.notes["2025-02"]).signatures[2]
        assert committee.name == WITNESS_NAMES["committee"]
        cosigned = note + township + committee.line
        app.record_checkpoint(size=checkpoint.size, root_hash=checkpoint.root_hash, note=cosigned, period=None)
        app.close()
        kid = committee.key_id.hex()
        assert self.checked(village.location).findings == [Finding(
            44, "checkpoint",
            f"checkpoint recorded at seq 44: signature by {WITNESS_NAMES['committee']!r} (key ID {kid}) does not verify",
        )]


def _import(app, tmp_path: Path, lines: list[dict]) -> None:
    from ..importer import import_journal

    journal = tmp_path / "journal.jsonl"
    journal.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    result = import_journal(app, journal)
    assert result.ok, result.problems


def root_of(note: str) -> bytes:
    return parse_checkpoint(parse_note(note).text).root_hash


def note_cosigned_by(note: str, witness) -> str:
    """The note as the witness stored it: the log's signature and the witness's own cosignature line."""
    parsed = parse_note(note)
    return format_note(parsed.text, [s for s in parsed.signatures if s.name in (ORIGIN, witness.name)])


def sqlite_rows(path: Path, where: str = "", params: tuple = ()) -> list[tuple]:
    """ROWS of a ledger the insider wrote to a SQLite file of their own."""
    with sqlite3.connect(path) as conn:
        return _as_bytes(conn.execute(ROWS.format(where=where), params).fetchall())


def _as_bytes(rows: list[tuple]) -> list[tuple]:
    return [(seq, bytes(leaf), bytes(lh), oid, version, topic, bytes(state)) for seq, leaf, lh, oid, version, topic, state in rows]


def published(tmp_path: Path, village: Village) -> list[Path]:
    """The cosigned notes as the public holds them, one file per month."""
    paths = []
    for period, note in village.notes.items():
        path = tmp_path / f"published-{period}.note"
        path.write_text(note, "utf-8")
        paths.append(path)
    return paths

"""Checkpoints of a stored ledger and the month-close flow with two witnesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import socket
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import qinghe_expected as qe
from conftest import FIXTURES
from ledger.checkpoints import (
    CheckpointFlowError,
    checkpoint_and_record,
    checkpoints,
    close_month_checkpoint,
    closed_periods,
    cosigned_checkpoint_for_period,
    demo_checkpoints,
    log_consistency_proof,
    memoized_subtree_hash,
    recorded_checkpoints,
    sign_checkpoint,
    tree_root,
)
from ledger.cli import EXIT_FINDING, EXIT_OK, main
from ledger.crypto.checkpoint import Checkpoint, CosignatureV1Verifier, open_checkpoint
from ledger.crypto.keys import KeyFile, generate_key_file
from ledger.crypto.logformat import leaf_hash
from ledger.crypto.merkle import EMPTY_ROOT, consistency_proof, list_subtree_hash, root, verify_consistency
from ledger.crypto.note import Ed25519Signer, Ed25519Verifier, sign_note
from ledger.domain.validation import Rejected
from ledger.importer import import_journal, read_journal
from ledger.store.application import LedgerApplication
from ledger.verify.chain import verify_source
from ledger.witness import HTTPWitness, Witness, init_witness_state

JOURNAL = FIXTURES / "qinghe_2025.jsonl"
TOWNSHIP = "witness.township-agency.qinghe.example/2025"
COMMITTEE = "witness.supervision-committee.qinghe.example/2025"
MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]


def key(seed: int, name: str, role: str) -> KeyFile:
    private = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return KeyFile(name, role, private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


LOG_KEY = key(21, qe.ORIGIN, "log")
LOG_VERIFIER = Ed25519Verifier(qe.ORIGIN, LOG_KEY.public_key)


def new_ledger(location: str, signer) -> LedgerApplication:
    app = LedgerApplication(location, signer=signer)
    app.create_ledger(origin=qe.ORIGIN, name="清河村", chart="2023", log_public_key=LOG_KEY.public_key)
    return app


@pytest.fixture
def small(ledger_location, signer):
    """The first 30 records of the Qinghe journal: January and February closed, March open."""
    app = new_ledger(ledger_location, signer)
    records, problems = read_journal(JOURNAL)
    assert problems == []
    app.execute_batch([n.record for n in records[:30]])
    yield app
    app.close()


def test_root_is_the_merkle_root_of_the_stored_leaves(small):
    records = list(small.recorder.read_log())
    hashes = [leaf_hash(r.leaf) for r in records]
    assert [r.leaf_hash for r in records] == hashes
    for size in (0, 1, 2, 7, 16, len(hashes)):
        assert tree_root(small, size) == root(hashes[:size])
    assert tree_root(small, 0) == EMPTY_ROOT
    with pytest.raises(CheckpointFlowError, match=f"the log holds {len(hashes)} entries, fewer than the {len(hashes) + 1}"):
        tree_root(small, len(hashes) + 1)


def test_consistency_proofs_from_the_store_verify(small):
    hashes = [r.leaf_hash for r in small.recorder.read_log()]
    n = len(hashes)
    for m in range(1, n):
        path = log_consistency_proof(small, m, n)
        assert path == consistency_proof(m, n, list_subtree_hash(hashes))
        verify_consistency(m, n, root(hashes[:m]), root(hashes), path)
    assert log_consistency_proof(small, 0, n) == ()


def test_memoized_subtree_hash_agrees_with_the_merkle_module(small):
    hashes = [r.leaf_hash for r in small.recorder.read_log()]
    tree = memoized_subtree_hash(hashes)
    for size in range(1, len(hashes) + 1):
        assert tree(0, size) == root(hashes[:size])
        for old in range(1, size):
            assert consistency_proof(old, size, tree) == consistency_proof(old, size, list_subtree_hash(hashes))


def test_checkpoint_note_opens_with_the_log_verifier(small):
    checkpoint, note = sign_checkpoint(small, LOG_KEY)
    size = small.recorder.log_size()
    assert checkpoint == Checkpoint(qe.ORIGIN, size, tree_root(small, size))
    opened = open_checkpoint(note, LOG_VERIFIER)
    assert opened.checkpoint == checkpoint
    assert note.startswith(f"{qe.ORIGIN}\n{size}\n")
    assert opened.note.verified_names == (qe.ORIGIN,)


def test_only_the_registered_log_key_signs_checkpoints(small):
    refusals = {
        "signer role": key(21, qe.ORIGIN, "signer"),
        "other name": key(21, qe.ORIGIN + "/other", "log"),
        "unregistered": key(22, qe.ORIGIN, "log"),
    }
    messages = {}
    for label, wrong in refusals.items():
        with pytest.raises(Rejected) as caught:
            sign_checkpoint(small, wrong)
        messages[label] = str(caught.value)
    kid = "+".join([qe.ORIGIN, refusals["unregistered"].vkey().split("+")[1]])
    assert messages == {
        "signer role": f"key: 密钥角色应为 log / key {qe.ORIGIN!r} has role 'signer', not 'log'",
        "other name": f"key: 日志密钥名须为账簿标识 / log key {qe.ORIGIN + '/other'!r} must be named after the origin {qe.ORIGIN!r}",
        "unregistered": f"key: 日志密钥未登记或已吊销 / log key {kid} is not a registered, unrevoked log key of {qe.ORIGIN}",
    }


def test_a_month_is_checkpointed_only_after_its_close(small):
    with pytest.raises(Rejected, match="2025-03 尚未结账 / period 2025-03 is not closed"):
        close_month_checkpoint(small, LOG_KEY, [], "2025-03")
    assert recorded_checkpoints(small) == []


# -- witnesses ---------------------------------------------------------------------------------------------------


class Witnesses:
    """镇三资中心 over HTTP on a loopback port, 村务监督委员会 offline from its state file."""

    def __init__(self, directory, origin=qe.ORIGIN, published=None):
        self.township_key, self.committee_key = key(31, TOWNSHIP, "witness"), key(32, COMMITTEE, "witness")
        for name in ("township", "committee"):
            init_witness_state(directory / f"{name}.sqlite", origin, [LOG_VERIFIER.vkey], published)
        self.township = Witness(directory / "township.sqlite", self.township_key)
        self.committee = Witness(directory / "committee.sqlite", self.committee_key)
        self.server = self.township.server("127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        host, port = self.server.server_address[:2]
        self.http = HTTPWitness(f"http://{host}:{port}", timeout=10)

    @property
    def flow(self):
        return [self.http, self.committee]

    @property
    def vkeys(self):
        return [self.township_key.vkey(), self.committee_key.vkey()]

    @property
    def verifiers(self):
        return [CosignatureV1Verifier.from_vkey(v) for v in self.vkeys]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def witnesses(tmp_path):
    pair = Witnesses(tmp_path)
    yield pair
    pair.close()


def import_with_month_closes(app, witnesses) -> dict[str, tuple[int, str]]:
    """The month-close flow: records up to each period_close in one batch, then sign, gather, record.

    Returns each month's (log size when its checkpoint was taken, cosigned note).
    """
    records, problems = read_journal(JOURNAL)
    assert problems == []
    closes, batch = {}, []
    for numbered in records:
        batch.append(numbered.record)
        if numbered.record.type == "period_close":
            app.execute_batch(batch)
            batch = []
            period, size = numbered.record.period, app.recorder.log_size()
            note = close_month_checkpoint(app, LOG_KEY, witnesses.flow, period, witness_vkeys=witnesses.vkeys)
            closes[period] = (size, note)
    app.execute_batch(batch)
    return closes


def test_month_close_flow_over_qinghe_records_twelve_cosigned_checkpoints(ledger_location, signer, witnesses):
    app = new_ledger(ledger_location, signer)
    try:
        closes = import_with_month_closes(app, witnesses)
        recorded = recorded_checkpoints(app)
        assert [c.period for c in recorded] == MONTHS
        assert [(c.size, c.note) for c in recorded] == [closes[m] for m in MONTHS]
        assert checkpoints(app) == [closes[m][1] for m in MONTHS]
        for c in recorded:
            opened = open_checkpoint(c.note, LOG_VERIFIER, witnesses.verifiers)
            assert (opened.checkpoint.size, opened.checkpoint.root_hash) == (c.size, c.root_hash)
            assert opened.cosigner_names == (TOWNSHIP, COMMITTEE)
            assert c.root_hash == tree_root(app, c.size)
            assert cosigned_checkpoint_for_period(app, c.period) == c.note
        for witness in (witnesses.township, witnesses.committee):
            state = witness.state(qe.ORIGIN)
            assert (state.size, state.root_hash) == (recorded[-1].size, recorded[-1].root_hash)
            assert len(witness.cosigned(qe.ORIGIN)) == 12
            assert witness.refusals() == []
        # Each close is inside the tree its checkpoint seals; the checkpoint event itself comes right after it.
        for (period, closed_at), c in zip(closed_periods(app), recorded):
            assert (period, closed_at <= c.size) == (c.period, True)
        assert cosigned_checkpoint_for_period(app, "2026-01") is None
        with pytest.raises(Rejected, match="2025-12 已有检查点 / period 2025-12 already has a recorded checkpoint"):
            close_month_checkpoint(app, LOG_KEY, witnesses.flow, "2025-12")
        result = verify_source(ledger_location)
        assert (result.intact, result.findings) == (True, [])
        assert result.entries == app.recorder.log_size()
    finally:
        app.close()


def test_a_late_witness_is_brought_in_from_its_409_size(ledger_location, signer, tmp_path, witnesses):
    app = new_ledger(ledger_location, signer)
    try:
        import_journal(app, JOURNAL)
        first = checkpoint_and_record(app, LOG_KEY, witnesses.flow, period="2025-01", witness_vkeys=witnesses.vkeys)
        late_dir = tmp_path / "late"
        late_dir.mkdir()
        init_witness_state(late_dir / "county.sqlite", qe.ORIGIN, [LOG_VERIFIER.vkey])
        county = Witness(late_dir / "county.sqlite", key(33, "witness.county-audit.qinghe.example/2025", "witness"))
        # The flow's first guess is the last recorded size; the new witness answers 409 with size 0.
        second = checkpoint_and_record(app, LOG_KEY, [*witnesses.flow, county], period="2025-02",
                                       witness_vkeys=[*witnesses.vkeys, county.vkey])
        opened = open_checkpoint(second, LOG_VERIFIER, [*witnesses.verifiers, CosignatureV1Verifier.from_vkey(county.vkey)])
        assert opened.cosigner_names == (TOWNSHIP, COMMITTEE, county.name)
        assert [status for status, _ in county.refusals()] == [409]
        assert county.state(qe.ORIGIN).size == opened.checkpoint.size
        assert open_checkpoint(first, LOG_VERIFIER).checkpoint.size < opened.checkpoint.size
    finally:
        app.close()


def test_a_witness_that_saw_a_larger_tree_exposes_truncation(small, tmp_path):
    size = small.recorder.log_size()
    # What a witness would hold had the log once been larger: a signed checkpoint of more entries than now exist.
    published = sign_note(Checkpoint(qe.ORIGIN, size + 5, bytes(32)).text,
                          [Ed25519Signer(qe.ORIGIN, LOG_KEY.private_key)])
    init_witness_state(tmp_path / "w.sqlite", qe.ORIGIN, [LOG_VERIFIER.vkey], published)
    witness = Witness(tmp_path / "w.sqlite", key(34, TOWNSHIP, "witness"))
    with pytest.raises(CheckpointFlowError) as caught:
        checkpoint_and_record(small, LOG_KEY, [witness])
    assert str(caught.value) == (
        f"见证方 {TOWNSHIP} 已见证 {size + 5} 条, 账簿只有 {size} 条: 日志可能被截断 / witness {TOWNSHIP} has cosigned "
        f"size {size + 5} but the log has only {size} entries: the log was truncated or rolled back"
    )
    assert recorded_checkpoints(small) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quorum_decides_whether_an_absent_witness_blocks_the_checkpoint(small, witnesses):
    absent = HTTPWitness(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(CheckpointFlowError, match=r"only 2 of 3 witnesses cosigned .* \(quorum 3\); nothing recorded"):
        checkpoint_and_record(small, LOG_KEY, [*witnesses.flow, absent])
    assert recorded_checkpoints(small) == []
    note = checkpoint_and_record(small, LOG_KEY, [*witnesses.flow, absent], quorum=2, witness_vkeys=witnesses.vkeys)
    assert open_checkpoint(note, LOG_VERIFIER, witnesses.verifiers).cosigner_names == (TOWNSHIP, COMMITTEE)
    assert [c.note for c in recorded_checkpoints(small)] == [note]


def test_demo_checkpoints_seal_every_closed_month(tmp_path, signer):
    app = new_ledger(str(tmp_path / "demo.sqlite"), signer)
    try:
        import_journal(app, JOURNAL)
        closes = closed_periods(app)
        log_key = generate_key_file(qe.ORIGIN, "log", tmp_path / "unused.key", "pw")
        with pytest.raises(Rejected, match="is not a registered, unrevoked log key"):
            demo_checkpoints(app, tmp_path / "out", log_key, "pw")
        result = demo_checkpoints(app, tmp_path / "out", LOG_KEY, "pw")
        verifiers = [CosignatureV1Verifier.from_vkey(v) for v in result.witness_vkeys]
        assert list(result.notes) == MONTHS
        for (period, size), c in zip(closes, recorded_checkpoints(app)):
            opened = open_checkpoint(c.note, LOG_VERIFIER, verifiers)
            assert (c.period, opened.checkpoint.size, len(opened.cosignatures)) == (period, size, 2)
            assert opened.checkpoint.root_hash == tree_root(app, size)
            assert (result.notes_dir / f"{period}.note").read_text("utf-8") == c.note
        assert verify_source(str(tmp_path / "demo.sqlite")).intact
    finally:
        app.close()


@pytest.mark.parametrize("recent_entries", [1, 40, 1024])
def test_a_month_s_checkpoint_is_found_near_the_log_end_or_by_topic(tmp_path, signer, monkeypatch, recent_entries):
    # Sealed in bulk, the months' checkpoints all follow December's close: with a short look-back only the last
    # months' closes are among the newest entries, and the earlier ones are found by topic.
    monkeypatch.setattr("ledger.checkpoints._RECENT_ENTRIES", recent_entries)
    app = new_ledger(str(tmp_path / "bulk.sqlite"), signer)
    try:
        import_journal(app, JOURNAL)
        assert [cosigned_checkpoint_for_period(app, m) for m in MONTHS] == [None] * 12
        notes = demo_checkpoints(app, tmp_path / "out", LOG_KEY, "pw").notes
        assert {m: cosigned_checkpoint_for_period(app, m) for m in MONTHS} == notes
        assert [cosigned_checkpoint_for_period(app, m) for m in ("2024-12", "2026-01")] == [None, None]
    finally:
        app.close()


def test_an_open_month_has_no_checkpoint_and_a_closed_one_only_its_own(small):
    note = close_month_checkpoint(small, LOG_KEY, [], "2025-02")
    assert [cosigned_checkpoint_for_period(small, m) for m in ("2025-01", "2025-02", "2025-03")] == [None, note, None]


def test_cli_checkpoint_and_offline_witness(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_KEY_PASSPHRASE", "pw")
    origin = "qinghe.example/ledger"
    paths = {name: tmp_path / f"{name}.key" for name in ("clerk", "log", "committee")}
    generate_key_file(origin + "/signer/clerk", "signer", paths["clerk"], "pw")
    log = generate_key_file(origin, "log", paths["log"], "pw")
    committee = generate_key_file(COMMITTEE, "witness", paths["committee"], "pw")
    ledger, state = str(tmp_path / "l.sqlite"), str(tmp_path / "committee.sqlite")
    assert main(["init", ledger, "--origin", origin, "--name", "清河村", "--chart", "2023",
                 "--key", str(paths["clerk"]), "--log-key", str(paths["log"])]) == EXIT_OK
    assert main(["import", ledger, str(JOURNAL), "--key", str(paths["clerk"])]) == EXIT_OK
    assert main(["witness", "init", "--state", state, "--log-vkey", log.vkey(), "--origin", origin]) == EXIT_OK
    capsys.readouterr()

    assert main(["checkpoint", ledger, "--key", str(paths["log"]), "--signer-key", str(paths["clerk"]),
                 "--witness-key", str(paths["committee"]), "--witness-state", state, "--period", "2025-12"]) == EXIT_OK
    note = capsys.readouterr().out
    opened = open_checkpoint(note, Ed25519Verifier(origin, log.public_key), [CosignatureV1Verifier.from_vkey(committee.vkey())])
    assert opened.cosigner_names == (COMMITTEE,)

    # Offline by hand: the committee cosigns the next checkpoint from a note file and a proof file.
    app = LedgerApplication(ledger)
    old, new = opened.checkpoint.size, app.recorder.log_size()
    next_note = sign_note(Checkpoint(origin, new, tree_root(app, new)).text,
                          [Ed25519Signer(origin, log.private_key)])
    (tmp_path / "cp.note").write_text(next_note, "utf-8")
    (tmp_path / "proof.txt").write_text("".join(base64.b64encode(h).decode() + "\n" for h in log_consistency_proof(app, old, new)))
    app.close()
    args = ["witness", "cosign", "--state", state, "--key", str(paths["committee"]), "--proof-file", str(tmp_path / "proof.txt"),
            str(tmp_path / "cp.note")]
    assert main([*args, "--old", "0"]) == EXIT_FINDING
    assert capsys.readouterr().err == (
        f"见证拒绝 / witness refused (409): old size 0 is not the size {old} this witness last cosigned for {origin!r}; "
        f"retry with --old {old}\n"
    )
    assert main([*args, "--old", str(old)]) == EXIT_OK
    line = capsys.readouterr().out
    assert line.startswith(f"— {COMMITTEE} ")
    assert open_checkpoint(next_note + line, Ed25519Verifier(origin, log.public_key),
                           [CosignatureV1Verifier.from_vkey(committee.vkey())]).cosigner_names == (COMMITTEE,)


def test_a_cosignature_that_does_not_verify_is_refused_before_recording(small, tmp_path):
    init_witness_state(tmp_path / "w.sqlite", qe.ORIGIN, [LOG_VERIFIER.vkey])
    honest = Witness(tmp_path / "w.sqlite", key(35, TOWNSHIP, "witness"))

    class Garbling:
        """Passes the request on, then damages the signature bytes of the answer (a faulty or hostile witness)."""

        name = "garbling"

        def add_checkpoint(self, note, old_size, proof):
            line = honest.add_checkpoint(note, old_size, proof)
            blob = bytearray(base64.b64decode(line.rsplit(" ", 1)[1]))
            blob[-1] ^= 1
            return f"{line.rsplit(' ', 1)[0]} {base64.b64encode(bytes(blob)).decode()}\n"

    with pytest.raises(CheckpointFlowError) as caught:
        checkpoint_and_record(small, LOG_KEY, [Garbling()], witness_vkeys=[honest.vkey])
    kid = honest.vkey.split("+")[1]
    assert str(caught.value) == (
        f"a witness returned a cosignature that does not verify: signature by {TOWNSHIP!r} (key ID {kid}) does not verify"
    )
    assert recorded_checkpoints(small) == []

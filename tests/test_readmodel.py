"""Read models: tracked, batched, idempotent, crash-safe, and a rebuild equals any incremental history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect

import qinghe_expected as qe
from conftest import FIXTURES, POSTGRES_URL, _drop_schema, _postgres_schema_url, make_signer
from ledger.domain.aggregates import Voucher
from ledger.domain.journal import journal_record_adapter
from ledger.projections import readmodel
from ledger.projections.readmodel import (
    LedgerProjection,
    ReadModel,
    ReadModelError,
    _fen,
    _json_approvals,
    _json_strings,
    rebuild_read_model,
    update_read_model,
)
from ledger.store.application import LedgerApplication
from test_qinghe_import import load_qinghe

RECORDS = [journal_record_adapter.validate_json(line) for line in (FIXTURES / "qinghe_2025.jsonl").read_text("utf-8").splitlines()]


@pytest.fixture(autouse=True, params=["compiled", "python"])
def projection_loop(request, monkeypatch):
    """Every test runs with the C loop that projects posted vouchers (ledger/projections/_rows.c) and with the
    Python handlers alone, as where no compiler built it."""
    if request.param == "compiled" and readmodel.compiled_rows is None:
        pytest.skip("ledger/projections/_rows.c is not built here (setup.py)")
    if request.param == "python":
        monkeypatch.setattr(readmodel, "compiled_rows", None)
    return request.param


def _failing_after(monkeypatch, notification_id: int, act, *, in_workers: bool = False) -> None:
    """The projection calls act(notification) on each event after `notification_id` that its Python handlers take
    (with the C loop, any event but a posted voucher); with in_workers, only in a forked worker process."""
    original = LedgerProjection.process
    parent = os.getpid()

    def patched(self, notification, *args):
        if notification > notification_id and (not in_workers or os.getpid() != parent):
            act(notification)
        return original(self, notification, *args)

    monkeypatch.setattr(LedgerProjection, "process", patched)


@pytest.fixture
def qinghe(ledger_location, signer):
    app = load_qinghe(ledger_location, signer, "2023")
    yield app
    app.close()


def fresh_dump(app: LedgerApplication, location: str) -> dict:
    model = ReadModel(location)
    rebuild_read_model(app, model)
    try:
        return model.dump()
    finally:
        model.close()


def test_incremental_rerun_and_rebuild_agree(qinghe, tmp_path):
    model = ReadModel(qinghe.location)
    first = update_read_model(qinghe, model, batch=40)
    assert (first.start, first.batches) == (0, 4)
    assert first.events == 145
    rerun = update_read_model(qinghe, model)
    assert (rerun.start, rerun.end, rerun.events) == (first.end, first.end, 0)
    incremental = model.dump()
    assert len(incremental["rm_voucher"]) == 73  # 72 vouchers and the opening balances
    assert len(incremental["rm_voucher_line"]) == 163
    assert incremental == fresh_dump(qinghe, str(tmp_path / "separate.sqlite"))
    rebuild_read_model(qinghe, model, batch=7)
    assert model.dump() == incremental
    model.close()


def test_absent_values_are_stored_as_null(qinghe, tmp_path):
    """On SQLite the rows carry 0 for an absent reference and the INSERT turns it into NULL."""
    model = ReadModel(str(tmp_path / "rm.sqlite"))
    update_read_model(qinghe, model)
    with model.engine.connect() as conn:
        def count(sql: str) -> int:
            return conn.exec_driver_sql(sql).scalar_one()

        # The counts the read model held before absent values were bound as 0.
        assert count("SELECT count(*) FROM rm_voucher WHERE decision IS NULL AND reverses IS NULL") == 70
        assert count("SELECT count(*) FROM rm_voucher WHERE counterparty IS NULL") == 65
        assert count("SELECT count(*) FROM rm_voucher WHERE contract IS NULL") == 68
        assert count("SELECT count(*) FROM rm_voucher WHERE reversed_by IS NOT NULL") == 1
        assert count("SELECT count(*) FROM rm_voucher_line WHERE fund IS NULL") == 131
        for column in ("reverses", "reversed_by", "decision", "contract", "counterparty"):
            assert count(f"SELECT count(*) FROM rm_voucher WHERE typeof({column}) = 'integer'") == 0
        assert count("SELECT count(*) FROM rm_voucher_line WHERE typeof(fund) = 'integer'") == 0
    model.close()


def test_read_model_of_another_ledger_is_refused(qinghe, tmp_path):
    location = str(tmp_path / "rm.sqlite")
    model = ReadModel(location)
    update_read_model(qinghe, model)
    other = LedgerApplication(str(tmp_path / "other.sqlite"), signer=make_signer())
    other.create_ledger(origin="ledger.other.example/village/330100000001/v1", name="别村", chart="2023")
    with pytest.raises(ReadModelError, match="holds the books of qinghe.example/ledger, not ledger.other.example"):
        update_read_model(other, model)
    model.close()


def test_failure_inside_a_batch_leaves_the_previous_batch_and_rerun_completes(qinghe, tmp_path, monkeypatch):
    model = ReadModel(str(tmp_path / "rm.sqlite"))

    failed_at = []

    def disk_full(notification: int) -> None:
        failed_at.append(notification)
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        _failing_after(patch, 170, disk_full)
        with pytest.raises(RuntimeError, match="disk full"):
            update_read_model(qinghe, model, batch=30)
    position = model.max_tracking_id(LedgerProjection.name)
    half = model.dump()
    # Only whole batches were kept: every voucher row belongs to a notification at or below the position.
    assert 0 < position < failed_at[0]
    assert all(row[2] <= position for row in half["rm_voucher"])
    update_read_model(qinghe, model, batch=30)
    assert model.dump() == fresh_dump(qinghe, str(tmp_path / "fresh.sqlite"))
    model.close()


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from ledger.projections import readmodel
from ledger.projections.readmodel import LedgerProjection, ReadModel, update_read_model
from ledger.store.application import LedgerApplication
if {python_only!r}:
    readmodel.compiled_rows = None
original = LedgerProjection.process
def dying(self, notification_id, *args):
    if notification_id > 200:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, notification_id, *args)
LedgerProjection.process = dying
app = LedgerApplication({ledger!r})
update_read_model(app, ReadModel({model!r}), batch=20)
"""


def test_killed_mid_run_then_rerun_gives_identical_read_model(qinghe, tmp_path, projection_loop):
    model_location = str(tmp_path / "killed.sqlite")
    script = KILL_SCRIPT.format(
        tests=str(Path(__file__).parent), ledger=qinghe.location, model=model_location,
        python_only=projection_loop == "python",
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    model = ReadModel(model_location)
    assert 0 < model.max_tracking_id(LedgerProjection.name) < 341
    update_read_model(qinghe, model)
    assert model.dump() == fresh_dump(qinghe, str(tmp_path / "fresh.sqlite"))
    model.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(1, 40), st.booleans(), st.integers(1, 60)), min_size=1, max_size=6))
def test_any_interleaving_of_appends_and_runs_equals_a_full_rebuild(tmp_path_factory, plan):
    directory = tmp_path_factory.mktemp("interleave")
    app = LedgerApplication(str(directory / "ledger.sqlite"), signer=make_signer())
    app.create_ledger(origin=qe.ORIGIN, name="清河村", chart="2023")
    model = ReadModel(app.location)
    appended = 0
    for count, run, batch in plan:
        for record in RECORDS[appended:appended + count]:
            app.execute(record)
        appended = min(appended + count, len(RECORDS))
        if run:
            update_read_model(app, model, batch=batch)
    update_read_model(app, model, batch=13)
    assert model.dump() == fresh_dump(app, str(directory / "rebuilt.sqlite"))
    model.close()
    app.close()


@pytest.fixture
def ranges_of_16(monkeypatch):
    """Every run is cut into ranges of 16 notifications: reversals, depreciations and decision steps then often
    refer to an aggregate another process projects."""
    monkeypatch.setattr(readmodel, "PARALLEL_FROM_EVENTS", 1)
    monkeypatch.setattr(readmodel, "RANGE_SPAN", 16)


@pytest.mark.parametrize("jobs", [2, 3])
def test_ranges_projected_by_several_processes_give_the_same_rows(qinghe, tmp_path, ranges_of_16, jobs):
    expected = fresh_dump(qinghe, str(tmp_path / "one.sqlite"))
    model = ReadModel(str(tmp_path / "parallel.sqlite"))
    run = rebuild_read_model(qinghe, model, jobs=jobs)
    last = qinghe.recorder.max_notification_id()
    last_projected = qinghe.recorder.select_event_rows(1, 1000, readmodel.TOPICS)[-1][0]
    parallel = qinghe.location.endswith(".sqlite")  # PostgreSQL ledgers are read by this process alone
    # Ranges account for every notification; batches end at the last projected event.
    assert (run.start, run.end, run.events) == (0, last if parallel else last_projected, 145)
    assert run.batches == (-(-last // 16) if parallel else 1)
    assert model.max_tracking_id(LedgerProjection.name) == run.end
    assert model.dump() == expected
    assert len(expected["rm_voucher"]) == 73 and len(expected["rm_asset_depreciation"]) > 0
    assert len(expected["rm_decision_step"]) > 0 and any(row[8] for row in expected["rm_voucher"])  # a reversal
    model.close()


def test_a_parallel_rebuild_empties_what_the_read_model_held(qinghe, tmp_path, ranges_of_16):
    """The read model is emptied while the worker processes start: none of the rows it held survive, none of the
    new ones are lost."""
    model = ReadModel(str(tmp_path / "rm.sqlite"))
    update_read_model(qinghe, model, batch=40)
    with model.transaction() as conn:  # a row no event gives: only the emptying removes it
        conn.exec_driver_sql("INSERT INTO rm_resource VALUES ('R-STALE', 'land', 'stale', '1', 'nowhere', NULL)")
    run = rebuild_read_model(qinghe, model, jobs=2)
    assert (run.start, run.events) == (0, 145)
    assert model.max_tracking_id(LedgerProjection.name) == run.end
    assert model.dump() == fresh_dump(qinghe, str(tmp_path / "fresh.sqlite"))
    model.close()


@pytest.fixture
def qinghe_sqlite(tmp_path, signer):
    app = load_qinghe(str(tmp_path / "ledger.sqlite"), signer, "2023")
    yield app
    app.close()


def test_updates_reach_the_rows_they_change_from_another_range(qinghe_sqlite, tmp_path, ranges_of_16):
    """A reversal mark, a period close and an asset disposal update rows by their primary key; in ranges of 16 the
    row is written by another range than the update (the disposal is hundreds of notifications after the asset)."""
    disposal = {"type": "asset_disposed", "id": "qh-dispose-fa-001", "asset_no": "FA-001", "date": "2026-01-10",
                "method": "scrap"}
    assert qinghe_sqlite.execute(journal_record_adapter.validate_python(disposal)) == "applied"
    model = ReadModel(str(tmp_path / "rm.sqlite"))
    rebuild_read_model(qinghe_sqlite, model, jobs=2)
    rows = model.dump()
    assert rows == fresh_dump(qinghe_sqlite, str(tmp_path / "one.sqlite"))
    assert [(r[0], r[10], r[11]) for r in rows["rm_asset"]] == [("FA-001", date(2026, 1, 10), "scrap"), ("FA-002", None, None)]
    assert [(r[0], r[9]) for r in rows["rm_voucher"] if r[9]] == [("记-202506-001", "记-202507-002")]
    assert [r[2] for r in rows["rm_period"]] == [date(2025, month + 1, 1) - timedelta(days=1) for month in range(1, 12)] + [
        date(2025, 12, 31)]
    model.close()


def test_an_index_retired_by_this_version_is_dropped_when_the_read_model_opens(ledger_location):
    def indexes(model: ReadModel) -> dict[str, str | None]:
        """Name → condition of each index of rm_voucher (None for an index of every row)."""
        reflected = inspect(model.engine).get_indexes("rm_voucher", schema=model.schema)
        return {
            index["name"]: next(
                (str(where).strip("()") for option, where in index["dialect_options"].items() if option.endswith("_where")),
                None,
            )
            for index in reflected
        }

    model = ReadModel(ledger_location)
    prefix = f'"{model.schema}".' if model.schema else ""
    with model.engine.begin() as conn:  # as earlier versions created them (not through the shared table metadata)
        conn.exec_driver_sql(f"CREATE INDEX ix_rm_voucher_aggregate_id ON {prefix}rm_voucher (aggregate_id)")
        conn.exec_driver_sql(f"DROP INDEX {prefix}ix_rm_voucher_decided")
        conn.exec_driver_sql(f"CREATE INDEX ix_rm_voucher_decision ON {prefix}rm_voucher (decision)")
    assert set(indexes(model)) == {"ix_rm_voucher_period", "ix_rm_voucher_aggregate_id", "ix_rm_voucher_decision"}
    model.close()
    model = ReadModel(ledger_location)
    assert indexes(model) == {"ix_rm_voucher_period": None, "ix_rm_voucher_decided": "decision IS NOT NULL"}
    model.close()


def test_a_failing_worker_stops_the_run_at_a_whole_range_and_a_rerun_completes(
    qinghe_sqlite, tmp_path, ranges_of_16, monkeypatch, projection_loop
):
    model = ReadModel(str(tmp_path / "rm.sqlite"))

    def disk_full(notification: int) -> None:
        raise RuntimeError("disk full in a worker")

    with monkeypatch.context() as patch:
        _failing_after(patch, 200, disk_full, in_workers=True)
        with pytest.raises(RuntimeError, match="disk full in a worker"):
            rebuild_read_model(qinghe_sqlite, model, jobs=2)
    # The first event after 200 that a Python handler takes (the C loop takes posted vouchers).
    taken = tuple(topic for topic in readmodel.TOPICS if projection_loop == "python" or topic != Voucher.Posted.TOPIC)
    first_failing = next(row[0] for row in qinghe_sqlite.recorder.select_event_rows(201, 100, taken))
    position = model.max_tracking_id(LedgerProjection.name)
    assert position % 16 == 0 and position < first_failing  # whole ranges only, none from the failed one on
    assert all(row[2] <= position for row in model.dump()["rm_voucher"])
    update_read_model(qinghe_sqlite, model, jobs=2)
    assert model.dump() == fresh_dump(qinghe_sqlite, str(tmp_path / "fresh.sqlite"))
    model.close()


def test_a_worker_that_dies_is_reported(qinghe_sqlite, tmp_path, ranges_of_16, monkeypatch):
    model = ReadModel(str(tmp_path / "rm.sqlite"))
    _failing_after(monkeypatch, 0, lambda notification: os._exit(3), in_workers=True)
    with pytest.raises(ReadModelError, match="a read-model worker process ended with exit code 3"):
        rebuild_read_model(qinghe_sqlite, model, jobs=2)
    model.close()


def test_a_process_running_other_threads_projects_alone(qinghe_sqlite, tmp_path, ranges_of_16):
    import threading

    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        model = ReadModel(str(tmp_path / "rm.sqlite"))
        run = rebuild_read_model(qinghe_sqlite, model, batch=2000, jobs=2)
    finally:
        release.set()
        other.join()
    assert run.batches == 1  # one batch of projected events: no ranges, no forked process
    assert model.dump() == fresh_dump(qinghe_sqlite, str(tmp_path / "fresh.sqlite"))
    model.close()


@pytest.mark.postgres
def test_workers_send_rows_unpacked_to_a_postgresql_read_model(qinghe_sqlite, tmp_path, ranges_of_16):
    if not POSTGRES_URL:
        pytest.skip("LEDGER_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_schema_url()
    try:
        model = ReadModel(url)
        assert not model.packs_rows
        run = rebuild_read_model(qinghe_sqlite, model, jobs=2)
        assert run.batches == -(-qinghe_sqlite.recorder.max_notification_id() // 16)
        assert model.dump() == fresh_dump(qinghe_sqlite, str(tmp_path / "fresh.sqlite"))
        model.close()
    finally:
        _drop_schema(schema)


def test_a_reversal_of_an_unknown_voucher_is_refused(qinghe, tmp_path):
    projection = LedgerProjection(qinghe)
    posted = qinghe.recorder.select_event_rows(1, 1000, (readmodel.Voucher.Reversed.TOPIC,))[0]
    state = json.loads(posted[4])
    state["reverses"] = "记-209901-001"
    with pytest.raises(ReadModelError, match=f"notification {posted[0]}: .* reverses unknown voucher 记-209901-001"):
        projection.process(*posted[:4], json.dumps(state).encode())


def test_a_reversal_mark_names_a_voucher_of_the_same_take_without_a_read(qinghe, tmp_path, monkeypatch):
    """The voucher a mark reverses is read from the ledger only when it was not projected since the last take."""
    rows = qinghe.recorder.select_event_rows(1, 1000, readmodel.TOPICS)
    mark = next(row for row in rows if row[3] == Voucher.MarkedReversed.TOPIC)
    original = next(row for row in rows if row[1] == mark[1] and row[2] == 1)
    model = ReadModel(str(tmp_path / "rm.sqlite"))
    projection = LedgerProjection(qinghe, model.absent, model)
    update = [("记-202507-002", "记-202506-001")]
    with monkeypatch.context() as patched:
        patched.setattr(LedgerProjection, "_first_event", lambda *args: pytest.fail("the ledger was read"))
        projection.process_rows([original, mark])
        assert projection.take(end=mark[0]).updates == {("rm_voucher", ("reversed_by",)): update}
    projection.process_rows([mark])
    assert projection.take(end=mark[0]).updates == {("rm_voucher", ("reversed_by",)): update}
    model.close()


def test_stored_amounts_become_fen_and_a_malformed_one_is_refused():
    assert [_fen(a) for a in ("0.00", "2316.16", "-0.50", "-12.30", "100000000.01")] == [0, 231616, -50, -1230, 10000000001]
    with pytest.raises(ReadModelError, match="'1.5' does not have two decimals"):
        _fen("1.5")


# Stored states have sorted keys; the column has always held the approvals in the Approval model's field order.
@given(st.lists(st.text()), st.lists(st.fixed_dictionaries({"date": st.text(), "person": st.text(), "role": st.text()})))
def test_json_columns_keep_the_text_json_dumps_gives(strings, approvals):
    assert _json_strings(strings) == json.dumps(strings, ensure_ascii=False)
    expected = json.dumps(
        [{"role": a["role"], "person": a["person"], "date": a["date"]} for a in approvals], ensure_ascii=False
    )
    known: dict = {}
    assert _json_approvals(approvals, known) == expected
    assert len(known) == len({(a["role"], a["person"], a["date"]) for a in approvals})
    assert _json_approvals(approvals, known) == expected  # from the texts kept the first time


@pytest.mark.parametrize("text", ['{"a": 1}', ' {"a": 1}', '{"a": 1} ', '{"a":1}\n'])
def test_a_stored_state_decodes_as_json_loads_does(text):
    assert readmodel._state(readmodel.Voucher.MarkedReversed, text.encode()) == {"a": 1}


@pytest.mark.parametrize("text", ['{"a": 1}{"b": 2}', '{"a": 1', ''])
def test_a_malformed_stored_state_is_refused_as_json_loads_refuses_it(text):
    with pytest.raises(json.JSONDecodeError) as loaded:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as stored:
        readmodel._state(readmodel.Voucher.MarkedReversed, text.encode())
    assert str(stored.value) == str(loaded.value)

"""The C loop that projects posted vouchers (ledger/projections/_rows.c) gives the rows, sums and errors the Python
handlers give: for the books this library writes, and for stored states it never writes (escapes, odd amounts, wrong
types, repeated or missing fields, other JSON layouts), which the loop must hand to Python rather than read."""

from __future__ import annotations

import json
import os
import sqlite3
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.aggregates import Voucher
from ledger.projections import readmodel
from ledger.projections.readmodel import LedgerProjection, ReadModel, rebuild_read_model
from test_qinghe_import import load_qinghe

needs_compiled = pytest.mark.skipif(readmodel.compiled_rows is None, reason="ledger/projections/_rows.c is not built")
AGGREGATE_ID = "00000000-0000-4000-8000-000000000001"


def test_the_loop_is_built_where_it_is_required():
    """CI sets LEDGER_REQUIRE_COMPILED_ROWS: a missing compiler or SQLite header must fail the run there, not turn
    every test of the loop into a skip."""
    if os.environ.get("LEDGER_REQUIRE_COMPILED_ROWS"):
        assert readmodel.compiled_rows is not None, "ledger/projections/_rows.c was not built (setup.py)"


def projected(model: ReadModel, rows: list[tuple], *, compiled: bool) -> tuple:
    """What one projection makes of `rows`: its error, or its packed tables, sums, references and count."""
    with mock.patch.object(readmodel, "compiled_rows", readmodel.compiled_rows if compiled else None):
        projection = LedgerProjection(None, model.absent, model)
        try:
            projection.process_rows(rows)
            references = dict(projection._references)
            writes = projection.take(end=rows[-1][0])
        except Exception as error:  # compared with the other projection's
            return type(error), str(error)
    image = sqlite3.connect(":memory:")
    try:
        image.deserialize(writes.image)
        tables = {
            name: sorted(map(repr, image.execute(f'SELECT * FROM "{name}"'))) for name in writes.packed
        }
    finally:
        image.close()
    return (
        {name: rows for name, rows in tables.items() if rows}, dict(writes.funds), dict(writes.categories),
        dict(writes.updates), sorted(map(repr, references.items())), writes.events,
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    model = ReadModel(str(tmp_path_factory.mktemp("compiled") / "rm.sqlite"))
    yield model
    model.close()


@needs_compiled
def test_the_books_of_a_village_give_the_same_read_model_both_ways(tmp_path, signer):
    app = load_qinghe(str(tmp_path / "ledger.sqlite"), signer, "2023")
    dumps = []
    for compiled in (True, False):
        with mock.patch.object(readmodel, "compiled_rows", readmodel.compiled_rows if compiled else None):
            model = ReadModel(str(tmp_path / f"rm-{compiled}.sqlite"))
            run = rebuild_read_model(app, model, batch=50)
            dumps.append((run.events, model.dump()))
            model.close()
    app.close()
    assert dumps[0] == dumps[1]
    assert dumps[0][0] == 145 and len(dumps[0][1]["rm_voucher_line"]) == 163


REAL_STATE = {
    "approvals": [{"date": "2021-01-02", "person": "任二", "role": "报账员"},
                  {"date": "2021-01-02", "person": "侯庆丰", "role": "村委会主任"}],
    "asset": None, "attachments": ["发票", "报销单"], "chart": "2023", "closing": False, "contract": "HT-2021-003",
    "counterparty": "镇供销社门市部", "date": "2021-01-02", "decision": None,
    "lines": [{"code": "513", "credit": "0.00", "debit": "400.83", "detail": "党建活动"},
              {"code": "101", "credit": "400.83", "debit": "0.00", "detail": ""}],
    "summary": "党建活动经费", "tags": [], "timestamp": "2026-12-07T04:54:34.776047Z", "voucher_no": "记-202101-003",
}


@needs_compiled
def test_a_state_as_this_library_writes_it_is_read_by_the_loop(model):
    state = json.dumps(REAL_STATE, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    rows = [(7, AGGREGATE_ID, 1, Voucher.Posted.TOPIC, state)]
    handed_over = []
    original = LedgerProjection.process
    with mock.patch.object(LedgerProjection, "process", lambda self, *row: handed_over.append(row) or original(self, *row)):
        compiled = projected(model, rows, compiled=True)
    assert handed_over == []
    assert compiled == projected(model, rows, compiled=False)
    tables, funds, categories, _, references, events = compiled
    assert tables["rm_voucher_line"] == [
        "('记-202101-003', 1, '2021-01-02', '2023', 'voucher', '513', '513', '党建活动', 40083, 0, None)",
        "('记-202101-003', 2, '2021-01-02', '2023', 'voucher', '101', '101', '', 0, 40083, 'cash')",
    ]
    assert funds == {("2021-01", "cash"): [0, 0, 40083, 0, 0]}
    assert categories == {("2021-01", "expense", "513"): 40083}
    assert references == [repr(("记-202101-003", (None, "HT-2021-003", "镇供销社门市部")))]
    assert events == 1


# -- generated states ---------------------------------------------------------------------------------------------

CODES = {  # accounts of each chart, with fund (101, 102) and claim (112, 201, 241, ...) accounts among them
    "2023": ["101", "102", "112", "113", "201", "241", "3220101", "50104", "511", "513"],
    "2004": ["101", "102", "112", "13101", "202", "241", "3220104", "50105", "51101", "561"],
}
# Text as villages write it, and text with what JSON escapes (quotes, backslashes, control characters).
plain_texts = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'), max_size=8)
escaped_texts = st.text(max_size=8) | st.sampled_from(['a"b', "a\\b", "\n", "\x00", "\x7f", "\u2028", "é"])
valid_amounts = st.decimals(min_value=-10**7, max_value=10**7, places=2).map(lambda amount: f"{amount:.2f}")


@st.composite
def valid_states(draw, texts=plain_texts) -> dict:
    """A Voucher.Posted state as the domain records it, in either chart."""
    chart = draw(st.sampled_from(sorted(CODES)))
    line = st.fixed_dictionaries(
        {"code": st.sampled_from(CODES[chart]), "credit": valid_amounts, "debit": valid_amounts, "detail": texts}
    )
    return draw(st.fixed_dictionaries({
        "approvals": st.lists(st.fixed_dictionaries({"date": texts, "person": texts, "role": texts}), max_size=3),
        "asset": st.none() | texts,
        "attachments": st.lists(texts, max_size=2),
        "chart": st.just(chart),
        "closing": st.booleans(),
        "contract": st.none() | texts,
        "counterparty": st.none() | texts,
        "date": st.dates().map(str),
        "decision": st.none() | texts,
        "lines": st.lists(line, max_size=5),
        "summary": texts,
        "tags": st.lists(texts, max_size=2),
        "timestamp": st.just("2026-12-07T04:54:34.776047Z"),
        "voucher_no": st.sampled_from(["记-202101-001", "记-202101-002"]) | texts,
    }))


def written(state: dict) -> bytes:
    """A state's bytes as this library stores them (ledger/domain/model.py)."""
    return json.dumps(state, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def rows_of(states: list[bytes]) -> list[tuple]:
    return [(n, AGGREGATE_ID, 1, Voucher.Posted.TOPIC, state) for n, state in enumerate(states, start=1)]


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(valid_states(), min_size=1, max_size=4))
def test_states_as_this_library_writes_them_are_all_read_by_the_loop(model, states):
    rows = rows_of(list(map(written, states)))
    handed_over = []
    original = LedgerProjection.process
    with mock.patch.object(LedgerProjection, "process", lambda self, *row: handed_over.append(row) or original(self, *row)):
        compiled = projected(model, rows, compiled=True)
    assert handed_over == []
    assert not isinstance(compiled[0], type), compiled  # no error
    assert compiled == projected(model, rows, compiled=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | escaped_texts,
    lambda children: st.lists(children, max_size=2) | st.dictionaries(escaped_texts, children, max_size=2),
    max_leaves=4,
)
odd_amounts = st.sampled_from([
    "0.00", "-0.00", ".50", "-.50", "1.5", "12", "+1.00", " 1.00", "1_0.00", "١.٠٠", "1.5.00", "", "-",
    "999999999999999.99", "9999999999999999.99", "--1.00", "1.00 ",
]) | st.text(alphabet="0123456789.-+ _e", max_size=7)


@st.composite
def odd_states(draw) -> dict:
    """A state with text JSON escapes, or with something the handler does not expect: a field dropped, of another
    type, an extra or version field, an unknown chart or account, an odd amount, a line or approval of another
    shape, a lone surrogate (which UTF-8 cannot hold)."""
    state = draw(valid_states(texts=plain_texts | escaped_texts))
    change = draw(st.sampled_from([
        "none", "drop", "retype", "extra", "version", "chart", "code", "amount", "line", "approval", "surrogate",
    ]))
    keys = sorted(state)
    if change == "drop":
        del state[draw(st.sampled_from(keys))]
    elif change == "retype":
        state[draw(st.sampled_from(keys))] = draw(json_values)
    elif change == "extra":
        state[draw(escaped_texts)] = draw(json_values)
    elif change == "version":
        state["_v"] = draw(st.sampled_from([1, 2, "1"]))
    elif change == "chart":
        state["chart"] = draw(st.sampled_from(["2004", "2023", "1999", ""]))
    elif state["lines"] and change in ("code", "amount", "line"):
        line = state["lines"][draw(st.integers(0, len(state["lines"]) - 1))]
        if change == "code":
            line["code"] = draw(st.sampled_from(["999", "", "1", "13101", "513"]))
        elif change == "amount":
            line[draw(st.sampled_from(["debit", "credit"]))] = draw(odd_amounts)
        else:
            line[draw(st.sampled_from(["code", "credit", "debit", "detail", "other"]))] = draw(json_values)
    elif change == "approval" and state["approvals"]:
        state["approvals"][0] = draw(json_values | st.just({"date": "x", "person": "y"}))
    elif change == "surrogate":
        state[draw(st.sampled_from(["summary", "counterparty", "tags"]))] = draw(st.sampled_from(["\ud800", ["a\udfff"]]))
    return state


@st.composite
def stored(draw) -> bytes:
    """An odd state's bytes in one of the layouts JSON allows (key order, separators, escapes of non-ASCII, space),
    with a field repeated, or not JSON at all."""
    state = draw(odd_states())
    text = json.dumps(
        state, ensure_ascii=draw(st.booleans()), sort_keys=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " :")])),
    )
    layout = draw(st.sampled_from(["as is", "repeated", "spaced", "cut", "trailing"]))
    if layout == "repeated" and text.endswith("}") and len(text) > 2:
        field = draw(st.sampled_from(["summary", "lines", "closing", "date", "code"]))
        text = text[:-1] + f', "{field}": ' + json.dumps(draw(json_values)) + "}"
    elif layout == "spaced":
        text = f" \n{text}\t "
    elif layout == "cut":
        text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    elif layout == "trailing":
        text += draw(st.sampled_from(["x", "{}", ","]))
    return text.encode("utf-8", "surrogatepass")


@needs_compiled
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(stored() | valid_states().map(written), min_size=1, max_size=3))
def test_odd_states_give_the_same_rows_or_error_both_ways(model, states):
    rows = rows_of(states)
    assert projected(model, rows, compiled=True) == projected(model, rows, compiled=False)

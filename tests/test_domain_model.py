"""Event base types: explicit topics, class-version upcasting, typed snapshots."""

from __future__ import annotations

import datetime as dt
import json
from copy import deepcopy
from decimal import Decimal
from typing import ClassVar
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES, ORIGIN
from ledger.domain.aggregates import Ledger, Voucher
from ledger.domain.model import Aggregate, Event, class_for_topic, load_state, register_aggregate
from ledger.importer import import_journal
from ledger.store.application import LedgerApplication


@register_aggregate("test/Meter")
class Meter(Aggregate):
    reading: Decimal = Decimal("0.00")
    unit: str = ""

    class Read(Event):
        """Version 2 added the unit; version-1 records are upcast on the way in."""

        TOPIC: ClassVar[str] = "test/Meter/Read"
        CLASS_VERSION: ClassVar[int] = 2
        reading: Decimal
        unit: str

        @classmethod
        def upcast_v1_v2(cls, state: dict) -> dict:
            return {**state, "unit": "kWh"}

        def apply(self, meter: "Meter") -> None:
            meter.reading, meter.unit = self.reading, self.unit


def test_stored_state_carries_the_class_version_and_old_records_are_upcast():
    meter = Meter.create(uuid4(), Meter.Read, reading=Decimal("12.50"), unit="kWh")
    [event] = meter.collect_events()
    state = json.loads(event.to_state())
    assert state["_v"] == 2 and "originator_id" not in state
    version_1 = json.dumps({"reading": "7.25", "timestamp": state["timestamp"]}).encode()
    old = Meter.Read.from_state(event.originator_id, 1, version_1)
    assert (old.reading, old.unit) == (Decimal("7.25"), "kWh")


def test_topics_are_explicit_and_unique():
    assert class_for_topic("ledger/Voucher/Posted") is Voucher.Posted
    with pytest.raises(TypeError, match="claimed by"):
        class Clash(Event):
            TOPIC: ClassVar[str] = "ledger/Voucher/Posted"


def test_snapshots_are_typed_and_rebuild_the_same_aggregate(tmp_path, signer):
    app = LedgerApplication(str(tmp_path / "q.sqlite"), signer=signer)
    app.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    assert import_journal(app, FIXTURES / "qinghe_2025.jsonl").ok
    period_id = app.id_of("period", "2025-12")
    app.take_snapshot(period_id)
    [snapshot] = app.snapshots.get(period_id)
    assert snapshot.aggregate_topic == "ledger/Period"
    fresh = LedgerApplication(str(tmp_path / "q.sqlite"))
    from_snapshot = fresh.repository.get(period_id)
    from_events = _replay(fresh.events.get(period_id))
    assert from_snapshot.model_dump() == from_events.model_dump()
    assert from_snapshot.voucher_nos[-1] == "记-202512-013" and from_snapshot.closed
    app.close()
    fresh.close()


def _replay(events):
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def test_an_asset_is_read_from_its_snapshot_of_the_year(ledger_location, signer):
    """An asset gains an event a month for its whole life: its every 12th version is snapshotted, so that reading
    it replays at most 11 events however many years it has been depreciated."""
    app = LedgerApplication(ledger_location, signer=signer)
    app.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    assert import_journal(app, FIXTURES / "qinghe_2025.jsonl").ok
    asset_id = app.id_of("asset", "FA-001")
    [snapshot] = app.snapshots.get(asset_id)
    assert (snapshot.aggregate_topic, snapshot.originator_version) == ("ledger/Asset", 12)
    fresh = LedgerApplication(ledger_location)
    decoded = []
    to_domain_event = fresh.mapper.to_domain_event

    def counting(stored):
        decoded.append(stored.topic)
        return to_domain_event(stored)

    fresh.mapper.to_domain_event = counting
    asset = fresh.repository.get(asset_id)
    assert decoded == ["ledger/Snapshot", "ledger/Asset/Depreciated"]  # version 13: the snapshot at 12, one event
    assert asset.version == 13 and asset.model_dump() == _replay(fresh.events.get(asset_id)).model_dump()
    app.close()
    fresh.close()


def test_a_copy_of_an_aggregate_shares_only_what_cannot_change(tmp_path, signer):
    """The repository cache hands commands copies of the Ledger: whatever a command does to its copy, the cached
    aggregate stays as it was; frozen models (policies, posting lines, keys, officials) are shared, not copied."""
    app = LedgerApplication(str(tmp_path / "q.sqlite"), signer=signer)
    app.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    assert import_journal(app, FIXTURES / "qinghe_2025.jsonl").ok
    original = app.repository.get(app.ledger().id, deepcopy_from_cache=False)
    before = original.model_dump()
    copied = deepcopy(original)
    assert copied == original and copied.model_dump() == before
    assert copied.policies is not original.policies and copied.policies[0] is original.policies[0]
    assert copied.opening_lines is not original.opening_lines and copied.opening_lines[0] is original.opening_lines[0]
    assert copied.keys[0] is original.keys[0] and copied.officials is not original.officials

    serving = next(o for o in copied.officials.values() if o.departed is None)
    assert serving is original.officials[serving.official_id]
    copied.trigger(Ledger.OfficialDeparted, official_id=serving.official_id, departed=dt.date(2026, 1, 5),
                   handover_date=dt.date(2026, 1, 15))
    copied.trigger(Ledger.KeyRevoked, name=copied.keys[0].name, key_id=copied.keys[0].key_id, reason="test")
    copied.trigger(Ledger.OpeningBalancesRecorded, date=dt.date(2026, 1, 1), lines=[])
    [year] = copied.distribution_plans
    copied.distribution_plans[year]["shares"] += 1
    copied.trigger(Ledger.DistributionPlanAdopted, year=year + 1, adopted=dt.date(2026, 3, 1), reserve_rate="0.10",
                   per_share="1.00", shares=1)
    assert original.model_dump() == before and not original.has_pending()
    assert copied.model_dump() != before and len(copied.collect_events()) == 4
    app.close()


# Stored states as the store writes them, and bytes it never writes: load_state must give json.loads's result or error.
ODD_STATES = [
    b'{"a":1}', b'{"\xe6\xb8\x85":"\xe6\xb2\xb3"}', b' {"a":1}', b'{"a":1} ', b'{"a":1}\n', b'\xef\xbb\xbf{"a":1}',
    '{"a":1}'.encode("utf-16"), b'{"a":1}{"b":2}', b'{"a":', b"", b"\xff{}", b'"\\ud800"', b"[1,2]x", b"NaN",
    # Refused by pydantic-core's parser, whatever json.loads makes of them: surrogates as UTF-8 bytes, nesting
    # deeper than 200, more digits than int() takes, a trailing comma, a raw control character, a leading zero.
    b'"\xed\xa0\x80"', b"[" * 300 + b"]" * 300, b"1" * 4301, b"[1,]", b'"a\x01b"', b"01",
    # Accepted by both: the last of duplicate keys, numbers beyond a float's range, negative zero, a float's extremes.
    b'{"a":1,"a":2}', b"1e400", b"-1e400", b"-0", b"-0.0", b"2.2250738585072011e-308", b"1.7976931348623157e308",
]


@pytest.mark.parametrize("state", ODD_STATES, ids=range(len(ODD_STATES)))
def test_load_state_gives_what_json_loads_gives(state):
    try:
        expected = json.loads(state)
    except (ValueError, UnicodeDecodeError) as exc:
        with pytest.raises(type(exc)) as raised:
            load_state(state)
        assert str(raised.value) == str(exc)
    else:
        assert repr(load_state(state)) == repr(expected)  # repr: NaN is never equal to itself


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@given(json_values, st.sampled_from([{}, {"separators": (",", ":")}, {"indent": 1}]), st.booleans())
def test_load_state_of_any_json_is_json_loads(value, layout, ascii_only):
    state = json.dumps(value, ensure_ascii=ascii_only, **layout).encode()
    assert repr(load_state(state)) == repr(json.loads(state)) == repr(value)  # repr: NaN, and -0.0 against 0.0

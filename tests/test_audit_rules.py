"""Rules R01–R15 on small ledgers built for the case, S7's two variants in both modes (strict refuses, the default
records and flags), and the policy model: ladders, the policy file, selection by date, v1 upcasting."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from ledger.domain.aggregates import Ledger
from ledger.domain.journal import journal_record_adapter
from ledger.domain.policy import (
    EXAMPLE_POLICY,
    Policy,
    PolicyFileError,
    load_policy_file,
    seed_ladder,
)
from ledger.projections import audit as a
from ledger.store.application import BatchRejected, LedgerApplication

ORIGIN = "rules.example/v1"
SIGNED = [
    {"role": "报账员", "person": "王会计", "date": "2025-05-18"},
    {"role": "村委会主任", "person": "刘书记", "date": "2025-05-18"},
    {"role": "民主理财小组", "person": "李某", "date": "2025-05-18"},
]


def record(record_type: str, rid: str, **fields) -> dict:
    return {"type": record_type, "id": rid, **fields}


def voucher(no: str, day: str, lines: list[tuple[str, str, str, str]], **fields) -> dict:
    """lines: (account, detail, debit, credit) with '' for the unused side."""
    out = []
    for account, detail, debit, credit in lines:
        line = {"account": account, "detail": detail}
        line.update({"debit": debit} if debit else {"credit": credit})
        out.append(line)
    fields.setdefault("approvals", SIGNED)
    fields.setdefault("attachments", ["发票"])
    return record("voucher", f"v-{no}", voucher_no=no, date=day, summary=fields.pop("summary", "支付"), lines=out, **fields)


BASE = [
    record("official", "o-liu", official_id="liu", name="刘书记", roles=["支部书记"], term_start="2025-01-01",
           term_end="2025-12-31"),
    record("fund", "f-cash", fund_id="cash", kind="cash", name="现金", account="101", opened="2025-01-01"),
    record("fund", "f-bank", fund_id="bank", kind="bank", name="基本户", account="102", opened="2025-01-01"),
    record("opening_balances", "open", date="2025-01-01", lines=[
        {"account": "101", "debit": "1200.00"}, {"account": "102", "debit": "186000.00"},
        {"account": "301", "credit": "187200.00"},
    ]),
]
DITCH_DECISION = [
    record("decision", "d3", decision_id="D-3", title="沟渠清淤", matter="public_works", amount="6800.00"),
    record("decision_step", "d3-before", decision_id="D-3", step="extended_meeting", date="2025-05-15", body="两委扩大会议"),
]
DITCH_AFTER = record("decision_step", "d3-after", decision_id="D-3", step="extended_meeting", date="2025-05-20",
                     body="两委扩大会议")
WITHDRAWAL = voucher("记-202505-001", "2025-05-18", [("101", "", "7000.00", ""), ("102", "", "", "7000.00")],
                     attachments=["现金支票存根"])


def ditch(**fields) -> dict:
    return voucher("记-202505-002", "2025-05-18", [("514", "沟渠清淤", "6800.00", ""), ("101", "", "", "6800.00")],
                   attachments=["领款签字表(8人)"], **fields)


def ledger(tmp_path, signer, records: list[dict], *, policy: Policy = EXAMPLE_POLICY) -> LedgerApplication:
    app = LedgerApplication(str(tmp_path / "l.sqlite"), signer=signer)
    app.create_ledger(origin=ORIGIN, name="测试村", chart="2023", policy=policy)
    app.execute_batch([journal_record_adapter.validate_python(r) for r in [*BASE, *records]])
    return app


def run(app, rule, official: str = "liu") -> list[tuple[str, str, str]]:
    inp = a.read_audit_input(app)
    return [(f.check, f.severity, f.object) for f in rule(inp, a.tenure_scope(inp, official))]


def messages(app, rule, official: str = "liu") -> list[str]:
    inp = a.read_audit_input(app)
    return [f.message_en for f in rule(inp, a.tenure_scope(inp, official))]


STRICT = EXAMPLE_POLICY.model_copy(update={"strict": True})


# -- S7 in both modes -----------------------------------------------------------------------------------------------


def test_s7_record_present_is_accepted_in_strict_mode(tmp_path, signer):
    app = ledger(tmp_path, signer, [*DITCH_DECISION, WITHDRAWAL, ditch(decision="D-3"), DITCH_AFTER], policy=STRICT)
    assert [v.voucher_no for v in app.vouchers_of("2025-05")] == ["记-202505-001", "记-202505-002"]
    # Recorded, yet still flagged: strict mode checks governance, the audit also checks cash rules.
    assert run(app, a.r04_large_cash) == [("cash_payment", "HIGH", "记-202505-002"), ("withdrawal", "MEDIUM", "记-202505-001")]
    app.close()


def test_s7_record_missing_is_refused_in_strict_mode_naming_the_step(tmp_path, signer):
    with pytest.raises(BatchRejected) as refused:
        ledger(tmp_path, signer, [WITHDRAWAL, ditch()], policy=STRICT)
    assert refused.value.index == len(BASE) + 1
    assert str(refused.value) == (
        "decision: payment 6800.00 is a general matter (一般事项, 2000.00 ≤ amount < 20000.01) under the policy of 2025-01-01: "
        "no decision is referenced; it needs 事前两委扩大会(extended_meeting) / "
        "extended joint committee meeting (extended_meeting) before the commitment"
    )


def test_strict_mode_refuses_a_payment_lacking_an_approval(tmp_path, signer):
    with pytest.raises(BatchRejected, match="missing approval by 民主理财小组$"):
        ledger(tmp_path, signer, [*DITCH_DECISION, WITHDRAWAL, ditch(decision="D-3", approvals=SIGNED[:2])], policy=STRICT)


def test_strict_mode_refuses_a_step_dated_after_the_payment(tmp_path, signer):
    late = [DITCH_DECISION[0], {**DITCH_DECISION[1], "date": "2025-05-19"}]
    with pytest.raises(BatchRejected, match=r"decision D-3 lacks 事前两委扩大会"):
        ledger(tmp_path, signer, [*late, WITHDRAWAL, ditch(decision="D-3")], policy=STRICT)


def test_s7_record_missing_is_recorded_and_flagged_by_default(tmp_path, signer):
    app = ledger(tmp_path, signer, [WITHDRAWAL, ditch()])
    assert [v.voucher_no for v in app.vouchers_of("2025-05")] == ["记-202505-001", "记-202505-002"]
    assert messages(app, a.r04_large_cash) == [
        "cash payment 6,800.00 > 1,000.00 per payment", "cash withdrawal 7,000.00 ≥ 5,000.00/day, no township approval"
    ]
    # The general band is enforced by strict mode only; the audit's R06 examines the bands the policy audits.
    assert run(app, a.r06_democratic_procedure) == [("steps", "PASS", "—")]
    assert run(app, a.r05_cash_holding) == [("holding", "PASS", "—")]
    app.close()


def test_township_approval_of_the_withdrawal_clears_the_medium_finding(tmp_path, signer):
    approval = record("township_approval", "ta", approval_id="TA-1", subject="记-202505-001", matter="大额提现",
                      date="2025-05-17", approver="某镇三资中心")
    app = ledger(tmp_path, signer, [approval, WITHDRAWAL, ditch()])
    assert run(app, a.r04_large_cash) == [("cash_payment", "HIGH", "记-202505-002")]
    app.close()


# -- other rules firing ---------------------------------------------------------------------------------------------


def test_r01_payment_without_a_valid_document(tmp_path, signer):
    app = ledger(tmp_path, signer, [voucher("记-202503-001", "2025-03-02", [("513", "招待", "800.00", ""), ("102", "", "", "800.00")],
                                            attachments=["白条"])])
    assert messages(app, a.r01_iou_slips) == [
        "expense paid without invoice, receipt, payroll or contract settlement (attachments: 白条)"
    ]
    app.close()


def test_r02_cash_received_and_spent_the_same_day_and_not_banked(tmp_path, signer):
    app = ledger(tmp_path, signer, [
        voucher("记-202503-001", "2025-03-02", [("101", "", "600.00", ""), ("504", "", "", "600.00")], attachments=["收据"]),
        voucher("记-202503-002", "2025-03-02", [("513", "", "300.00", ""), ("101", "", "", "300.00")]),
    ])
    assert run(app, a.r02_receipts_spent) == [("netting", "HIGH", "记-202503-001"), ("handover", "MEDIUM", "记-202503-001")]
    assert messages(app, a.r02_receipts_spent)[1] == "600.00 of cash 600.00 collected was not banked within 3 days"
    app.close()


def test_r02_cash_banked_in_time_passes(tmp_path, signer):
    app = ledger(tmp_path, signer, [
        voucher("记-202503-001", "2025-03-02", [("101", "", "600.00", ""), ("504", "", "", "600.00")], attachments=["收据"]),
        voucher("记-202503-002", "2025-03-04", [("102", "", "600.00", ""), ("101", "", "", "600.00")]),
    ])
    assert run(app, a.r02_receipts_spent) == [("netting", "PASS", "—")]
    app.close()


def test_r03_money_in_an_unregistered_account(tmp_path, signer):
    app = ledger(tmp_path, signer, [voucher("记-202503-001", "2025-03-02", [("102", "个人卡", "500.00", ""), ("504", "", "", "500.00")])])
    assert messages(app, a.r03_private_deposits) == ["money booked to an unregistered account 102 个人卡"]
    app.close()


def test_r05_cash_above_the_holding_limit_at_end_of_day(tmp_path, signer):
    app = ledger(tmp_path, signer, [WITHDRAWAL])
    assert run(app, a.r05_cash_holding) == [("holding", "MEDIUM", "2025-05-18")]
    assert messages(app, a.r05_cash_holding) == ["cash on hand 8,200.00 at end of day > limit 2,000.00"]
    app.close()


def test_r06_major_payment_without_any_decision(tmp_path, signer):
    app = ledger(tmp_path, signer, [voucher("记-202506-001", "2025-06-28", [("514", "村道", "35000.00", ""), ("102", "", "", "35000.00")])])
    assert messages(app, a.r06_democratic_procedure) == ["major spending 35,000.00 without a democratic-decision record"]
    app.close()


def test_r09_new_borrowing_without_resolution(tmp_path, signer):
    app = ledger(tmp_path, signer, [voucher("记-202503-001", "2025-03-02", [("102", "", "50000.00", ""), ("201", "信用社", "", "50000.00")],
                                            attachments=["借款合同"])])
    assert run(app, a.r09_new_debt) == [("borrowing", "HIGH", "记-202503-001"), ("balance", "MEDIUM", "—")]
    assert messages(app, a.r09_new_debt)[1] == (
        "debt grew in the tenure: borrowings 0.00 → 50,000.00, payables to outsiders 0.00 → 0.00"
    )
    app.close()


def test_r10_guarantee(tmp_path, signer):
    app = ledger(tmp_path, signer, [record("decision", "dg", decision_id="D-G", title="为企业贷款担保", matter="guarantee"),
                                    record("decision_step", "dg1", decision_id="D-G", step="propose", date="2025-04-01", body="支部")])
    assert run(app, a.r10_guarantees) == [("guarantee", "HIGH", "D-G")]
    app.close()


def test_r11_receivable_older_than_the_limit_and_an_unsettled_advance(tmp_path, signer):
    longer = record("official", "o-zhao", official_id="zhao", name="赵主任", roles=["村委会主任"],
                    term_start="2025-01-01", term_end="2026-03-31")
    sale = voucher("记-202501-001", "2025-01-10", [("112", "某公司", "3000.00", ""), ("501", "", "", "3000.00")])
    app = ledger(tmp_path, signer, [longer, sale])
    assert run(app, a.r11_ageing) == [("ageing", "PASS", "112")]  # 11 months at 2025-12-31
    assert messages(app, a.r11_ageing, "zhao") == ["receivable 3,000.00 outstanding 14 months (since 2025-01-10), limit 12"]
    app.close()


def test_r11_advance_to_a_cadre_not_settled(tmp_path, signer):
    advance = voucher("记-202512-001", "2025-12-20", [("113", "刘书记", "2000.00", ""), ("102", "", "", "2000.00")],
                      attachments=["借款单"])
    app = ledger(tmp_path, signer, [advance])
    assert messages(app, a.r11_ageing) == ["advance 2,000.00 to a cadre since 2025-12-20 not settled within 3 days"]
    app.close()


def test_r12_earmarked_money_on_cadre_pay(tmp_path, signer):
    app = ledger(tmp_path, signer, [
        voucher("记-202503-001", "2025-03-01", [("102", "", "9000.00", ""), ("241", "修路专项", "", "9000.00")]),
        voucher("记-202503-002", "2025-03-25", [("241", "修路专项", "3000.00", ""), ("212", "", "", "3000.00")]),
    ])
    assert messages(app, a.r12_earmarked) == ["earmarked money 3,000.00 spent on cadre pay or office costs"]
    app.close()


def test_r14_large_payment_to_a_person_without_contract(tmp_path, signer):
    app = ledger(tmp_path, signer, [voucher("记-202503-001", "2025-03-02", [("514", "", "8000.00", ""), ("102", "", "", "8000.00")],
                                            counterparty="赵某", attachments=["收据"])])
    assert messages(app, a.r14_individual_payments) == [
        "payment 8,000.00 to the individual 赵某 without contract and settlement"
    ]
    app.close()


def test_r07_disposal_without_decision(tmp_path, signer):
    app = ledger(tmp_path, signer, [
        record("asset", "fa", asset_no="FA-9", name="拖拉机", category="机器设备", use="production", cost="30000.00",
               in_service="2020-01-01", life_months=120, depreciation_account="511"),
        record("asset_disposed", "fa-out", asset_no="FA-9", date="2025-04-01", method="sale"),
    ])
    assert run(app, a.r07_asset_loss) == [("disposal", "HIGH", "FA-9")]
    app.close()


# -- policy ---------------------------------------------------------------------------------------------------------


def test_example_policy_is_the_s1_configuration():
    [ladder] = EXAMPLE_POLICY.ladders
    assert [(t.name, t.min, t.max) for t in ladder.tiers] == [
        ("minor", None, Decimal("2000.00")),
        ("general", Decimal("2000.00"), Decimal("20000.01")),
        ("major", Decimal("20000.01"), None),
    ]
    assert [ladder.tier_for(Decimal(x)).name for x in ("1999.99", "2000.00", "20000.00", "20000.01")] == [
        "minor", "general", "general", "major"
    ]
    major = ladder.tiers[2]
    assert (major.steps_before, major.steps_after) == (
        ("propose", "deliberate", "review", "resolve", "publish_resolution"), ("publish_results", "confirm")
    )
    assert (ladder.tiers[1].steps_before, ladder.tiers[1].steps_after) == (("extended_meeting",), ("extended_meeting",))
    assert (ladder.tiers[0].steps_before, ladder.tiers[0].steps_after) == ((), ("confirm",))
    p = EXAMPLE_POLICY
    assert (p.max_cash_payment_per_txn, p.cash_holding_limit, p.cash_withdrawal_township_approval_at) == (
        Decimal("1000.00"), Decimal("2000.00"), Decimal("5000.00")
    )
    assert (p.low_price_ratio_flag, p.disclosure_deadline_day, p.reserve_rate, p.strict) == (
        Decimal("0.80"), 10, Decimal("0.30"), False
    )


def test_a_ladder_must_cover_every_amount_once():
    tiers = [t.model_dump(mode="json") for t in EXAMPLE_POLICY.ladders[0].tiers]
    tiers[1]["max"] = "15000.00"
    with pytest.raises(ValueError, match="tier general ends at 15000.00 but major starts at 20000.01"):
        Policy.model_validate({**EXAMPLE_POLICY.model_dump(mode="json"), "ladders": [{"spending_type": "default", "tiers": tiers}]})


def test_a_separate_ladder_applies_by_matter_or_account():
    works = seed_ladder(Decimal("9999.99"), Decimal("1000.00")).model_copy(
        update={"spending_type": "capital_works", "matters": ("public_works",), "accounts": ("153",)}
    )
    policy = EXAMPLE_POLICY.model_copy(update={"ladders": (*EXAMPLE_POLICY.ladders, works)})
    assert policy.ladder_for("public_works", ["514"]).spending_type == "capital_works"
    assert policy.ladder_for(None, ["153"]).tier_for(Decimal("12000.00")).name == "major"
    assert policy.ladder_for(None, ["513"]).tier_for(Decimal("12000.00")).name == "general"


def _policy_json(effective: str, **changes) -> dict:
    return {**EXAMPLE_POLICY.model_dump(mode="json"), "jurisdiction": "某镇", "effective": effective, **changes}


def test_policy_file_of_dated_policies(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"policies": [
        _policy_json("2026-01-01", max_cash_payment_per_txn="500.00"), _policy_json("2025-01-01"),
    ]}), "utf-8")
    policies = load_policy_file(path)
    assert [(p.effective, p.max_cash_payment_per_txn) for p in policies] == [
        (date(2025, 1, 1), Decimal("1000.00")), (date(2026, 1, 1), Decimal("500.00"))
    ]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{", "not JSON"),
        (json.dumps({"policies": []}), "'policies' must be a non-empty list"),
        (json.dumps({"policies": [_policy_json("2025-01-01"), {**_policy_json("2026-01-01"), "jurisdiction": "别镇"}]}),
         "one file holds one jurisdiction's policies, found 别镇, 某镇"),
        (json.dumps([_policy_json("2025-01-01")]), "policies\\[0\\]"),
        (json.dumps(_policy_json("2025-01-01", max_cash_payment_per_txn=1000.5)),
         "policies\\[0\\]: max_cash_payment_per_txn: Value error, amount must be a decimal string with 2 places, not a float"),
    ],
)
def test_policy_file_errors_name_the_file_and_the_place(tmp_path, content, error):
    path = tmp_path / "bad.json"
    path.write_text(content, "utf-8")
    with pytest.raises(PolicyFileError, match=f"{path.name}.*{error}"):
        load_policy_file(path)


def test_policy_in_force_is_chosen_by_date(tmp_path, signer):
    first = Policy.model_validate(_policy_json("2025-01-01"))
    later = Policy.model_validate(_policy_json("2026-01-01", cash_holding_limit="3000.00"))
    app = LedgerApplication(str(tmp_path / "p.sqlite"), signer=signer)
    app.create_ledger(origin=ORIGIN, name="测试村", chart="2023", policy=first)
    app.adopt_policy(later)
    with pytest.raises(ValueError, match="a policy effective 2026-01-01 is already adopted"):
        app.adopt_policy(later)
    with pytest.raises(ValueError, match="policy is for 'example township"):
        app.adopt_policy(EXAMPLE_POLICY.model_copy(update={"effective": date(2027, 1, 1)}))
    ledger = app.ledger()
    assert [ledger.policy_at(date(y, 6, 1)).cash_holding_limit for y in (2025, 2026)] == [Decimal("2000.00"), Decimal("3000.00")]
    app.close()


def test_version_1_genesis_policy_is_upcast_to_ladders():
    v2 = Ledger.Opened(originator_id=a.UUID(int=1), originator_version=1, timestamp="2025-01-01T00:00:00Z", origin=ORIGIN,
                       name="测试村", chart="2023", policy=EXAMPLE_POLICY,
                       keys=[{"name": "k", "role": "signer", "public_key": "AA==", "key_id": "00"}])
    state = json.loads(v2.to_state())
    assert state["_v"] == 2
    del state["_v"]
    policy = state["policy"]
    del policy["ladders"], policy["strict"], policy["transfer_township_approval_at"]
    state["policy"] = {**policy, "major_matter_threshold": "20000.00", "minor_matter_ceiling": "2000.00"}
    for name in ("cash_handover_days", "advance_settlement_days", "lease_max_years", "individual_payment_contract_at"):
        del state["policy"][name]
    old = Ledger.Opened.from_state(a.UUID(int=1), 1, json.dumps(state).encode())
    assert old.policy == EXAMPLE_POLICY

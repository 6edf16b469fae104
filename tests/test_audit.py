"""Departure audit (SCENARIOS S12) over the Qinghe 2025 books, and the rule cases of S4–S9 that make rules fire.

R13 (disclosure timeliness) reads `ledger/Disclosure/Published` records. The Qinghe journal has none, so the S12
acceptance adds the twelve monthly publications S12 assumes ("published by the 10th (assumed test data)"): each
month published on the 5th of the following month.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date

import pytest
from conftest import FIXTURES

from ledger.cli import EXIT_OK, EXIT_USAGE, main
from ledger.domain.aggregates import Disclosure
from ledger.domain.policy import EXAMPLE_POLICY
from ledger.importer import import_journal
from ledger.projections.audit import (
    audit_official,
    r06_democratic_procedure,
    r08_contract_price,
    r13_disclosure,
    read_audit_input,
    tenure_scope,
)
from ledger.projections.audit_view import write_audit_view
from ledger.store.application import LedgerApplication

ORIGIN = "qinghe.example/audit/v1"

S12_METRICS = [
    ("monetary_funds", "187200.00", "223770.00", "36570.00"),
    ("receivables", "8000.00", "4000.00", "-4000.00"),
    ("payables_outsiders", "12000.00", "0.00", "-12000.00"),
    ("members_payable", "0.00", "14200.00", "14200.00"),
    ("borrowings", "0.00", "0.00", "0.00"),
    ("net_assets", "620000.00", "631170.00", "11170.00"),
]
S12_FINDINGS = [
    (1, "R04", "cash_payment", "HIGH", "记-202505-002", "cash payment 6,800.00 > 1,000.00 per payment"),
    (2, "R04", "withdrawal", "MEDIUM", "记-202505-001", "cash withdrawal 7,000.00 ≥ 5,000.00/day, no township approval"),
    (3, "R08", "low_price", "MEDIUM", "YT-2025-01", "fee 12,000.00 = 75% of reference 16,000.00; explanation required"),
    (4, "R15", "reversal", "INFO", "记-202507-002/003",
     "red reversal of 记-202506-001 (580.00, 科目错误), corrected by 记-202507-003"),
]
# S12 lists R01/R02/R03/R05/R10/R12/R14 as "none detected" and omits R07; R07 is examined and passes too.
S12_PASSES = [
    ("R01", "documents", "—", "none detected (5 expense payments checked)"),
    ("R02", "netting", "—", "none detected (cash receipts banked in time)"),
    ("R03", "accounts", "—", "none detected (books agree with bank and cash)"),
    ("R05", "holding", "—", "none detected (end-of-day cash within the limit)"),
    ("R06", "steps", "记-202506-006 / D-2025-01", "all steps before the contract; results published"),
    ("R07", "assets", "FA-001, FA-002",
     "none detected (no disposal without decision; leased assets under contract, rent booked)"),
    ("R08", "outsider_approval", "YT-2025-01", "31/38 ≥ 2/3 + township approval 2025-03-05"),
    ("R09", "balance", "—", "no new borrowing (borrowings 0.00 → 0.00); payables to outsiders 12,000.00 → 0.00"),
    ("R10", "guarantee", "—", "none detected (no guarantee)"),
    ("R11", "ageing", "113", "4,000.00 aged < 12 months"),
    ("R12", "purpose", "—", "none detected (no misuse of earmarked funds)"),
    ("R13", "monthly", "12 期月度公开 / 12 monthly boards", "published by the 10th"),
    ("R14", "contract", "—", "none detected (no large payment to a person without contract)"),
]
S12_CHECKLIST = [
    ("seals", "count and hand over each seal"),
    ("books", "72 vouchers, 12 closed periods"),
    ("bank_accounts", "1 account(s); balance 222,370.00 per book = statement"),
    ("cash", "cash 1,400.00 counted"),
    ("contracts", "CK-2023-01 顺达物流有限公司 (to 2027-12-31); YT-2025-01 张某 (to 2029-12-31, 2026–2029 schedule 48,000.00)"),
    ("assets", "2 fixed assets, net 417,600.00"),
    ("resources", "ZY-001 鱼塘 20 mu, ZY-002 机动地 50 mu"),
    ("claims_and_debts", "claims: 孙三 2,500.00, 周四 1,500.00; debts: 成员(应付分红) 14,200.00"),
    ("open_exceptions", "#1 R04 记-202505-002; #2 R04 记-202505-001; #3 R08 YT-2025-01"),
    ("decisions", "D-2025-01, D-2025-02; other decision records: D-2025-03"),
    ("disclosures", "12 disclosure snapshots"),
    ("signatures", "signed by the outgoing 刘书记, the incoming official and the supervisor (township centre); three copies"),
]


def load(location: str, signer, journal=FIXTURES / "qinghe_2025.jsonl") -> LedgerApplication:
    app = LedgerApplication(location, signer=signer)
    app.create_ledger(origin=ORIGIN, name="清河村", chart="2023")
    result = import_journal(app, journal)
    assert [str(p) for p in result.problems] == []
    return app


def publish_assumed_disclosures(app: LedgerApplication) -> None:
    """S12's assumed test data: every 2025 month published on the 5th of the next month."""
    for month in range(1, 13):
        period = f"2025-{month:02d}"
        published = date(2025 + (month == 12), month % 12 + 1, 5)
        app.save(Disclosure.create(
            app.id_of("disclosure", period), Disclosure.Published, period=period, published=published,
            sha256=hashlib.sha256(f"assumed {period}".encode()).hexdigest(),
        ))


def edited_journal(tmp_path, edit) -> str:
    """The Qinghe journal with `edit(record) -> record | None` applied (None drops the record)."""
    lines = []
    for line in (FIXTURES / "qinghe_2025.jsonl").read_text("utf-8").splitlines():
        record = edit(json.loads(line))
        if record is not None:
            lines.append(json.dumps(record, ensure_ascii=False))
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_s12_departure_audit_view(ledger_location, signer, tmp_path):
    app = load(ledger_location, signer)
    publish_assumed_disclosures(app)
    paths = write_audit_view(app, "liu", tmp_path / "out")
    assert [p.name for p in paths] == ["audit-liu.html", "audit-liu.json", "audit-liu.csv"]
    view = json.loads(paths[1].read_text("utf-8"))

    assert view["window"] == {"start": "2025-01-01", "end": "2025-12-31", "as_of": "2026-01-10"}
    assert [(m["key"], m["start"], m["end"], m["change"]) for m in view["summary"]["metrics"]] == S12_METRICS
    assert view["summary"]["contracts"] == {"start": ["CK-2023-01"], "end": ["CK-2023-01", "YT-2025-01"], "change": 1}
    assert [(f["no"], f["rule"], f["check"], f["severity"], f["object"], f["message_en"]) for f in view["findings"]] == S12_FINDINGS
    assert view["findings"][0]["message_zh"] == "现金支付 6,800.00 元,超过单笔限额 1,000.00 元"
    assert [(f["rule"], f["check"], f["object"], f["message_en"]) for f in view["passes"]] == S12_PASSES
    assert {f["severity"] for f in view["passes"]} == {"PASS"}
    assert [(c["key"], c["detail_en"]) for c in view["checklist"]] == S12_CHECKLIST

    # Evidence is log positions: each one is the entry of the event the finding names.
    inp = read_audit_input(app)
    by_no = {v.voucher_no: v.seq for v in inp.vouchers}
    assert view["findings"][0]["evidence"] == [by_no["记-202505-002"]]
    assert view["findings"][3]["evidence"] == sorted(by_no[n] for n in ("记-202506-001", "记-202507-002", "记-202507-003"))
    [record] = list(app.recorder.read_log(by_no["记-202505-002"], by_no["记-202505-002"] + 1))
    assert json.loads(record.state)["voucher_no"] == "记-202505-002"

    rows = list(csv.reader(io.StringIO(paths[2].read_text("utf-8"))))
    assert rows[0] == ["no", "rule", "rule_zh", "check", "severity", "object", "evidence_seq", "message_zh", "message_en"]
    assert [r[:6] for r in rows[1:5]] == [
        ["1", "R04", "大额现金支付", "cash_payment", "HIGH", "记-202505-002"],
        ["2", "R04", "大额现金支付", "withdrawal", "MEDIUM", "记-202505-001"],
        ["3", "R08", "低价发包/出租", "low_price", "MEDIUM", "YT-2025-01"],
        ["4", "R15", "凭证更正", "reversal", "INFO", "记-202507-002/003"],
    ]
    assert len(rows) == 1 + 4 + 13 and {r[0] for r in rows[5:]} == {"-"}

    html = paths[0].read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>\n<html lang=\"zh-CN\">")
    assert "离任经济责任审计视图" in html and "监交人" in html and "一式三份" in html
    exceptions = html[html.index("二、异常事项"):html.index("三、已检查")]
    assert exceptions.index("记-202505-002") < exceptions.index("记-202505-001") < exceptions.index("YT-2025-01")
    app.close()


def test_without_disclosure_records_every_month_is_flagged(tmp_path, signer):
    app = load(str(tmp_path / "q.sqlite"), signer)
    inp = read_audit_input(app)
    findings = r13_disclosure(inp, tenure_scope(inp, "liu"))
    assert [(f.severity, f.object) for f in findings] == [("MEDIUM", f"2025-{m:02d}") for m in range(1, 13)]
    assert findings[11].message_en == "2025-12 disclosure not published (deadline 2026-01-10)"
    app.close()


def test_late_disclosure_is_flagged_with_its_entry(tmp_path, signer):
    app = load(str(tmp_path / "q.sqlite"), signer)
    publish_assumed_disclosures(app)
    app.save(Disclosure.create(app.id_of("disclosure", "2025-02-late"), Disclosure.Published, period="2025-02",
                               published=date(2025, 3, 11), sha256="0" * 64))
    inp = read_audit_input(app)
    # The earliest publication counts: February was on time, the later re-publication changes nothing.
    assert [f.severity for f in r13_disclosure(inp, tenure_scope(inp, "liu"))] == ["PASS"]
    app.close()


def test_r06_fires_when_a_step_follows_the_contract(tmp_path, signer):
    def resolve_late(record):
        if record["id"] == "qh-d-2025-01-resolve":
            return {**record, "date": "2025-04-10"}
        return record

    app = load(str(tmp_path / "q.sqlite"), signer, edited_journal(tmp_path, resolve_late))
    inp = read_audit_input(app)
    [finding] = r06_democratic_procedure(inp, tenure_scope(inp, "liu"))
    assert (finding.severity, finding.object) == ("HIGH", "记-202506-006 / D-2025-01")
    assert finding.message_en == (
        "major spending 35,000.00: democratic procedure incomplete: "
        "villagers' (representatives') meeting resolution (resolve) before the commitment"
    )
    app.close()


def test_r06_fires_when_results_are_not_published(tmp_path, signer):
    app = load(str(tmp_path / "q.sqlite"), signer,
               edited_journal(tmp_path, lambda r: None if r["id"] == "qh-d-2025-01-publish_results" else r))
    inp = read_audit_input(app)
    [finding] = r06_democratic_procedure(inp, tenure_scope(inp, "liu"))
    assert finding.message_zh == "重大事项支出 35,000.00 元民主程序不完整: 事后实施结果公开(publish_results)"
    app.close()


def test_r06_fires_when_the_party_meeting_lacked_its_quorum(tmp_path, signer):
    def thin(record):
        if record["id"] == "qh-d-2025-01-review":
            return {**record, "present": 20, "votes_for": 20}
        return record

    app = load(str(tmp_path / "q.sqlite"), signer, edited_journal(tmp_path, thin))
    inp = read_audit_input(app)
    [finding] = r06_democratic_procedure(inp, tenure_scope(inp, "liu"))
    assert finding.message_en == (
        "major spending 35,000.00: democratic procedure incomplete: "
        "review: 20/42 present, fewer than 2/3; review: 20/42 in favour, no majority"
    )
    assert finding.message_zh == (
        "重大事项支出 35,000.00 元民主程序不完整: 党员大会审议出席 20/42 不足2/3; 党员大会审议赞成 20/42 未过半"
    )
    app.close()


def test_r08_outsider_contract_without_township_approval_is_high(tmp_path, signer):
    def no_approval(record):
        if record["id"] == "qh-contract-yt-2025-01":
            return {k: v for k, v in record.items() if k != "township_approval"}
        return record

    app = load(str(tmp_path / "q.sqlite"), signer, edited_journal(tmp_path, no_approval))
    inp = read_audit_input(app)
    findings = r08_contract_price(inp, tenure_scope(inp, "liu"))
    assert [(f.check, f.severity, f.object) for f in findings] == [
        ("low_price", "MEDIUM", "YT-2025-01"), ("outsider_approval", "HIGH", "YT-2025-01")
    ]
    assert findings[1].message_en == "contract to a non-member or lease not in order: no township approval before signing"
    app.close()


def test_unknown_official_is_named(tmp_path, signer):
    app = load(str(tmp_path / "q.sqlite"), signer)
    with pytest.raises(LookupError, match="official 'zhou' is not in ledger qinghe.example/audit/v1"):
        audit_official(read_audit_input(app), "zhou", app.recorder.log_size())
    app.close()


def test_cli_init_with_policy_file_and_strict_then_audit(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_KEY_PASSPHRASE", "test passphrase")
    key = tmp_path / "clerk.key"
    assert main(["keys", "new", ORIGIN + "/signer/clerk", "--role", "signer", "--out", str(key)]) == EXIT_OK
    policy = {**EXAMPLE_POLICY.model_dump(mode="json"), "jurisdiction": "某镇"}
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"policies": [
        {**policy, "effective": "2025-01-01"}, {**policy, "effective": "2026-01-01", "cash_holding_limit": "3000.00"},
    ]}, ensure_ascii=False), "utf-8")
    books = tmp_path / "q.sqlite"
    assert main(["init", str(books), "--origin", ORIGIN, "--name", "清河村", "--chart", "2023",
                 "--policy", str(policy_file), "--strict", "--key", str(key)]) == EXIT_OK
    app = LedgerApplication(str(books))
    ledger = app.ledger()
    assert [(p.effective.isoformat(), p.strict, str(p.cash_holding_limit)) for p in ledger.policies] == [
        ("2025-01-01", True, "2000.00"), ("2026-01-01", True, "3000.00")
    ]
    app.close()
    capsys.readouterr()
    # Strict books take the Qinghe journal up to the utilities payment of 12-20: a general-band payment with no
    # 两委扩大会 on record (S7's ditch has one; the major road works have all their steps).
    assert main(["import", str(books), str(FIXTURES / "qinghe_2025.jsonl"), "--key", str(key)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{FIXTURES / 'qinghe_2025.jsonl'}:101 (id qh-2025-v-202512-001): decision: payment 4200.00 is a general matter "
        "(一般事项, 2000.00 ≤ amount < 20000.01) under the policy of 2025-01-01: no decision is referenced; it needs "
        "事前两委扩大会(extended_meeting) / extended joint committee meeting (extended_meeting) before the commitment"
    )


def test_cli_audit_writes_the_view_and_names_an_unknown_official(tmp_path, signer, capsys):
    books = tmp_path / "q.sqlite"
    load(str(books), signer).close()
    out = tmp_path / "view"
    assert main(["audit", str(books), "--official", "liu", "--out", str(out)]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"已生成审计视图 / audit view written: {out / 'audit-liu.html'}, {out / 'audit-liu.json'}, {out / 'audit-liu.csv'}",
        # Without disclosure records each of the 12 months is a MEDIUM R13 finding (see the S12 test for the rest).
        "异常 16 项, 通过 12 项 / 16 findings (HIGH 1, MEDIUM 14, INFO 1), 12 checks passed",
    ]
    assert json.loads((out / "audit-liu.json").read_text("utf-8"))["official"]["handover_date"] == "2026-01-10"
    assert main(["audit", str(books), "--official", "nobody", "--out", str(out)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"village-ledger: official 'nobody' is not in ledger {ORIGIN} (officials: chen, huang, li, liu, wang)\n"
    )

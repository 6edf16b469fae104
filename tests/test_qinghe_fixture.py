"""The Qinghe village 2025 acceptance journals (../shared/SCENARIOS.md) in the journal import format.

tests/fixtures/qinghe_2025.jsonl (制度2023 codes) and tests/fixtures/qinghe_2025_chart2004.jsonl (制度2004 codes) are
written by tests/fixtures/make_qinghe.py. These tests check the files against the scenario text: every record
validates, ids are unique, the 72 vouchers of Appendix A are there with their numbers, dates, summaries, tags and
amounts, records only refer to earlier records, and the month closes and trial balances agree with S10/S11.
"""

from __future__ import annotations

import importlib.util
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.domain.charts import load_chart
from ledger.domain.journal import journal_record_adapter
from ledger.domain.money import round_money

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FILES = {"2023": FIXTURES / "qinghe_2025.jsonl", "2004": FIXTURES / "qinghe_2025_chart2004.jsonl"}
VERSIONS = sorted(FILES)

VOUCHER_TYPES = ("voucher", "reversal", "depreciation")
TOTAL = Decimal("589852.00")

EXPECTED_COUNTS = {
    "official": 5,
    "fund": 2,
    "asset": 2,
    "contract": 2,
    "opening_balances": 1,
    "resource": 2,
    "decision": 3,
    "decision_step": 12,
    "township_approval": 1,
    "voucher": 47,
    "reversal": 1,
    "depreciation": 24,
    "distribution_plan": 1,
    "period_close": 12,
    "official_departed": 1,
}

# 制度2004 first-level code -> 制度2023 first-level code (DOMAIN.md §1.3) for the accounts this year uses.
TOP_2004_TO_2023 = {
    "101": "101", "102": "102", "113": "113", "151": "151", "152": "152", "202": "211", "211": "212",
    "301": "301", "311": "311", "321": "321", "322": "322", "501": "501", "511": "501", "522": "503",
    "531": "504", "502": "511", "541": "513", "551": "514",
}

# Appendix A of SCENARIOS.md: (voucher_no, date, summary, tag, [(first-level code, debit, credit), ...]).
APPENDIX_A = [
    ('记-202501-001', '2025-01-05', '收到仓库租金(1季度)', '', [('102', '6000.00', None), ('501', None, '6000.00')]),
    ('记-202501-002', '2025-01-15', '收到镇财政拨付村级组织运转经费补助', '', [('102', '60000.00', None), ('503', None, '60000.00')]),
    ('记-202501-003', '2025-01-25', '计提1月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202501-004', '2025-01-25', '银行代发1月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202501-005', '2025-01-28', '计提1月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202501-006', '2025-01-28', '计提1月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202502-001', '2025-02-25', '计提2月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202502-002', '2025-02-25', '银行代发2月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202502-003', '2025-02-28', '计提2月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202502-004', '2025-02-28', '计提2月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202503-001', '2025-03-15', '收到鱼塘承包费(2025年度,合同YT-2025-01)', '', [('102', '12000.00', None), ('501', None, '12000.00')]),
    ('记-202503-002', '2025-03-25', '计提3月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202503-003', '2025-03-25', '银行代发3月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202503-004', '2025-03-28', '计提3月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202503-005', '2025-03-28', '计提3月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202504-001', '2025-04-05', '收到仓库租金(2季度)', '', [('102', '6000.00', None), ('501', None, '6000.00')]),
    ('记-202504-002', '2025-04-20', '收回2024年欠缴土地承包费(王大5000、赵二3000)', '', [('102', '8000.00', None), ('113', None, '8000.00')]),
    ('记-202504-003', '2025-04-25', '计提4月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202504-004', '2025-04-25', '银行代发4月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202504-005', '2025-04-25', '收到2025年机动地承包费(已交户)', '', [('102', '26000.00', None), ('501', None, '26000.00')]),
    ('记-202504-006', '2025-04-28', '计提4月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202504-007', '2025-04-28', '计提4月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202505-001', '2025-05-18', '从银行提取现金', 'CASH_WITHDRAWAL_GE_5000', [('101', '7000.00', None), ('102', None, '7000.00')]),
    ('记-202505-002', '2025-05-18', '现金支付沟渠清淤人工费', 'CASH_PAYMENT_OVER_LIMIT', [('514', '6800.00', None), ('101', None, '6800.00')]),
    ('记-202505-003', '2025-05-25', '计提5月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202505-004', '2025-05-25', '银行代发5月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202505-005', '2025-05-28', '计提5月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202505-006', '2025-05-28', '计提5月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202506-001', '2025-06-12', '购办公用品(误记经营支出)', '', [('511', '580.00', None), ('102', None, '580.00')]),
    ('记-202506-002', '2025-06-25', '计提6月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202506-003', '2025-06-25', '银行代发6月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202506-004', '2025-06-28', '计提6月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202506-005', '2025-06-28', '计提6月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202506-006', '2025-06-28', '支付村道修缮工程款(四议两公开 决议2025-03-12)', 'MAJOR_MATTER_4Y2G', [('514', '35000.00', None), ('102', None, '35000.00')]),
    ('记-202507-001', '2025-07-05', '收到仓库租金(3季度)', '', [('102', '6000.00', None), ('501', None, '6000.00')]),
    ('记-202507-002', '2025-07-08', '红字冲销6月12日凭证(科目错误)', 'RED_REVERSAL', [('511', '-580.00', None), ('102', None, '-580.00')]),
    ('记-202507-003', '2025-07-08', '更正:购办公用品', 'CORRECTION', [('513', '580.00', None), ('102', None, '580.00')]),
    ('记-202507-004', '2025-07-25', '计提7月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202507-005', '2025-07-25', '银行代发7月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202507-006', '2025-07-28', '计提7月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202507-007', '2025-07-28', '计提7月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202508-001', '2025-08-15', '偿还应付工程材料款', '', [('211', '12000.00', None), ('102', None, '12000.00')]),
    ('记-202508-002', '2025-08-25', '计提8月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202508-003', '2025-08-25', '银行代发8月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202508-004', '2025-08-28', '计提8月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202508-005', '2025-08-28', '计提8月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202509-001', '2025-09-25', '计提9月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202509-002', '2025-09-25', '银行代发9月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202509-003', '2025-09-28', '计提9月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202509-004', '2025-09-28', '计提9月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202510-001', '2025-10-05', '收到仓库租金(4季度)', '', [('102', '6000.00', None), ('501', None, '6000.00')]),
    ('记-202510-002', '2025-10-25', '计提10月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202510-003', '2025-10-25', '银行代发10月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202510-004', '2025-10-28', '计提10月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202510-005', '2025-10-28', '计提10月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202511-001', '2025-11-25', '计提11月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202511-002', '2025-11-25', '银行代发11月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202511-003', '2025-11-28', '计提11月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202511-004', '2025-11-28', '计提11月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202512-001', '2025-12-20', '支付村部全年水电网络费', '', [('513', '4200.00', None), ('102', None, '4200.00')]),
    ('记-202512-002', '2025-12-21', '银行存款利息', '', [('102', '1150.00', None), ('504', None, '1150.00')]),
    ('记-202512-003', '2025-12-25', '计提12月村干部报酬(3人)', '', [('513', '3000.00', None), ('212', None, '3000.00')]),
    ('记-202512-004', '2025-12-25', '银行代发12月村干部报酬', '', [('212', '3000.00', None), ('102', None, '3000.00')]),
    ('记-202512-005', '2025-12-28', '计提12月折旧:村部办公楼', '', [('513', '1000.00', None), ('152', None, '1000.00')]),
    ('记-202512-006', '2025-12-28', '计提12月折旧:出租仓库', '', [('511', '600.00', None), ('152', None, '600.00')]),
    ('记-202512-007', '2025-12-31', '年终结算应收未收机动地承包费(孙三2500、周四1500)', '', [('113', '4000.00', None), ('501', None, '4000.00')]),
    ('记-202512-008', '2025-12-31', '结转收入类科目至本年收益', 'CLOSE', [('501', '66000.00', None), ('503', '60000.00', None), ('504', '1150.00', None), ('321', None, '127150.00')]),
    ('记-202512-009', '2025-12-31', '结转支出类科目至本年收益', 'CLOSE', [('321', '101780.00', None), ('511', None, '7200.00'), ('513', None, '52780.00'), ('514', None, '41800.00')]),
    ('记-202512-010', '2025-12-31', '本年收益转入收益分配-未分配收益', 'CLOSE', [('321', '25370.00', None), ('322', None, '25370.00')]),
    ('记-202512-011', '2025-12-31', '按分配方案提取公积公益金(本年收益30%)', 'CLOSE', [('322', '7611.00', None), ('311', None, '7611.00')]),
    ('记-202512-012', '2025-12-31', '按分配方案向成员分配(1420股×10元)', 'CLOSE', [('322', '14200.00', None), ('113', None, '14200.00')]),
    ('记-202512-013', '2025-12-31', '各项分配转入未分配收益', 'CLOSE', [('322', '21811.00', None), ('322', None, '21811.00')]),
]

# S10.1 / S10.2–10.5: 本月结存 split into cash (101) and bank (102) at each month end.
MONTH_END_FUNDS = {
    "2025-01": ("1200.00", "249000.00"),
    "2025-02": ("1200.00", "246000.00"),
    "2025-03": ("1200.00", "255000.00"),
    "2025-04": ("1200.00", "292000.00"),
    "2025-05": ("1400.00", "282000.00"),
    "2025-06": ("1400.00", "243420.00"),
    "2025-07": ("1400.00", "246420.00"),
    "2025-08": ("1400.00", "231420.00"),
    "2025-09": ("1400.00", "228420.00"),
    "2025-10": ("1400.00", "231420.00"),
    "2025-11": ("1400.00", "228420.00"),
    "2025-12": ("1400.00", "222370.00"),
}

# Trial balances of S10.6 and S11 (2023 first-level codes; debit positive, credit negative).
TRIAL_BALANCES = {
    # 2025-03-31
    ("2025-03-31", "记-202503-005"): {
        "101": "1200.00", "102": "255000.00", "113": "8000.00", "151": "624000.00", "152": "-192000.00",
        "211": "-12000.00", "301": "-200000.00", "311": "-400000.00", "322": "-20000.00", "501": "-18000.00",
        "503": "-60000.00", "511": "1800.00", "513": "12000.00",
    },
    # 2025-12-31 before the closing vouchers (i.e. after 记-202512-007)
    ("2025-12-31", "记-202512-007"): {
        "101": "1400.00", "102": "222370.00", "113": "4000.00", "151": "624000.00", "152": "-206400.00",
        "301": "-200000.00", "311": "-400000.00", "322": "-20000.00", "501": "-66000.00", "503": "-60000.00",
        "504": "-1150.00", "511": "7200.00", "513": "52780.00", "514": "41800.00",
    },
    # 2025-12-31 after the close (S11)
    ("2025-12-31", "记-202512-013"): {
        "101": "1400.00", "102": "222370.00", "113": "-10200.00", "151": "624000.00", "152": "-206400.00",
        "301": "-200000.00", "311": "-407611.00", "322": "-23559.00",
    },
}


# -- helpers ------------------------------------------------------------------------------------------------


def read_lines(version: str) -> list[str]:
    return FILES[version].read_text("utf-8").splitlines()


def load(version: str) -> list:
    return [journal_record_adapter.validate_json(line) for line in read_lines(version)]


def load_maker():
    spec = importlib.util.spec_from_file_location("make_qinghe", FIXTURES / "make_qinghe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def to_2023_top(version: str, code: str) -> str:
    top = load_chart(version).top_level(code).code
    return top if version == "2023" else TOP_2004_TO_2023[top]


def voucher_lines(records: list) -> dict[str, list[tuple[str, str, Decimal, Decimal]]]:
    """voucher_no -> the lines (account, detail, debit, credit) each voucher-producing record posts.

    Depreciation: Dr the asset's depreciation account / Cr 152, (cost − residual) / life_months rounded to 分.
    Reversal: the reversed voucher's lines, negated (red ink).
    """
    assets = {r.asset_no: r for r in records if r.type == "asset"}
    out: dict[str, list[tuple[str, str, Decimal, Decimal]]] = {}
    zero = Decimal("0.00")
    for r in records:
        if r.type == "voucher":
            out[r.voucher_no] = [(l.account, l.detail, l.debit or zero, l.credit or zero) for l in r.lines]
        elif r.type == "reversal":
            out[r.voucher_no] = [(a, d, -dr, -cr) for a, d, dr, cr in out[r.reverses]]
        elif r.type == "depreciation":
            asset = assets[r.asset_no]
            monthly = round_money((asset.cost - asset.residual) / asset.life_months)
            out[r.voucher_no] = [
                (asset.depreciation_account, asset.depreciation_detail, monthly, zero),
                ("152", asset.name, zero, monthly),
            ]
    return out


def record_date(r) -> date | None:
    """The date a record happens on, for ordering; None for registers without one."""
    for field in ("date", "signed", "adopted", "departed", "term_start", "in_service"):
        value = getattr(r, field, None)
        if value is not None:
            return value
    return None


def balances(version: str, records: list, until_voucher: str) -> dict[str, Decimal]:
    """Net balance per 2023 first-level code after the opening and the vouchers up to `until_voucher`."""
    lines = voucher_lines(records)
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for r in records:
        if r.type == "opening_balances":
            for l in r.lines:
                totals[to_2023_top(version, l.account)] += (l.debit or 0) - (l.credit or 0)
        elif r.type in VOUCHER_TYPES:
            for account, _, debit, credit in lines[r.voucher_no]:
                totals[to_2023_top(version, account)] += debit - credit
            if r.voucher_no == until_voucher:
                break
    return {code: value for code, value in totals.items() if value}


# -- tests --------------------------------------------------------------------------------------------------


def test_committed_files_are_the_script_output():
    texts = load_maker().journals()
    for version, path in FILES.items():
        assert path.read_text("utf-8") == texts[version], f"{path.name} is stale: run tests/fixtures/make_qinghe.py"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_line_is_a_valid_record(version):
    lines = read_lines(version)
    assert lines
    for number, line in enumerate(lines, 1):
        try:
            journal_record_adapter.validate_json(line)
        except Exception as exc:  # pragma: no cover - the message names the line
            pytest.fail(f"{FILES[version].name}:{number}: {exc}")


@pytest.mark.parametrize("version", VERSIONS)
def test_ids_are_unique(version):
    ids = [r.id for r in load(version)]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]


@pytest.mark.parametrize("version", VERSIONS)
def test_record_counts(version):
    records = load(version)
    assert dict(Counter(r.type for r in records)) == EXPECTED_COUNTS
    assert sum(1 for r in records if r.type in VOUCHER_TYPES) == 72


@pytest.mark.parametrize("version", VERSIONS)
def test_vouchers_match_appendix_a(version):
    records = [r for r in load(version) if r.type in VOUCHER_TYPES]
    assert [(r.voucher_no, r.date.isoformat()) for r in records] == [(no, d) for no, d, *_ in APPENDIX_A]
    for r, (no, _, summary, tag, _) in zip(records, APPENDIX_A):
        assert r.summary == summary, no
        tags = [] if r.type == "depreciation" else list(r.tags)
        assert tags == ([tag] if tag else []), no
        assert r.id == "qh-2025-v-" + no.removeprefix("记-")


@pytest.mark.parametrize("version", VERSIONS)
def test_voucher_amounts_match_appendix_a(version):
    lines = voucher_lines(load(version))
    for no, _, _, _, expected in APPENDIX_A:
        got: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for account, _, debit, credit in lines[no]:
            side = got[to_2023_top(version, account)]
            side[0] += debit
            side[1] += credit
        want: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for code, debit, credit in expected:
            want[code][0] += Decimal(debit or 0)
            want[code][1] += Decimal(credit or 0)
        assert dict(got) == dict(want), no
        assert sum(d for _, _, d, _ in lines[no]) == sum(c for _, _, _, c in lines[no]), f"{no} unbalanced"


@pytest.mark.parametrize("version", VERSIONS)
def test_year_totals(version):
    lines = [line for ls in voucher_lines(load(version)).values() for line in ls]
    assert sum(debit for _, _, debit, _ in lines) == TOTAL
    assert sum(credit for _, _, _, credit in lines) == TOTAL
    appendix = [line for *_, ls in APPENDIX_A for line in ls]
    assert sum(Decimal(d or 0) for _, d, _ in appendix) == TOTAL == sum(Decimal(c or 0) for _, _, c in appendix)


@pytest.mark.parametrize("version", VERSIONS)
def test_depreciation_amounts(version):
    records = load(version)
    assets = {r.asset_no: r for r in records if r.type == "asset"}
    monthly = {no: round_money((a.cost - a.residual) / a.life_months) for no, a in assets.items()}
    assert monthly == {"FA-001": Decimal("1000.00"), "FA-002": Decimal("600.00")}
    expected_account = {"2023": {"FA-001": "513", "FA-002": "511"}, "2004": {"FA-001": "541", "FA-002": "502"}}
    assert {no: a.depreciation_account for no, a in assets.items()} == expected_account[version]
    months = Counter((r.asset_no, r.month) for r in records if r.type == "depreciation")
    assert months == Counter({(a, f"2025-{m:02d}"): 1 for a in assets for m in range(1, 13)})
    for r in records:
        if r.type == "depreciation":
            assert r.date.strftime("%Y-%m") == r.month


@pytest.mark.parametrize("version", VERSIONS)
def test_accounts_are_in_the_chart(version):
    chart = load_chart(version)
    records = load(version)
    for r in records:
        for line in getattr(r, "lines", []):
            assert line.account in chart, (r.id, line.account)
        if r.type == "asset":
            assert r.depreciation_account in chart


@pytest.mark.parametrize("version", VERSIONS)
def test_opening_balances(version):
    (opening,) = [r for r in load(version) if r.type == "opening_balances"]
    assert opening.date == date(2025, 1, 1)
    debit = sum(l.debit or 0 for l in opening.lines)
    credit = sum(l.credit or 0 for l in opening.lines)
    assert debit == credit == Decimal("819200.00")


@pytest.mark.parametrize("version", VERSIONS)
def test_records_refer_only_to_earlier_records(version):
    records = load(version)
    seen: set[tuple[str, str]] = set()
    first_voucher = next(i for i, r in enumerate(records) if r.type in VOUCHER_TYPES)
    opening = next(i for i, r in enumerate(records) if r.type == "opening_balances")
    assert opening < first_voucher
    for r in records:
        refs: list[tuple[str, str | None]] = []
        defines: list[tuple[str, str]] = []
        if r.type == "official":
            defines.append(("official", r.official_id))
        elif r.type == "official_departed":
            refs.append(("official", r.official_id))
        elif r.type == "asset":
            defines.append(("asset", r.asset_no))
            refs.append(("voucher", r.voucher_no))
        elif r.type == "resource":
            defines.append(("resource", r.resource_no))
        elif r.type == "contract":
            defines.append(("contract", r.contract_no))
            refs += [(r.subject_kind, r.subject_no), ("decision", r.decision), ("approval", r.township_approval)]
        elif r.type == "decision":
            defines.append(("decision", r.decision_id))
        elif r.type == "decision_step":
            refs.append(("decision", r.decision_id))
        elif r.type == "township_approval":
            defines.append(("approval", r.approval_id))
        elif r.type == "voucher":
            defines.append(("voucher", r.voucher_no))
            refs += [("decision", r.decision), ("contract", r.contract)]
        elif r.type == "reversal":
            defines.append(("voucher", r.voucher_no))
            refs.append(("voucher", r.reverses))
        elif r.type == "depreciation":
            defines.append(("voucher", r.voucher_no))
            refs.append(("asset", r.asset_no))
        elif r.type == "distribution_plan":
            refs.append(("decision", r.decision))
        for ref in refs:
            if ref[1] is not None:
                assert ref in seen, f"{r.id} refers to {ref} before it is recorded"
        for key in defines:
            assert key not in seen, f"{r.id} redefines {key}"
            seen.add(key)
    assert records[-1].type == "official_departed"


@pytest.mark.parametrize("version", VERSIONS)
def test_records_are_in_date_order_and_months_close_after_their_vouchers(version):
    records = load(version)
    dated = [(record_date(r), r.id) for r in records if record_date(r) is not None]
    assert dated == sorted(dated, key=lambda x: x[0])
    closes = {r.period: i for i, r in enumerate(records) if r.type == "period_close"}
    assert sorted(closes) == [f"2025-{m:02d}" for m in range(1, 13)]
    for i, r in enumerate(records):
        if r.type in VOUCHER_TYPES:
            assert i < closes[f"2025-{r.date.month:02d}"], f"{r.voucher_no} after its month's close"
            if r.date.month > 1:
                assert i > closes[f"2025-{r.date.month - 1:02d}"], f"{r.voucher_no} before the previous month's close"
    for r in records:
        if r.type == "period_close":
            assert r.date.strftime("%Y-%m") == r.period


@pytest.mark.parametrize("version", VERSIONS)
def test_month_closes_match_the_books(version):
    records = load(version)
    lines = voucher_lines(records)
    cash_bank = {"101": Decimal(0), "102": Decimal(0)}
    for r in records:
        if r.type == "opening_balances":
            for l in r.lines:
                if l.account in cash_bank:
                    cash_bank[l.account] += (l.debit or 0) - (l.credit or 0)
        elif r.type in VOUCHER_TYPES:
            for account, _, debit, credit in lines[r.voucher_no]:
                if account in cash_bank:
                    cash_bank[account] += debit - credit
        elif r.type == "period_close":
            expected = tuple(Decimal(x) for x in MONTH_END_FUNDS[r.period])
            assert (r.cash_counted, r.bank_statement) == expected, r.period
            assert (cash_bank["101"], cash_bank["102"]) == expected, r.period


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("at", sorted(TRIAL_BALANCES))
def test_trial_balances(version, at):
    got = balances(version, load(version), at[1])
    assert got == {code: Decimal(v) for code, v in TRIAL_BALANCES[at].items()}


@pytest.mark.parametrize("version", VERSIONS)
def test_year_end_detail_balances_of_113(version):
    records = load(version)
    details: dict[str, Decimal] = defaultdict(lambda: Decimal(0))
    for r in records:
        if r.type == "opening_balances":
            for l in r.lines:
                if l.account == "113":
                    details[l.detail] += (l.debit or 0) - (l.credit or 0)
    for ls in voucher_lines(records).values():
        for account, detail, debit, credit in ls:
            if account == "113":
                details[detail] += debit - credit
    assert {k: v for k, v in details.items() if v} == {
        "孙三": Decimal("2500.00"), "周四": Decimal("1500.00"), "成员(应付分红)": Decimal("-14200.00"),
    }


def test_the_two_charts_differ_only_in_account_codes():
    maker = load_maker()
    a = [r.model_dump() for r in load("2023")]
    b = [r.model_dump() for r in load("2004")]
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        for line in ra.get("lines", []):
            line["account"] = maker.CODE_2004[line["account"]]
        if ra["type"] == "asset":
            ra["depreciation_account"] = maker.CODE_2004[ra["depreciation_account"]]
        assert ra == rb, ra["id"]


@pytest.mark.parametrize("version", VERSIONS)
def test_governance_records(version):
    records = load(version)
    by_id = {r.id: r for r in records}
    steps = defaultdict(dict)
    for r in records:
        if r.type == "decision_step":
            steps[r.decision_id][r.id] = r
    road = {s.step: s for s in steps["D-2025-01"].values()}
    signed = road["contract_signed"].date
    assert signed == date(2025, 4, 8)
    for kind in ("propose", "deliberate", "review", "resolve", "publish_resolution"):
        assert road[kind].date < signed, kind
    assert (road["review"].due, road["review"].present, road["review"].votes_for) == (42, 30, 27)
    assert (road["resolve"].due, road["resolve"].present, road["resolve"].votes_for) == (38, 33, 30)
    assert road["acceptance"].date == date(2025, 6, 20)
    assert road["publish_results"].date == road["confirm"].date == date(2025, 7, 5)
    assert by_id["qh-2025-v-202506-006"].decision == "D-2025-01"

    pond = by_id["qh-contract-yt-2025-01"]
    (vote,) = steps["D-2025-02"].values()
    approval = by_id["qh-ta-2025-01"]
    assert (vote.step, vote.date, vote.due, vote.votes_for) == ("resolve", date(2025, 2, 28), 38, 31)
    assert vote.date < approval.date == date(2025, 3, 5) < pond.signed == date(2025, 3, 8)
    assert not pond.counterparty_is_member and pond.township_approval == approval.approval_id
    assert [(i.due, i.amount) for i in pond.schedule] == [(date(y, 3, 31), Decimal("12000.00")) for y in range(2025, 2030)]
    (pond_resource,) = [r for r in records if r.type == "resource" and r.resource_no == pond.subject_no]
    assert pond.annual_fee / (pond_resource.area_mu * pond_resource.reference_fee_per_mu_year) == Decimal("0.75")
    assert by_id["qh-2025-v-202503-001"].contract == "YT-2025-01"

    lease = by_id["qh-contract-ck-2023-01"]
    assert sum(i.amount for i in lease.schedule) == lease.annual_fee == Decimal("24000.00")
    rents = [r for r in records if r.type == "voucher" and r.contract == "CK-2023-01"]
    assert [(r.date, r.voucher_no) for r in rents] == [(i.due, r.voucher_no) for i, r in zip(lease.schedule, rents)]

    ditch = {s.id: s for s in steps["D-2025-03"].values()}
    payment = by_id["qh-2025-v-202505-002"]
    assert payment.decision == "D-2025-03"
    assert sorted(s.step for s in ditch.values()) == ["extended_meeting", "extended_meeting"]
    assert min(s.date for s in ditch.values()) < payment.date < max(s.date for s in ditch.values())
    assert not [r for r in records if r.type == "township_approval" and r.subject == "记-202505-001"]

    reversal = by_id["qh-2025-v-202507-002"]
    assert (reversal.type, reversal.reverses, reversal.reason) == ("reversal", "记-202506-001", "科目错误")

    plan = by_id["qh-distribution-2025"]
    assert (plan.year, plan.adopted, plan.reserve_rate, plan.per_share, plan.shares) == (
        2025, date(2025, 12, 28), Decimal("0.30"), Decimal("10.00"), 1420)
    ids = [r.id for r in records]
    assert ids.index(plan.id) < ids.index("qh-2025-v-202512-008")

    departed = records[-1]
    assert (departed.official_id, departed.departed, departed.handover_date) == (
        "liu", date(2025, 12, 31), date(2026, 1, 10))
    liu = by_id["qh-official-liu"]
    assert (liu.roles, liu.term_start, liu.term_end) == (["支部书记", "村委会主任"], date(2021, 1, 1), date(2025, 12, 31))

"""A deterministic, realistic demo village: several years of books as journal records.

    from ledger.demo_data import generate_village, write_journal
    write_journal(generate_village(seed=2025, years=5), "village.jsonl")

`generate_village` yields pydantic records of ledger.domain.journal in the order they must be applied. Everything
comes from `random.Random(seed)` (no wall clock, no hash order), so the same arguments give byte-identical output.
The books have the character of SCENARIOS.md (Qinghe village), stretched over several years:

* opening balances (cash, bank, 113 arrears per household, fixed assets with accumulated depreciation, an outside
  payable, capital, reserves, undistributed income, last year's member dividends payable);
* officials: a 一肩挑 party secretary/chair who leaves office half-way (official_departed) and a successor, a report
  clerk, a 民主理财小组 leader;
* fixed assets: office building, a warehouse leased out, a tractor (sold in year 4), a public-welfare asset bought
  in year 2 (voucher + asset record); monthly depreciation records for every asset in service;
* resources (fish pond, reserve land, orchard, forest) and contracts with fee schedules;
* every year: operating subsidy, quarterly warehouse rent, contract-fee receipts (some late, some unpaid and accrued
  to 113 at year end), cadre pay accrual + payment, utilities, public works after a full 四议两公开 decision,
  general-band spending with 两委扩大会 steps, ordinary small receipts and payments (cash and bank, with withdrawals
  and deposits; sometimes over the cash limits), a few red-ink reversals with corrections, bank interest, the
  year-end close of SCENARIOS S11 with a distribution plan, dividends paid the following January;
* a period_close for every month with the counted cash and the bank statement equal to the books.

Amounts are Decimal with two places throughout. `vouchers_per_year` scales the number of ordinary transactions.
"""

from __future__ import annotations

import calendar
import datetime as dt
import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from .domain import journal as j
from .domain.charts import load_chart
from .domain.money import ZERO, round_money

__all__ = ["generate_village", "write_journal", "read_journal", "expand_postings", "CODE_2004"]

D = Decimal
CENT = D("0.01")

# 制度2023 code -> 制度2004 code for every code the generator uses (DOMAIN.md §1.3, tests/fixtures/make_qinghe.py).
CODE_2004 = {
    "154": "153",  # 固定资产清理
    "211": "202",  # 应付款
    "212": "211",  # 应付工资
    "3220102": "3220104",  # 向成员分配 -> 农户分配
    "50102": "50103",  # 出租收入 -> 租赁收入
    "50103": "51101",  # 发包收入 -> 发包及上交收入-承包金
    "50104": "50104",  # 劳务收入 -> 服务收入
    "503": "522",  # 补助收入
    "504": "531",  # 其他收入
    "511": "502",  # 经营支出
    "513": "541",  # 管理费用
    "514": "551",  # 公益支出 -> 其他支出
    "515": "551",  # 其他支出
}

BANK = "农商银行基本户"
DIVIDENDS = "成员(应付分红)"

# priorities within a day: receipts, registers, payments, pay, depreciation, year end, month close
P_EARLY, P_RECEIPT, P_GOV, P_PAY, P_DEPOSIT, P_CADRE, P_DEPR, P_LATE, P_PLAN, P_YEAR_END, P_CLOSE = (
    0, 10, 20, 40, 50, 60, 70, 72, 75, 80, 99)

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
_GIVEN = [
    "建国", "国强", "秀英", "桂兰", "玉兰", "志强", "德明", "春生", "海军", "建华", "卫东", "红梅", "永福", "长根",
    "金宝", "水生", "来福", "凤英", "淑珍", "立新", "树林", "明亮", "玉珍", "德胜", "福贵", "有才", "大", "二",
    "三", "四", "文华", "庆丰", "桂芳", "丽华", "春花", "保国", "富强", "加林", "满仓", "秋菊", "冬梅", "广田",
]
_CONTRACTORS = ["县通达路桥工程有限公司", "镇宏远建筑工程队", "县水利工程有限公司", "市绿源园林工程有限公司",
                "县安居建设工程有限公司", "镇兴业土石方工程队"]
_WORKS = [
    ("村道修缮", "514", "村道修缮"), ("路灯安装", "514", "路灯安装"), ("沟渠硬化", "514", "沟渠硬化"),
    ("文化广场修缮", "514", "文化广场"), ("饮水管网改造", "514", "饮水工程"), ("村庄绿化提升", "514", "绿化"),
    ("河塘清淤整治", "514", "河塘整治"), ("村部屋面维修", "513", "修理费"),
]
_GENERAL = [
    ("购置防汛物资", "515", "防汛物资"), ("村庄环境集中整治", "514", "环境卫生"), ("村部会议室修缮", "513", "修理费"),
    ("更换村内路灯灯具", "514", "路灯维修"), ("垃圾收集点改造", "514", "环境卫生"), ("小型农田水利维修", "514", "农田水利"),
]
_VENDORS = {
    "office": ["县文具办公用品店", "县电脑耗材店", "镇供销社门市部", "镇图文快印店"],
    "hardware": ["镇五金建材店", "镇供销社门市部", "县水电器材商行"],
    "fuel": ["镇加油站", "镇农机维修站"],
    "garden": ["市绿源园林工程有限公司", "镇苗木场"],
    "water": ["县水电器材商行", "县自来水公司"],
    "party": ["镇供销社门市部", "县党性教育基地"],
}

# Ordinary transactions: (summary, code, detail, low yuan, high yuan, mode, weight, needs tractor, counterparty kind)
# mode: cash / bank / either. Over-limit cash payments are only possible for the "either" and "cash" kinds.
_EXPENSES = [
    ("购买办公用品", "513", "办公费", 30, 800, "either", 10, False, "office"),
    ("打印复印费", "513", "办公费", 20, 300, "cash", 4, False, "office"),
    ("报销差旅费", "513", "差旅费", 60, 900, "cash", 6, False, "cadre"),
    ("支付村部电话网络费", "513", "通讯费", 50, 260, "bank", 3, False, "telecom"),
    ("银行结算手续费", "513", "手续费", 2, 30, "bank", 3, False, "bank"),
    ("村部设施小修", "513", "修理费", 100, 3000, "either", 4, False, "hardware"),
    ("党建活动经费", "513", "党建活动", 200, 2500, "either", 3, False, "party"),
    ("支付保洁员劳务费", "514", "环境卫生", 600, 1500, "either", 6, False, "villager"),
    ("慰问困难群众", "514", "困难群众慰问", 200, 1000, "cash", 3, False, "villager"),
    ("绿化养护费", "514", "绿化", 300, 5000, "bank", 3, False, "garden"),
    ("路灯维修", "514", "路灯维修", 200, 1500, "either", 2, False, "hardware"),
    ("农机燃油及维修费", "511", "农机服务", 80, 900, "cash", 4, True, "fuel"),
    ("供水设施维修及消毒药剂", "511", "供水服务", 100, 1200, "either", 3, False, "water"),
    ("购买防汛小型物资", "515", "防汛物资", 200, 1500, "bank", 1, False, "hardware"),
]
_INCOMES = [
    ("收取自来水费", "50104", "供水服务", 200, 3000, "either", 8, False, "group"),
    ("收取农机作业服务费", "50104", "农机作业", 150, 1500, "cash", 5, True, "villager"),
    ("文化礼堂场地使用费", "50102", "文化礼堂", 100, 600, "cash", 2, False, "villager"),
    ("出售废旧物资", "504", "废旧物资", 30, 600, "cash", 1, False, "villager"),
]
_WRONG_ACCOUNT = {"513": "511", "514": "513", "511": "513", "515": "513"}


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


def _ym(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _money(value: int | str | Decimal) -> Decimal:
    return D(value).quantize(CENT)


@dataclass
class _Asset:
    asset_no: str
    name: str
    cost: Decimal
    residual: Decimal
    life: int
    in_service: dt.date
    dep_code: str
    dep_detail: str
    accumulated: Decimal = ZERO
    disposed: dt.date | None = None

    def monthly(self) -> Decimal:
        """As application.monthly_depreciation: straight line, capped at cost less residual."""
        remaining = self.cost - self.residual - self.accumulated
        return min(round_money((self.cost - self.residual) / self.life), remaining)

    def due(self, period: str) -> bool:
        return self.disposed is None and _ym(self.in_service) < period and self.monthly() > ZERO


@dataclass
class _Contract:
    contract_no: str
    resource: str  # detail of the revenue line (鱼塘, 机动地, 果园 …)
    counterparty: str
    member: bool
    revenue_code: str
    due: dict[int, list[tuple[dt.date, Decimal]]] = field(default_factory=dict)  # year -> instalments


class _Village:
    def __init__(self, seed: int, years: int, start_year: int, chart: str, vouchers_per_year: int):
        if chart not in ("2023", "2004"):
            raise ValueError(f"chart must be '2023' or '2004', not {chart!r}")
        if years < 1:
            raise ValueError("years must be at least 1")
        if vouchers_per_year < 0:
            raise ValueError("vouchers_per_year must not be negative")
        self.rng = random.Random(seed)
        self.years, self.start_year, self.chart_version = years, start_year, chart
        self.chart = load_chart(chart)
        self.code_map = CODE_2004 if chart == "2004" else {}
        self.vouchers_per_year = vouchers_per_year
        self.out: list[j.Record] = []
        self.balances: dict[tuple[str, str], Decimal] = {}
        self.cash = ZERO
        self.bank = ZERO
        self.numbers: dict[str, int] = {}
        self.heap: list = []
        self.seq = itertools.count()
        self.ids: dict[str, int] = {}
        self.assets: list[_Asset] = []
        self.asset_by_no: dict[str, _Asset] = {}
        self.contracts: dict[str, _Contract] = {}
        self.decision_count: dict[int, int] = {}
        # unpaid member fees of the year: (113 detail, revenue detail, contract, amount)
        self.pending_accruals: list[tuple[str, str, str, Decimal]] = []
        self.plan: dict | None = None
        self.income_codes = {c for c, a in self.chart.accounts.items() if a.category == "损益"}
        self._make_people()

    # -- people -------------------------------------------------------------------------------------------------

    def _name(self, taken: set[str]) -> str:
        while True:
            name = self.rng.choice(_SURNAMES) + self.rng.choice(_GIVEN)
            if name not in taken:
                taken.add(name)
                return name

    def _make_people(self) -> None:
        rng, taken = self.rng, set()
        self.chair = self._name(taken)
        self.successor = self._name(taken)
        self.clerk = self._name(taken)
        self.finance_lead = self._name(taken)
        self.member2 = self._name(taken)
        self.cadres = [self.chair, self.member2, self._name(taken)]
        self.households = [self._name(taken) for _ in range(rng.randint(5, 7))]  # reserve-land contractors
        self.orchard_holder = self._name(taken)
        self.villagers = [self._name(taken) for _ in range(40)]
        self.pond_lessee = self._name(taken)
        self.township_officer = self._name(taken)
        self.party_members = rng.randint(32, 50)
        self.representatives = rng.randint(30, 45)
        self.shares = rng.randint(1100, 1650)
        self.groups = [f"{n}组" for n in "一二三四五六"[: rng.randint(4, 6)]]

    # -- plumbing -----------------------------------------------------------------------------------------------

    def rid(self, prefix: str) -> str:
        n = self.ids.get(prefix, 0) + 1
        self.ids[prefix] = n
        return f"{prefix}-{n:04d}"

    def emit(self, record: j.Record) -> None:
        self.out.append(record)

    def push(self, day: dt.date, prio: int, fn: Callable, *args) -> None:
        heapq.heappush(self.heap, (day, prio, next(self.seq), fn, args))

    def code(self, code: str) -> str:
        return self.code_map.get(code, code)

    def dr(self, code: str, amount: Decimal, detail: str = "") -> j.Line:
        return j.Line(account=self.code(code), detail=detail, debit=amount)

    def cr(self, code: str, amount: Decimal, detail: str = "") -> j.Line:
        return j.Line(account=self.code(code), detail=detail, credit=amount)

    def apply_lines(self, lines: Iterable[j.Line], sign: int = 1) -> None:
        for line in lines:
            amount = (line.debit or ZERO) - (line.credit or ZERO)
            if sign < 0:
                amount = -amount
            key = (line.account, line.detail)
            self.balances[key] = self.balances.get(key, ZERO) + amount
            if line.account == "101":
                self.cash += amount
            elif line.account == "102":
                self.bank += amount

    def next_no(self, day: dt.date) -> str:
        key = f"{day.year:04d}{day.month:02d}"
        n = self.numbers.get(key, 0) + 1
        self.numbers[key] = n
        return f"记-{key}-{n:03d}"

    def approvals(self, day: dt.date, *, full: bool = True) -> list[j.Approval]:
        people = [j.Approval(role="报账员", person=self.clerk, date=day)]
        if full:
            people.append(j.Approval(role="村委会主任", person=self.current_chair, date=day))
            people.append(j.Approval(role="民主理财小组", person=self.finance_lead, date=day))
        return people

    def post(self, day: dt.date, summary: str, lines: list[j.Line], *, attachments: Iterable[str] = (),
             tags: Iterable[str] = (), full_approval: bool = True, approvals: bool = True, decision: str | None = None,
             contract: str | None = None, counterparty: str | None = None) -> str:
        voucher_no = self.next_no(day)
        self.emit(j.Voucher(
            id=f"v-{voucher_no}", type="voucher", voucher_no=voucher_no, date=day, summary=summary, lines=lines,
            attachments=list(attachments), approvals=self.approvals(day, full=full_approval) if approvals else [],
            tags=list(tags), decision=decision, contract=contract, counterparty=counterparty,
        ))
        self.apply_lines(lines)
        return voucher_no

    def amount(self, low: int, high: int, *, cents: bool = False, step: int = 1) -> Decimal:
        if cents:
            return _money(D(self.rng.randint(low * 100, high * 100)) / 100)
        return _money(self.rng.randint(low // step, high // step) * step)

    def day_in(self, year: int, month: int, low: int = 1, high: int = 27) -> dt.date:
        return dt.date(year, month, self.rng.randint(low, min(high, calendar.monthrange(year, month)[1])))

    def new_decision_id(self, year: int) -> str:
        n = self.decision_count.get(year, 0) + 1
        self.decision_count[year] = n
        return f"D-{year}-{n:02d}"

    # -- cash handling --------------------------------------------------------------------------------------------

    def ensure_cash(self, day: dt.date, needed: Decimal) -> None:
        """Withdraw from the bank when the till cannot cover a cash payment (sometimes a large, unapproved sum)."""
        if self.cash >= needed:
            return
        shortfall = needed - self.cash
        big = self.rng.random() < 0.12
        round_to = 1000
        amount = _money(((int(shortfall) + 1000) // round_to + 1) * round_to)
        if big:
            amount = max(amount, _money(self.rng.choice([5000, 6000, 8000, 10000])))
        tags: list[str] = []
        if amount >= 5000:
            tags.append("CASH_WITHDRAWAL_GE_5000")
            if self.rng.random() < 0.5:
                approval_id = f"TA-{day:%Y%m%d}-{self.rng.randint(1, 99):02d}"
                if approval_id not in self.ids:
                    self.ids[approval_id] = 1
                    self.emit(j.TownshipApproval(
                        id=f"approval-{approval_id}", type="township_approval", approval_id=approval_id,
                        subject=f"记-{day:%Y%m}-{self.numbers.get(f'{day:%Y%m}', 0) + 1:03d}",
                        matter="cash_withdrawal", date=day, approver=f"镇三资中心 {self.township_officer}",
                    ))
        self.post(day, "从银行提取备用金", [self.dr("101", amount), self.cr("102", amount, BANK)],
                  attachments=["现金支票存根"], tags=tags)

    def after_cash_receipt(self, day: dt.date) -> None:
        """Cash above the holding limit is banked, usually the same day, sometimes a few days late."""
        if self.cash <= D("2000.00"):
            return
        delay = 0 if self.rng.random() < 0.8 else self.rng.randint(1, 4)
        last = _month_end(day.year, day.month)
        when = min(day + dt.timedelta(days=delay), last)
        self.push(when, P_DEPOSIT, self.deposit)

    def deposit(self, day: dt.date) -> None:
        keep = _money(self.rng.choice([500, 800, 1000, 1200]))
        amount = _money(int(self.cash - keep) // 100 * 100)
        if amount <= ZERO:
            return
        self.post(day, "现金送存银行", [self.dr("102", amount, BANK), self.cr("101", amount)],
                  attachments=["现金缴款单"], full_approval=False)

    def pay(self, day: dt.date, summary: str, code: str, detail: str, amount: Decimal, *, by_cash: bool,
            counterparty: str | None = None, attachments: Iterable[str] = ("发票",), tags: Iterable[str] = (),
            decision: str | None = None, contract: str | None = None) -> str:
        tags = list(tags)
        if by_cash:
            self.ensure_cash(day, amount)
            if amount > D("1000.00"):
                tags.append("CASH_PAYMENT_OVER_LIMIT")
            credit = self.cr("101", amount)
        else:
            credit = self.cr("102", amount, BANK)
        return self.post(day, summary, [self.dr(code, amount, detail), credit], attachments=attachments, tags=tags,
                         counterparty=counterparty, decision=decision, contract=contract)

    def receive(self, day: dt.date, summary: str, code: str, detail: str, amount: Decimal, *, by_cash: bool,
                counterparty: str | None = None, attachments: Iterable[str] = ("收款收据",),
                contract: str | None = None) -> str:
        debit = self.dr("101", amount) if by_cash else self.dr("102", amount, BANK)
        no = self.post(day, summary, [debit, self.cr(code, amount, detail)], attachments=attachments,
                       full_approval=False, counterparty=counterparty, contract=contract)
        if by_cash:
            self.after_cash_receipt(day)
        return no

    # -- preamble -----------------------------------------------------------------------------------------------

    def preamble(self) -> None:
        rng, y0 = self.rng, self.start_year
        opening = dt.date(y0, 1, 1)
        term_end = dt.date(y0 + 4, 12, 31)  # the 5-year term of the committee elected at the start
        self.current_chair = self.chair
        for official_id, name, roles, start, end in [
            ("O-001", self.chair, ["支部书记", "村委会主任"], opening, term_end),
            ("O-002", self.member2, ["村委委员"], opening, term_end),
            ("O-003", self.clerk, ["报账员"], dt.date(y0 - 3, 3, 1), None),
            ("O-004", self.finance_lead, ["民主理财小组组长"], opening, term_end),
        ]:
            self.emit(j.OfficialAppointed(id=f"official-{official_id}", type="official", official_id=official_id,
                                          name=name, roles=roles, term_start=start, term_end=end))

        # fixed assets brought in at opening
        office_cost = _money(rng.randint(38, 56) * 10000)
        ware_cost = _money(rng.randint(12, 18) * 12000)
        tractor_cost = _money(rng.randint(60, 98) * 1000)
        specs = [
            ("GZ-001", "村部办公楼", "房屋及建筑物", "management", office_cost, ZERO, 480, dt.date(2012, 12, 15), "513", "折旧费"),
            ("GZ-002", "集体仓库", "房屋及建筑物", "leased_out", ware_cost, ZERO, 240, dt.date(2018, 12, 10), "511", "出租资产折旧"),
            ("GZ-003", "拖拉机", "机器设备", "production", tractor_cost, round_money(tractor_cost * D("0.05")), 120,
             dt.date(y0 - 3, 4, 20), "511", "农机折旧"),
        ]
        for no, name, category, use, cost, residual, life, start, dep_code, dep_detail in specs:
            asset = _Asset(no, name, cost, residual, life, start, self.code(dep_code), dep_detail)
            months = (y0 - 1 - start.year) * 12 + (12 - start.month)
            asset.accumulated = min(round_money((cost - residual) / life) * months, cost - residual)
            self.assets.append(asset)
            self.asset_by_no[no] = asset
            self.emit(j.AssetRegistered(
                id=f"asset-{no}", type="asset", asset_no=no, name=name, category=category, use=use, cost=cost,
                in_service=start, life_months=life, residual=residual, depreciation_account=asset.dep_code,
                depreciation_detail=dep_detail, accumulated_depreciation=asset.accumulated,
            ))

        # opening balances
        cash = _money(rng.randint(6, 18) * 100)
        bank = _money(rng.randint(150, 260) * 1000 + rng.randint(0, 99) * 10)
        arrears = []
        for name in self.households[:3]:
            arrears.append((name, _money(rng.randint(3, 10) * 500)))
        self.chronic = self.households[0]  # never pays: 113 ages past 12 months (R11)
        supplier, supplier_amount = "镇五金建材店", _money(rng.randint(6, 15) * 1000)
        retention_party, retention = rng.choice(_CONTRACTORS), _money(rng.randint(15, 40) * 100)
        dividends = _money(self.shares * rng.choice([6, 8, 10]))
        capital = _money(200000)
        undistributed = _money(rng.randint(10, 30) * 1000)
        lines = [self.dr("101", cash), self.dr("102", bank, BANK)]
        lines += [self.dr("113", amount, name) for name, amount in arrears]
        lines += [self.dr("151", a.cost, a.name) for a in self.assets]
        lines += [self.cr("152", a.accumulated, a.name) for a in self.assets]
        lines += [self.cr("211", supplier_amount, supplier), self.cr("211", retention, f"{retention_party}(质保金)"),
                  self.cr("113", dividends, DIVIDENDS), self.cr("301", capital)]
        debit = sum((x.debit for x in lines if x.debit), ZERO)
        credit = sum((x.credit for x in lines if x.credit), ZERO)
        reserves = debit - credit - undistributed
        assert reserves > ZERO
        lines += [self.cr("311", reserves), self.cr("32202", undistributed)]
        self.emit(j.OpeningBalances(id=f"opening-{y0}", type="opening_balances", date=opening, lines=lines))
        self.apply_lines(lines)
        self.payables = [(dt.date(y0, 8, 15), supplier, supplier_amount, "偿还应付材料款"),
                         (dt.date(y0 + 1, 7, 10), f"{retention_party}(质保金)", retention, "支付工程质保金")]

        # resources
        self.resources = {}
        for no, kind, name, area, ref in [
            ("ZY-001", "坑塘水面", "鱼塘", 20, 800),
            ("ZY-002", "耕地", "机动地", rng.randint(40, 60), 600),
            ("ZY-003", "园地", "果园", rng.randint(25, 35), 350),
            ("ZY-004", "林地", "集体林地", rng.randint(150, 260), 40),
        ]:
            self.resources[name] = (no, area, D(ref))
            self.emit(j.ResourceRegistered(id=f"resource-{no}", type="resource", resource_no=no, kind=kind, name=name,
                                           area_mu=D(area), location="本村", reference_fee_per_mu_year=_money(ref)))

        # existing contracts: warehouse lease to an outside company (with its decision), reserve land, orchard
        last_year = y0 + self.years - 1
        ware_start = dt.date(y0 - 1, 1, 1)
        d_id = f"D-{y0 - 2}-05"
        self.emit(j.DecisionOpened(id=f"decision-{d_id}", type="decision", decision_id=d_id,
                                   title="集体仓库对外出租", matter="leasing_out", amount=_money(24000)))
        self.representative_meeting(d_id, dt.date(y0 - 2, 11, 20), pay_allowance=False)
        self.step(d_id, "publish_resolution", dt.date(y0 - 2, 11, 21), "村务公开栏", evidence=["公示照片"])
        approval = f"TA-{y0 - 2}-CK"
        self.emit(j.TownshipApproval(id=f"approval-{approval}", type="township_approval", approval_id=approval,
                                     subject=f"CK-{y0 - 1}-01", matter="contracting_to_non_member",
                                     date=dt.date(y0 - 2, 12, 5), approver=f"镇三资中心 {self.township_officer}"))
        quarterly = _money(6000)
        self.contract(f"CK-{y0 - 1}-01", "asset", "GZ-002", "县顺达物流有限公司", False, dt.date(y0 - 2, 12, 20),
                      ware_start, dt.date(max(last_year, y0 + 3), 12, 31), quarterly * 4, "50102", "仓库",
                      [(m, 5, quarterly) for m in (1, 4, 7, 10)], decision=d_id, township_approval=approval)
        land_no, land_area, _ = self.resources["机动地"]
        shares = self.split(land_area, len(self.households))
        for i, (name, mu) in enumerate(zip(self.households, shares), 1):
            fee = _money(mu * 600)
            self.contract(f"JD-{y0 - 1}-{i:02d}", "resource", land_no, name, True, dt.date(y0 - 1, 12, 28),
                          opening, dt.date(last_year, 12, 31), fee, "50103", "机动地", [(4, 30, fee)])
        orch_no, orch_area, _ = self.resources["果园"]
        fee = _money(orch_area * 300)
        self.contract(f"GY-{y0 - 3}-01", "resource", orch_no, self.orchard_holder, True, dt.date(y0 - 3, 2, 10),
                      dt.date(y0 - 3, 3, 1), dt.date(max(last_year, y0 + 6), 2, 28), fee, "50103", "果园",
                      [(6, 30, fee)], first_year=y0)

    def split(self, total: int, parts: int) -> list[int]:
        cuts = sorted(self.rng.sample(range(1, total), parts - 1))
        return [b - a for a, b in zip([0] + cuts, cuts + [total])]

    def contract(self, no: str, kind: str, subject: str, counterparty: str, member: bool, signed: dt.date,
                 start: dt.date, end: dt.date, annual: Decimal, revenue_code: str, resource: str,
                 dues: list[tuple[int, int, Decimal]], *, decision: str | None = None,
                 township_approval: str | None = None, first_year: int | None = None) -> None:
        c = _Contract(no, resource, counterparty, member, revenue_code)
        schedule = []
        for year in range(first_year or start.year, end.year + 1):
            for month, day, amount in dues:
                due = dt.date(year, month, day)
                if start <= due <= end:
                    schedule.append(j.Instalment(due=due, amount=amount))
                    c.due.setdefault(year, []).append((due, amount))
        self.contracts[no] = c
        self.emit(j.ContractSigned(
            id=f"contract-{no}", type="contract", contract_no=no, subject_kind=kind, subject_no=subject,
            counterparty=counterparty, counterparty_is_member=member, signed=signed, start=start, end=end,
            annual_fee=annual, schedule=schedule, decision=decision, township_approval=township_approval,
        ))

    # -- governance -------------------------------------------------------------------------------------------

    def step(self, decision_id: str, kind: str, day: dt.date, body: str, **fields) -> None:
        self.emit(j.DecisionStep(id=self.rid(f"step-{decision_id}"), type="decision_step", decision_id=decision_id,
                                 step=kind, date=day, body=body, **fields))

    def representative_meeting(self, decision_id: str, day: dt.date, *, pay_allowance: bool = True,
                               kind: str = "resolve", body: str = "村民代表会议") -> None:
        due = self.representatives
        present = self.rng.randint(-(-2 * due // 3) + 1, due)
        votes_for = self.rng.randint(max(-(-2 * due // 3), present - 4), present)
        against = self.rng.randint(0, present - votes_for)
        self.step(decision_id, kind, day, body, due=due, present=present, votes_for=votes_for,
                  votes_against=against, abstentions=present - votes_for - against,
                  evidence=["会议记录", "签到表", "表决票"])
        if pay_allowance:
            # 误工补贴 for the representatives, paid in cash the same day: usually over the cash-payment limit
            per_head = _money(self.rng.choice([30, 40, 50]))
            self.push(day, P_PAY, self.meeting_allowance, present, per_head)

    def meeting_allowance(self, day: dt.date, present: int, per_head: Decimal) -> None:
        amount = per_head * present
        by_cash = self.rng.random() < 0.7
        self.pay(day, f"发放村民代表会议误工补贴({present}人)", "513", "会议费", amount, by_cash=by_cash,
                 attachments=["误工补贴发放表", "签到表"])

    def full_procedure(self, decision_id: str, start: dt.date) -> dt.date:
        """四议两公开 steps 1–5 from `start`; returns the date of the resolution's publication."""
        rng = self.rng
        day = start
        self.push(day, P_GOV, self._call_step, decision_id, "propose", day, "村党支部委员会",
                  {"due": 5, "present": 5, "evidence": ["会议记录", "提议书"]})
        day += dt.timedelta(days=rng.randint(3, 7))
        self.push(day, P_GOV, self._call_step, decision_id, "deliberate", day, "村两委联席会议",
                  {"due": 7, "present": 7, "votes_for": 7, "votes_against": 0, "abstentions": 0,
                   "evidence": ["会议记录"]})
        day += dt.timedelta(days=rng.randint(4, 9))
        due = self.party_members
        present = rng.randint(-(-2 * due // 3), due)
        votes_for = rng.randint(due // 2 + 1, present)
        self.push(day, P_GOV, self._call_step, decision_id, "review", day, "党员大会",
                  {"due": due, "present": present, "votes_for": votes_for, "votes_against": present - votes_for,
                   "abstentions": 0, "evidence": ["会议记录", "签到表", "表决票", "镇包村干部签名"]})
        day += dt.timedelta(days=rng.randint(4, 9))
        self.push(day, P_GOV, self._call_meeting, decision_id)
        day += dt.timedelta(days=1)
        self.push(day, P_GOV, self._call_step, decision_id, "publish_resolution", day, "村务公开栏",
                  {"evidence": ["公示照片"]})
        return day

    def _call_step(self, day, decision_id, kind, step_day, body, fields):
        self.step(decision_id, kind, step_day, body, **fields)

    def _call_meeting(self, day, decision_id):
        self.representative_meeting(decision_id, day)

    # -- yearly schedule ----------------------------------------------------------------------------------------

    def schedule_year(self, year: int) -> None:
        rng, first = self.rng, year == self.start_year
        self.pending_accruals = []
        for month in range(1, 13):
            end = _month_end(year, month)
            self.push(self.day_in(year, month, 8, 14), P_PAY, self.utilities, "村部电费", "513", "水电费", 150, 700)
            self.push(self.day_in(year, month, 8, 14), P_PAY, self.utilities, "路灯电费", "514", "路灯电费", 200, 900)
            self.push(dt.date(year, month, 25), P_CADRE, self.cadre_pay)
            self.push(dt.date(year, month, 28), P_DEPR, self.depreciate)
            self.push(end, P_CLOSE, self.close_month)
            if month % 3 == 0:
                self.push(dt.date(year, month, 21), P_RECEIPT, self.interest)
        self.cadre_monthly = _money(3000 + 300 * (year - self.start_year) + rng.choice([0, 0, 200, 500]))

        # receipts
        self.push(self.day_in(year, 1, 8, 20), P_RECEIPT, self.subsidy, "村级组织运转经费",
                  _money(rng.randint(60, 85) * 1000), "收到镇财政拨付村级组织运转经费补助")
        if rng.random() < 0.6:
            self.push(self.day_in(year, 9, 5, 25), P_RECEIPT, self.subsidy, "人居环境整治奖补",
                      _money(rng.randint(10, 30) * 1000), "收到人居环境整治奖补资金")
        self.push(self.day_in(year, 1, 12, 20), P_PAY, self.pay_dividends)
        for due_day, party, amount, summary in self.payables:
            if due_day.year == year:
                self.push(due_day, P_PAY, self.repay, party, amount, summary)
        for no, c in self.contracts.items():
            self.schedule_contract(year, c)
        for name, balance in list(self.balances.items()):
            code, detail = name
            if code == "113" and detail in self.households + [self.orchard_holder] and balance > ZERO:
                if detail != self.chronic and rng.random() < 0.7:
                    self.push(self.day_in(year, rng.randint(3, 5)), P_RECEIPT, self.collect_arrears, detail)

        # governance events of the year
        if first:
            self.push(dt.date(year, 2, rng.randint(20, 27)), P_GOV, self.pond_contract, year)
        if year == self.start_year + 2:
            self.push(dt.date(year, 3, rng.randint(1, 10)), P_GOV, self.forest_contract, year)
        if year == self.start_year + 1:
            self.push(dt.date(year, 3, rng.randint(1, 10)), P_GOV, self.asset_purchase, year)
        if year == self.start_year + 3:
            self.push(dt.date(year, 7, rng.randint(1, 10)), P_GOV, self.asset_disposal, year)
        k = (12 * self.years) // 2
        dy, dm = _add_months(self.start_year, 1, k - 1)
        if dy == year:
            self.push(_month_end(dy, dm), P_LATE, self.departure)
        self.push(dt.date(year, 2, rng.randint(8, 18)), P_GOV, self.public_works, year)
        for _ in range(rng.randint(1, 3)):
            self.push(self.day_in(year, rng.randint(3, 10)), P_GOV, self.general_matter, year)

        # ordinary transactions and corrections
        # the fixed pattern is about 95 vouchers plus 12 per asset; each ordinary item brings ~0.14 cash transfers
        fixed = 95 + 12 * len([a for a in self.assets if a.disposed is None])
        n = max(6, int((self.vouchers_per_year - fixed) / 1.14))
        for _ in range(n):
            month = rng.randint(1, 12)
            self.push(self.day_in(year, month, 1, 26 if month == 12 else 27), P_PAY, self.ordinary, n)
        for _ in range(max(1, min(6, self.vouchers_per_year // 150))):
            self.push(self.day_in(year, rng.randint(1, 11)), P_PAY, self.erroneous_payment)
        self.push(dt.date(year, 11, rng.randint(5, 25)), P_PAY, self.utilities, "订阅报刊", "513", "办公费", 600, 1500)

        # year end
        self.push(dt.date(year, 12, 28), P_PLAN, self.distribution_plan, year)
        self.push(dt.date(year, 12, 31), P_YEAR_END, self.year_end, year)

    def schedule_contract(self, year: int, c: _Contract) -> None:
        rng = self.rng
        for due, amount in c.due.get(year, []):
            if not c.member:
                fate = "on_time" if rng.random() < 0.85 else "late"
            elif c.counterparty == self.chronic:
                fate = "unpaid"
            else:
                r = rng.random()
                fate = "on_time" if r < 0.7 else "late" if r < 0.85 else "unpaid"
            if fate == "on_time" or (fate == "late" and due.month >= 11):
                low = max(1, due.day - 20) if due.day > 20 else due.day
                day = dt.date(due.year, due.month, rng.randint(low, due.day))
                if c.member and due.month == 4:  # reserve-land fees: April–May
                    day = self.day_in(year, rng.choice([4, 5]), 5, 25)
            elif fate == "late" and due.month < 11:
                base = due + dt.timedelta(days=rng.randint(10, 90))
                day = min(base, dt.date(year, 11, 30))
                if day.day > 27:
                    day = day.replace(day=27)
            else:
                self.pending_accruals.append((c.counterparty, c.resource, c.contract_no, amount))
                continue
            self.push(day, P_RECEIPT, self.contract_fee, c.contract_no, due, amount)

    # -- event handlers (called from the heap with the day first) -------------------------------------------------

    def subsidy(self, day: dt.date, detail: str, amount: Decimal, summary: str) -> None:
        self.receive(day, summary, "503", detail, amount, by_cash=False, counterparty="镇财政所",
                     attachments=["银行进账单", "资金拨付通知"])

    def contract_fee(self, day: dt.date, contract_no: str, due: dt.date, amount: Decimal) -> None:
        c = self.contracts[contract_no]
        if c.revenue_code == "50102":
            summary = f"收到{c.resource}租金({due.year}年{(due.month - 1) // 3 + 1}季度)"
        else:
            summary = f"收到{c.resource}承包费({due.year}年度,合同{contract_no})"
        by_cash = c.member and amount <= D("3000.00") and self.rng.random() < 0.3
        self.receive(day, summary, c.revenue_code, c.resource, amount, by_cash=by_cash, counterparty=c.counterparty,
                     attachments=["收款收据", "银行进账单" if not by_cash else "现金收款收据"], contract=contract_no)

    def collect_arrears(self, day: dt.date, household: str) -> None:
        amount = self.balances.get(("113", household), ZERO)
        if amount <= ZERO:
            return
        self.post(day, f"收回以前年度欠缴承包费({household})", [self.dr("102", amount, BANK), self.cr("113", amount, household)],
                  attachments=["银行进账单", "收款收据"], full_approval=False, counterparty=household)

    def pay_dividends(self, day: dt.date) -> None:
        owed = -self.balances.get(("113", DIVIDENDS), ZERO)
        if owed <= ZERO:
            return
        self.post(day, f"发放上年度成员股份分红({self.shares}股)",
                  [self.dr("113", owed, DIVIDENDS), self.cr("102", owed, BANK)],
                  attachments=["分红发放清册", "银行代发回单"], counterparty="全体成员")

    def repay(self, day: dt.date, party: str, amount: Decimal, summary: str) -> None:
        self.post(day, summary, [self.dr("211", amount, party), self.cr("102", amount, BANK)],
                  attachments=["银行回单", "结算单"], counterparty=party)

    def interest(self, day: dt.date) -> None:
        amount = round_money(self.bank * D("0.0035") / 4)
        if amount > ZERO:
            self.receive(day, "银行存款结息", "504", "利息收入", amount, by_cash=False, counterparty=BANK,
                         attachments=["银行结息单"])

    def utilities(self, day: dt.date, summary: str, code: str, detail: str, low: int, high: int) -> None:
        amount = self.amount(low, high, cents=True)
        if self.bank - amount < D("5000.00"):
            return
        self.pay(day, f"支付{summary}" if not summary.startswith("订阅") else summary, code, detail, amount,
                 by_cash=False, counterparty="县供电公司" if "电费" in summary else "县邮政局",
                 attachments=["发票", "银行扣款回单"])

    def cadre_pay(self, day: dt.date) -> None:
        amount = self.cadre_monthly
        label = f"{day.month}月村干部报酬({len(self.cadres)}人)"
        self.post(day, f"计提{label}", [self.dr("513", amount, "干部报酬"), self.cr("212", amount)],
                  attachments=["报酬发放表"])
        self.post(day, f"银行代发{label}", [self.dr("212", amount), self.cr("102", amount, BANK)],
                  attachments=["银行代发回单"])

    def depreciate(self, day: dt.date) -> None:
        period = _ym(day)
        for asset in self.assets:
            if not asset.due(period):
                continue
            amount = asset.monthly()
            voucher_no = self.next_no(day)
            self.emit(j.Depreciation(id=f"dep-{voucher_no}", type="depreciation", asset_no=asset.asset_no,
                                     month=period, voucher_no=voucher_no, date=day))
            asset.accumulated += amount
            self.apply_lines([j.Line(account=asset.dep_code, detail=asset.dep_detail, debit=amount),
                              j.Line(account="152", detail=asset.name, credit=amount)])

    def close_month(self, day: dt.date) -> None:
        period = _ym(day)
        self.emit(j.PeriodClose(id=f"close-{period}", type="period_close", period=period, date=day,
                                cash_counted=self.cash, bank_statement=self.bank))

    def tractor_active(self) -> bool:
        tractor = self.asset_by_no["GZ-003"]
        return tractor.disposed is None

    def ordinary(self, day: dt.date, n: int) -> None:
        rng = self.rng
        tractor = self.tractor_active()
        expenses = [e for e in _EXPENSES if tractor or not e[7]]
        incomes = [e for e in _INCOMES if tractor or not e[7]]
        mean = lambda menu: sum(w * (lo + hi) / 2 for _, _, _, lo, hi, _, w, _, _ in menu) / sum(e[6] for e in menu)
        e_exp, e_inc = mean(expenses), mean(incomes)
        # ordinary flows (water supply, tractor work, small costs) earn about 8,000 a year net, whatever their number
        p_income = min(0.6, max(0.1, (e_exp + 8000 / max(n, 1)) / (e_inc + e_exp)))
        is_income = rng.random() < p_income
        menu = incomes if is_income else expenses
        summary, code, detail, low, high, mode, _, _, who = rng.choices(menu, weights=[e[6] for e in menu])[0]
        amount = self.amount(low, high, cents=rng.random() < 0.6)
        if mode == "cash":
            by_cash = True
        elif mode == "bank":
            by_cash = False
        else:
            by_cash = rng.random() < (0.6 if amount <= 1000 else 0.15)
        counterparty = rng.choice(_VENDORS[who]) if who in _VENDORS else {
            "cadre": rng.choice(self.cadres), "telecom": "县电信分公司", "bank": BANK,
            "villager": rng.choice(self.villagers), "group": f"{rng.choice(self.groups)}组长",
        }[who]
        if who == "group":
            summary = f"{summary}({counterparty[:-2]})"
        if is_income:
            self.receive(day, summary, code, detail, amount, by_cash=by_cash, counterparty=counterparty)
        else:
            if not by_cash and self.bank - amount < D("20000.00"):
                return
            attachments = ["发票", "报销单"] if who != "villager" else ["领款单", "身份证复印件"]
            self.pay(day, summary, code, detail, amount, by_cash=by_cash, counterparty=counterparty,
                     attachments=attachments)

    def erroneous_payment(self, day: dt.date) -> None:
        """A bank payment booked to the wrong account, found later: red-ink reversal and a correct voucher."""
        rng = self.rng
        summary, code, detail, who = rng.choice([
            ("购买办公用品", "513", "办公费", "office"), ("购买保洁工具及垃圾桶", "514", "环境卫生", "hardware"),
            ("购买防汛物资", "515", "防汛物资", "hardware"), ("购买农机配件", "511", "农机服务", "fuel"),
        ])
        if code == "511" and not self.tractor_active():
            summary, code, detail, who = "购买办公用品", "513", "办公费", "office"
        amount = self.amount(200, 2800, cents=rng.random() < 0.5)
        wrong = _WRONG_ACCOUNT[code]
        counterparty = rng.choice(_VENDORS[who])
        no = self.post(day, summary, [self.dr(wrong, amount, detail), self.cr("102", amount, BANK)],
                       attachments=["发票", "报销单"], counterparty=counterparty)
        fix_day = min(day + dt.timedelta(days=rng.randint(3, 40)), dt.date(day.year, 12, 20))
        self.push(fix_day, P_PAY, self.correct, no, summary, code, detail, amount, counterparty, day)

    def correct(self, day: dt.date, original: str, summary: str, code: str, detail: str, amount: Decimal,
                counterparty: str, original_day: dt.date) -> None:
        voucher_no = self.next_no(day)
        self.emit(j.Reversal(id=f"rev-{voucher_no}", type="reversal", voucher_no=voucher_no, date=day,
                             reverses=original, summary=f"红字冲销{original_day.month}月{original_day.day}日凭证(科目错误)",
                             reason="会计科目使用错误", attachments=["原凭证复印件"],
                             approvals=self.approvals(day), tags=["RED_REVERSAL"]))
        wrong = self.code(_WRONG_ACCOUNT[code])
        self.apply_lines([j.Line(account=wrong, detail=detail, debit=amount),
                          j.Line(account="102", detail=BANK, credit=amount)], sign=-1)
        self.post(day, f"更正:{summary}", [self.dr(code, amount, detail), self.cr("102", amount, BANK)],
                  attachments=["原凭证复印件"], tags=["CORRECTION"], counterparty=counterparty)

    # -- decisions that lead to payments or contracts ---------------------------------------------------------------

    def public_works(self, day: dt.date, year: int) -> None:
        rng = self.rng
        title, code, detail = rng.choice(_WORKS)
        budget = min(rng.randint(21, 60), max(21, int(self.bank * D("0.3")) // 1000)) * 1000
        amount = _money(budget)
        decision_id = self.new_decision_id(year)
        self.emit(j.DecisionOpened(id=f"decision-{decision_id}", type="decision", decision_id=decision_id,
                                   title=f"{title}工程(四议两公开)", matter="public_works", amount=amount))
        published = self.full_procedure(decision_id, day)
        contractor = rng.choice(_CONTRACTORS)
        signed = published + dt.timedelta(days=rng.randint(10, 30))
        self.push(signed, P_GOV, self._call_step, decision_id, "contract_signed", signed, contractor,
                  {"evidence": ["施工合同"], "note": f"固定总价{amount:.2f}元"})
        accepted = signed + dt.timedelta(days=rng.randint(40, 80))
        self.push(accepted, P_GOV, self._call_step, decision_id, "acceptance", accepted, "验收小组",
                  {"due": 5, "present": 5, "evidence": ["验收单"], "note": "2名村干部、1名党员、2名村民代表"})
        paid = accepted + dt.timedelta(days=rng.randint(3, 12))
        self.push(paid, P_PAY, self.works_payment, decision_id, title, code, detail, amount, contractor)
        results = paid + dt.timedelta(days=rng.randint(5, 12))
        if rng.random() < 0.85:  # now and then the results are never published: R06 finds it
            self.push(results, P_GOV, self._call_step, decision_id, "publish_results", results, "村务公开栏",
                      {"evidence": ["公示照片"]})
        self.push(results, P_GOV, self._call_step, decision_id, "confirm", results, "村两委会议",
                  {"due": 7, "present": 7, "votes_for": 7, "votes_against": 0, "abstentions": 0})

    def works_payment(self, day: dt.date, decision_id: str, title: str, code: str, detail: str, amount: Decimal,
                      contractor: str) -> None:
        self.post(day, f"支付{title}工程款(四议两公开 {decision_id})",
                  [self.dr(code, amount, detail), self.cr("102", amount, BANK)],
                  attachments=["发票", "施工合同", "验收单", "决议公示照片"], tags=["MAJOR_MATTER_4Y2G"],
                  decision=decision_id, counterparty=contractor)

    def general_matter(self, day: dt.date, year: int) -> None:
        rng = self.rng
        title, code, detail = rng.choice(_GENERAL)
        amount = self.amount(2500, 15000, step=100)
        if self.bank - amount < D("30000.00"):
            return
        decision_id = None
        if rng.random() < 0.8:  # otherwise paid without the 两委扩大会: a finding
            decision_id = self.new_decision_id(year)
            self.emit(j.DecisionOpened(id=f"decision-{decision_id}", type="decision", decision_id=decision_id,
                                       title=title, matter="spending", amount=amount))
            self.step(decision_id, "extended_meeting", day, "两委扩大会", due=12, present=rng.randint(9, 12),
                      evidence=["会议记录"], note="事前商议")
        paid = day + dt.timedelta(days=rng.randint(5, 20))
        self.push(min(paid, dt.date(year, 12, 20)), P_PAY, self.general_payment, decision_id, title, code, detail,
                  amount)

    def general_payment(self, day: dt.date, decision_id: str | None, title: str, code: str, detail: str,
                        amount: Decimal) -> None:
        self.pay(day, title, code, detail, amount, by_cash=False, counterparty=self.rng.choice(_CONTRACTORS),
                 attachments=["发票", "验收单"], decision=decision_id)
        if decision_id is not None:
            after = min(day + dt.timedelta(days=self.rng.randint(1, 6)), dt.date(day.year, 12, 27))
            self.push(after, P_GOV, self._call_step, decision_id, "extended_meeting", after, "两委扩大会",
                      {"due": 12, "present": self.rng.randint(9, 12), "evidence": ["会议记录"], "note": "事后确认"})

    def pond_contract(self, day: dt.date, year: int) -> None:
        """The fish pond goes to an outsider below the reference price (SCENARIOS S4: R08 fires)."""
        rng = self.rng
        no, area, ref = self.resources["鱼塘"]
        fee = _money(rng.choice([11000, 12000, 12800, 13500]))
        decision_id = self.new_decision_id(year)
        self.emit(j.DecisionOpened(id=f"decision-{decision_id}", type="decision", decision_id=decision_id,
                                   title="鱼塘对外发包", matter="contracting_out", amount=fee))
        self.representative_meeting(decision_id, day)
        approval_day = day + dt.timedelta(days=rng.randint(4, 8))
        signed = approval_day + dt.timedelta(days=rng.randint(2, 5))
        self.push(approval_day, P_GOV, self.township_approval, f"TA-{year}-YT", f"YT-{year}-01",
                  "contracting_to_non_member")
        end_year = year + max(5, self.years) - 1
        self.push(signed, P_GOV, self.sign_contract, f"YT-{year}-01", "resource", no, self.pond_lessee, False,
                  signed, dt.date(year, 1, 1), dt.date(end_year, 12, 31), fee, "50103", "鱼塘", [(3, 31, fee)],
                  decision_id, f"TA-{year}-YT")

    def forest_contract(self, day: dt.date, year: int) -> None:
        rng = self.rng
        no, area, ref = self.resources["集体林地"]
        fee = _money(area * rng.choice([36, 38, 40]))
        decision_id = self.new_decision_id(year)
        self.emit(j.DecisionOpened(id=f"decision-{decision_id}", type="decision", decision_id=decision_id,
                                   title="集体林地流转发包", matter="contracting_out", amount=fee))
        published = self.full_procedure(decision_id, day)
        approval_day = published + dt.timedelta(days=rng.randint(3, 8))
        signed = approval_day + dt.timedelta(days=rng.randint(2, 6))
        self.push(approval_day, P_GOV, self.township_approval, f"TA-{year}-LD", f"LD-{year}-01",
                  "contracting_to_non_member")
        self.push(signed, P_GOV, self.sign_contract, f"LD-{year}-01", "resource", no, "县青山林业专业合作社", False,
                  signed, dt.date(year, signed.month, 1), dt.date(year + 14, 12, 31), fee, "50103", "集体林地",
                  [(11, 30, fee)], decision_id, f"TA-{year}-LD")

    def township_approval(self, day: dt.date, approval_id: str, subject: str, matter: str) -> None:
        self.emit(j.TownshipApproval(id=f"approval-{approval_id}", type="township_approval", approval_id=approval_id,
                                     subject=subject, matter=matter, date=day,
                                     approver=f"镇三资中心 {self.township_officer}"))

    def sign_contract(self, day: dt.date, no: str, kind: str, subject: str, counterparty: str, member: bool,
                      signed: dt.date, start: dt.date, end: dt.date, annual: Decimal, revenue_code: str, resource: str,
                      dues: list, decision_id: str, approval_id: str) -> None:
        self.contract(no, kind, subject, counterparty, member, signed, start, end, annual, revenue_code, resource,
                      dues, decision=decision_id, township_approval=approval_id)
        # this year's instalments of a contract signed during the year
        c = self.contracts[no]
        for due, amount in c.due.get(day.year, []):
            pay_day = max(due - dt.timedelta(days=self.rng.randint(0, 15)), day + dt.timedelta(days=3))
            self.push(pay_day, P_RECEIPT, self.contract_fee, no, due, amount)

    def asset_purchase(self, day: dt.date, year: int) -> None:
        rng = self.rng
        name, category = rng.choice([("垃圾清运车", "运输设备"), ("村内监控及广播系统", "其他"), ("公共文体设施", "其他")])
        cost = _money(rng.randint(32, 62) * 1000)
        decision_id = self.new_decision_id(year)
        self.emit(j.DecisionOpened(id=f"decision-{decision_id}", type="decision", decision_id=decision_id,
                                   title=f"购置{name}(四议两公开)", matter="asset_purchase", amount=cost))
        published = self.full_procedure(decision_id, day)
        bought = published + dt.timedelta(days=rng.randint(20, 45))
        self.push(bought, P_GOV, self._call_step, decision_id, "contract_signed", bought, "县政府采购供应商",
                  {"evidence": ["采购合同"]})
        self.push(bought, P_PAY, self.buy_asset, decision_id, name, category, cost)
        results = bought + dt.timedelta(days=rng.randint(5, 15))
        self.push(results, P_GOV, self._call_step, decision_id, "acceptance", results, "验收小组",
                  {"due": 5, "present": 5, "evidence": ["验收单"]})
        self.push(results, P_GOV, self._call_step, decision_id, "publish_results", results, "村务公开栏",
                  {"evidence": ["公示照片"]})
        self.push(results, P_GOV, self._call_step, decision_id, "confirm", results, "村两委会议",
                  {"due": 7, "present": 7, "votes_for": 7})

    def buy_asset(self, day: dt.date, decision_id: str, name: str, category: str, cost: Decimal) -> None:
        no = f"GZ-{len(self.assets) + 1:03d}"
        voucher_no = self.post(day, f"购置{name}", [self.dr("151", cost, name), self.cr("102", cost, BANK)],
                               attachments=["发票", "采购合同", "固定资产验收单"], tags=["MAJOR_MATTER_4Y2G"],
                               decision=decision_id, counterparty="县政府采购供应商")
        residual = round_money(cost * D("0.05"))
        asset = _Asset(no, name, cost, residual, 96, day, self.code("514"), "公益资产折旧")
        self.assets.append(asset)
        self.asset_by_no[no] = asset
        self.emit(j.AssetRegistered(
            id=f"asset-{no}", type="asset", asset_no=no, name=name, category=category, use="public_welfare",
            cost=cost, in_service=day, life_months=96, residual=residual, depreciation_account=asset.dep_code,
            depreciation_detail="公益资产折旧", voucher_no=voucher_no,
        ))

    def asset_disposal(self, day: dt.date, year: int) -> None:
        """The old tractor is sold after a representatives' resolution; the month is still depreciated first."""
        rng = self.rng
        decision_id = self.new_decision_id(year)
        self.emit(j.DecisionOpened(id=f"decision-{decision_id}", type="decision", decision_id=decision_id,
                                   title="出售旧拖拉机", matter="asset_disposal"))
        self.step(decision_id, "deliberate", day, "村两委联席会议", due=7, present=7, votes_for=7, evidence=["会议记录"])
        meeting = day + dt.timedelta(days=rng.randint(5, 10))
        self.push(meeting, P_GOV, self._call_meeting, decision_id)
        self.push(meeting + dt.timedelta(days=1), P_GOV, self._call_step, decision_id, "publish_resolution",
                  meeting + dt.timedelta(days=1), "村务公开栏", {"evidence": ["公示照片"]})
        self.push(dt.date(year, 9, 29), P_LATE, self.sell_tractor, decision_id)

    def sell_tractor(self, day: dt.date, decision_id: str) -> None:
        rng = self.rng
        tractor = self.asset_by_no["GZ-003"]
        net = tractor.cost - tractor.accumulated
        no = self.post(day, "拖拉机转入固定资产清理",
                       [self.dr("154", net, tractor.name), self.dr("152", tractor.accumulated, tractor.name),
                        self.cr("151", tractor.cost, tractor.name)],
                       attachments=["资产处置审批表", "决议公示照片"], decision=decision_id)
        price = _money(int(net * D(rng.choice(["0.7", "0.85", "1.1"]))) // 100 * 100)
        lines = [self.dr("102", price, BANK), self.cr("154", net, tractor.name)]
        if price > net:
            lines.append(self.cr("504", price - net, "资产处置收益"))
        elif price < net:
            lines.append(self.dr("515", net - price, "资产处置损失"))
        self.post(day, "收到拖拉机变卖价款并结转清理净损益", lines, attachments=["银行进账单", "资产转让协议"],
                  decision=decision_id, counterparty=rng.choice(self.villagers))
        tractor.disposed = day
        self.emit(j.AssetDisposed(id=f"disposal-{tractor.asset_no}", type="asset_disposed", asset_no=tractor.asset_no,
                                  date=day, method="sale", decision=decision_id, voucher_no=no))

    def departure(self, day: dt.date) -> None:
        self.emit(j.OfficialDeparted(id="departed-O-001", type="official_departed", official_id="O-001",
                                     departed=day, handover_date=day + dt.timedelta(days=10)))
        start = day + dt.timedelta(days=1)
        term_end = dt.date(self.start_year + 4, 12, 31)
        self.emit(j.OfficialAppointed(id="official-O-005", type="official", official_id="O-005", name=self.successor,
                                      roles=["支部书记", "村委会主任"], term_start=start,
                                      term_end=term_end if start <= term_end else None))
        self.current_chair = self.successor
        self.cadres[0] = self.successor

    # -- year end (SCENARIOS S11) ---------------------------------------------------------------------------------

    def year_income(self) -> Decimal:
        return -sum((v for (code, _), v in self.balances.items() if code in self.income_codes), ZERO)

    def distribution_plan(self, day: dt.date, year: int) -> None:
        projected = self.year_income() + sum((a for *_, a in self.pending_accruals), ZERO)
        reserve = round_money(projected * D("0.30")) if projected > ZERO else ZERO
        available = projected - reserve - self.balances.get(("32202", ""), ZERO)
        per_share = ZERO
        for candidate in ("10.00", "8.00", "5.00", "3.00"):
            if _money(candidate) * self.shares <= available:
                per_share = _money(candidate)
                break
        decision_id = self.new_decision_id(year)
        self.emit(j.DecisionOpened(id=f"decision-{decision_id}", type="decision", decision_id=decision_id,
                                   title=f"{year}年度收益分配方案", matter="income_distribution"))
        self.step(decision_id, "deliberate", day - dt.timedelta(days=3), "村两委联席会议", due=7, present=7,
                  votes_for=7, evidence=["会议记录", "分配方案草案"])
        self.representative_meeting(decision_id, day, body="成员代表会议", pay_allowance=False)
        self.step(decision_id, "publish_resolution", day, "村务公开栏", evidence=["分配方案公示照片"])
        self.emit(j.DistributionPlan(id=f"plan-{year}", type="distribution_plan", year=year, adopted=day,
                                     decision=decision_id, reserve_rate=D("0.30"), per_share=per_share,
                                     shares=self.shares))
        self.plan = {"per_share": per_share, "rate": D("0.30"), "decision": decision_id}

    def year_end(self, day: dt.date, year: int) -> None:
        # 1. unpaid contract fees of the year from members: Dr 113 / Cr revenue (DOMAIN §7.4)
        if self.pending_accruals:
            lines, credits = [], {}
            for household, resource, _, amount in self.pending_accruals:
                lines.append(self.dr("113", amount, household))
                credits[resource] = credits.get(resource, ZERO) + amount
            lines += [self.cr("50103", amount, resource) for resource, amount in credits.items()]
            names = "、".join(f"{h}{a:.0f}" for h, _, _, a in self.pending_accruals)
            self.post(day, f"年终结算应收未收承包费({names})", lines, attachments=["承包费结算表"], full_approval=False)
            self.pending_accruals = []
        tags = ["CLOSE"]
        # 2. close income and expense accounts into 321
        income, expense = [], []
        for (code, detail), value in sorted(self.balances.items()):
            if code not in self.income_codes or value == ZERO:
                continue
            side = self.chart[code].normal_side
            (income if side == "credit" else expense).append((code, detail, value))
        total_in = ZERO
        lines = []
        for code, detail, value in income:
            lines.append(j.Line(account=code, detail=detail, debit=-value) if value < ZERO
                         else j.Line(account=code, detail=detail, credit=value))
            total_in -= value
        if lines:
            lines.append(self.cr("321", total_in) if total_in > ZERO else self.dr("321", -total_in))
            self.post(day, "结转收入类科目至本年收益", lines, tags=tags, attachments=["结转计算表"], full_approval=False)
        total_out = ZERO
        lines = []
        for code, detail, value in expense:
            lines.append(j.Line(account=code, detail=detail, credit=value) if value > ZERO
                         else j.Line(account=code, detail=detail, debit=-value))
            total_out += value
        if lines:
            lines.insert(0, self.dr("321", total_out) if total_out > ZERO else self.cr("321", -total_out))
            self.post(day, "结转支出类科目至本年收益", lines, tags=tags, attachments=["结转计算表"], full_approval=False)
        profit = total_in - total_out
        # 3. 321 into 322-未分配收益
        if profit > ZERO:
            self.post(day, "本年收益转入收益分配-未分配收益", [self.dr("321", profit), self.cr("32202", profit)],
                      tags=tags, full_approval=False)
        elif profit < ZERO:
            self.post(day, "本年亏损转入收益分配-未分配收益", [self.dr("32202", -profit), self.cr("321", -profit)],
                      tags=tags, full_approval=False)
        # 4. distributions per the plan
        plan = self.plan or {"per_share": ZERO, "rate": D("0.30"), "decision": None}
        reserve = round_money(profit * plan["rate"]) if profit > ZERO else ZERO
        dividend = plan["per_share"] * self.shares
        undistributed = -self.balances.get(("32202", ""), ZERO)
        if reserve + dividend > undistributed:  # never distribute more than there is
            dividend = ZERO
        distributed = []
        if reserve > ZERO:
            self.post(day, f"按分配方案提取公积公益金(本年收益{plan['rate'] * 100:.0f}%)",
                      [self.dr("3220101", reserve), self.cr("311", reserve)], tags=tags, decision=plan["decision"],
                      full_approval=False)
            distributed.append(("3220101", reserve))
        if dividend > ZERO:
            self.post(day, f"按分配方案向成员分配({self.shares}股×{plan['per_share']:.0f}元)",
                      [self.dr("3220102", dividend), self.cr("113", dividend, DIVIDENDS)], tags=tags,
                      decision=plan["decision"], full_approval=False)
            distributed.append(("3220102", dividend))
        # 5. 各项分配 into 未分配收益
        if distributed:
            total = sum((a for _, a in distributed), ZERO)
            self.post(day, "各项分配转入未分配收益",
                      [self.dr("32202", total)] + [self.cr(code, a) for code, a in distributed], tags=tags,
                      full_approval=False)
        self.plan = None

    # -- driver ---------------------------------------------------------------------------------------------------

    def run(self) -> Iterator[j.Record]:
        self.preamble()
        yield from self.out
        self.out = []
        for year in range(self.start_year, self.start_year + self.years):
            self.schedule_year(year)
            while self.heap:
                day, _, _, fn, args = heapq.heappop(self.heap)
                fn(day, *args)
            yield from self.out
            self.out = []


def generate_village(*, seed: int = 2025, years: int = 5, start_year: int = 2021, chart: str = "2023",
                     vouchers_per_year: int = 400) -> Iterator[j.Record]:
    """The books of one demo village, record by record, in the order they must be applied.

    Deterministic in its arguments. `chart` is "2023" (制度2023 codes) or "2004" (the same books in 制度2004 codes,
    DOMAIN.md §1.3). `vouchers_per_year` scales the ordinary small transactions so that a year holds about that
    many vouchers (within a few per cent; vouchers, reversals and depreciation records all carry a voucher number);
    the fixed annual pattern (pay, depreciation, utilities, rent, fees, works, year-end close) alone is about 130.
    """
    return _Village(seed, years, start_year, chart, vouchers_per_year).run()


def write_journal(records: Iterable[j.Record], path: str | Path) -> int:
    """Write records as JSON Lines (one `model_dump_json(exclude_none=True)` per line); returns the count."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(record.model_dump_json(exclude_none=True))
            handle.write("\n")
            count += 1
    return count


def read_journal(path: str | Path) -> Iterator[j.Record]:
    """Read a JSON Lines journal back into records (journal_record_adapter per line)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield j.journal_record_adapter.validate_json(line)


def expand_postings(records: Iterable[j.Record]) -> Iterator[tuple[dt.date, str, str, str, Decimal, Decimal]]:
    """Every posting line the records imply, as the ledger computes them: (date, voucher_no, account, detail, debit,
    credit). Opening balances carry voucher_no "OPENING"; a reversal yields its original's lines negated; a
    depreciation record yields the amount application.monthly_depreciation would compute."""
    vouchers: dict[str, list[j.Line]] = {}
    assets: dict[str, _Asset] = {}
    for r in records:
        if isinstance(r, j.OpeningBalances):
            for x in r.lines:
                yield r.date, "OPENING", x.account, x.detail, x.debit or ZERO, x.credit or ZERO
        elif isinstance(r, j.Voucher):
            vouchers[r.voucher_no] = r.lines
            for x in r.lines:
                yield r.date, r.voucher_no, x.account, x.detail, x.debit or ZERO, x.credit or ZERO
        elif isinstance(r, j.Reversal):
            for x in vouchers[r.reverses]:
                yield r.date, r.voucher_no, x.account, x.detail, -(x.debit or ZERO), -(x.credit or ZERO)
        elif isinstance(r, j.AssetRegistered):
            assets[r.asset_no] = _Asset(r.asset_no, r.name, r.cost, r.residual, r.life_months, r.in_service,
                                        r.depreciation_account, r.depreciation_detail, r.accumulated_depreciation)
        elif isinstance(r, j.Depreciation):
            asset = assets[r.asset_no]
            amount = asset.monthly()
            asset.accumulated += amount
            yield r.date, r.voucher_no, asset.dep_code, asset.dep_detail, amount, ZERO
            yield r.date, r.voucher_no, "152", asset.name, ZERO, amount

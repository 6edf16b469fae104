"""The disclosure document as HTML (notice board A4 and phone), CSV tables and inline SVG charts.

Only the standard library and segno (pure-Python QR codes): the page must render offline, on a village office PC
or a phone, with nothing fetched from the network.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from html import escape
from typing import Any

import segno

KIND_NAMES = {"monthly": "月度", "quarterly": "季度", "annual": "年度"}

CSS = """
:root { --ink:#1a1a1a; --red:#c00000; --line:#888; --head:#f0ede4; --bar-in:#2e7d32; --bar-out:#8d4a00; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC","Noto Serif CJK SC","Source Han Sans SC","Microsoft YaHei",sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1100px; padding: 12px; font-size: 15px; line-height: 1.45; }
h1 { font-size: 1.5em; text-align: center; margin: .2em 0; }
h2 { font-size: 1.15em; border-bottom: 2px solid var(--ink); margin: 1.2em 0 .4em; }
h3 { font-size: 1em; margin: .8em 0 .3em; }
.en { color: #555; font-size: .8em; font-weight: normal; }
.meta { display: flex; flex-wrap: wrap; gap: .3em 1.5em; font-size: .9em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .3em 0; font-size: .9em; }
th, td { border: 1px solid var(--line); padding: .25em .4em; vertical-align: top; }
th { background: var(--head); font-weight: bold; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.red td { color: var(--red); }
tr.total td { font-weight: bold; background: #faf8f2; }
.flag { color: var(--red); font-weight: bold; }
.nw { white-space: nowrap; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 12px; }
.chart { border: 1px solid #ccc; padding: 6px; }
.chart svg { width: 100%; height: auto; }
.checkpoint { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.checkpoint pre { font-size: .72em; white-space: pre-wrap; word-break: break-all; flex: 1 1 320px; margin: 0; }
.checkpoint .qr { width: 180px; flex: 0 0 180px; }
.checkpoint .qr svg { width: 100%; height: auto; }
.sign { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 8px; margin-top: 1em; }
.sign div { border-top: 1px solid var(--ink); padding-top: .2em; min-height: 2.5em; }
footer { font-size: .8em; color: #444; margin-top: 1.5em; word-break: break-all; }
@media (max-width: 600px) {
  body { font-size: 14px; padding: 6px; }
  h1 { font-size: 1.25em; }
  table { font-size: .82em; min-width: 600px; }
}
@media print {
  @page { size: A4; margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  .scroll { overflow: visible; }
  h2 { break-after: avoid; }
  tr, .chart, .checkpoint { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _money(text: str | None) -> str:
    if text is None:
        return ""
    value = Decimal(text)
    return f"−{-value:,.2f}" if value < 0 else f"{value:,.2f}"


def _heading(zh: str, en: str, level: int = 2) -> str:
    return f'<h{level}>{escape(zh)} <span class="en" lang="en">{escape(en)}</span></h{level}>'


def _table(headers: list[tuple[str, str, bool]], rows: list[tuple[list[str], str]]) -> str:
    """headers: (zh, en, numeric); rows: (already-escaped cells, row class)."""
    head = "".join(
        f'<th{" class=num" if numeric else ""}>{escape(zh)}<br><span class="en" lang="en">{escape(en)}</span></th>'
        for zh, en, numeric in headers
    )
    body = []
    for cells, css in rows:
        tds = "".join(
            f'<td{" class=num" if numeric else ""}>{cell}</td>' for cell, (_, _, numeric) in zip(cells, headers)
        )
        body.append(f'<tr{f" class={css}" if css else ""}>{tds}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def bar_chart(title: str, items: list[dict[str, str]], color: str) -> str:
    """A horizontal bar chart as inline SVG; negative amounts (red-ink corrections) are drawn in red."""
    row_height, label_width, bar_width, value_width = 26, 110, 190, 100
    width = label_width + bar_width + value_width
    height = 30 + row_height * max(len(items), 1)
    largest = max((abs(Decimal(i["amount"])) for i in items), default=Decimal(0)) or Decimal(1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    if not items:
        parts.append('<text x="0" y="44" font-size="13" fill="#555">本期无 / none</text>')
    for index, item in enumerate(items):
        amount = Decimal(item["amount"])
        y = 28 + index * row_height
        length = int(bar_width * abs(amount) / largest)
        fill = "#c00000" if amount < 0 else color
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(item["name"])}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{max(length, 1)}" height="16" fill="{fill}"/>')
        parts.append(
            f'<text x="{label_width + max(length, 1) + 4}" y="{y + 15}" font-size="12">{_money(item["amount"])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def qr_svg(text: str) -> str:
    return segno.make(text, error="m").svg_inline(scale=3, border=2, omitsize=True)


def render_html(doc: dict[str, Any], sha256: str | None) -> str:
    ie, funds = doc["income_expense"], doc["funds"]
    period = doc["period"]
    year, month = period[:4], int(period[5:])
    kind = KIND_NAMES[doc["kind"]]
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(doc['organisation'])} {year}年{month}月财务公开</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(doc['organisation'])} {year}年{month}月 财务公开榜</h1>",
        f'<p style="text-align:center" class="en" lang="en">Financial disclosure, {escape(period)} ({escape(doc["kind"])})</p>',
        '<div class="meta">',
        f"<span>公开期间:{escape(doc['period_start'])} 至 {escape(doc['period_end'])}({kind})</span>",
        f"<span>公开日期:{escape(doc['published'] or '未发布(草稿) / draft')}</span>",
        f"<span>应公开截止:{escape(doc['deadline'])}</span>",
        f"<span>编制:{escape('、'.join(doc['header']['preparer']))}</span>",
        f"<span>民主理财小组审核:{escape('、'.join(doc['header']['reviewers']))}</span>",
        "</div>",
    ]
    if doc["closed"]:
        c = doc["closed"]
        out.append(
            f"<p>本月已于 {escape(c['date'])} 结账;现金盘点 {_money(c['cash_counted'])} 元,银行对账单 {_money(c['bank_statement'])} 元。</p>"
        )
    if doc["flags"]:
        out.append(_heading("需关注事项", "Findings to note"))
        out.append("<ul>" + "".join(f'<li class="flag">{escape(f["voucher_no"])}:{escape(f["finding"])}</li>' for f in doc["flags"]) + "</ul>")

    out.append(_heading("一、收支明细公开表", "Income and expenditure, item by item (cash and bank only)"))
    rows = [
        (
            [
                str(line["seq"]), f'<span class="nw">{escape(line["date"][5:])}</span>',
                f'<span class="nw">{escape(line["voucher_no"])}</span>', escape(line["summary"]),
                _money(line["income"]), _money(line["expense"]), escape(line["counterparty"]), escape(line["accounts"]),
                escape(line["approval"]), escape(line["remark"]),
            ],
            "red" if line["red"] else "",
        )
        for line in ie["lines"]
    ]
    rows.append(
        (["", "", "", "<b>合计</b>", _money(ie["total_income"]), _money(ie["total_expense"]), "", "", "", escape(ie["total_remark"])], "total")
    )
    out.append(
        _table(
            [
                ("序号", "No.", False), ("日期", "Date", False), ("凭证号", "Voucher", False), ("摘要", "Summary", False),
                ("收入金额", "Income", True), ("支出金额", "Expense", True), ("对方单位/个人", "Counterparty", False),
                ("资金来源/用途", "Source / use", False), ("审批及民主程序", "Approval", False), ("备注", "Note", False),
            ],
            rows,
        )
    )
    if ie["excluded"]:
        out.append("<p>不计收支的资金划转 / transfers between cash and bank (not income or expense):</p><ul>")
        out += [
            f"<li>{escape(t['date'])} {escape(t['voucher_no'])} {escape(t['summary'])} {_money(t['amount'])}:"
            f'<span class="{"flag" if t["remark"].startswith("⚠") else ""}">{escape(t["remark"])}</span></li>'
            for t in ie["excluded"]
        ]
        out.append("</ul>")

    out.append(_heading("二、货币资金情况表", "Cash and bank balances"))
    for title, block in (("本月", funds), ("本年累计", doc["funds_year_to_date"])):
        out.append(f"<h3>{title} <span class=en lang=en>{'this month' if title == '本月' else 'year to date'}</span></h3>")
        out.append(
            _table(
                [
                    ("项目", "Fund", False), ("上期结存", "Opening", True), ("本期收入", "Income", True),
                    ("本期支出", "Expense", True), ("划入", "Transfer in", True), ("划出", "Transfer out", True),
                    ("本期结存", "Closing", True),
                ],
                [
                    (
                        [f'<span class="nw">{escape(r["name"])}</span>', _money(r["opening"]), _money(r["income"]), _money(r["expense"]),
                         _money(r["transfer_in"]), _money(r["transfer_out"]), _money(r["closing"])],
                        "total" if r["fund"] == "total" else "",
                    )
                    for r in block["rows"]
                ],
            )
        )

    out.append(_heading("三、收支图表", "Charts: income and expense by category"))
    out.append('<div class="charts">')
    for scope, label in (("month", "本月"), ("year_to_date", "本年累计")):
        data = doc["charts"][scope]
        out.append(f'<div class="chart">{bar_chart(f"{label}收入(按来源)", data["income"], "#2e7d32")}</div>')
        out.append(f'<div class="chart">{bar_chart(f"{label}支出(按用途)", data["expense"], "#8d4a00")}</div>')
    out.append("</div>")

    special = doc["special"]
    if special["works"] or special["contracting"]:
        out.append(_heading("四、专项公开", "Special disclosures: collective works and contracting-out"))
    for w in special["works"]:
        contract = w["contract"]
        out.append(f"<h3>{escape(w['title'])}({escape(w['decision'])})</h3>")
        out.append(
            _table(
                [("预算", "Budget", True), ("合同", "Contract", False), ("验收", "Acceptance", False),
                 ("已支付", "Paid", True), ("未支付", "Unpaid", True)],
                [(
                    [
                        _money(w["budget"]),
                        escape(f"{contract['date']} {contract['party']} {contract['note']}") if contract else "",
                        escape(f"{w['acceptance']['date']} {w['acceptance']['note']}") if w["acceptance"] else "",
                        _money(w["paid"]), _money(w["unpaid"]),
                    ],
                    "",
                )],
            )
        )
        out.append(
            _table(
                [("程序", "Step", False), ("日期", "Date", False), ("会议/经办", "Body", False),
                 ("应到/实到", "Due / present", False), ("同意", "For", True)],
                [(
                    [escape(s["name"]), escape(s["date"]), escape(s["body"]),
                     escape(f"{s['due'] if s['due'] is not None else '-'}/{s['present'] if s['present'] is not None else '-'}"),
                     "" if s["votes_for"] is None else str(s["votes_for"])],
                    "",
                ) for s in w["steps"]],
            )
        )
    if special["contracting"]:
        out.append("<h3>资产资源发包/出租 <span class=en lang=en>contracting-out and leases</span></h3>")
        out.append(
            _table(
                [("合同号", "Contract", False), ("标的", "Subject", False), ("承包方", "Counterparty", False),
                 ("期限", "Term", False), ("年承包费", "Annual fee", True), ("参考价", "Reference", True),
                 ("比例", "Ratio", True), ("民主决策", "Decision", False), ("镇审批", "Township approval", False)],
                [(
                    [escape(c["contract_no"]), escape(c["subject"]),
                     escape(c["counterparty"] + ("(本集体成员)" if c["member"] else "(非本集体成员)")),
                     escape(c["term"]), _money(c["annual_fee"]), _money(c["reference_fee"]),
                     ("" if c["ratio_percent"] is None else f"{c['ratio_percent']}%") + (' <span class="flag">⚠ 低于参考价</span>' if c["low_price"] else ""),
                     escape(c["decision"] or ""), escape(c["township_approval"] or "")],
                    "",
                ) for c in special["contracting"]],
            )
        )

    if doc["statements"]:
        out += _statements_html(doc["statements"])

    out.append(_heading("检查点(账簿防篡改凭证)", "Cosigned checkpoint of the ledger at month close"))
    note = doc["checkpoint"]["note"]
    if note:
        out.append(
            f'<div class="checkpoint"><div class="qr">{qr_svg(note)}</div><pre>{escape(note)}</pre></div>'
            "<p>扫码可得本检查点全文,用于核对账簿日志未被改动。<span class=en lang=en>Scan for the checkpoint note; "
            "verify it with ledger-verify.</span></p>"
        )
    else:
        out.append("<p>本月尚无见证方联署的检查点。<span class=en lang=en>No cosigned checkpoint for this month yet.</span></p>")
    out.append('<div class="sign"><div>报账员签字</div><div>民主理财小组签字</div><div>村务监督委员会签字</div><div>镇农经站审核</div></div>')
    out.append(f"<p>{escape(doc['header']['complaint_channel'])}</p>")
    footer = f"账簿 {escape(doc['ledger'])} · 格式 {escape(doc['format'])}"
    if sha256:
        footer += f" · 本公开JSON的SHA-256: {escape(sha256)}"
    out.append(f"<footer>{footer}</footer></body></html>")
    return "\n".join(out) + "\n"


def _statements_html(s: dict[str, Any]) -> list[str]:
    out = [_heading("五、会计报表及台账", "Statements and registers (quarter / year end)")]
    out.append("<h3>资产负债表 <span class=en lang=en>balance sheet</span></h3>")
    out.append(
        _table(
            [("项目", "Line", False), ("年初数", "Start of year", True), ("期末数", "End of period", True)],
            [([escape(line["name"]), _money(line["start"]), _money(line["end"])],
              "total" if "total" in line["key"] else "") for line in s["balance_sheet"]["lines"]],
        )
    )
    out.append("<h3>收益及收益分配表 <span class=en lang=en>income and distribution</span></h3>")
    out.append(
        _table(
            [("项目", "Line", False), ("本年累计", "Year to date", True)],
            [([escape(line["name"]), _money(line["amount"])], "") for line in s["income_statement"]["lines"]],
        )
    )
    out.append("<h3>债权债务明细表 <span class=en lang=en>claims and debts</span></h3>")
    out.append(
        _table(
            [("科目", "Account", False), ("单位/个人", "Party", False), ("性质", "Kind", False),
             ("金额", "Amount", True), ("发生日", "Since", False), ("账龄", "Age", False)],
            [([escape(c["account"]), escape(c["detail"]), escape(c["kind"]), _money(c["amount"]), escape(c["since"]),
               escape(c["age"])], "") for c in s["claims"]],
        )
    )
    out.append("<h3>合同台账 <span class=en lang=en>contracts register</span></h3>")
    out.append(
        _table(
            [("合同号", "Contract", False), ("标的", "Subject", False), ("对方", "Counterparty", False),
             ("期限", "Term", False), ("年费", "Annual fee", True), ("本年已收", "Received this year", True),
             ("累计应收", "Due to date", True), ("欠收", "Outstanding", True), ("未到期", "Future", True)],
            [([escape(c["contract_no"]), escape(c["subject"]), escape(c["counterparty"]),
               escape(f"{c['start']} 至 {c['end']}"), _money(c["annual_fee"]), _money(c["received_this_year"]),
               _money(c["due_to_date"]), _money(c["outstanding"]), _money(c["future_instalments"])], "")
             for c in s["contracts"]],
        )
    )
    out.append("<h3>固定资产台账 <span class=en lang=en>fixed assets register</span></h3>")
    out.append(
        _table(
            [("编号", "No.", False), ("名称", "Name", False), ("用途", "Use", False), ("原值", "Cost", True),
             ("累计折旧", "Depreciation", True), ("净值", "Net", True), ("出租合同", "Leases", False)],
            [([escape(a["asset_no"]), escape(a["name"]), escape(a["use"]), _money(a["cost"]),
               _money(a["accumulated_depreciation"]), _money(a["net_value"]), escape(a["leases"])], "")
             for a in s["assets"]],
        )
    )
    return out


def csv_tables(doc: dict[str, Any]) -> dict[str, str]:
    """One CSV per table, keyed by the file-name suffix."""
    ie = doc["income_expense"]
    tables = {
        "income-expense": _csv(
            ["序号", "日期", "凭证号", "摘要", "收入金额", "支出金额", "对方单位/个人", "资金来源/用途", "审批及民主程序", "经办审批", "备注"],
            [[line["seq"], line["date"], line["voucher_no"], line["summary"], line["income"] or "", line["expense"] or "",
              line["counterparty"], line["accounts"], line["approval"], line["approvers"], line["remark"]] for line in ie["lines"]]
            + [["", "", "", "合计", ie["total_income"], ie["total_expense"], "", "", "", "", ie["total_remark"]]],
        ),
        "funds": _csv(
            ["范围", "项目", "上期结存", "本期收入", "本期支出", "划入", "划出", "本期结存"],
            [[scope, r["name"], r["opening"], r["income"], r["expense"], r["transfer_in"], r["transfer_out"], r["closing"]]
             for scope, block in (("本月", doc["funds"]), ("本年累计", doc["funds_year_to_date"])) for r in block["rows"]],
        ),
    }
    s = doc["statements"]
    if s:
        tables["balance-sheet"] = _csv(["项目", "年初数", "期末数"], [[x["name"], x["start"], x["end"]] for x in s["balance_sheet"]["lines"]])
        tables["income-statement"] = _csv(["项目", "本年累计"], [[x["name"], x["amount"]] for x in s["income_statement"]["lines"]])
        tables["claims"] = _csv(
            ["科目", "单位/个人", "性质", "金额", "发生日", "账龄天数"],
            [[c["account"], c["detail"], c["kind"], c["amount"], c["since"], c["age_days"]] for c in s["claims"]],
        )
        tables["contracts"] = _csv(list(s["contracts"][0]) if s["contracts"] else ["contract_no"], [list(c.values()) for c in s["contracts"]])
        tables["assets"] = _csv(list(s["assets"][0]) if s["assets"] else ["asset_no"], [list(a.values()) for a in s["assets"]])
    if doc["special"]["works"]:
        tables["special-works"] = _csv(
            ["决策编号", "项目", "预算", "已支付", "未支付"],
            [[w["decision"], w["title"], w["budget"], w["paid"], w["unpaid"]] for w in doc["special"]["works"]],
        )
    if doc["special"]["contracting"]:
        tables["special-contracting"] = _csv(
            list(doc["special"]["contracting"][0]), [list(c.values()) for c in doc["special"]["contracting"]]
        )
    return tables


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return out.getvalue()

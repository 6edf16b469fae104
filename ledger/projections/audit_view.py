"""The departure audit view (离任经济责任审计) as files: printable HTML in Chinese with English alongside, JSON and
CSV; and the `village-ledger audit` command."""

from __future__ import annotations

import csv
import io
import json
from html import escape
from pathlib import Path

from ..domain.money import format_amount
from .audit import (
    RULE_NAMES,
    SEVERITY_ZH,
    Audit,
    Finding,
    audit_official,
    read_audit_input,
    yuan,
)

SEVERITY_EN = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low", "INFO": "info", "PASS": "pass"}
CSV_HEADER = ["no", "rule", "rule_zh", "check", "severity", "object", "evidence_seq", "message_zh", "message_en"]


def build_audit(app, official_id: str) -> Audit:
    """The audit of one official's tenure over the ledger's log as it stands now."""
    return audit_official(read_audit_input(app), official_id, app.recorder.log_size())


def write_audit_view(app, official_id: str, out_dir: Path | str) -> list[Path]:
    """Write audit-<official>.html, .json and .csv into out_dir (created if needed); returns the paths written."""
    return write_audit_files(build_audit(app, official_id), out_dir)


def write_audit_files(audit: Audit, out_dir: Path | str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"audit-{audit.scope.official.official_id}"
    paths = [out / f"{stem}.html", out / f"{stem}.json", out / f"{stem}.csv"]
    for path, text in zip(paths, (render_html(audit), render_json(audit), render_csv(audit))):
        path.write_text(text, "utf-8")
    return paths


def audit_dict(audit: Audit) -> dict:
    scope = audit.scope
    return {
        "ledger": audit.origin,
        "name": audit.ledger_name,
        "log_size": audit.log_size,
        "official": {
            "official_id": scope.official.official_id, "name": scope.official.name, "roles": list(scope.official.roles),
            "term_start": scope.official.term_start.isoformat(),
            "term_end": scope.official.term_end.isoformat() if scope.official.term_end else None,
            "departed": scope.official.departed.isoformat() if scope.official.departed else None,
            "handover_date": scope.official.handover_date.isoformat() if scope.official.handover_date else None,
        },
        "window": {"start": scope.start.isoformat(), "end": scope.end.isoformat(), "as_of": scope.as_of.isoformat()},
        "summary": {
            "metrics": [
                {"key": m.key, "name_zh": m.name_zh, "name_en": m.name_en, "start": format_amount(m.start),
                 "end": format_amount(m.end), "change": format_amount(m.change)}
                for m in audit.summary.metrics
            ],
            "contracts": {
                "start": list(audit.summary.contracts_start), "end": list(audit.summary.contracts_end),
                "change": len(audit.summary.contracts_end) - len(audit.summary.contracts_start),
            },
        },
        "findings": [{"no": n, **f.to_dict()} for n, f in enumerate(audit.exceptions, 1)],
        "passes": [f.to_dict() for f in audit.passes],
        "checklist": [
            {"key": c.key, "title_zh": c.title_zh, "title_en": c.title_en, "detail_zh": c.detail_zh, "detail_en": c.detail_en}
            for c in audit.checklist
        ],
    }


def render_json(audit: Audit) -> str:
    return json.dumps(audit_dict(audit), ensure_ascii=False, indent=2) + "\n"


def render_csv(audit: Audit) -> str:
    """Findings numbered in order, then the passes (numbered '-')."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    rows = [(str(n), f) for n, f in enumerate(audit.exceptions, 1)] + [("-", f) for f in audit.passes]
    for no, f in rows:
        writer.writerow([no, f.rule, RULE_NAMES[f.rule][0], f.check, f.severity, f.object,
                         " ".join(map(str, f.evidence)), f.message_zh, f.message_en])
    return out.getvalue()


_STYLE = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #444; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; } th, td { border: 1px solid #666; padding: .3em .5em; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.en { color: #555; font-size: .85em; display: block; } .HIGH { color: #b00; font-weight: bold; }
.MEDIUM { color: #a60; font-weight: bold; } .INFO { color: #036; } .PASS { color: #070; }
.sign td { height: 3.5em; } @media print { body { margin: 1cm; } h2 { page-break-after: avoid; } }
"""


def _bi(zh: str, en: str) -> str:
    return f"{escape(zh)}<span class=\"en\">{escape(en)}</span>"


def _finding_row(no: str, f: Finding) -> str:
    zh, en = RULE_NAMES[f.rule]
    return (f"<tr><td>{escape(no)}</td><td>{escape(f.rule)} {_bi(zh, en)}</td>"
            f"<td class=\"{f.severity}\">{_bi(SEVERITY_ZH[f.severity], SEVERITY_EN[f.severity])}</td>"
            f"<td>{escape(f.object)}</td><td>{_bi(f.message_zh, f.message_en)}</td>"
            f"<td>{escape(' '.join(map(str, f.evidence)))}</td></tr>")


def render_html(audit: Audit) -> str:
    scope, o = audit.scope, audit.scope.official
    head = ("<tr><th>序号<span class=\"en\">No.</span></th><th>规则<span class=\"en\">Rule</span></th>"
            "<th>等级<span class=\"en\">Severity</span></th><th>对象<span class=\"en\">Object</span></th>"
            "<th>情况<span class=\"en\">Finding</span></th><th>日志序号<span class=\"en\">Log seq</span></th></tr>")
    metrics = "".join(
        f"<tr><td>{_bi(m.name_zh, m.name_en)}</td><td class=\"num\">{yuan(m.start)}</td>"
        f"<td class=\"num\">{yuan(m.end)}</td><td class=\"num\">{'+' if m.change > 0 else ''}{yuan(m.change)}</td></tr>"
        for m in audit.summary.metrics
    )
    s = audit.summary
    change = len(s.contracts_end) - len(s.contracts_start)
    metrics += (f"<tr><td>{_bi('有效合同', 'Contracts in force')}</td><td>{escape('、'.join(s.contracts_start) or '无')}</td>"
                f"<td>{escape('、'.join(s.contracts_end) or '无')}</td><td class=\"num\">{change:+d}</td></tr>")
    findings = "".join(_finding_row(str(n), f) for n, f in enumerate(audit.exceptions, 1)) or (
        f"<tr><td colspan=\"6\">{_bi('未发现异常', 'no exceptions')}</td></tr>")
    passes = "".join(_finding_row("—", f) for f in audit.passes)
    checklist = "".join(
        f"<tr><td>{n}</td><td>{_bi(c.title_zh, c.title_en)}</td><td>{_bi(c.detail_zh, c.detail_en)}</td><td>☐</td></tr>"
        for n, c in enumerate(audit.checklist, 1)
    )
    roles = "、".join(o.roles)
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{escape(audit.ledger_name)} {escape(o.name)} 离任经济责任审计</title><style>{_STYLE}</style></head>
<body>
<h1>{escape(audit.ledger_name)} 离任经济责任审计视图<span class="en">Departure economic-responsibility audit view</span></h1>
<p>被审计人 / Official: {escape(o.name)}({escape(roles)}); 任期 / term {o.term_start.isoformat()} – {o.term_end.isoformat() if o.term_end else '—'};
离任 / departed {o.departed.isoformat() if o.departed else '—'}; 交接日期 / handover {o.handover_date.isoformat() if o.handover_date else '—'}</p>
<p>审计区间 / window: {scope.start.isoformat()} – {scope.end.isoformat()}; 账簿 / ledger {escape(audit.origin)}, 日志条目 / log entries 0–{audit.log_size - 1}</p>
<h2>一、财务状况变化<span class="en">Summary</span></h2>
<table><tr><th>项目<span class="en">Metric</span></th><th>期初 {scope.start.isoformat()}<span class="en">Start</span></th>
<th>期末 {scope.end.isoformat()}<span class="en">End</span></th><th>增减<span class="en">Change</span></th></tr>{metrics}</table>
<h2>二、异常事项(按严重程度)<span class="en">Exceptions, by severity</span></h2>
<table>{head}{findings}</table>
<h2>三、已检查未发现问题的事项<span class="en">Checks passed</span></h2>
<table>{head}{passes}</table>
<h2>四、离任交接清单<span class="en">Handover checklist</span></h2>
<table><tr><th>序号<span class="en">No.</span></th><th>移交事项<span class="en">Item</span></th><th>内容<span class="en">Detail</span></th><th>核对<span class="en">Checked</span></th></tr>{checklist}</table>
<table class="sign"><tr><th>移交人<span class="en">Outgoing</span></th><th>接交人<span class="en">Incoming</span></th><th>监交人<span class="en">Supervisor</span></th></tr>
<tr><td>{escape(o.name)}</td><td></td><td></td></tr></table>
<p>本清册一式三份,移交人、接交人各执一份,一份存档。<span class="en">Three signed copies: one each for the outgoing and incoming officials, one for the file.</span></p>
</body></html>
"""


def cmd_audit(args) -> int:
    from ..cli import EXIT_OK, UsageError, open_ledger

    with open_ledger(args.ledger) as app:
        try:
            audit = build_audit(app, args.official)
        except LookupError as exc:
            raise UsageError(str(exc)) from None
    try:
        paths = write_audit_files(audit, args.out)
    except OSError as exc:
        raise UsageError(f"cannot write the audit view into {args.out}: {exc.strerror}") from None
    counts: dict[str, int] = {}
    for f in audit.exceptions:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    tally = ", ".join(f"{severity} {n}" for severity, n in counts.items())
    print(f"已生成审计视图 / audit view written: {', '.join(str(p) for p in paths)}")
    print(f"异常 {len(audit.exceptions)} 项, 通过 {len(audit.passes)} 项 / {len(audit.exceptions)} findings"
          + (f" ({tally})" if tally else "") + f", {len(audit.passes)} checks passed")
    return EXIT_OK


def register(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="departure audit view of an official (离任审计): HTML, JSON, CSV")
    audit.add_argument("ledger", help="SQLite file path or postgresql:// URL")
    audit.add_argument("--official", required=True, help="official id, as in the journal's official record")
    audit.add_argument("--out", required=True, help="directory for audit-<official>.html/.json/.csv")
    audit.set_defaults(func=cmd_audit)

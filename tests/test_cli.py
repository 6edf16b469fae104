"""The `village-ledger` command line, end to end in a temporary directory."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from conftest import FIXTURES
from ledger.crypto.keys import load_key_file
from ledger.cli import EXIT_FINDING, EXIT_OK, EXIT_USAGE, main, verify_main
from ledger.domain.journal import journal_json_schema

ORIGIN = "qinghe.example/ledger"


@pytest.fixture
def keys(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_KEY_PASSPHRASE", "test passphrase")
    clerk, log = tmp_path / "clerk.key", tmp_path / "log.key"
    assert main(["keys", "new", ORIGIN + "/signer/clerk", "--role", "signer", "--out", str(clerk)]) == EXIT_OK
    assert main(["keys", "new", ORIGIN, "--role", "log", "--out", str(log)]) == EXIT_OK
    return clerk, log


@pytest.fixture
def policy(tmp_path, keys):
    """The auditor's trust: this ledger's log key; no witnesses yet, so no cosignature quorum."""
    _, log = keys
    path = tmp_path / "policy.txt"
    path.write_text(f"log {load_key_file(log, 'test passphrase').vkey()}\nquorum none\n", "utf-8")
    return path


@pytest.fixture
def ledger_file(tmp_path, keys, capsys):
    clerk, log = keys
    path = tmp_path / "qinghe.sqlite"
    code = main(["init", str(path), "--origin", ORIGIN, "--name", "清河村", "--chart", "2023",
                 "--key", str(clerk), "--log-key", str(log)])
    assert code == EXIT_OK
    assert capsys.readouterr().out == f"已创建账簿 / created ledger {ORIGIN} (清河村, 制度2023) in {path}\n"
    return path


def test_import_report_and_verify(ledger_file, keys, policy, capsys):
    clerk, _ = keys
    assert main(["import", str(ledger_file), str(FIXTURES / "qinghe_2025.jsonl"), "--key", str(clerk)]) == EXIT_OK
    assert capsys.readouterr().out == "导入 116 条, 跳过(已导入) 0 条 / imported 116, skipped 0 already imported\n"
    assert main(["report", str(ledger_file), "trial-balance", "--at", "2025-12-31"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert (report["ledger"], report["total_debit"], report["total_credit"]) == (ORIGIN, "847770.00", "847770.00")
    assert main(["verify", str(ledger_file), "--policy", str(policy)]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"intact: 344 entries of {ORIGIN}, head ")


def test_commands_close_the_ledger_they_open(ledger_location, keys, tmp_path, capsys):
    """main() may run in a host's process: a PostgreSQL ledger's pool threads must not outlive the command."""
    clerk, log = keys
    threads = threading.active_count()
    commands = [
        ["init", ledger_location, "--origin", ORIGIN, "--name", "清河村", "--chart", "2023", "--key", str(clerk)],
        ["import", ledger_location, str(FIXTURES / "qinghe_2025.jsonl"), "--key", str(clerk)],
        ["report", ledger_location, "trial-balance", "--at", "2025-12-31"],
        ["disclose", ledger_location, "--month", "2025-07", "--out", str(tmp_path / "disclosure"), "--jobs", "1"],
        ["audit", ledger_location, "--official", "liu", "--out", str(tmp_path / "audit")],
        ["audit", ledger_location, "--official", "nobody", "--out", str(tmp_path / "audit")],
    ]
    codes = []
    for argv in commands:
        codes.append(main(argv))
        assert threading.active_count() == threads, argv[0]
    assert codes == [EXIT_OK] * 5 + [EXIT_USAGE]


def test_verify_exits_1_with_one_line_per_finding(ledger_file, keys, policy, capsys):
    clerk, _ = keys
    main(["import", str(ledger_file), str(FIXTURES / "qinghe_2025.jsonl"), "--key", str(clerk)])
    with sqlite3.connect(ledger_file) as conn:
        conn.execute("DROP TRIGGER ledger_log_refuse_delete")
        conn.execute("DELETE FROM ledger_log WHERE seq = 100")
    capsys.readouterr()
    assert verify_main([str(ledger_file), "--policy", str(policy)]) == EXIT_FINDING
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["101", "seq"], ["101", "prev"], ["-", "event"]]


def test_refused_journal_line_exits_1_and_names_the_line(ledger_file, keys, tmp_path, capsys):
    clerk, _ = keys
    journal = tmp_path / "bad.jsonl"
    journal.write_text('{"id": "a", "type": "opening_balances", "date": "2025-01-01", "lines": '
                       '[{"account": "101", "debit": "1.00"}, {"account": "301", "credit": "2.00"}]}\n', "utf-8")
    assert main(["import", str(ledger_file), str(journal), "--key", str(clerk)]) == EXIT_FINDING
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{journal}:1 (id a): lines: voucher does not balance: debit 1.00 != credit 2.00"
    )


def test_usage_errors_exit_2(tmp_path, keys, policy, capsys):
    clerk, log = keys
    assert main(["verify", str(tmp_path / "missing.sqlite"), "--policy", str(policy)]) == EXIT_USAGE
    assert main(["import", str(tmp_path / "x.sqlite"), str(tmp_path / "none.jsonl"), "--key", str(clerk)]) == EXIT_USAGE
    assert main(["init", str(tmp_path / "y.sqlite"), "--origin", ORIGIN, "--name", "x", "--chart", "2023",
                 "--key", str(log)]) == EXIT_USAGE
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"village-ledger: cannot read {tmp_path / 'missing.sqlite'}: no such ledger file: {tmp_path / 'missing.sqlite'}",
        f"village-ledger: journal not found: {tmp_path / 'none.jsonl'}",
        f"village-ledger: {log} holds a 'log' key; this command needs a 'signer' key",
    ]


def test_wrong_passphrase_is_a_usage_error(keys, tmp_path, monkeypatch, capsys):
    clerk, _ = keys
    monkeypatch.setenv("LEDGER_KEY_PASSPHRASE", "not the passphrase")
    code = main(["init", str(tmp_path / "z.sqlite"), "--origin", ORIGIN, "--name", "x", "--chart", "2023", "--key", str(clerk)])
    assert code == EXIT_USAGE
    assert capsys.readouterr().err.startswith(f"village-ledger: {clerk}: ")


def test_published_schema_is_the_generated_one():
    published = Path(__file__).parents[1] / "ledger" / "schema" / "journal.schema.json"
    assert json.loads(published.read_text("utf-8")) == journal_json_schema()


def test_demo_builds_verifies_and_reports(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path / "demo"), "--years", "2"]) == EXIT_OK
    out = capsys.readouterr().out
    demo = tmp_path / "demo"
    assert f"校验通过 / verified against {demo / 'policy.txt'}: intact:" in out
    assert "24 checkpoint(s) verified" in out  # one per month, each cosigned by both witnesses
    assert (demo / "disclosure" / "disclosure-2022-12.html").is_file()
    assert (demo / "audit" / "audit-O-001.html").is_file()
    # an auditor holding only the policy checks the exported bundle with the command line
    assert main(["verify", str(demo / "bundle"), "--policy", str(demo / "policy.txt")]) == EXIT_OK
    reports = sorted(p.name for p in (tmp_path / "demo" / "reports").iterdir())
    assert reports == sorted(
        f"{kind}-2022-12-31.{fmt}" for kind in ("trial-balance", "balance-sheet", "income-statement", "assets", "contracts")
        for fmt in ("json", "csv")
    )
    trial = json.loads((tmp_path / "demo" / "reports" / "trial-balance-2022-12-31.json").read_text("utf-8"))
    # the sample village is deterministic (seed 2025): its books close to the fen
    assert (trial["total_debit"], trial["total_credit"]) == ("1057390.27", "1057390.27")
    assert [(a["code"], a["debit"]) for a in trial["accounts"][:2]] == [("101", "273.75"), ("102", "206366.52")]

"""`village-ledger` command line. Exit codes: 0 done, 1 refused input or integrity finding, 2 usage or unreadable input."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store.application import LedgerApplication

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2

# Commands that live with their own layer: each module has `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = (
    "ledger.tlog_cli", "ledger.disclosure", "ledger.verify.commands", "ledger.export", "ledger.receipts",
    "ledger.projections.audit_view",
)


class UsageError(Exception):
    """Bad arguments or unreadable input: exit code 2."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def load_key(path: str, role: str = "signer"):
    from .crypto.keys import load_key_file, passphrase_from_env_or_prompt

    try:
        key = load_key_file(Path(path), passphrase_from_env_or_prompt())
    except FileNotFoundError:
        raise UsageError(f"key file not found: {path}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if key.role != role:
        raise UsageError(f"{path} holds a {key.role!r} key; this command needs a {role!r} key")
    return key


@contextmanager
def open_ledger(location: str, signer=None) -> Iterator[LedgerApplication]:
    """The ledger at location, closed when the command is done with it: main() may run in a host's process, where a
    PostgreSQL ledger's pool threads would outlive the command (and keep later work from forking)."""
    from .store.application import LedgerApplication

    try:
        app = LedgerApplication(location, signer=signer)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        yield app
    finally:
        app.close()


def cmd_keys_new(args) -> int:
    from .crypto.keys import generate_key_file, passphrase_from_env_or_prompt

    out = Path(args.out)
    if out.exists():
        raise UsageError(f"{out} exists; refusing to overwrite a key file")
    key = generate_key_file(args.name, args.role, out, passphrase_from_env_or_prompt(confirm=True))
    print(key.vkey())
    return EXIT_OK


def cmd_init(args) -> int:
    from .domain.policy import EXAMPLE_POLICY, PolicyFileError, load_policy_file

    policies = [EXAMPLE_POLICY]
    if args.policy:
        try:
            policies = load_policy_file(Path(args.policy))
        except PolicyFileError as exc:
            raise UsageError(str(exc)) from None
    if args.strict:
        policies = [p.model_copy(update={"strict": True}) for p in policies]
    key = load_key(args.key)
    log_public = load_key(args.log_key, role="log").public_key if args.log_key else None
    with open_ledger(args.ledger, key.signer) as app:
        app.create_ledger(
            origin=args.origin, name=args.name, chart=args.chart, policy=policies[0], log_public_key=log_public,
            holder=args.holder,
        )
        for later in policies[1:]:
            app.adopt_policy(later)
    print(f"已创建账簿 / created ledger {args.origin} ({args.name}, 制度{args.chart}) in {args.ledger}")
    return EXIT_OK


def cmd_import(args) -> int:
    from .importer import import_journal
    from .progress import ProgressBar

    journal = Path(args.journal)
    if not journal.is_file():
        raise UsageError(f"journal not found: {journal}")
    with open_ledger(args.ledger, load_key(args.key).signer) as app:
        bar = ProgressBar("importing / 导入", 0)
        result = import_journal(app, journal, batch_size=args.batch, progress=bar.update)
        bar.close()
    for problem in result.problems:
        print(problem, file=sys.stderr)
    print(f"导入 {result.applied} 条, 跳过(已导入) {result.skipped} 条 / imported {result.applied}, skipped {result.skipped} already imported")
    if result.problems:
        print(f"拒绝 / refused: {len(result.problems)} problem(s); nothing of a refused record was stored", file=sys.stderr)
        return EXIT_FINDING
    return EXIT_OK


def jobs_of(args) -> int:
    """The --jobs option: processes for work a long SQLite log is cut up for (default: all cores)."""
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    return args.jobs or os.cpu_count() or 1


def cmd_report(args) -> int:
    from .reports import render_report

    jobs = jobs_of(args)
    with open_ledger(args.ledger) as app:
        try:
            text = render_report(
                app, args.kind, at=args.at, fmt=args.format, account=args.account,
                include_closing=not args.before_close, jobs=jobs,
            )
        except LookupError as exc:
            raise UsageError(str(exc)) from None
    write_output(text, args.out)
    return EXIT_OK


def cmd_schema(args) -> int:
    from .domain.journal import journal_json_schema

    write_output(json.dumps(journal_json_schema(), ensure_ascii=False, indent=2) + "\n", args.out)
    return EXIT_OK


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.dir), years=args.years, seed=args.seed)
    return EXIT_OK


def write_output(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, "utf-8")
    else:
        sys.stdout.write(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="village-ledger", description="Tamper-evident books of a village collective (村集体三资账簿)")
    sub = parser.add_subparsers(dest="command", required=True)

    keys = sub.add_parser("keys", help="key files").add_subparsers(dest="keys_command", required=True)
    new = keys.add_parser("new", help="create an Ed25519 key file (passphrase from LEDGER_KEY_PASSPHRASE or a prompt)")
    new.add_argument("name")
    new.add_argument("--role", required=True, choices=["signer", "log", "witness"])
    new.add_argument("--out", required=True)
    new.set_defaults(func=cmd_keys_new)

    init = sub.add_parser("init", help="create a ledger (genesis registers the signer key, log key and policy)")
    init.add_argument("ledger", help="SQLite file path or postgresql:// URL (?schema=NAME)")
    init.add_argument("--origin", required=True)
    init.add_argument("--name", required=True)
    init.add_argument("--chart", required=True, choices=["2004", "2023"])
    init.add_argument("--policy", help="policy JSON: one policy or {\"policies\": [...]} of one jurisdiction (docs/audit.md)")
    init.add_argument("--strict", action="store_true", help="refuse payments whose approvals or prior decision steps are missing")
    init.add_argument("--key", required=True, help="signer key file")
    init.add_argument("--log-key", help="log (checkpoint) key file, registered at genesis")
    init.add_argument("--holder", help="official id holding the signer key")
    init.set_defaults(func=cmd_init)

    imp = sub.add_parser("import", help="append a JSON Lines journal")
    imp.add_argument("ledger")
    imp.add_argument("journal")
    imp.add_argument("--key", required=True, help="signer key file")
    imp.add_argument("--batch", type=int, default=200, help="records per transaction (each record stays atomic)")
    imp.set_defaults(func=cmd_import)

    report = sub.add_parser("report", help="trial balance and statements")
    report.add_argument("ledger")
    report.add_argument(
        "kind", choices=["trial-balance", "balance-sheet", "income-statement", "general-ledger", "assets", "contracts"]
    )
    report.add_argument("--at", type=_date, required=True)
    report.add_argument("--format", choices=["json", "csv"], default="json")
    report.add_argument("--account", help="account code (general-ledger)")
    report.add_argument("--before-close", action="store_true", help="leave out the year-end closing vouchers")
    report.add_argument("--jobs", type=int, help="processes summing a long SQLite log (trial balance; default: all cores)")
    report.add_argument("--out")
    report.set_defaults(func=cmd_report)

    schema = sub.add_parser("schema", help="print the journal JSON Schema")
    schema.add_argument("--out")
    schema.set_defaults(func=cmd_schema)

    demo = sub.add_parser("demo", help="build, verify and report a sample village over several years")
    demo.add_argument("--dir", default="demo-output")
    demo.add_argument("--years", type=int, default=5)
    demo.add_argument("--seed", type=int, default=2025)
    demo.set_defaults(func=cmd_demo)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .domain.validation import Rejected

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"village-ledger: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (Rejected, PermissionError) as exc:
        print(f"village-ledger: 拒绝 / refused: {exc}", file=sys.stderr)
        return EXIT_FINDING


def verify_main(argv: list[str] | None = None) -> int:
    return main(["verify", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())

"""`village-ledger disclose`: write a month's disclosure (财务公开) and, with the signer's key, publish it.

Publishing records `Disclosure.Published{period, published, sha256, checkpoint_size}` in the log. A month is
published once: the log already holds its hash, so a second publication is refused, and regenerating the month
later must give the same bytes (corrections appear in later months). Without a key the files are a draft, or, for
a month already published, a reproduction checked against the hash in the log.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from .checkpoints import cosigned_checkpoint_for_period
from .crypto.checkpoint import parse_checkpoint
from .crypto.logformat import EntrySigner, key_id
from .crypto.note import parse_note
from .domain.aggregates import Disclosure
from .domain.validation import Problem, Rejected
from .projections.disclosure import LedgerInfo, build_disclosure, canonical_json, document_sha256, period_bounds
from .projections.disclosure_render import csv_tables, render_html
from .projections.readmodel import ReadModel, open_read_model, update_read_model
from .store.application import LedgerApplication

MONTH_FORMAT = "YYYY-MM"


class DisclosureMismatch(RuntimeError):
    """A published month regenerated from the log no longer gives the published bytes."""


def ledger_info(app: LedgerApplication, on: date) -> LedgerInfo:
    ledger = app.ledger()
    return LedgerInfo(
        origin=ledger.origin,
        name=ledger.name,
        chart=ledger.chart,
        policy=ledger.policy_at(on),
        officials=tuple((o.name, tuple(o.roles), o.term_start, o.departed or o.term_end) for o in ledger.officials.values()),
    )


def check_month(month: str) -> str:
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit() or not 1 <= int(month[5:]) <= 12:
        raise ValueError(f"month must be {MONTH_FORMAT}, e.g. 2025-05: {month!r}")
    return month


def published_disclosure(app: LedgerApplication, month: str) -> Disclosure | None:
    try:
        return app.repository.get(app.id_of("disclosure", month))
    except AggregateNotFoundError:
        return None


def write_disclosure(
    app: LedgerApplication,
    month: str,
    out_dir: Path | str,
    signer: EntrySigner | None,
    *,
    published: date | None = None,
    read_model: ReadModel | None = None,
    jobs: int = 1,
) -> list[Path]:
    """Write the month's disclosure as JSON (the hashed canonical bytes), HTML and CSV files; returns their paths.

    With `signer`, publish it: the month must be closed and not yet published, and its hash goes into the log.
    `published` is the posting date (default: today, local time). The read model is brought up to date first, by
    `jobs` processes when much of the log is new to it (update_read_model).
    """
    check_month(month)
    start, end = period_bounds(month)
    existing = published_disclosure(app, month)
    try:
        closed = app.repository.get(app.id_of("period", month))
    except AggregateNotFoundError:
        closed = None
    if signer is not None:
        if existing is not None:
            raise Rejected([Problem("month", f"{month} 已公开 / the disclosure of {month} was already published "
                                             f"(sha256 {existing.sha256}); corrections go into a later month")])
        if closed is None or not closed.closed:
            raise Rejected([Problem("month", f"{month} 尚未结账 / period {month} is not closed; close it before publishing")])
        _check_signer(app, signer)
        if app.signer is None:
            raise PermissionError("publishing writes to the log: open the ledger with the signer's key")
    model = read_model or open_read_model(app)
    try:
        update_read_model(app, model, jobs=jobs)
        note = cosigned_checkpoint_for_period(app, month)
        size = parse_checkpoint(parse_note(note).text).size if note else None
        if existing is not None:
            events = [e for e in app.events.get(existing.id) if isinstance(e, Disclosure.Published)]
            on = events[0].published
        else:
            on = published or (date.today() if signer is not None else None)
        document = build_disclosure(model, ledger_info(app, end), month, published=on, checkpoint_note=note, checkpoint_size=size)
    finally:
        if read_model is None:
            model.close()
    digest = document_sha256(document)
    if existing is not None and digest != existing.sha256:
        raise DisclosureMismatch(
            f"{month}: regenerated disclosure hashes to {digest}, the log holds {existing.sha256} as published; "
            "the books of that month changed after publication"
        )
    if signer is not None:
        disclosure = Disclosure.create(
            app.id_of("disclosure", month), Disclosure.Published, period=month, published=on, sha256=digest,
            checkpoint_size=size,
        )
        app.save(disclosure, signer=signer)
    return _write_files(Path(out_dir), month, document, digest if (signer is not None or existing is not None) else None)


def _check_signer(app: LedgerApplication, signer: EntrySigner) -> None:
    kid = key_id(signer.name, signer.public_key_bytes).hex()
    if app.ledger().active_key(signer.name, kid, "signer") is None:
        raise Rejected([Problem("key", f"signer {signer.name}+{kid[:8]} is not a registered, unrevoked signer key of this ledger")])


def _write_files(out_dir: Path, month: str, document: dict[str, Any], digest: str | None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"disclosure-{month}"
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.html"]
    paths[0].write_bytes(canonical_json(document))
    paths[1].write_text(render_html(document, digest), "utf-8")
    for name, text in csv_tables(document).items():
        path = out_dir / f"{stem}-{name}.csv"
        # With a byte-order mark, because spreadsheet programs in village offices otherwise misread UTF-8 Chinese.
        path.write_text(text, "utf-8-sig")
        paths.append(path)
    return paths


def cmd_disclose(args: Any) -> int:
    from .cli import EXIT_OK, UsageError, jobs_of, load_key, open_ledger

    try:
        check_month(args.month)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    jobs = jobs_of(args)
    signer = load_key(args.key).signer if args.key else None
    read_model = None
    if args.read_model:
        try:
            read_model = ReadModel(args.read_model)
        except Exception as exc:  # an unreachable or malformed database location is a usage problem
            raise UsageError(f"read model {args.read_model}: {exc}") from None
    try:
        with open_ledger(args.ledger, signer) as app:
            paths = write_disclosure(
                app, args.month, Path(args.out), signer, published=args.date, read_model=read_model, jobs=jobs
            )
    except DisclosureMismatch as exc:
        raise Rejected([Problem("month", str(exc))]) from None
    finally:
        if read_model is not None:
            read_model.close()
    state = "已发布 / published" if signer else "草稿或复核 / draft or reproduction (nothing recorded)"
    print(f"{args.month} 财务公开 {state}:", file=sys.stderr)
    for path in paths:
        print(path)
    return EXIT_OK


def register(subparsers: Any) -> None:
    from .cli import _date

    parser = subparsers.add_parser("disclose", help="monthly financial disclosure (财务公开): HTML, JSON and CSV")
    parser.add_argument("ledger")
    parser.add_argument("--month", required=True, help=MONTH_FORMAT)
    parser.add_argument("--out", required=True, help="directory for the files")
    parser.add_argument("--key", help="signer key file: publish, recording the disclosure's SHA-256 in the log")
    parser.add_argument("--date", type=_date, help="publication date (default: today)")
    parser.add_argument("--read-model", help="read-model database (SQLite path or postgresql:// URL); default: the ledger's own")
    parser.add_argument("--jobs", type=int, help="processes projecting a long SQLite log into the read model (default: all cores)")
    parser.set_defaults(func=cmd_disclose)

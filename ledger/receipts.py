"""`village-ledger receipt LEDGER --seq N | --voucher NO --out FILE`: a payee's offline proof (format: ledger/verify/receipt.py).

The receipt proves the entry against the newest recorded checkpoint that covers it, so it carries the most
cosignatures the ledger has; a voucher is located by its posting entry (ledger/Voucher/Posted).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .crypto.checkpoint import parse_checkpoint
from .crypto.logformat import leaf_hash, parse_leaf
from .crypto.merkle import inclusion_proof, list_subtree_hash, root
from .crypto.note import parse_note
from .verify.chain import CHECKPOINT_TOPIC
from .verify.receipt import Receipt, format_receipt

VOUCHER_POSTED_TOPIC = "ledger/Voucher/Posted"


class ReceiptRefused(ValueError):
    """No receipt can be made (no such entry, no checkpoint covers it yet, or the store disagrees with the note)."""


def make_receipt(location: str, *, seq: int | None = None, voucher: str | None = None) -> Receipt:
    from .domain.model import load_state
    from .store.application import LedgerApplication

    if (seq is None) == (voucher is None):
        raise ReceiptRefused("give exactly one of seq and voucher")
    app = LedgerApplication(location)
    try:
        hashes: list[bytes] = []
        target = None
        newest_note: tuple[int, str] | None = None
        for record in app.recorder.read_log():
            hashes.append(leaf_hash(record.leaf))
            topic = parse_leaf(record.leaf).fields["topic"]
            if target is None and (
                record.seq == seq
                or (voucher is not None and topic == VOUCHER_POSTED_TOPIC and load_state(record.state)["voucher_no"] == voucher)
            ):
                target = record
            if topic == CHECKPOINT_TOPIC and target is not None:
                event = load_state(record.state)
                if event["size"] > target.seq and (newest_note is None or event["size"] >= newest_note[0]):
                    newest_note = (event["size"], event["note"])
        if target is None:
            what = f"seq {seq}" if seq is not None else f"voucher {voucher!r}"
            raise ReceiptRefused(f"{location} has no entry for {what}")
        if newest_note is None:
            raise ReceiptRefused(f"no recorded checkpoint covers seq {target.seq} yet; record and cosign one first")
        size, note = newest_note
        checkpoint = parse_checkpoint(parse_note(note).text)
        subtree = list_subtree_hash(hashes[:size])
        if root(hashes[:size]) != checkpoint.root_hash:
            raise ReceiptRefused(f"the checkpoint of size {size} does not match the stored log; run `village-ledger verify`")
        path = inclusion_proof(target.seq, size, subtree)
        return Receipt(target.seq, path, target.leaf, target.state, note)
    finally:
        app.close()


def cmd_receipt(args) -> int:
    from .cli import EXIT_FINDING, EXIT_OK

    try:
        receipt = make_receipt(args.ledger, seq=args.seq, voucher=args.voucher)
    except ReceiptRefused as exc:
        print(f"village-ledger: {exc}", file=sys.stderr)
        return EXIT_FINDING
    Path(args.out).write_text(format_receipt(receipt), "utf-8", newline="\n")
    print(f"receipt for seq {receipt.index} ({len(receipt.path)} proof hashes) written to {args.out}")
    return EXIT_OK


def register(subparsers) -> None:
    receipt = subparsers.add_parser("receipt", help="write a c2sp.org/tlog-proof receipt for one entry or voucher")
    receipt.add_argument("ledger")
    which = receipt.add_mutually_exclusive_group(required=True)
    which.add_argument("--seq", type=int, help="log entry seq")
    which.add_argument("--voucher", help="voucher number (its posting entry)")
    receipt.add_argument("--out", required=True, help="receipt file (conventionally *.tlog-proof)")
    receipt.set_defaults(func=cmd_receipt)

"""The verifier's commands: `verify` (also `ledger-verify`) and `verify-receipt`.

Exit codes: 0 intact, 1 at least one finding (one line per finding on stdout: seq, check, detail, tab-separated),
2 usage or unreadable input. Imports only the verifier and ledger.crypto, like the rest of ledger.verify.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..progress import ProgressBar
from .chain import verify_source
from .policy import PolicyError, load_policy
from .receipt import ReceiptError, verify_receipt

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> int:
    print(f"village-ledger: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_verify(args) -> int:
    if args.jobs is not None and args.jobs < 1:
        return _fail(f"--jobs must be at least 1, got {args.jobs}")
    if args.chain_only and args.state:
        return _fail("--chain-only does not check signatures and cannot be combined with --state")
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        return _fail(str(exc))
    bar = ProgressBar("校验日志 / verifying", 0)
    try:
        result = verify_source(
            args.source, policy=policy, checkpoints=args.checkpoint, state_path=args.state, jobs=args.jobs,
            progress=bar.update, signatures=not args.chain_only,
        )
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read {args.source}: {exc}")
    finally:
        bar.close()
    for finding in result.findings:
        print(finding)
    print(result.summary(), file=sys.stderr)
    return EXIT_OK if result.intact else EXIT_FINDING


def cmd_verify_receipt(args) -> int:
    try:
        policy = load_policy(args.policy)
        text = Path(args.receipt).read_text("utf-8")
        findings = verify_receipt(text, policy)
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.receipt}: {exc}")
    except (PolicyError, ReceiptError) as exc:
        return _fail(f"{args.receipt}: {exc}" if isinstance(exc, ReceiptError) else str(exc))
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} finding(s): the receipt does not prove its entry", file=sys.stderr)
        return EXIT_FINDING
    print("receipt valid: the entry is in a checkpoint that meets the policy", file=sys.stderr)
    return EXIT_OK


def register(subparsers) -> None:
    verify = subparsers.add_parser("verify", help="verify every entry, the tree and the checkpoints of a ledger or bundle")
    verify.add_argument("source", help="SQLite file, postgresql:// URL (?schema=NAME) or bundle directory")
    verify.add_argument(
        "--policy", required=True, help="trust policy: log key, witnesses, quorum (sigsum syntax with C2SP vkeys)"
    )
    verify.add_argument("--checkpoint", action="append", default=[], metavar="NOTE", help="a published checkpoint note (repeatable)")
    verify.add_argument("--state", help="incremental mode: resume after the checkpoint this file remembers, then update it")
    verify.add_argument("--jobs", type=int, help="processes verifying (default: all cores)")
    verify.add_argument(
        "--chain-only", action="store_true",
        help="every check except the entries' Ed25519 signatures (reported as 'signatures not checked')",
    )
    verify.set_defaults(func=cmd_verify)

    receipt = subparsers.add_parser("verify-receipt", help="check a c2sp.org/tlog-proof receipt offline")
    receipt.add_argument("receipt")
    receipt.add_argument("--policy", required=True)
    receipt.set_defaults(func=cmd_verify_receipt)

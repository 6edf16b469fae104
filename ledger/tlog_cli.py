"""`village-ledger checkpoint` and `village-ledger witness init|cosign|serve` (TLOG.md §5, §6.4)."""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from .cli import EXIT_FINDING, EXIT_OK, UsageError, load_key, open_ledger, write_output


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None


def _read_proof(path: str) -> tuple[bytes, ...]:
    """One base64 hash per line, as in an add-checkpoint body; an empty file is the empty proof."""
    proof = []
    for number, line in enumerate(_read_text(path, "proof file").splitlines(), start=1):
        try:
            node = base64.b64decode(line.strip().encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise UsageError(f"{path}:{number}: not a base64 hash") from None
        if len(node) != 32:
            raise UsageError(f"{path}:{number}: a proof hash is 32 bytes, got {len(node)}")
        proof.append(node)
    return tuple(proof)


def cmd_checkpoint(args) -> int:
    from .checkpoints import CheckpointFlowError, checkpoint_and_record
    from .witness import HTTPWitness, Witness, WitnessStateError

    keys, states = args.witness_key or [], args.witness_state or []
    if len(keys) != len(states):
        raise UsageError(f"give one --witness-state per --witness-key ({len(keys)} keys, {len(states)} state files)")
    log_key = load_key(args.key, role="log")
    with open_ledger(args.ledger, load_key(args.signer_key).signer) as app:
        try:
            offline = [Witness(state, load_key(key, role="witness")) for key, state in zip(keys, states)]
            witnesses = [*(HTTPWitness(url) for url in args.witness or []), *offline]
            note = checkpoint_and_record(
                app, log_key, witnesses, period=args.period, quorum=args.quorum,
                witness_vkeys=[*(args.witness_vkey or []), *(w.vkey for w in offline)],
            )
        except (WitnessStateError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        except CheckpointFlowError as exc:
            print(f"village-ledger: 检查点未记录 / checkpoint not recorded: {exc}", file=sys.stderr)
            return EXIT_FINDING
    write_output(note, args.out)
    return EXIT_OK


def cmd_witness_init(args) -> int:
    from .witness import WitnessStateError, init_witness_state

    published = _read_text(args.checkpoint, "checkpoint") if args.checkpoint else None
    try:
        size, root = init_witness_state(args.state, args.origin, args.log_vkey, published)
    except WitnessStateError as exc:
        raise UsageError(str(exc)) from None
    print(f"见证方开始跟踪 / witness follows {args.origin} from size {size}, root {base64.b64encode(root).decode()}")
    return EXIT_OK


def _witness(args):
    from .witness import Witness, WitnessStateError

    try:
        return Witness(args.state, load_key(args.key, role="witness"))
    except WitnessStateError as exc:
        raise UsageError(str(exc)) from None


def cmd_witness_cosign(args) -> int:
    from .witness import OldSizeMismatch, WitnessError

    witness = _witness(args)
    note = _read_text(args.note, "checkpoint note")
    try:
        lines = witness.cosign(note, args.old, _read_proof(args.proof_file))
    except OldSizeMismatch as conflict:
        print(f"见证拒绝 / witness refused (409): {conflict}; retry with --old {conflict.size}", file=sys.stderr)
        return EXIT_FINDING
    except WitnessError as refusal:
        print(f"见证拒绝 / witness refused ({int(refusal.status)}): {refusal}", file=sys.stderr)
        return EXIT_FINDING
    write_output(lines, args.out)
    return EXIT_OK


def cmd_witness_serve(args) -> int:
    witness = _witness(args)
    try:
        server = witness.server(args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    host, port = server.server_address[:2]
    print(f"见证服务 / witness {witness.name} serving POST http://{host}:{port}/add-checkpoint", flush=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _period(text: str) -> str:
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit() or not 1 <= int(text[5:]) <= 12:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}")
    return text


def register(sub) -> None:
    cp = sub.add_parser("checkpoint", help="sign the log's checkpoint, gather witness cosignatures, record and print it")
    cp.add_argument("ledger")
    cp.add_argument("--key", required=True, help="the ledger's log key file (role log, named after the origin)")
    cp.add_argument("--signer-key", required=True, help="signer key file that records the checkpoint in the log")
    cp.add_argument("--witness", action="append", metavar="URL", help="HTTP witness submission prefix (repeatable)")
    cp.add_argument("--witness-key", action="append", metavar="FILE", help="offline witness key file (repeatable)")
    cp.add_argument("--witness-state", action="append", metavar="FILE", help="its state file, one per --witness-key")
    cp.add_argument("--witness-vkey", action="append", metavar="VKEY", help="HTTP witness vkey its cosignature must verify under")
    cp.add_argument("--period", type=_period, help="the closed month (YYYY-MM) this checkpoint seals")
    cp.add_argument("--quorum", type=int, help="witnesses that must cosign (default: all)")
    cp.add_argument("--out", help="write the cosigned note here instead of standard output")
    cp.set_defaults(func=cmd_checkpoint)

    witness = sub.add_parser("witness", help="a witness keeping its own state (C2SP tlog-witness)")
    wsub = witness.add_subparsers(dest="witness_command", required=True)
    init = wsub.add_parser("init", help="start following a log (from size 0, or from a published checkpoint)")
    init.add_argument("--state", required=True, help="the witness's SQLite state file (created if missing)")
    init.add_argument("--log-vkey", required=True, action="append", help="the log's verifier key (repeatable)")
    init.add_argument("--origin", required=True)
    init.add_argument("--checkpoint", metavar="NOTEFILE", help="a published checkpoint of the log to start from")
    init.set_defaults(func=cmd_witness_init)

    cosign = wsub.add_parser("cosign", help="check and cosign a checkpoint offline; prints the cosignature line")
    cosign.add_argument("note", metavar="NOTEFILE")
    cosign.add_argument("--state", required=True)
    cosign.add_argument("--key", required=True, help="witness key file (role witness)")
    cosign.add_argument("--old", type=int, required=True, help="the size this witness last cosigned (0 at first)")
    cosign.add_argument("--proof-file", required=True, help="consistency proof: one base64 hash per line")
    cosign.add_argument("--out")
    cosign.set_defaults(func=cmd_witness_cosign)

    serve = wsub.add_parser("serve", help="serve POST /add-checkpoint over HTTP")
    serve.add_argument("--state", required=True)
    serve.add_argument("--key", required=True, help="witness key file (role witness)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, required=True)
    serve.set_defaults(func=cmd_witness_serve)

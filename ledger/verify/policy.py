"""The auditor's trust policy: which log key signs checkpoints and which witnesses must cosign them.

The syntax is sigsum's policy file (https://git.glasklarteknik.se/sigsum/sigsum-go, doc/policy.md) with C2SP
verifier keys in place of sigsum's hex public keys. One statement per line; `#` starts a comment that runs to the
end of the line; blank lines are ignored; fields are separated by spaces or tabs:

    log KEY [URL]                       KEY: vkey of type 0x01 (Ed25519); its key name is the log's origin
    witness NAME KEY [URL]              KEY: vkey of type 0x04 (cosignature/v1); NAME: a policy-local name
    group NAME k|any|all MEMBER...      MEMBER: a witness or group defined on an earlier line; k: 1..#members
    quorum NAME|none                    exactly once; `none` means no cosignature is required

Names (witnesses and groups share one namespace) are defined once, on a line before any line that uses them.
At least one `log` line is required. A checkpoint meets the policy when the log key whose name equals the
checkpoint's origin signed it and the quorum group is satisfied by the witnesses whose cosignatures verify.
Errors name the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..crypto.checkpoint import CosignatureV1Verifier
from ..crypto.keys import COSIGNATURE_V1, ED25519, VkeyError, check_key_name, parse_vkey
from ..crypto.note import Ed25519Verifier

QUORUM_NONE = "none"


class PolicyError(ValueError):
    """A policy file that does not parse; the message names the file and line."""


@dataclass(frozen=True)
class Log:
    verifier: Ed25519Verifier
    url: str | None = None


@dataclass(frozen=True)
class Witness:
    name: str
    verifier: CosignatureV1Verifier
    url: str | None = None


@dataclass(frozen=True)
class Group:
    name: str
    threshold: int
    members: tuple[str, ...]
    # The threshold as written, so that format() gives back `any` and `all`.
    spelling: str


@dataclass(frozen=True)
class TrustPolicy:
    logs: tuple[Log, ...]
    witnesses: tuple[Witness, ...] = ()
    groups: tuple[Group, ...] = ()
    quorum: str = QUORUM_NONE

    def log_verifiers(self, origin: str) -> tuple[Ed25519Verifier, ...]:
        return tuple(log.verifier for log in self.logs if log.verifier.name == origin)

    @property
    def witness_verifiers(self) -> tuple[CosignatureV1Verifier, ...]:
        return tuple(w.verifier for w in self.witnesses)

    def witnesses_named(self, names: Iterable[tuple[str, bytes]]) -> set[str]:
        """Policy names of the witnesses whose (key name, key ID) appear among verified cosignatures."""
        handles = set(names)
        return {w.name for w in self.witnesses if (w.verifier.name, w.verifier.key_id) in handles}

    def quorum_met(self, cosigned: set[str]) -> bool:
        """True when the quorum group (or `none`) is satisfied by the named witnesses."""
        if self.quorum == QUORUM_NONE:
            return True
        groups = {g.name: g for g in self.groups}

        def satisfied(name: str) -> bool:
            group = groups.get(name)
            if group is None:
                return name in cosigned
            return sum(satisfied(member) for member in group.members) >= group.threshold

        return satisfied(self.quorum)

    def format(self) -> str:
        lines = []
        for log in self.logs:
            lines.append(" ".join(filter(None, ("log", log.verifier.vkey, log.url))))
        for w in self.witnesses:
            lines.append(" ".join(filter(None, ("witness", w.name, w.verifier.vkey, w.url))))
        for g in self.groups:
            lines.append(" ".join(("group", g.name, g.spelling, *g.members)))
        lines.append(f"quorum {self.quorum}")
        return "".join(line + "\n" for line in lines)


def parse_policy(text: str, *, where: str = "policy") -> TrustPolicy:
    """Parse policy text; `where` names the file in error messages."""
    logs: list[Log] = []
    witnesses: list[Witness] = []
    groups: list[Group] = []
    defined: set[str] = set()
    quorum: str | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0]
        fields = line.split()
        if not fields:
            continue

        def fail(message: str, number: int = number) -> PolicyError:
            return PolicyError(f"{where}:{number}: {message}")

        keyword, args = fields[0], fields[1:]
        if keyword == "log":
            if len(args) not in (1, 2):
                raise fail("expected `log KEY [URL]`")
            logs.append(Log(_verifier(args[0], ED25519, fail), args[1] if len(args) == 2 else None))
        elif keyword == "witness":
            if len(args) not in (2, 3):
                raise fail("expected `witness NAME KEY [URL]`")
            name = _new_name(args[0], defined, fail)
            witnesses.append(Witness(name, _verifier(args[1], COSIGNATURE_V1, fail), args[2] if len(args) == 3 else None))
        elif keyword == "group":
            if len(args) < 3:
                raise fail("expected `group NAME k|any|all MEMBER...`")
            name, spelling, members = args[0], args[1], tuple(args[2:])
            _new_name(name, defined, fail)
            for member in members:
                if member not in defined or member == name:
                    raise fail(f"group member {member!r} is not a witness or group defined on an earlier line")
            if len(set(members)) != len(members):
                raise fail(f"group {name!r} lists a member twice")
            if spelling == "any":
                threshold = 1
            elif spelling == "all":
                threshold = len(members)
            elif spelling.isdigit() and spelling == str(int(spelling)) and 1 <= int(spelling) <= len(members):
                threshold = int(spelling)
            else:
                raise fail(f"group threshold {spelling!r} must be any, all or a number from 1 to {len(members)}")
            groups.append(Group(name, threshold, members, spelling))
        elif keyword == "quorum":
            if len(args) != 1:
                raise fail("expected `quorum NAME|none`")
            if quorum is not None:
                raise fail("a second quorum line; the policy has exactly one")
            if args[0] != QUORUM_NONE and args[0] not in defined:
                raise fail(f"quorum {args[0]!r} is not a witness or group defined on an earlier line")
            quorum = args[0]
        else:
            raise fail(f"unknown statement {keyword!r} (expected log, witness, group or quorum)")
    if not logs:
        raise PolicyError(f"{where}: no `log KEY` line; a policy must name the log key")
    if quorum is None:
        raise PolicyError(f"{where}: no `quorum NAME|none` line")
    return TrustPolicy(tuple(logs), tuple(witnesses), tuple(groups), quorum)


def load_policy(path: str | Path) -> TrustPolicy:
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc}") from None
    return parse_policy(text, where=str(path))


def _new_name(name: str, defined: set[str], fail) -> str:
    if name == QUORUM_NONE:
        raise fail(f"{QUORUM_NONE!r} is reserved and cannot name a witness or group")
    if name in defined:
        raise fail(f"name {name!r} is already defined")
    try:
        check_key_name(name)
    except VkeyError as exc:
        raise fail(f"bad name: {exc}") from None
    defined.add(name)
    return name


def _verifier(vkey: str, signature_type: int, fail):
    try:
        parsed = parse_vkey(vkey)
    except VkeyError as exc:
        raise fail(str(exc)) from None
    if parsed.signature_type != signature_type:
        kind = "log keys are type 0x01 (Ed25519)" if signature_type == ED25519 else "witness keys are type 0x04 (cosignature/v1)"
        raise fail(f"vkey {vkey!r} has type 0x{parsed.signature_type:02x}; {kind}")
    cls = Ed25519Verifier if signature_type == ED25519 else CosignatureV1Verifier
    return cls(parsed.name, parsed.public_key)

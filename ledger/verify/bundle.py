"""keys.txt of an auditor bundle: one line per key the log ever registered, written by export, checked by verify.

    <vkey> <role> <first>..<last> [holder=<official id>]

vkey is the C2SP verifier key (type 0x04 for witness keys, 0x01 otherwise); the key may sign entries (or
checkpoints) with seq first..last inclusive; `first..` means not revoked. Lines starting with `#` are comments.
"""

from __future__ import annotations

from ..crypto.keys import ED25519, ROLE_SIGNATURE_TYPE, format_vkey

KEYS_COMMENT = "# vkey role first..last [holder=ID]: the seqs the key is valid for (first.. = not revoked)"


def key_line(name: str, public_key: bytes, role: str, valid_from: int, revoked_at: int | None, holder: str | None) -> str:
    vkey = format_vkey(name, ROLE_SIGNATURE_TYPE.get(role, ED25519), public_key)
    fields = [vkey, role, f"{valid_from}..{'' if revoked_at is None else revoked_at}"]
    if holder:
        fields.append(f"holder={holder}")
    return " ".join(fields)


def listed_keys(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip() and not line.startswith("#")]

"""Ed25519 key files, C2SP verifier keys ("vkeys") and the registration check for public keys.

A key file is UTF-8 text. Name, role and public vkey are in clear so that an operator can see which key a
file holds without the passphrase; the private key is PKCS#8, encrypted with the passphrase:

    village-ledger key file v1
    name: <key name>
    role: signer | log | witness
    vkey: <name>+<hex8 key id>+<base64(type || public key)>
    -----BEGIN ENCRYPTED PRIVATE KEY-----
    ...
    -----END ENCRYPTED PRIVATE KEY-----

Loading checks that the clear vkey belongs to the encrypted private key, so an edited header is caught.
"""

from __future__ import annotations

import base64
import getpass
import os
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from ledger.crypto.logformat import EntrySigner, key_id

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
ED25519_PUBLIC_KEY_SIZE = 32
# Both supported types carry a raw 32-byte Ed25519 public key; they differ only in what is signed.
SUPPORTED_SIGNATURE_TYPES = frozenset({ED25519, COSIGNATURE_V1})

ROLE_SIGNER = "signer"
ROLE_LOG = "log"
ROLE_WITNESS = "witness"
# A witness key only ever makes cosignatures (type 0x04); event and checkpoint keys make plain Ed25519 signatures.
ROLE_SIGNATURE_TYPE = {ROLE_SIGNER: ED25519, ROLE_LOG: ED25519, ROLE_WITNESS: COSIGNATURE_V1}

KEY_FILE_HEADER = "village-ledger key file v1"
PASSPHRASE_ENV = "LEDGER_KEY_PASSPHRASE"


class KeyMaterialError(ValueError):
    """Base class of the errors below."""


class KeyFileError(KeyMaterialError):
    """A key file that cannot be written, read, decrypted or trusted."""


class VkeyError(KeyMaterialError):
    """A verifier-key string that does not follow C2SP signed-note rules."""


class WeakPublicKeyError(KeyMaterialError):
    """A public key that must not be registered (low order, mixed order or non-canonical)."""


def check_key_name(name: str) -> None:
    """C2SP signed-note key names: non-empty, no Unicode whitespace, no '+'."""
    if not name:
        raise VkeyError("key name is empty")
    if "+" in name:
        raise VkeyError(f"key name {name!r} contains '+'")
    if any(ch.isspace() for ch in name):
        raise VkeyError(f"key name {name!r} contains whitespace")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise VkeyError(f"key name {name!r} contains a control character")


class VerifierKey(NamedTuple):
    """A parsed vkey: who signs, with which key ID, signature type and raw public key."""

    name: str
    key_id: bytes
    signature_type: int
    public_key: bytes


def format_vkey(name: str, signature_type: int, public_key: bytes) -> str:
    """name+hex8(key id)+base64(type || public key)."""
    check_key_name(name)
    _check_type_and_key(signature_type, public_key)
    kid = key_id(name, public_key, signature_type)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([signature_type]) + public_key).decode('ascii')}"


def parse_vkey(text: str) -> VerifierKey:
    """Strict vkey parser: split on the first two '+' (base64 may contain '+'), recompute and compare the key ID."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise VkeyError(f"vkey {text!r} must have the form name+keyid+key")
    name, kid_hex, key_b64 = parts
    check_key_name(name)
    if len(kid_hex) != 8 or any(ch not in "0123456789abcdef" for ch in kid_hex):
        raise VkeyError(f"vkey key ID {kid_hex!r} must be 8 lowercase hex digits")
    try:
        blob = base64.b64decode(key_b64.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise VkeyError(f"vkey key {key_b64!r} is not standard base64") from exc
    if not blob or base64.b64encode(blob).decode("ascii") != key_b64:
        raise VkeyError(f"vkey key {key_b64!r} is not canonical base64")
    signature_type, public_key = blob[0], blob[1:]
    _check_type_and_key(signature_type, public_key)
    expected = key_id(name, public_key, signature_type)
    if expected.hex() != kid_hex:
        raise VkeyError(f"vkey key ID {kid_hex} does not match the key (expected {expected.hex()})")
    return VerifierKey(name, expected, signature_type, public_key)


def _check_type_and_key(signature_type: int, public_key: bytes) -> None:
    if signature_type not in SUPPORTED_SIGNATURE_TYPES:
        raise VkeyError(f"unsupported signature type 0x{signature_type:02x} (supported: 0x01 Ed25519, 0x04 cosignature/v1)")
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise VkeyError(f"Ed25519 public key must be {ED25519_PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")


# --- edwards25519 arithmetic, only for the registration check (never for signing or verifying) ---

_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493  # order of the prime-order subgroup
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_IDENTITY = (0, 1)

# The 8 low-order points of edwards25519 and their 6 non-canonical alternative encodings, as listed in
# C2SP/CCTV ed25519/README.md ("Low-order edwards25519 point encodings", commit 1e3d2860d46e…, also cited by
# TLOG.md §7). Kept as documentation and as a cross-check: the arithmetic below derives the same set, and
# unlike a blocklist it also rejects keys with a low-order component.
LOW_ORDER_ENCODINGS = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # same point, y > p
        "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # same point, y > p
        "0100000000000000000000000000000000000000000000000000000000000000",  # order 1 (identity)
        "0100000000000000000000000000000000000000000000000000000000000080",  # identity, x = -0
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # identity, y > p
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # identity, x = -0, y > p
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # order 2, x = -0
    )
)


class _Decoded(NamedTuple):
    point: tuple[int, int]
    canonical: bool


def _decode_point(data: bytes) -> _Decoded | None:
    """RFC 8032 §5.1.3 decoding, except that y >= p and x = -0 are reported instead of refused."""
    if len(data) != ED25519_PUBLIC_KEY_SIZE:
        raise WeakPublicKeyError(f"Ed25519 public key must be {ED25519_PUBLIC_KEY_SIZE} bytes, got {len(data)}")
    encoded = int.from_bytes(data, "little")
    sign = encoded >> 255
    y_raw = encoded & ((1 << 255) - 1)
    y = y_raw % _P
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (v * x * x - u) % _P != 0:
        return None
    canonical = y_raw < _P and not (x == 0 and sign == 1)
    if x & 1 != sign:
        x = _P - x if x else 0
    return _Decoded((x, y), canonical)


def _add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    # Complete twisted Edwards addition (a = -1, d non-square), so doubling needs no special case.
    (x1, y1), (x2, y2) = p1, p2
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, -1, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, _P) % _P
    return (x3, y3)


def _multiply(scalar: int, point: tuple[int, int]) -> tuple[int, int]:
    result = _IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def is_low_order_point(public_key: bytes) -> bool:
    """True iff the 32 bytes (canonical or not) encode a point P with [8]P = identity."""
    decoded = _decode_point(public_key)
    return decoded is not None and _multiply(8, decoded.point) == _IDENTITY


def check_registrable_public_key(public_key: bytes) -> None:
    """Refuse keys an honest Ed25519 key generator never produces.

    Verifiers disagree on signatures under such keys (TLOG.md §7: pyca/cryptography and Go accept some that
    libsodium rejects), so a key holder could craft signatures that split auditors. Honest keys are
    canonically encoded multiples of the base point, i.e. in the prime-order subgroup; this is the
    check libsodium's crypto_core_ed25519_is_valid_point makes.
    """
    decoded = _decode_point(public_key)
    if decoded is None:
        raise WeakPublicKeyError(f"public key {public_key.hex()} is not an edwards25519 point")
    if not decoded.canonical:
        raise WeakPublicKeyError(f"public key {public_key.hex()} is a non-canonical encoding (y >= p or x = -0)")
    if _multiply(8, decoded.point) == _IDENTITY:
        raise WeakPublicKeyError(f"public key {public_key.hex()} is a low-order (small-order) point")
    if _multiply(_L, decoded.point) != _IDENTITY:
        raise WeakPublicKeyError(
            f"public key {public_key.hex()} has a low-order component (not in the prime-order subgroup)"
        )


# --- key files ---


@dataclass(frozen=True)
class KeyFile:
    """A decrypted key file: the key's name, role and Ed25519 key pair."""

    name: str
    role: str
    private_key: Ed25519PrivateKey
    public_key: bytes

    @property
    def signature_type(self) -> int:
        return ROLE_SIGNATURE_TYPE[self.role]

    @property
    def signer(self) -> EntrySigner:
        """The log-entry signer; only event-signer keys may sign entries (one key per role, TLOG.md §6.1)."""
        if self.role != ROLE_SIGNER:
            raise KeyFileError(f"key {self.name!r} has role {self.role!r}; only {ROLE_SIGNER!r} keys sign entries")
        return EntrySigner(self.name, self.private_key)

    def vkey(self, signature_type: int | None = None) -> str:
        """The C2SP verifier key; the type defaults to the role's (0x04 for witnesses, else 0x01)."""
        return format_vkey(self.name, self.signature_type if signature_type is None else signature_type, self.public_key)


def _passphrase_bytes(passphrase: bytes | str) -> bytes:
    data = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    if not data:
        raise KeyFileError("the key passphrase must not be empty")
    return data


def _check_role(role: str) -> None:
    if role not in ROLE_SIGNATURE_TYPE:
        raise KeyFileError(f"unknown key role {role!r} (expected one of {sorted(ROLE_SIGNATURE_TYPE)})")


def generate_key_file(name: str, role: str, path: str | os.PathLike, passphrase: bytes | str) -> KeyFile:
    """Create a new key and write it to path (owner-only permissions); never overwrites an existing file."""
    check_key_name(name)
    _check_role(role)
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pem = private_key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(_passphrase_bytes(passphrase))
    ).decode("ascii")
    key = KeyFile(name=name, role=role, private_key=private_key, public_key=public_key)
    text = f"{KEY_FILE_HEADER}\nname: {name}\nrole: {role}\nvkey: {key.vkey()}\n{pem}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"key file {os.fspath(path)} already exists; refusing to overwrite it") from exc
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    return key


def load_key_file(path: str | os.PathLike, passphrase: bytes | str) -> KeyFile:
    """Read and decrypt a key file; checks that the clear name, role and vkey match the private key."""
    where = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{where}: cannot read the key file: {exc}") from exc
    lines = text.split("\n", 4)
    if len(lines) != 5 or lines[0] != KEY_FILE_HEADER:
        raise KeyFileError(f"{where}: not a {KEY_FILE_HEADER!r}")
    fields = {}
    for line, label in zip(lines[1:4], ("name", "role", "vkey")):
        prefix = f"{label}: "
        if not line.startswith(prefix):
            raise KeyFileError(f"{where}: expected a {label!r} line, got {line!r}")
        fields[label] = line[len(prefix):]
    name, role = fields["name"], fields["role"]
    _check_role(role)
    try:
        vkey = parse_vkey(fields["vkey"])
    except VkeyError as exc:
        raise KeyFileError(f"{where}: {exc}") from exc
    if vkey.name != name or vkey.signature_type != ROLE_SIGNATURE_TYPE[role]:
        raise KeyFileError(f"{where}: vkey does not match the name {name!r} and role {role!r}")
    try:
        private_key = load_pem_private_key(lines[4].encode("ascii"), password=_passphrase_bytes(passphrase))
    except ValueError as exc:
        raise KeyFileError(f"{where}: cannot decrypt the private key (wrong passphrase or damaged file)") from exc
    except TypeError as exc:
        raise KeyFileError(f"{where}: the private key is not encrypted") from exc
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyFileError(f"{where}: the private key is not Ed25519")
    public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if public_key != vkey.public_key:
        raise KeyFileError(f"{where}: the vkey in clear does not belong to the encrypted private key")
    return KeyFile(name=name, role=role, private_key=private_key, public_key=public_key)


def passphrase_from_env_or_prompt(prompt: str = "Key passphrase: ", *, confirm: bool = False) -> bytes:
    """LEDGER_KEY_PASSPHRASE if set, else ask on the terminal; fails rather than block without a terminal."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return _passphrase_bytes(from_env)
    if not sys.stdin.isatty():
        raise KeyFileError(f"no key passphrase: set {PASSPHRASE_ENV} or run in a terminal")
    entered = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat passphrase: ") != entered:
        raise KeyFileError("the two passphrases differ")
    return _passphrase_bytes(entered)

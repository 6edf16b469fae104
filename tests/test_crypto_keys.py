"""Key files: round trip, passphrases, tampering, roles."""

from __future__ import annotations

import ast
import io
import stat
import sys
from pathlib import Path

import pytest

from ledger.crypto import keys
from ledger.crypto.keys import (
    KeyFileError,
    generate_key_file,
    load_key_file,
    parse_vkey,
    passphrase_from_env_or_prompt,
)
from ledger.crypto.logformat import signer_label

NAME = "ledger.example-county.gov/village/330106001007/v1/signer/clerk"


def test_round_trip(tmp_path):
    path = tmp_path / "clerk.key"
    created = generate_key_file(NAME, "signer", path, "correct horse")
    loaded = load_key_file(path, b"correct horse")
    assert (loaded.name, loaded.role, loaded.public_key) == (NAME, "signer", created.public_key)
    assert loaded.signer.label == signer_label(NAME, created.public_key)
    assert loaded.signer.sign(b"{}") == created.signer.sign(b"{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_shows_name_role_and_vkey_in_clear(tmp_path):
    path = tmp_path / "log.key"
    key = generate_key_file("ledger.example/v1", "log", path, "pw")
    lines = path.read_text().split("\n")
    assert lines[:4] == ["village-ledger key file v1", "name: ledger.example/v1", "role: log", f"vkey: {key.vkey()}"]
    assert lines[4] == "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    parsed = parse_vkey(key.vkey())
    assert (parsed.name, parsed.signature_type, parsed.public_key) == ("ledger.example/v1", 0x01, key.public_key)


def test_witness_vkey_defaults_to_cosignature_type(tmp_path):
    key = generate_key_file("witness.example/2026", "witness", tmp_path / "w.key", "pw")
    assert parse_vkey(key.vkey()).signature_type == 0x04
    assert key.vkey().split("+")[2].startswith("B")
    assert parse_vkey(key.vkey(0x01)).signature_type == 0x01


def test_wrong_passphrase_is_a_clear_error(tmp_path):
    path = tmp_path / "clerk.key"
    generate_key_file(NAME, "signer", path, "right")
    with pytest.raises(KeyFileError, match="cannot decrypt the private key \\(wrong passphrase or damaged file\\)"):
        load_key_file(path, "wrong")


def test_empty_passphrase_is_refused(tmp_path):
    with pytest.raises(KeyFileError, match="passphrase must not be empty"):
        generate_key_file(NAME, "signer", tmp_path / "k", "")


def test_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "clerk.key"
    generate_key_file(NAME, "signer", path, "pw")
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite it"):
        generate_key_file(NAME, "signer", path, "pw")
    assert path.read_bytes() == before


def test_edited_clear_header_is_detected(tmp_path):
    first, second = tmp_path / "a.key", tmp_path / "b.key"
    generate_key_file(NAME, "signer", first, "pw")
    other = generate_key_file(NAME, "signer", second, "pw")
    lines = first.read_text().split("\n")
    lines[3] = f"vkey: {other.vkey()}"
    first.write_text("\n".join(lines))
    with pytest.raises(KeyFileError, match="the vkey in clear does not belong to the encrypted private key"):
        load_key_file(first, "pw")


def test_role_change_in_header_is_detected(tmp_path):
    path = tmp_path / "log.key"
    generate_key_file("ledger.example/v1", "log", path, "pw")
    path.write_text(path.read_text().replace("role: log", "role: witness"))
    with pytest.raises(KeyFileError, match="vkey does not match the name 'ledger.example/v1' and role 'witness'"):
        load_key_file(path, "pw")


def test_unknown_role_and_bad_name_are_refused(tmp_path):
    with pytest.raises(KeyFileError, match="unknown key role 'auditor'"):
        generate_key_file(NAME, "auditor", tmp_path / "k", "pw")
    with pytest.raises(keys.VkeyError, match="contains whitespace"):
        generate_key_file("two words", "signer", tmp_path / "k", "pw")
    with pytest.raises(keys.VkeyError, match="contains '\\+'"):
        generate_key_file("a+b", "signer", tmp_path / "k", "pw")


def test_not_a_key_file(tmp_path):
    path = tmp_path / "x"
    path.write_text("hello\n")
    with pytest.raises(KeyFileError, match="not a 'village-ledger key file v1'"):
        load_key_file(path, "pw")


def test_only_signer_keys_sign_entries(tmp_path):
    key = generate_key_file("ledger.example/v1", "log", tmp_path / "log.key", "pw")
    with pytest.raises(KeyFileError, match="has role 'log'; only 'signer' keys sign entries"):
        key.signer


def test_passphrase_from_env(monkeypatch):
    monkeypatch.setenv("LEDGER_KEY_PASSPHRASE", "from env")
    assert passphrase_from_env_or_prompt() == b"from env"


def test_passphrase_without_env_or_terminal_fails(monkeypatch):
    monkeypatch.delenv("LEDGER_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(KeyFileError, match="set LEDGER_KEY_PASSPHRASE or run in a terminal"):
        passphrase_from_env_or_prompt()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_passphrase_prompt_with_confirmation(monkeypatch):
    monkeypatch.delenv("LEDGER_KEY_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin", _Terminal())
    answers = iter(["typed", "typed", "typed", "other"])
    monkeypatch.setattr(keys.getpass, "getpass", lambda prompt: next(answers))
    assert passphrase_from_env_or_prompt(confirm=True) == b"typed"
    with pytest.raises(KeyFileError, match="the two passphrases differ"):
        passphrase_from_env_or_prompt(confirm=True)


def test_crypto_layer_imports_only_stdlib_cryptography_and_itself():
    # The auditor's verifier depends on ledger.crypto, so it must not pull in the code that writes the books.
    crypto_dir = Path(keys.__file__).parent
    for source in sorted(crypto_dir.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                allowed = top in sys.stdlib_module_names or top == "cryptography" or module.startswith("ledger.crypto")
                assert allowed, f"{source.name} imports {module}"

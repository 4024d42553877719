from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ryze.common.crypto import CryptoError, SecretBox, generate_key, load_or_create_key_file


def test_round_trip_binds_associated_data() -> None:
    box = SecretBox.from_strings([generate_key()])
    sealed = box.encrypt("cw-secret-token", "row-1")
    assert "cw-secret-token" not in sealed
    assert box.decrypt(sealed, "row-1") == "cw-secret-token"
    with pytest.raises(CryptoError, match="authentication"):
        box.decrypt(sealed, "row-2")


def test_each_encryption_uses_a_fresh_nonce() -> None:
    box = SecretBox.from_strings([generate_key()])
    assert box.encrypt("same", "a") != box.encrypt("same", "a")


def test_tampered_ciphertext_is_refused() -> None:
    box = SecretBox.from_strings([generate_key()])
    sealed = box.encrypt("token", "row")
    prefix, kid, blob = sealed.split(":", 2)
    flipped = blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
    with pytest.raises(CryptoError):
        box.decrypt(f"{prefix}:{kid}:{flipped}", "row")
    with pytest.raises(CryptoError, match="malformed"):
        box.decrypt("garbage", "row")


def test_rotation_decrypts_old_and_encrypts_with_newest() -> None:
    old, new = generate_key(), generate_key()
    sealed_old = SecretBox.from_strings([old]).encrypt("token", "row")
    rotated = SecretBox.from_strings([new, old])
    assert rotated.decrypt(sealed_old, "row") == "token"
    assert rotated.needs_rotation(sealed_old)
    sealed_new = rotated.encrypt("token", "row")
    assert not rotated.needs_rotation(sealed_new)
    with pytest.raises(CryptoError, match="not configured"):
        SecretBox.from_strings([old]).decrypt(sealed_new, "row")


def test_bad_keys_are_rejected() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        SecretBox.from_strings(["c2hvcnQ="])
    with pytest.raises(CryptoError, match="base64"):
        SecretBox.from_strings(["not base64!!"])
    with pytest.raises(CryptoError, match="no encryption key"):
        SecretBox.from_strings([])


def test_key_file_is_created_once_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "encryption.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key_file(path) == first
    box = SecretBox.from_setting("", path)
    assert box.decrypt(box.encrypt("x", "y"), "y") == "x"

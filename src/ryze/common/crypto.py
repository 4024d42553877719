"""AES-256-GCM for secrets at rest.

Stored form: ``v1:<key id>:<base64(nonce || ciphertext || tag)>``. The key id lets an operator
rotate keys: new values are encrypted with the newest key, old ones still decrypt with any
configured key. Callers pass *associated data* (for example the row id), so a ciphertext copied
to another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ryze.common.files import private_dir

log = logging.getLogger(__name__)

_PREFIX = "v1"
_NONCE_BYTES = 12


class CryptoError(Exception):
    """A value could not be decrypted: unknown key, tampered or malformed ciphertext."""


def generate_key() -> str:
    """A new random 256-bit key, base64-encoded (what ``ryze keygen`` prints)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("encryption key is not valid base64") from exc
    if len(raw) != 32:
        raise CryptoError(f"encryption key must be 32 bytes, got {len(raw)}")
    return raw


def key_id(raw: bytes) -> str:
    """Short, stable, non-secret identifier of a key (first 8 hex chars of its SHA-256)."""
    return hashlib.sha256(raw).hexdigest()[:8]


@dataclass(frozen=True)
class SecretBox:
    """Encrypts with the first key, decrypts with any of them."""

    keys: tuple[bytes, ...]

    @classmethod
    def from_strings(cls, keys: list[str] | tuple[str, ...]) -> SecretBox:
        """Keys as base64 strings, newest first (``ENCRYPTION_KEY=new,old``)."""
        decoded = tuple(_decode_key(k) for k in keys if k.strip())
        if not decoded:
            raise CryptoError("no encryption key configured")
        return cls(decoded)

    @classmethod
    def from_setting(cls, setting: str, key_file: Path) -> SecretBox:
        """The configured keys, or the embedded default: a key file created once with mode 0600."""
        if setting.strip():
            return cls.from_strings(setting.split(","))
        return cls.from_strings([load_or_create_key_file(key_file)])

    @property
    def current_key_id(self) -> str:
        return key_id(self.keys[0])

    def encrypt(self, plaintext: str, associated_data: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.keys[0]).encrypt(nonce, plaintext.encode(), associated_data.encode())
        blob = base64.b64encode(nonce + sealed).decode()
        return f"{_PREFIX}:{key_id(self.keys[0])}:{blob}"

    def decrypt(self, stored: str, associated_data: str) -> str:
        try:
            prefix, kid, blob = stored.split(":", 2)
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise CryptoError("malformed ciphertext") from exc
        if prefix != _PREFIX or len(raw) < _NONCE_BYTES + 16:
            raise CryptoError("malformed ciphertext")
        candidates = [k for k in self.keys if key_id(k) == kid]
        if not candidates:
            raise CryptoError(f"ciphertext was encrypted with key {kid}, which is not configured")
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for key in candidates:
            try:
                return AESGCM(key).decrypt(nonce, sealed, associated_data.encode()).decode()
            except InvalidTag:
                continue
        raise CryptoError("ciphertext failed authentication (tampered, or bound to another record)")

    def needs_rotation(self, stored: str) -> bool:
        """True when ``stored`` was not encrypted with the newest key."""
        return not stored.startswith(f"{_PREFIX}:{self.current_key_id}:")


def load_or_create_key_file(path: Path) -> str:
    """Read the key file, creating it (0600) on first use. Embedded default only."""
    if path.exists():
        return path.read_text().strip()
    private_dir(path.parent)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.warning(
        "no ENCRYPTION_KEY set: generated a key file; back it up, secrets are unreadable without it",
        extra={"key_file": str(path)},
    )
    return key

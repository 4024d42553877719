"""Token generation and hashing. Tokens are stored as SHA-256 hex; only hashes are looked up."""

from __future__ import annotations

import hashlib
import secrets


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_account_token() -> str:
    return "acc_" + secrets.token_urlsafe(32)


def new_instance_token() -> str:
    return secrets.token_urlsafe(32)

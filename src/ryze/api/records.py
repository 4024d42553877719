"""Plain values services hand around (decoupled from ORM rows and sessions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    id: str
    account_id: str
    name: str
    token: str  # the TokenInstance (decrypted); never log it
    state: str
    number_jid: str | None
    profile_name: str | None
    config: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str  # WhatsApp message id
    chat: str
    sender: str
    from_me: bool
    timestamp: datetime
    kind: str
    text: str = ""
    source: str = "contact"
    media_mimetype: str | None = None
    media_file_name: str | None = None
    media_size: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)  # the published WAMessage

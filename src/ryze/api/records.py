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
    # The send receipt: what the event bus's log writers committed in the transaction that stored
    # this row (e.g. the Chatwoot module's stored command result). Set only on the record returned
    # by the call that stored it; empty on a record read back from the store.
    logged: tuple[Any, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class StoreReceipt:
    """What ``MessageStore.add`` did: whether the message was new, and the log writers' items
    committed with it (empty when it was already stored)."""

    new: bool
    logged: tuple[Any, ...] = ()

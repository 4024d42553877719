"""The module's view of the server settings, plus the budgets the docs fix (60 s / 10 s / 30 s).

Budgets are fields so tests can shorten them; production always uses the documented values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class BridgeSettings(Protocol):
    """The part of ``ryze.api.settings.ApiSettings`` this module reads."""

    @property
    def bridge_url(self) -> str: ...

    @property
    def bridge_token(self) -> str: ...

    @property
    def bridge_internal_url(self) -> str: ...


@dataclass(frozen=True)
class ChatwootConfig:
    bridge_url: str
    bridge_token: str = field(repr=False)  # a secret: never in a repr, a log line or a traceback
    internal_url: str  # BRIDGE_INTERNAL_RYZEAPI_URL (defaults to BASE_URL): sent to the bridge
    activate_timeout: float = 60.0  # the documented `set` budget, and what its 504 says
    # Extra wait for the bridge's answer: it spends up to activate_timeout on Chatwoot, then
    # answers with its classified 504; our own time-out only fires when the bridge itself hangs.
    activate_grace: float = 5.0
    status_timeout: float = 10.0
    delete_timeout: float = 30.0
    # Link tuning. The window bounds how many events are sent but not yet acked per link, so a
    # slow bridge costs at most `window` events of memory; the rest wait in the database.
    window: int = 256
    ping_interval: float = 20.0
    resume_timeout: float = 30.0
    max_concurrent_commands: int = 64

    @property
    def enabled(self) -> bool:
        return bool(self.bridge_url.strip() and self.bridge_token.strip())

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> ChatwootConfig:
        return cls(
            bridge_url=(settings.bridge_url or "").strip().rstrip("/"),
            bridge_token=(settings.bridge_token or "").strip(),
            internal_url=(settings.bridge_internal_url or "").strip().rstrip("/"),
        )

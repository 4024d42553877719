"""Constants, helpers and the shared core of the emulated Rails behaviour."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import views
from ..events import EventBus, PendingEvent
from ..state import (
    JSON,
    Conversation,
    Message,
    Store,
    now,
)
from ..views import INBOX_SETTING_DEFAULTS, iso

# No start anchor: Chatwoot's `/\+[1-9]\d{1,14}\z/` only checks how the string ends.
E164 = re.compile(r"\+[1-9]\d{1,14}\Z")
DEVISE_EMAIL = re.compile(r"\A[^@\s]+@[^@\s]+\Z")
CONTENT_LIMIT = 150_000
WEBHOOK_URL_LIMIT = 2048
DELETED_CONTENT = "This message was deleted"
CONTENT_TYPES = (
    "text",
    "input_text",
    "input_textarea",
    "input_email",
    "input_select",
    "cards",
    "form",
    "article",
    "incoming_email",
    "input_csat",
    "integrations",
    "sticker",
    "voice_call",
)
INBOX_SETTING_KEYS = tuple(INBOX_SETTING_DEFAULTS)
_IMAGE = {"image/jpeg", "image/jpg", "image/png", "image/gif", "image/bmp", "image/webp"}
_VIDEO = {"video/ogg", "video/mp4", "video/webm", "video/quicktime"}

# Conversation attributes whose change fires conversation_updated (§8).
_WATCHED = (
    "team_id",
    "assignee_id",
    "status",
    "snoozed_until",
    "custom_attributes",
    "waiting_since",
    "first_reply_created_at",
    "priority",
)


def file_type_for(content_type: str) -> str:
    """Attachment file_type inference of `Messages::MessageBuilder` (§6 table)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype in _IMAGE:
        return "image"
    if ctype in _VIDEO:
        return "video"
    if ctype.startswith("audio/"):
        return "audio"
    return "file"


@dataclass
class Settings:
    message_per_minute_limit: int = 200
    # False: behave like Chatwoot before 4.13, whose API channels have no `secret` column (no
    # `secret` in the inbox JSON, no reset_secret route, unsigned webhooks: lib/webhooks/trigger.rb
    # signs only when the channel has a secret). Applies to inboxes created from then on.
    webhook_signing: bool = True


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def str_or_none(value: Any) -> str | None:
    return None if blank(value) else str(value)


def parse_time(value: Any) -> float | None:
    """`snoozed_until`: unix seconds or an ISO string, like `DateTime.parse`/`Time.at`."""
    if blank(value):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class InboxLimitReached(Exception):
    """usage_limits[:inboxes] reached: 402."""


class NotAuthorized(Exception):
    """A Pundit denial inside an action: 401."""


class SourceNotUnique(Exception):
    """ConversationsController rescues RecordNotUnique as 422 "source_id should be unique"."""


class Core:
    """State and the after-commit event helpers every part of the behaviour shares."""

    def __init__(self, store: Store, bus: EventBus, settings: Settings, base_url: Callable[[], str]) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        # attachment links in webhook payloads use the emulator's public URL
        self.base_url = base_url

    def _touch(self, conv: Conversation, changes: dict[str, tuple[Any, Any]]) -> None:
        previous = conv.updated_at
        conv.updated_at = now()
        changes["updated_at"] = (iso(previous), iso(conv.updated_at))

    def _conv_webhook(self, conv: Conversation) -> JSON:
        return views.conversation_webhook(self.store, self.base_url(), conv)

    def _emit_conversation(
        self, event: str, conv: Conversation, changed: dict[str, tuple[Any, Any]] | None = None
    ) -> None:
        if (
            event == "conversation_updated"
            and changed is not None
            and not any(k in changed for k in _WATCHED)
        ):
            return
        snapshot = (
            [{k: {"previous_value": v[0], "current_value": v[1]}} for k, v in changed.items()]
            if changed is not None
            else None
        )

        def build() -> JSON:
            body: JSON = {"event": event, **self._conv_webhook(conv)}
            if event != "conversation_created":
                # conversation_status_changed reads `status_change` after commit: always nil.
                body["changed_attributes"] = snapshot
            return body

        self.bus.emit(PendingEvent(event, conv.inbox_id, conv.id, None, build))

    def _emit_message(self, event: str, msg: Message) -> None:
        if msg.message_type == 2:
            return  # activity messages never reach webhooks

        def build() -> JSON:
            return {"event": event, **views.message_webhook(self.store, self.base_url(), msg)}

        self.bus.emit(PendingEvent(event, msg.inbox_id, msg.conversation_pk, msg.id, build))


def status_activity(status: str, user_name: str | None) -> str:
    who = user_name or "System"
    return {
        "resolved": f"Conversation was marked resolved by {who}",
        "open": f"Conversation was reopened by {who}",
        "pending": f"Conversation was marked as pending by {who}",
        "snoozed": f"Conversation was snoozed by {who}",
    }[status]

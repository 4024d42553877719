"""Which history messages an integration imports, and how their original time is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ryze.protocol import WAMessage


def sent_at(message: WAMessage) -> datetime | None:
    """The message's WhatsApp timestamp (RFC 3339), or None when it cannot be read."""
    try:
        value = datetime.fromisoformat(message.timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def within(message: WAMessage, days: int, *, now: datetime | None = None) -> bool:
    """Whether a history message is inside the last ``days`` days (0 = the import is off). A
    message whose time cannot be read is imported: better shown than silently dropped."""
    if days <= 0:
        return False
    when = sent_at(message)
    if when is None:
        return True
    return when >= (now or datetime.now(UTC)) - timedelta(days=days)


def time_line(message: WAMessage) -> str:
    """The first line of an imported message: Chatwoot's message API cannot set ``created_at``
    (``Messages::MessageBuilder`` takes no timestamp; every message is created "now"), so the
    original WhatsApp time is shown in the content."""
    when = sent_at(message)
    shown = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if when is not None else message.timestamp
    return f"🕓 {shown} · from WhatsApp history\n"

"""Agent text → WhatsApp text: the optional ``*Agent Name*:`` signature (markdown: ``relay.markdown``)."""

from __future__ import annotations


def sign(text: str, agent_name: str | None) -> str:
    if not agent_name:
        return text
    return f"*{agent_name}*:\n{text}" if text else f"*{agent_name}*:"


def agent_name(payload: dict[str, object]) -> str | None:
    sender = payload.get("sender")
    if isinstance(sender, dict) and sender.get("type") in ("user", "agent_bot", "captain_assistant"):
        for key in ("available_name", "name"):
            name = sender.get(key)
            if isinstance(name, str) and name:  # a name of another JSON type is no name
                return name
    return None

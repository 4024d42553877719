"""Agent text → WhatsApp text: Chatwoot markdown translated, optional ``*Agent Name*:`` signature."""

from __future__ import annotations

import re

_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")


def chatwoot_to_whatsapp(text: str) -> str:
    if not any(marker in text for marker in "*~"):
        return text
    text = _BOLD.sub("\x00\\1\x00", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = text.replace("\x00", "*")
    return _STRIKE.sub(r"~\1~", text)


def sign(text: str, agent_name: str | None) -> str:
    if not agent_name:
        return text
    return f"*{agent_name}*:\n{text}" if text else f"*{agent_name}*:"


def agent_name(payload: dict[str, object]) -> str | None:
    sender = payload.get("sender")
    if isinstance(sender, dict) and sender.get("type") in ("user", "agent_bot", "captain_assistant"):
        name = sender.get("available_name") or sender.get("name")
        return str(name) if name else None
    return None

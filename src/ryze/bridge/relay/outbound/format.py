"""Agent text → WhatsApp text: Chatwoot markdown translated, optional ``*Agent Name*:`` signature."""

from __future__ import annotations

import re

_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")


def chatwoot_to_whatsapp(text: str) -> str:
    if not any(marker in text for marker in "*~"):
        return text
    # Bold is parked behind a marker while italics are converted (its `*x*` would read as italic).
    # The marker must not occur in the text: an agent's U+0000 (or any fixed marker) would come out
    # as `*`. Private-use code points, the first one absent from this text.
    marker = next((chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text), None)
    if marker is not None:  # (a text holding all 6,400 of them keeps its stars as they are)
        text = _BOLD.sub(marker + r"\1" + marker, text)
        text = _ITALIC_STAR.sub(r"_\1_", text)
        text = text.replace(marker, "*")
    return _STRIKE.sub(r"~\1~", text)


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

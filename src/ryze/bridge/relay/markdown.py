"""Markdown both ways: WhatsApp's (``*b*`` ``_i_`` ``~s~``) ↔ Chatwoot's (``**b**`` ``*i*`` ``~~s~~``).

One module for both directions, so a rule (what counts as a marker, how a lone ``*`` is kept)
changes once. Each direction needs a temporary marker for one style while the other is
converted (Chatwoot's ``*i*`` is WhatsApp's bold): it is a private-use code point absent from the
text, never a fixed one, so no character an agent or a contact typed can come out as ``*``.
"""

from __future__ import annotations

import re

# WhatsApp → Chatwoot
_WA_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_WA_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_WA_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")

# Chatwoot → WhatsApp
_CW_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_CW_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_CW_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")


def _marker(text: str) -> str | None:
    """The first private-use code point absent from ``text`` (None for a text holding all 6,400)."""
    return next((chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text), None)


def whatsapp_to_chatwoot(text: str) -> str:
    """A contact's WhatsApp text as Chatwoot renders it."""
    if not any(marker in text for marker in "*_~"):
        return text
    marker = _marker(text)
    if marker is not None:  # italics parked: their Chatwoot form `*x*` would read as WhatsApp bold
        text = _WA_ITALIC.sub(marker + r"\1" + marker, text)
        text = _WA_BOLD.sub(r"**\1**", text)
        text = text.replace(marker, "*")
    return _WA_STRIKE.sub(r"~~\1~~", text)


def chatwoot_to_whatsapp(text: str) -> str:
    """An agent's Chatwoot text as WhatsApp renders it."""
    if not any(marker in text for marker in "*~"):
        return text
    marker = _marker(text)
    if marker is not None:  # bold parked: its WhatsApp form `*x*` would read as Chatwoot italic
        text = _CW_BOLD.sub(marker + r"\1" + marker, text)
        text = _CW_ITALIC.sub(r"_\1_", text)
        text = text.replace(marker, "*")
    return _CW_STRIKE.sub(r"~\1~", text)

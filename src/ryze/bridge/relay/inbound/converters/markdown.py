"""WhatsApp markdown → Chatwoot markdown (``*b*`` → ``**b**``, ``_i_`` → ``*i*``, ``~s~`` → ``~~s~~``)."""

from __future__ import annotations

import re

_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")


def whatsapp_to_chatwoot(text: str) -> str:
    if not any(marker in text for marker in "*_~"):
        return text
    text = _ITALIC.sub("\x00\\1\x00", text)
    text = _BOLD.sub(r"**\1**", text)
    text = text.replace("\x00", "*")
    return _STRIKE.sub(r"~~\1~~", text)

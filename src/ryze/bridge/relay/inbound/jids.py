"""The JIDs of a WhatsApp chat as the bridge keys it: its aliases, its number."""

from __future__ import annotations

from ryze.protocol import ChatRef


def jid_user(jid: str) -> str:
    return jid.split("@", 1)[0].split(":", 1)[0]


def phone_of(chat: ChatRef) -> str | None:
    """+E.164 when the chat's phone number is known."""
    for candidate in (chat.pn, chat.jid):
        if candidate and candidate.endswith("@s.whatsapp.net"):
            digits = jid_user(candidate)
            if digits.isdigit() and 2 <= len(digits) <= 15 and digits[0] != "0":
                return "+" + digits
    return None


def aliases_of(chat: ChatRef) -> list[str]:
    return [j for j in dict.fromkeys((chat.jid, chat.lid, chat.pn)) if j]

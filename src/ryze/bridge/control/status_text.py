"""What the connection conversation says about a connection state, in plain words (pure).

``state_post`` turns an ``instance.state`` into the text to post and the key repeats are
coalesced by (the same key twice in a row is posted once). ``qr_ready`` with a QR code is shown
as an image (``qr.py``), not as text, so it has no text here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ryze.protocol import PAIRING_PASSKEY_REQUIRED, InstanceStateData


@dataclass(frozen=True, slots=True)
class StatePost:
    key: str  # equal keys in a row are one post
    text: str


def who(number: str | None, name: str | None) -> str:
    """``+5511999990000 (Shop)``, or what is known of it."""
    shown = f"+{number}" if number else "an unknown number"
    return f"{shown} ({name})" if name else shown


PASSKEY_TEXT = (
    "⚠️ WhatsApp asked for a passkey to link this device, and Ryze cannot answer a passkey "
    "request. Pairing is still open. What you can do instead:\n"
    "• type `pair <number>` (the phone number with country code) and enter the pairing code on "
    "the phone: WhatsApp › Linked devices › Link a device › Link with phone number instead;\n"
    "• or scan the QR code with another phone of the same account that does not ask for a passkey;\n"
    "• or remove the passkey requirement on the phone (Settings › Account › Passkeys) and type `qr`."
)


def state_post(data: InstanceStateData) -> StatePost | None:
    """The post for a state change, or None when there is nothing to say in words."""
    state, reason = data.state, (data.reason or "").strip()
    if data.problem == PAIRING_PASSKEY_REQUIRED:
        return StatePost("passkey", PASSKEY_TEXT)
    because = f" ({reason})" if reason else ""
    match state:
        case "connected":
            return StatePost(
                f"connected:{data.number or ''}",
                f"✅ Connected to WhatsApp as {who(data.number, data.name)}.",
            )
        case "disconnected":
            return StatePost(
                "disconnected",
                f"🔌 Disconnected from WhatsApp{because}. Messages wait and are relayed once it is back; "
                "type `reconnect` to try now.",
            )
        case "loggedout":
            return StatePost(
                "loggedout",
                f"🚪 Logged out of WhatsApp{because}: this inbox no longer receives messages. "
                "Type `qr` to link the phone again.",
            )
        case "temp_banned":
            return StatePost(
                "temp_banned",
                f"⛔ WhatsApp temporarily banned this number{because}. Nothing can be sent until the ban "
                "ends; Ryze reconnects by itself after it.",
            )
        case "connecting":
            return StatePost("connecting", "🔄 Reconnecting to WhatsApp…")
        case "qr_ready":
            return None  # the QR image says it (qr.py)
        case _:
            return StatePost(f"other:{state}", f"ℹ️ WhatsApp connection state: {state}{because}.")

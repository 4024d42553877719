"""JID conversions between neonize's ``JID`` protobuf and the seam's strings / ``Party``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ryze.engines.base import EngineError, Party
from ryze.engines.neonize._neonize import pb

USER_SERVER = "s.whatsapp.net"
GROUP_SERVER = "g.us"
LID_SERVER = "lid"
STATUS_BROADCAST = "status@broadcast"

_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{4,30}$")
_JID = re.compile(r"^[A-Za-z0-9._:-]+@(s\.whatsapp\.net|g\.us|lid|broadcast|newsletter|c\.us)$")


def jid_str(jid: Any) -> str | None:
    """The non-AD string form (no device/agent part), or ``None`` for an empty JID."""
    if jid is None or not jid.Server:
        return None
    if not jid.User:
        return str(jid.Server)
    return f"{jid.User}@{jid.Server}"


def is_group(jid: str) -> bool:
    return jid.endswith("@" + GROUP_SERVER)


def parse_jid(value: str) -> Any:
    """A JID protobuf for a seam jid string or a bare phone number ("+55 11 99999-9999")."""
    text = value.strip()
    if "@" not in text:
        if not _PHONE.match(text):
            raise EngineError(f"Invalid WhatsApp id: {value!r}")
        digits = re.sub(r"\D", "", text)
        return pb.JID(User=digits, Server=USER_SERVER, RawAgent=0, Device=0, Integrator=0, IsEmpty=False)
    if not _JID.match(text):
        raise EngineError(f"Invalid WhatsApp id: {value!r}")
    user, server = text.rsplit("@", 1)
    if server == "c.us":  # legacy spelling of the user server
        server = USER_SERVER
    user = user.split(":", 1)[0]  # drop a device suffix: we always address the account
    return pb.JID(User=user, Server=server, RawAgent=0, Device=0, Integrator=0, IsEmpty=False)


def source_parties(source: Any, push_name: str = "", business_name: str = "") -> tuple[Party, Party]:
    """(chat, sender) for a whatsmeow ``MessageSource`` — shared by messages and receipts.

    * group: chat is the group; sender is the participant, with its alternate id
      (``SenderAlt``: the PN when WhatsApp addressed the participant by LID, or the reverse);
    * our own message (from this or another of our devices): chat is the other person with
      ``RecipientAlt``; sender is us;
    * incoming 1:1: chat and sender are the same party.
    """
    chat_jid = jid_str(source.Chat) or ""
    sender_jid = jid_str(source.Sender) or chat_jid
    sender = Party(
        jid=sender_jid,
        alt=_alt(source, "SenderAlt", sender_jid),
        name=push_name or None,
        business_name=business_name or None,
    )
    if source.IsGroup:
        return Party(jid=chat_jid), sender
    if source.IsFromMe:
        return Party(jid=chat_jid, alt=_alt(source, "RecipientAlt", chat_jid)), sender
    if sender_jid == chat_jid:
        return sender, sender
    return Party(jid=chat_jid), sender


def _alt(source: Any, field: str, primary: str) -> str | None:
    if not source.HasField(field):
        return None
    alt = jid_str(getattr(source, field))
    return alt if alt and alt != primary else None


def timestamp(value: int) -> datetime:
    """whatsmeow times as neonize encodes them: Unix milliseconds in 0.5.x, seconds in older
    builds. Anything above 10^11 cannot be seconds (year 5138), so it is milliseconds."""
    if value <= 0:
        return datetime.now(UTC)
    if value > 10**11:
        # integer maths: a float division would round some milliseconds down by one
        return datetime.fromtimestamp(value // 1000, UTC).replace(microsecond=(value % 1000) * 1000)
    return datetime.fromtimestamp(value, UTC)

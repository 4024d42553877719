"""whatsmeow ``events.HistorySync`` (neonize ``HistorySyncEv``) -> ``HistorySyncEvent``.

Each ``waHistorySync.Conversation`` carries its chat JID (``ID``) and ``HistorySyncMsg``s whose
``message`` is a ``WebMessageInfo``. whatsmeow's ``Client.ParseWebMessage`` turns one into the
``events.Message`` a live message is (tulir/whatsmeow ``client.go``); neonize 0.5 does not expose it
to Python, so ``web_message_event`` builds the same ``Neonize.Message`` by the same rules (chat
from the conversation, sender = us when ``key.fromMe``, the chat in a 1:1 / LID / newsletter chat,
else ``participant`` or ``key.participant``; timestamp in seconds), and the live translator
(``translate_message``) does the rest: a history message translates exactly as it would have live.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ryze.engines.base import (
    EngineError,
    HistoryChat,
    HistorySyncEvent,
    HistorySyncKind,
    Party,
    WhatsAppMessage,
)
from ryze.engines.neonize._neonize import pb
from ryze.engines.neonize.translate.jids import GROUP_SERVER, parse_jid
from ryze.engines.neonize.translate.messages import translate_message, with_group_subject

log = logging.getLogger(__name__)

# waHistorySync.HistorySync.HistorySyncType numbers -> the seam's names
_KINDS: dict[int, HistorySyncKind] = {
    0: "initial_bootstrap",
    1: "initial_status_v3",
    2: "full",
    3: "recent",
    4: "push_name",
    5: "non_blocking_data",
    6: "on_demand",
}
_SENDER_IS_CHAT = ("s.whatsapp.net", "lid", "newsletter")  # whatsmeow: DefaultUser, HiddenUser, Newsletter


def translate_history(event: Any, *, me: Party | None) -> HistorySyncEvent | None:
    """The chunk as a domain event; None for a sync that carries no messages (push names, status
    and non-blocking data are not chat history)."""
    data = event.Data
    kind = _KINDS.get(int(data.syncType), "recent")
    if kind in ("push_name", "initial_status_v3", "non_blocking_data"):
        return None
    lid_to_pn = {m.lidJID: m.pnJID for m in data.phoneNumberToLidMappings if m.lidJID and m.pnJID}
    chats: list[HistoryChat] = []
    for conversation in data.conversations:
        chat_jid = conversation.ID
        messages: list[WhatsAppMessage] = []
        for item in conversation.messages:
            raw = web_message_event(chat_jid, item.message, me=me)
            message = translate_message(raw) if raw is not None else None
            if message is None:
                continue
            if message.is_group:
                # the conversation names the group: no group-info query per chat of a bootstrap
                message = with_group_subject(message, conversation.name or None)
            elif message.chat.alt is None and chat_jid in lid_to_pn:
                message = _with_chat_alt(message, lid_to_pn[chat_jid])
            messages.append(message)
        if messages:
            messages.sort(key=lambda m: m.timestamp)
            chats.append(HistoryChat(chat=messages[0].chat, messages=tuple(messages)))
    progress = int(data.progress) if data.HasField("progress") else None
    return HistorySyncEvent(
        kind=kind,
        chats=tuple(chats),
        chunk=int(data.chunkOrder),
        progress=progress,
        # on-demand answers come in one piece; a bootstrap says how far it got
        final=kind == "on_demand" or progress is None or progress >= 100,
    )


def web_message_event(chat_jid: str, web: Any, *, me: Party | None) -> Any | None:
    """The ``Neonize.Message`` whatsmeow's ``ParseWebMessage`` makes of a ``WebMessageInfo``
    (None when it would fail: no sender, our own message while logged out, a bad JID)."""
    key = web.key
    chat_text = chat_jid or key.remoteJID
    try:
        chat = parse_jid(chat_text)
    except EngineError:
        log.info("history message with an unreadable chat skipped", extra={"chat": chat_text})
        return None
    from_me = bool(key.fromMe)
    if from_me:
        if me is None:
            return None  # whatsmeow: ErrNotLoggedIn
        sender_text = me.jid
    elif chat.Server in _SENDER_IS_CHAT:
        sender_text = chat_text
    elif web.participant or key.participant:
        sender_text = web.participant or key.participant
    else:
        return None  # whatsmeow: "couldn't find sender of message"
    try:
        sender = parse_jid(sender_text)
    except EngineError:
        return None
    source = pb.MessageSource(Chat=chat, Sender=sender, IsFromMe=from_me, IsGroup=chat.Server == GROUP_SERVER)
    info = pb.MessageInfo(
        MessageSource=source, ID=key.ID, Pushname=web.pushName, Timestamp=int(web.messageTimestamp)
    )
    return pb.Message(Info=info, Message=web.message)


def _with_chat_alt(message: WhatsAppMessage, pn: str) -> WhatsAppMessage:
    """A LID chat's phone-number JID from the sync's ``phoneNumberToLidMappings``."""
    chat = replace(message.chat, alt=pn)
    sender = replace(message.sender, alt=pn) if message.sender.jid == message.chat.jid else message.sender
    return replace(message, chat=chat, sender=sender)

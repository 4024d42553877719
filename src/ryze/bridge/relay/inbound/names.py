"""The Chatwoot contact's name, from WhatsApp, without ever undoing an agent's edit.

Precedence for a person: the **saved** name (the account's own phone book: what the operator
called them), then the **push** name (what they call themselves), then the **business** (verified)
name, then the phone number (or the JID's user part). A group is named after its subject
(``groups.py``). The bridge remembers the name it last gave each chat's contact
(``bridge_chats.contact_name``); before renaming it reads the contact, and when Chatwoot's current
name differs from the remembered one, an agent edited it: the bridge leaves it, then and later.
A contact the bridge never named (found by identifier, or mapped before the name was remembered)
is renamed only while its name is empty or the number the bridge would have given it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from ryze.bridge.relay.inbound.jids import aliases_of, jid_user, phone_of
from ryze.bridge.store.repositories import ChatRecord, ChatRepository
from ryze.chatwoot import ChatwootNotFound, ChatwootPort, ChatwootValidationError
from ryze.protocol import ChatRef, ChatType

log = logging.getLogger(__name__)

_MEMORY = 5000  # chats whose agent-edited name this run already saw
NAME_MAX = 255  # Chatwoot's contact name limit


def whatsapp_name(chat: ChatRef) -> str | None:
    """The best name WhatsApp gave for the chat (saved > push > business), or None."""
    if chat.type == ChatType.GROUP:
        return _clean(chat.name)
    return _clean(chat.savedName) or _clean(chat.name) or _clean(chat.businessName)


def fallback_name(chat: ChatRef) -> str:
    """What a contact is called while WhatsApp gave no name: its number, else the JID's user."""
    return phone_of(chat) or jid_user(chat.jid)


def _clean(value: str | None) -> str | None:
    text = (value or "").strip()
    return text[:NAME_MAX] if text else None


class ContactNames:
    """Keeps each chat's contact named after WhatsApp's best name, unless an agent renamed it."""

    def __init__(
        self, *, integration_id: str, chats: ChatRepository, client: Callable[[], ChatwootPort]
    ) -> None:
        self.integration_id = integration_id
        self._chats = chats
        self._client = client
        # chat key → the WhatsApp name already found to be overridden by an agent's edit, so the
        # same name is not checked against Chatwoot again with every message of this run
        self._kept: OrderedDict[str, str] = OrderedDict()

    async def note(self, chat: ChatRef, record: ChatRecord) -> None:
        """A message of ``chat`` was relayed: give its contact WhatsApp's name if it changed."""
        wanted = whatsapp_name(chat)
        if wanted is None:
            return  # no name from WhatsApp (our own message, a LID with no push name): nothing to do
        await self.apply(chat, record, wanted)

    async def apply(self, chat: ChatRef, record: ChatRecord, wanted: str) -> bool:
        """Rename the contact to ``wanted`` unless an agent edited its name; True when renamed.
        Raises the Chatwoot errors of the read and the update (callers log and go on)."""
        wanted = wanted[:NAME_MAX]
        if record.contact_name == wanted or self._kept.get(record.chat_key) == wanted:
            return False
        client = self._client()
        try:
            current = (await client.show_contact(record.contact_id)).name or ""
        except ChatwootNotFound:
            return False  # deleted or merged away: the next message resolves the chat again
        if current == wanted:
            ours = True
        elif record.contact_name is not None:
            ours = current == record.contact_name
        else:
            ours = current in ("", fallback_name(chat), jid_user(chat.jid))
        if not ours:
            self._remember_kept(record.chat_key, wanted)
            log.info(
                "contact name edited in Chatwoot: kept",
                extra={"integration_id": self.integration_id, "contact_id": record.contact_id},
            )
            return False
        if current != wanted:
            try:
                await client.update_contact(record.contact_id, name=wanted)
            except (ChatwootNotFound, ChatwootValidationError) as exc:
                log.info(
                    "contact not renamed",
                    extra={
                        "integration_id": self.integration_id,
                        "contact_id": record.contact_id,
                        "error": str(exc)[:200],
                    },
                )
                return False
        record.contact_name = wanted
        await self._chats.save(self.integration_id, record, aliases_of(chat))
        log.info(
            "contact named from WhatsApp",
            extra={"integration_id": self.integration_id, "contact_id": record.contact_id},
        )
        return True

    def _remember_kept(self, key: str, name: str) -> None:
        self._kept[key] = name
        self._kept.move_to_end(key)
        while len(self._kept) > _MEMORY:
            self._kept.popitem(last=False)

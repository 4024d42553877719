"""A group's conversation carries the group's subject, kept current.

Chatwoot's conversation has no name of its own: the conversation list and header show the
contact's name (``conversations/_conversation.json.jbuilder`` → ``meta.sender`` = the contact),
so, as WAHA does (it names the group's contact after the subject), the group's contact is named
after the subject and renamed when ``group.flow`` reports a new one, or a group message carries a
different one in ``chat.name``. A subject seen before the group's first message waits in memory
and names the contact when the resolver creates it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from ryze.bridge.relay.inbound.jids import aliases_of, phone_of
from ryze.bridge.relay.inbound.names import ContactNames, fallback_name, whatsapp_name
from ryze.bridge.store.repositories import ChatRecord, ChatRepository
from ryze.chatwoot import ChatwootError, ChatwootPort, ChatwootValidationError
from ryze.protocol import ChatRef, GroupFlowAction, GroupFlowData, SenderRef

log = logging.getLogger(__name__)

_MEMORY = 5000  # groups (and participants) this run knows
T = TypeVar("T")


class GroupSubjects:
    def __init__(
        self,
        *,
        integration_id: str,
        chats: ChatRepository,
        client: Callable[[], ChatwootPort],
        names: ContactNames | None = None,
    ) -> None:
        self.integration_id = integration_id
        self._chats = chats
        self._client = client
        # renames go through it: a group contact an agent renamed keeps the agent's name
        self._names = names or ContactNames(integration_id=integration_id, chats=chats, client=client)
        self._named: OrderedDict[str, str] = OrderedDict()  # chat_key → the name the contact has
        self._pending: OrderedDict[str, str] = OrderedDict()  # group JID → a subject not applied yet

    async def note_subject(self, chat: ChatRef, record: ChatRecord) -> None:
        """A group message: rename the contact when its subject is not the one it carries."""
        subject = self._pending.pop(chat.jid, None) or chat.name
        if not subject:
            return
        try:
            await self._rename(chat, record, subject)
        except ChatwootError as exc:
            # The message itself is in Chatwoot already: a rename Chatwoot could not take now is
            # tried again with the group's next message, it never holds the message back.
            log.warning(
                "group contact rename failed; retried with the next message",
                extra={
                    "integration_id": self.integration_id,
                    "contact_id": record.contact_id,
                    "error": str(exc)[:200],
                },
            )

    async def on_flow(self, flow: GroupFlowData) -> None:
        if flow.action not in (GroupFlowAction.CREATE, GroupFlowAction.SUBJECT):
            return  # membership, topic and settings changes leave the name as it is
        subject = flow.subject or flow.chat.name
        if not subject:
            return
        record = await self._chats.find(self.integration_id, aliases_of(flow.chat))
        if record is None:  # no message of the group relayed yet: name the contact when it is created
            self._remember(self._pending, flow.chat.jid, subject)
            return
        await self._rename(flow.chat, record, subject)

    async def _rename(self, chat: ChatRef, record: ChatRecord, subject: str) -> None:
        subject = subject[:255]
        if self._named.get(record.chat_key) == subject:
            return
        # ContactNames reads the contact first and leaves a name an agent edited; a contact gone
        # or a name refused is logged there, and the next message resolves and names it again
        if await self._names.apply(chat, record, subject) or record.contact_name == subject:
            self._remember(self._named, record.chat_key, subject)
            log.info(
                "group contact named after its subject",
                extra={"integration_id": self.integration_id, "contact_id": record.contact_id},
            )

    @staticmethod
    def _remember(memory: OrderedDict[str, T], key: str, value: T) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > _MEMORY:
            memory.popitem(last=False)


class GroupParticipants:
    """Each participant who writes in a group gets a Chatwoot contact of their own, found by JID.

    Chatwoot attributes every incoming message of a conversation to the conversation's one contact
    (the group), so messages stay in the group's conversation with the participant's name before
    them; the participant's contact (``identifier`` = their JID, their phone number when known, no
    conversation) is what an agent opens to see who wrote, as Evolution does. A later private chat
    with the same person finds that contact by ``identifier`` and takes it over (the resolver's
    lookup order). Looked up once per participant per run; a failure is logged and tried again
    with their next message — it never holds a message back.
    """

    def __init__(self, *, integration_id: str, client: Callable[[], ChatwootPort]) -> None:
        self.integration_id = integration_id
        self._client = client
        self._known: OrderedDict[str, int] = OrderedDict()  # participant JID → contact id

    def contact_of(self, jid: str) -> int | None:
        return self._known.get(jid)

    async def note(self, sender: SenderRef) -> None:
        if sender.jid in self._known:
            self._known.move_to_end(sender.jid)
            return
        try:
            contact_id = await self._find_or_create(sender)
        except ChatwootError as exc:
            log.warning(
                "group participant contact not resolved; retried with their next message",
                extra={"integration_id": self.integration_id, "error": str(exc)[:200]},
            )
            return
        for jid in aliases_of(ChatRef(jid=sender.jid, lid=sender.lid, pn=sender.pn)):
            GroupSubjects._remember(self._known, jid, contact_id)

    async def _find_or_create(self, sender: SenderRef) -> int:
        client = self._client()
        chat = ChatRef(
            jid=sender.jid,
            lid=sender.lid,
            pn=sender.pn,
            name=sender.name,
            savedName=sender.savedName,
            businessName=sender.businessName,
        )
        aliases = aliases_of(chat)
        found = await client.filter_contacts("identifier", aliases)
        phone = phone_of(chat)
        if not found and phone:
            found = await client.filter_contacts("phone_number", [phone])
        if found:
            return found[0].id
        attributes = {"whatsapp_jid": sender.jid, "whatsapp_lid": sender.lid, "whatsapp_pn": sender.pn}
        try:
            created = await client.create_contact(
                name=whatsapp_name(chat) or fallback_name(chat),
                identifier=sender.jid,
                phone_number=phone,
                additional_attributes={k: v for k, v in attributes.items() if v is not None},
            )
        except ChatwootValidationError:
            # created meanwhile (a private chat with them, another group): adopt it
            found = await client.filter_contacts("identifier", aliases)
            if not found and phone:
                found = await client.filter_contacts("phone_number", [phone])
            if not found:
                raise
            return found[0].id
        return created.id

"""The connection conversation in Chatwoot: its bot contact, created on first use, remembered in
the bridge database, and created again when an agent deleted it.

The bot contact has the identifier ``ryze-control:<instance>`` (and that source id in the inbox):
no phone number, no JID, so the inbound resolver — which looks contacts up by chat JID and phone
number only — can never pick it for a WhatsApp chat, and the outbound side never finds a
WhatsApp address in it. The bot's own posts are *incoming* messages (from the bot contact), so
they never come back as commands; private posts are notes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable

from ryze.bridge.control.store import ControlRoomState, ControlRoomStore
from ryze.chatwoot import ChatwootNotFound
from ryze.chatwoot.models import Attachment, Contact
from ryze.chatwoot.port import ChatwootPort

log = logging.getLogger(__name__)

IDENTIFIER_PREFIX = "ryze-control:"
OWN_MEMORY = 512


def control_identifier(instance: str) -> str:
    return IDENTIFIER_PREFIX + instance


def control_name(instance: str) -> str:
    return f"Ryze · {instance}"


class ChatwootControlRoom:
    """``ports.ControlRoom`` on Chatwoot, plus images and deletion for the QR codes."""

    def __init__(
        self,
        *,
        integration_id: str,
        instance: str,
        inbox_id: int,
        chatwoot: Callable[[], ChatwootPort],
        store: ControlRoomStore,
    ) -> None:
        self.integration_id = integration_id
        self.instance = instance
        self.inbox_id = inbox_id
        self._chatwoot = chatwoot
        self._store = store
        self._state: ControlRoomState | None = None
        self._lock = asyncio.Lock()
        self._loading = asyncio.Lock()  # one read of the row: every caller then shares one object
        # What the bot posted lately (never a command; its posts are incoming anyway): bounded.
        self._own: OrderedDict[int, None] = OrderedDict()

    # ------------------------------------------------------------------ state

    async def state(self) -> ControlRoomState:
        if self._state is None:
            async with self._loading:
                if self._state is None:
                    self._state = await self._store.load()
        return self._state

    def posted(self, message_id: int) -> bool:
        return message_id in self._own

    @property
    def known_conversation(self) -> int | None:
        """The conversation's id when already known (the webhook route asks without waiting)."""
        return self._state.conversation_id if self._state is not None else None

    async def save(self) -> None:
        await self._store.save(await self.state())

    # ------------------------------------------------------------------ ControlRoom

    async def conversation_id(self) -> int:
        async with self._lock:
            state = await self.state()
            if state.conversation_id is None:
                await self._create(state)
            assert state.conversation_id is not None
            return state.conversation_id

    async def post(self, text: str, *, private: bool = False) -> int:
        return await self._post(text, private=private, attachments=None)

    async def post_image(self, png: bytes, file_name: str, caption: str) -> int:
        attachment = Attachment(filename=file_name, content_type="image/png", data=png)
        return await self._post(caption, private=False, attachments=[attachment])

    async def delete(self, message_id: int) -> None:
        """Delete one of the bot's posts (a QR code that expired). Raises ``ChatwootError`` when
        Chatwoot refuses; a conversation or message already gone counts as deleted."""
        conversation = await self.conversation_id()
        try:
            await self._chatwoot().delete_message(conversation, message_id)
        except ChatwootNotFound:
            return

    # ------------------------------------------------------------------ internals

    async def _post(self, text: str, *, private: bool, attachments: list[Attachment] | None) -> int:
        for attempt in (1, 2):
            conversation = await self.conversation_id()
            try:
                message = await self._chatwoot().create_message(
                    conversation,
                    content=text,
                    # a note is the agents' side; a post is the bot contact talking (never a command)
                    message_type="outgoing" if private else "incoming",
                    private=private,
                    attachments=attachments,
                )
            except ChatwootNotFound:
                if attempt == 2:
                    raise
                # An agent deleted the conversation (or the contact, which deletes its
                # conversations): create them again and post there.
                log.info(
                    "connection conversation gone; creating it again",
                    extra={"integration_id": self.integration_id, "conversation_id": conversation},
                )
                await self._forget(conversation)
                continue
            self._own[message.id] = None
            if len(self._own) > OWN_MEMORY:
                self._own.popitem(last=False)
            return message.id
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _forget(self, conversation: int) -> None:
        async with self._lock:
            state = await self.state()
            if state.conversation_id == conversation:
                state.conversation_id = None
                state.qr_message_ids = []
                await self._store.save(state)

    async def _create(self, state: ControlRoomState) -> None:
        client = self._chatwoot()
        identifier = control_identifier(self.instance)
        contact = await self._find_contact(identifier)
        if contact is None:
            contact = await client.create_contact(
                name=control_name(self.instance),
                identifier=identifier,
                inbox_id=self.inbox_id,
                source_id=identifier,
            )
        elif await client.find_contact_by_source(self.inbox_id, identifier) is None:
            await client.create_contact_inbox(contact.id, self.inbox_id, identifier)
        conversation = await client.create_conversation(
            inbox_id=self.inbox_id,
            contact_id=contact.id,
            source_id=identifier,
            status="open",
            additional_attributes={"ryze_control": True},
        )
        state.contact_id, state.conversation_id = contact.id, conversation.id
        state.qr_message_ids = []
        await self._store.save(state)
        log.info(
            "connection conversation created",
            extra={"integration_id": self.integration_id, "conversation_id": conversation.id},
        )

    async def _find_contact(self, identifier: str) -> Contact | None:
        for contact in await self._chatwoot().filter_contacts("identifier", [identifier]):
            if contact.identifier == identifier:
                return contact
        return None

"""``ChatwootPort``: the Chatwoot calls the bridge's relay makes, as a protocol.

:class:`ryze.chatwoot.client.ChatwootClient` (aiohttp) implements it; the relay's collaborators
(the inbound consumers, the conversation resolver, the outbound worker) are typed against this
protocol only, so their unit tests run against an in-memory Chatwoot instead of the emulator. An
implementation raises the exceptions of :mod:`ryze.chatwoot.errors` (what the retry policy reads).
Provisioning (inbox create/update/delete) is not part of it: only ``ryze.bridge.provisioning`` does
that, with the concrete client.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from ryze.chatwoot.models import Attachment, Contact, Conversation, Inbox, Message, ToggleStatusResult

ConversationStatus = Literal["open", "resolved", "pending", "snoozed"]
MessageStatus = Literal["sent", "delivered", "read", "failed"]


class ChatwootPort(Protocol):
    # -- inboxes
    async def show_inbox(self, inbox_id: int) -> Inbox: ...

    # -- contacts
    async def create_contact(
        self,
        *,
        name: str | None,
        identifier: str | None = None,
        phone_number: str | None = None,
        inbox_id: int | None = None,
        source_id: str | None = None,
        additional_attributes: dict[str, Any] | None = None,
    ) -> Contact: ...

    async def update_contact(self, contact_id: int, **fields: Any) -> Contact: ...

    async def show_contact(self, contact_id: int) -> Contact: ...

    async def filter_contacts(
        self, attribute_key: str, values: list[str], *, operator: str = "equal_to"
    ) -> list[Contact]: ...

    async def create_contact_inbox(self, contact_id: int, inbox_id: int, source_id: str) -> str: ...

    async def find_contact_by_source(self, inbox_id: int, source_id: str) -> Contact | None: ...

    async def contact_conversations(self, contact_id: int) -> list[Conversation]: ...

    async def set_contact_avatar(self, contact_id: int, picture: Attachment) -> Contact:
        """``PATCH contacts/{id}`` with the image as the multipart ``avatar`` field."""
        ...

    async def merge_contacts(self, base_contact_id: int, mergee_contact_id: int) -> Contact:
        """``POST actions/contact_merge``: the base survives with the mergee's conversations and
        contact inboxes; the mergee is deleted (``ContactMergeAction``)."""
        ...

    # -- conversations
    async def create_conversation(
        self,
        *,
        inbox_id: int,
        contact_id: int,
        source_id: str,
        status: ConversationStatus | None = None,
        additional_attributes: dict[str, Any] | None = None,
    ) -> Conversation: ...

    async def show_conversation(self, conversation_id: int) -> Conversation: ...

    async def toggle_status(self, conversation_id: int, status: ConversationStatus) -> ToggleStatusResult: ...

    # -- messages
    async def create_message(
        self,
        conversation_id: int,
        *,
        content: str | None,
        message_type: Literal["incoming", "outgoing", "activity"],
        private: bool = False,
        source_id: str | None = None,
        content_attributes: dict[str, Any] | None = None,
        attachments: list[Attachment] | None = None,
        is_voice_message: bool = False,
    ) -> Message: ...

    async def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[Message]: ...

    async def update_message_status(
        self,
        conversation_id: int,
        message_id: int,
        status: MessageStatus,
        *,
        external_error: str | None = None,
    ) -> Message: ...

    async def delete_message(self, conversation_id: int, message_id: int) -> None:
        """MessagesController#destroy: Chatwoot keeps the row, content replaced, attachments purged."""
        ...

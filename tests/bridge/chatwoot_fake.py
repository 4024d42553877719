"""An in-memory Chatwoot behind the relay's ``ChatwootPort``, for unit tests of the relay.

It keeps contacts, contact inboxes, conversations and messages the way the relay reads them back,
and lets a test queue failures per method (``fail``): a failure raised *after* the effect
(``after=True``) models a create Chatwoot stored but answered 5xx or timed out on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from ryze.chatwoot import ChatwootError, ChatwootNotFound, ChatwootPort
from ryze.chatwoot.models import (
    Attachment,
    Contact,
    Conversation,
    Inbox,
    Message,
    Profile,
    ServerInfo,
    ToggleStatusResult,
)
from ryze.chatwoot.port import ConversationStatus, MessageStatus


@dataclass
class _Fault:
    exc: ChatwootError
    after: bool  # raised after the effect took place


@dataclass
class StoredMessage:
    id: int
    conversation_id: int
    content: str | None
    message_type: str
    private: bool
    source_id: str | None
    content_attributes: dict[str, Any]
    status: str = "sent"
    external_error: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    deleted: bool = False
    voice: bool = False


@dataclass
class InMemoryChatwoot:
    inbox_id: int
    contacts: dict[int, Contact] = field(default_factory=dict)
    contact_inboxes: dict[tuple[int, str], int] = field(default_factory=dict)  # (inbox, source) -> contact
    conversations: dict[int, Conversation] = field(default_factory=dict)
    conversation_contact: dict[int, int] = field(default_factory=dict)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    inbox_deleted: bool = False
    # What the self-check reads (None: the call answers 404 / no version, as a test sets it up)
    inbox_view: Inbox | None = None
    profile_view: Profile | None = None
    version: str | None = None
    avatars: dict[int, Attachment] = field(default_factory=dict)  # contact -> its uploaded avatar
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test controls --------------------------------------------------------------------------

    def fail(self, method: str, exc: ChatwootError, *, times: int = 1, after: bool = False) -> None:
        self._faults.setdefault(method, []).extend(_Fault(exc, after) for _ in range(times))

    def _before(self, method: str) -> _Fault | None:
        self.calls.append(method)
        faults = self._faults.get(method)
        if not faults:
            return None
        fault = faults.pop(0)
        if not fault.after:
            raise fault.exc
        return fault

    def messages_in(self, conversation_id: int) -> list[StoredMessage]:
        return [m for m in self.messages.values() if m.conversation_id == conversation_id]

    def public_messages(self) -> list[StoredMessage]:
        return [m for m in self.messages.values() if not m.private]

    def _model(self, m: StoredMessage) -> Message:
        return Message(
            id=m.id,
            content=m.content,
            message_type=m.message_type,
            conversation_id=m.conversation_id,
            source_id=m.source_id,
            status=m.status,
            private=m.private,
            content_attributes=(
                {**m.content_attributes, "external_error": m.external_error}
                if m.external_error
                else dict(m.content_attributes)
            ),
        )

    # -- ChatwootPort ---------------------------------------------------------------------------

    async def show_inbox(self, inbox_id: int) -> Inbox:
        self._before("show_inbox")
        if self.inbox_deleted or inbox_id != self.inbox_id:
            raise ChatwootNotFound(404, '{"error":"not found"}', endpoint="GET /inboxes/:id")
        return self.inbox_view or Inbox(id=inbox_id, name="WhatsApp")

    async def profile(self) -> Profile:
        self._before("profile")
        if self.profile_view is None:
            raise ChatwootNotFound(404, "", endpoint="GET /api/v1/profile")
        return self.profile_view

    async def server_info(self) -> ServerInfo:
        self._before("server_info")
        return ServerInfo(version=self.version)

    async def create_contact(
        self,
        *,
        name: str | None,
        identifier: str | None = None,
        phone_number: str | None = None,
        inbox_id: int | None = None,
        source_id: str | None = None,
        additional_attributes: dict[str, Any] | None = None,
    ) -> Contact:
        self._before("create_contact")
        contact = Contact(id=next(self._ids), name=name, identifier=identifier, phone_number=phone_number)
        self.contacts[contact.id] = contact
        if inbox_id is not None and source_id is not None:
            self.contact_inboxes[(inbox_id, source_id)] = contact.id
        return contact

    async def update_contact(self, contact_id: int, **fields: Any) -> Contact:
        self._before("update_contact")
        contact = self.contacts[contact_id].model_copy(update=fields)
        self.contacts[contact_id] = contact
        return contact

    async def show_contact(self, contact_id: int) -> Contact:
        self._before("show_contact")
        if contact_id not in self.contacts:
            raise ChatwootNotFound(404, '{"error":"not found"}', endpoint="GET /contacts/:id")
        return self.contacts[contact_id]

    async def filter_contacts(
        self, attribute_key: str, values: list[str], *, operator: str = "equal_to"
    ) -> list[Contact]:
        self._before("filter_contacts")
        return [c for c in self.contacts.values() if getattr(c, attribute_key, None) in values]

    async def create_contact_inbox(self, contact_id: int, inbox_id: int, source_id: str) -> str:
        self._before("create_contact_inbox")
        self.contact_inboxes[(inbox_id, source_id)] = contact_id
        return source_id

    async def find_contact_by_source(self, inbox_id: int, source_id: str) -> Contact | None:
        self._before("find_contact_by_source")
        contact_id = self.contact_inboxes.get((inbox_id, source_id))
        return self.contacts[contact_id] if contact_id is not None else None

    async def set_contact_avatar(self, contact_id: int, picture: Attachment) -> Contact:
        self._before("set_contact_avatar")
        if contact_id not in self.contacts:
            raise ChatwootNotFound(404, '{"error":"not found"}', endpoint="PATCH /contacts/:id")
        self.avatars[contact_id] = picture
        return self.contacts[contact_id]

    async def merge_contacts(self, base_contact_id: int, mergee_contact_id: int) -> Contact:
        """ContactMergeAction: conversations and contact inboxes move to the base, the mergee goes."""
        self._before("merge_contacts")
        if base_contact_id not in self.contacts or mergee_contact_id not in self.contacts:
            raise ChatwootNotFound(404, '{"error":"not found"}', endpoint="POST /actions/contact_merge")
        for key, owner in list(self.contact_inboxes.items()):
            if owner == mergee_contact_id:
                self.contact_inboxes[key] = base_contact_id
        for conversation_id, owner in list(self.conversation_contact.items()):
            if owner == mergee_contact_id:
                self.conversation_contact[conversation_id] = base_contact_id
        del self.contacts[mergee_contact_id]
        return self.contacts[base_contact_id]

    async def contact_conversations(self, contact_id: int) -> list[Conversation]:
        self._before("contact_conversations")
        return [c for cid, c in self.conversations.items() if self.conversation_contact[cid] == contact_id]

    async def create_conversation(
        self,
        *,
        inbox_id: int,
        contact_id: int,
        source_id: str,
        status: ConversationStatus | None = None,
        additional_attributes: dict[str, Any] | None = None,
    ) -> Conversation:
        self._before("create_conversation")
        conversation = Conversation(id=next(self._ids), inbox_id=inbox_id, status=status or "open")
        self.conversations[conversation.id] = conversation
        self.conversation_contact[conversation.id] = contact_id
        return conversation

    async def show_conversation(self, conversation_id: int) -> Conversation:
        self._before("show_conversation")
        return self.conversations[conversation_id]

    async def toggle_status(self, conversation_id: int, status: ConversationStatus) -> ToggleStatusResult:
        self._before("toggle_status")
        self.conversations[conversation_id].status = status
        return ToggleStatusResult(success=True, conversation_id=conversation_id, current_status=status)

    async def create_message(
        self,
        conversation_id: int,
        *,
        content: str | None,
        message_type: Literal["incoming", "outgoing"],
        private: bool = False,
        source_id: str | None = None,
        content_attributes: dict[str, Any] | None = None,
        attachments: list[Attachment] | None = None,
        is_voice_message: bool = False,
    ) -> Message:
        fault = self._before("create_message")
        if conversation_id not in self.conversations:
            raise ChatwootNotFound(404, '{"error":"not found"}', endpoint="POST /conversations/:id/messages")
        stored = StoredMessage(
            id=next(self._ids),
            conversation_id=conversation_id,
            content=content,
            message_type=message_type,
            private=private,
            source_id=source_id,
            content_attributes=dict(content_attributes or {}),
            attachments=list(attachments or []),
            voice=is_voice_message,
        )
        self.messages[stored.id] = stored
        if fault is not None:
            raise fault.exc
        return self._model(stored)

    async def list_messages(
        self, conversation_id: int, *, before: int | None = None, after: int | None = None
    ) -> list[Message]:
        # Chatwoot's MessageFinder: the latest 20 (before/after narrow the window), oldest first.
        self._before("list_messages")
        found = [
            m
            for m in self.messages_in(conversation_id)
            if (before is None or m.id < before) and (after is None or m.id > after)
        ]
        return [self._model(m) for m in sorted(found, key=lambda m: m.id)[-20:]]

    async def update_message_status(
        self,
        conversation_id: int,
        message_id: int,
        status: MessageStatus,
        *,
        external_error: str | None = None,
    ) -> Message:
        self._before("update_message_status")
        stored = self.messages.get(message_id)
        if stored is None or stored.conversation_id != conversation_id:
            raise ChatwootNotFound(404, "", endpoint="PATCH /conversations/:id/messages/:id")
        stored.status = status
        stored.external_error = external_error
        return self._model(stored)

    async def delete_message(self, conversation_id: int, message_id: int) -> None:
        # MessagesController#destroy: a soft delete (content replaced, attachments purged)
        self._before("delete_message")
        stored = self.messages.get(message_id)
        if stored is None or stored.conversation_id != conversation_id:
            raise ChatwootNotFound(404, "", endpoint="DELETE /conversations/:id/messages/:id")
        stored.deleted = True
        stored.content = "This message was deleted"
        stored.content_attributes = {"deleted": True}
        stored.attachments = []


def _conforms(port: ChatwootPort) -> ChatwootPort:
    """mypy checks here that the fake implements the whole port."""
    return port


_conforms(InMemoryChatwoot(inbox_id=1))

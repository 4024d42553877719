"""In-memory store: the rows Chatwoot keeps in PostgreSQL, as plain dataclasses.

Ids follow Chatwoot: inboxes, contacts, messages and attachments have global ids;
conversations have a global primary key plus a per-account `display_id`, and only the
display id ever leaves the emulator.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from .seed import EmulatorSeed, Role

JSON = dict[str, Any]

MESSAGE_TYPES = ("incoming", "outgoing", "activity", "template")
CONVERSATION_STATUSES = ("open", "resolved", "pending", "snoozed")
MESSAGE_STATUSES = ("sent", "delivered", "read", "failed")


def now() -> float:
    return time.time()


@dataclass
class User:
    id: int
    name: str
    email: str
    access_token: str


@dataclass
class Account:
    id: int
    name: str
    inbox_limit: int | None
    roles: dict[int, Role] = field(default_factory=dict)  # user id -> role
    next_display_id: int = 1


@dataclass
class Inbox:
    id: int
    account_id: int
    channel_id: int
    name: str
    webhook_url: str
    hmac_mandatory: bool
    additional_attributes: JSON
    identifier: str
    hmac_token: str
    secret: str
    settings: JSON  # greeting_enabled, timezone, lock_to_single_conversation, ...
    created_at: float = field(default_factory=now)
    members: set[int] = field(default_factory=set)  # user ids assigned to the inbox


@dataclass
class Contact:
    id: int
    account_id: int
    name: str = ""
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    blocked: bool = False
    additional_attributes: JSON = field(default_factory=dict)
    custom_attributes: JSON = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    last_activity_at: float | None = None
    avatar: Attachment | None = None  # Avatarable's `has_one_attached :avatar`


@dataclass
class ContactInbox:
    id: int
    contact_id: int
    inbox_id: int
    source_id: str
    hmac_verified: bool = False
    pubsub_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Conversation:
    id: int
    display_id: int
    account_id: int
    inbox_id: int
    contact_id: int
    contact_inbox_id: int
    status: str = "open"
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    additional_attributes: JSON = field(default_factory=dict)
    custom_attributes: JSON = field(default_factory=dict)
    assignee_id: int | None = None
    team_id: int | None = None
    snoozed_until: float | None = None
    priority: str | None = None
    labels: list[str] = field(default_factory=list)
    muted: bool = False
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    last_activity_at: float = field(default_factory=now)
    first_reply_created_at: float | None = None
    waiting_since: float | None = None
    agent_last_seen_at: float | None = None
    contact_last_seen_at: float | None = None
    assignee_last_seen_at: float | None = None
    message_ids: list[int] = field(default_factory=list)
    # monotonic creation times of recent messages, for the per-minute flood guard
    recent: deque[float] = field(default_factory=deque)
    # Derived values kept up to date on insert so a busy conversation stays O(1) per message.
    incoming_count: int = 0
    last_incoming_at: float | None = None
    first_by_source: dict[str, int] = field(default_factory=dict)  # source_id -> first message id


@dataclass
class Attachment:
    id: int
    message_id: int
    account_id: int
    file_type: str
    filename: str
    content_type: str
    data: bytes
    signed_id: str
    key: str
    created_monotonic: float
    meta: JSON = field(default_factory=dict)

    @property
    def extension(self) -> str | None:
        return self.filename.rsplit(".", 1)[1] if "." in self.filename else None


@dataclass
class Message:
    id: int
    account_id: int
    inbox_id: int
    conversation_pk: int
    content: str | None
    message_type: int
    content_type: str = "text"
    content_attributes: JSON = field(default_factory=dict)
    additional_attributes: JSON = field(default_factory=dict)
    private: bool = False
    status: str = "sent"
    source_id: str | None = None
    sender_type: str | None = None  # "User", "Contact" or None (system/template)
    sender_id: int | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def type_name(self) -> str:
        return MESSAGE_TYPES[self.message_type]


class Store:
    """All rows plus the secondary indexes the endpoints need."""

    def __init__(self, seed: EmulatorSeed) -> None:
        self._ids: dict[str, count[int]] = {}
        self.users: dict[int, User] = {}
        self.users_by_token: dict[str, User] = {}
        self.accounts: dict[int, Account] = {}
        self.inboxes: dict[int, Inbox] = {}
        self.contacts: dict[int, Contact] = {}
        self.contact_inboxes: dict[int, ContactInbox] = {}
        self.conversations: dict[int, Conversation] = {}
        self.messages: dict[int, Message] = {}
        self.attachments_by_signed_id: dict[str, Attachment] = {}
        self.attachments_by_key: dict[str, Attachment] = {}
        # (account_id, display_id) -> conversation pk
        self.conversation_by_display: dict[tuple[int, int], int] = {}
        # (inbox_id, source_id) -> contact_inbox id: Chatwoot's unique index
        self.contact_inbox_by_source: dict[tuple[int, str], int] = {}
        # Secondary indexes (what PostgreSQL indexes do for Chatwoot), so that lookups a
        # bridge makes per message do not scan every row.
        self.contact_inbox_ids_by_contact: dict[int, list[int]] = {}
        self.conversation_ids_by_contact: dict[int, list[int]] = {}
        self.conversation_ids_by_contact_inbox: dict[int, list[int]] = {}
        # (account_id, "phone_number" | "identifier" | "email", value) -> contact id
        self.contact_keys: dict[tuple[int, str, str], int] = {}
        self._load(seed)

    def next_id(self, table: str) -> int:
        return next(self._ids.setdefault(table, count(1)))

    def _load(self, seed: EmulatorSeed) -> None:
        users_by_email: dict[str, User] = {}
        used_ids = {a.id for a in seed.accounts if a.id is not None}
        auto = count(1)
        for sa in seed.accounts:
            account_id = sa.id
            if account_id is None:
                account_id = next(i for i in auto if i not in used_ids)
                used_ids.add(account_id)
            account = Account(id=account_id, name=sa.name, inbox_limit=sa.inbox_limit)
            self.accounts[account_id] = account
            for su in sa.users:
                user = users_by_email.get(su.email)
                if user is None:
                    user = User(self.next_id("users"), su.display_name, su.email, su.access_token)
                    users_by_email[su.email] = user
                    self.users[user.id] = user
                    self.users_by_token[user.access_token] = user
                account.roles[user.id] = su.role

    # --- lookups -----------------------------------------------------------------

    def user_by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    def account_inboxes(self, account_id: int) -> list[Inbox]:
        return [i for i in self.inboxes.values() if i.account_id == account_id]

    def account_contacts(self, account_id: int) -> list[Contact]:
        return [c for c in self.contacts.values() if c.account_id == account_id]

    def account_conversations(self, account_id: int) -> list[Conversation]:
        return [c for c in self.conversations.values() if c.account_id == account_id]

    def conversation(self, account_id: int, display_id: int) -> Conversation | None:
        pk = self.conversation_by_display.get((account_id, display_id))
        return self.conversations.get(pk) if pk is not None else None

    def contact_inboxes_of(self, contact_id: int) -> list[ContactInbox]:
        ids = self.contact_inbox_ids_by_contact.get(contact_id, [])
        return [self.contact_inboxes[i] for i in ids if i in self.contact_inboxes]

    def conversations_of_contact_inbox(self, contact_inbox_id: int) -> list[Conversation]:
        ids = self.conversation_ids_by_contact_inbox.get(contact_inbox_id, [])
        return [self.conversations[i] for i in ids if i in self.conversations]

    def conversations_of_contact(self, contact_id: int) -> list[Conversation]:
        ids = self.conversation_ids_by_contact.get(contact_id, [])
        return [self.conversations[i] for i in ids if i in self.conversations]

    # --- writes that maintain the indexes --------------------------------------------

    @staticmethod
    def _contact_keys(contact: Contact) -> list[tuple[int, str, str]]:
        keys = []
        if contact.phone_number is not None:
            keys.append((contact.account_id, "phone_number", contact.phone_number))
        if contact.identifier is not None:
            keys.append((contact.account_id, "identifier", contact.identifier))
        if contact.email is not None:
            keys.append((contact.account_id, "email", contact.email.lower()))
        return keys

    def contact_with(self, account_id: int, attribute: str, value: str) -> int | None:
        return self.contact_keys.get(
            (account_id, attribute, value.lower() if attribute == "email" else value)
        )

    def save_contact(self, contact: Contact, previous_keys: list[tuple[int, str, str]] | None = None) -> None:
        for key in previous_keys or []:
            if self.contact_keys.get(key) == contact.id:
                del self.contact_keys[key]
        self.contacts[contact.id] = contact
        for key in self._contact_keys(contact):
            self.contact_keys[key] = contact.id

    def contact_key_list(self, contact: Contact) -> list[tuple[int, str, str]]:
        return self._contact_keys(contact)

    def add_contact_inbox(self, ci: ContactInbox) -> None:
        self.contact_inboxes[ci.id] = ci
        self.contact_inbox_by_source[(ci.inbox_id, ci.source_id)] = ci.id
        self.contact_inbox_ids_by_contact.setdefault(ci.contact_id, []).append(ci.id)

    def remove_contact_inbox(self, ci: ContactInbox) -> None:
        self.contact_inboxes.pop(ci.id, None)
        self.contact_inbox_by_source.pop((ci.inbox_id, ci.source_id), None)
        ids = self.contact_inbox_ids_by_contact.get(ci.contact_id, [])
        if ci.id in ids:
            ids.remove(ci.id)

    def move_contact_inbox(self, ci: ContactInbox, contact_id: int) -> None:
        ids = self.contact_inbox_ids_by_contact.get(ci.contact_id, [])
        if ci.id in ids:
            ids.remove(ci.id)
        ci.contact_id = contact_id
        ci.updated_at = now()
        self.contact_inbox_ids_by_contact.setdefault(contact_id, []).append(ci.id)

    def move_conversation(self, conv: Conversation, contact_id: int) -> None:
        ids = self.conversation_ids_by_contact.get(conv.contact_id, [])
        if conv.id in ids:
            ids.remove(conv.id)
        conv.contact_id = contact_id
        self.conversation_ids_by_contact.setdefault(contact_id, []).append(conv.id)

    def add_conversation(self, conv: Conversation) -> None:
        self.conversations[conv.id] = conv
        self.conversation_by_display[(conv.account_id, conv.display_id)] = conv.id
        self.conversation_ids_by_contact.setdefault(conv.contact_id, []).append(conv.id)
        self.conversation_ids_by_contact_inbox.setdefault(conv.contact_inbox_id, []).append(conv.id)

    def remove_conversation(self, conv: Conversation) -> None:
        for mid in conv.message_ids:
            self.messages.pop(mid, None)
        self.conversations.pop(conv.id, None)
        self.conversation_by_display.pop((conv.account_id, conv.display_id), None)
        for index, key in (
            (self.conversation_ids_by_contact, conv.contact_id),
            (self.conversation_ids_by_contact_inbox, conv.contact_inbox_id),
        ):
            ids = index.get(key, [])
            if conv.id in ids:
                ids.remove(conv.id)

    def messages_of(self, conversation: Conversation) -> list[Message]:
        return [self.messages[i] for i in conversation.message_ids if i in self.messages]

    def last_message(self, conversation: Conversation) -> Message | None:
        ids = conversation.message_ids
        return self.messages.get(ids[-1]) if ids else None

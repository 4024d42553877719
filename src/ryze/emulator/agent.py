"""Agent actions as the Chatwoot dashboard performs them (same builders, so webhooks fire)."""

from __future__ import annotations

from collections.abc import Sequence

from .domain import Chatwoot
from .params import Upload
from .state import JSON, Conversation, Message, Store, User


class AgentError(LookupError):
    """Unknown account, conversation, message or user."""


class Agent:
    def __init__(self, store: Store, domain: Chatwoot) -> None:
        self.store = store
        self.domain = domain

    def user(self, account_id: int, email: str | None = None) -> User:
        account = self.store.accounts.get(account_id)
        if account is None:
            raise AgentError(f"no account {account_id}")
        if email is not None:
            user = self.store.user_by_email(email)
            if user is None or user.id not in account.roles:
                raise AgentError(f"no user {email} in account {account_id}")
            return user
        # The dashboard user by default: the account's first administrator.
        ordered = sorted(account.roles.items(), key=lambda kv: (kv[1] != "administrator", kv[0]))
        if not ordered:
            raise AgentError(f"account {account_id} has no users")
        return self.store.users[ordered[0][0]]

    def conversation(self, account_id: int, display_id: int) -> Conversation:
        conv = self.store.conversation(account_id, display_id)
        if conv is None:
            raise AgentError(f"no conversation {display_id} in account {account_id}")
        return conv

    def reply(
        self,
        account_id: int,
        display_id: int,
        content: str | None,
        *,
        private: bool = False,
        attachments: Sequence[tuple[str, bytes, str]] = (),
        user_email: str | None = None,
        content_attributes: JSON | None = None,
        recorded_audio: str | None = None,
    ) -> Message:
        conv = self.conversation(account_id, display_id)
        user = self.user(account_id, user_email)
        params: JSON = {
            "content": content,
            "message_type": "outgoing",
            "private": private,
            "attachments": [Upload(name, ctype, data) for name, data, ctype in attachments],
            "content_attributes": dict(content_attributes or {}),  # e.g. in_reply_to: a quoted reply
        }
        if recorded_audio is not None:
            params["is_recorded_audio"] = recorded_audio
        return self.domain.create_message(conv, params, user)

    def start_conversation(
        self,
        account_id: int,
        contact_id: int,
        inbox_id: int,
        content: str,
        *,
        user_email: str | None = None,
    ) -> Conversation:
        """The dashboard's "new conversation" on a contact: GET contactable_inboxes gives the
        source id (a UUID when the contact has no contact inbox there), then POST /conversations
        with it and the first message."""
        user = self.user(account_id, user_email)
        account = self.store.accounts[account_id]
        contact = self.store.contacts.get(contact_id)
        inbox = self.store.inboxes.get(inbox_id)
        if contact is None or contact.account_id != account_id:
            raise AgentError(f"no contact {contact_id} in account {account_id}")
        if inbox is None or inbox.account_id != account_id:
            raise AgentError(f"no inbox {inbox_id} in account {account_id}")
        params = {
            "inbox_id": inbox.id,
            "contact_id": contact.id,
            "source_id": self.domain.contactable_source_id(contact, inbox),
            "message": {"content": content},
        }
        conv, _ = self.domain.create_conversation(account, params, user, lambda _inbox: True)
        return conv

    def delete(self, account_id: int, display_id: int, message_id: int) -> Message:
        conv = self.conversation(account_id, display_id)
        msg = self.store.messages.get(message_id)
        if msg is None or msg.conversation_pk != conv.id:
            raise AgentError(f"no message {message_id} in conversation {display_id}")
        return self.domain.delete_message(msg)

    def toggle_status(
        self, account_id: int, display_id: int, status: str | None = None, user_email: str | None = None
    ) -> Conversation:
        conv = self.conversation(account_id, display_id)
        user = self.user(account_id, user_email)
        role = self.store.accounts[account_id].roles[user.id]
        self.domain.toggle_status(conv, status, None, user, role)
        return conv

    def typing(
        self,
        account_id: int,
        display_id: int,
        on: bool,
        *,
        private: bool = False,
        user_email: str | None = None,
    ) -> None:
        conv = self.conversation(account_id, display_id)
        self.domain.set_typing(conv, self.user(account_id, user_email), "on" if on else "off", private)

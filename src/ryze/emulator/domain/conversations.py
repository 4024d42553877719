"""ConversationsController#create, toggle_status and typing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import RecordNotFound, RecordNotUnique, UnhandledError
from ..events import PendingEvent
from ..params import as_dict, cast_bool, cast_int
from ..state import (
    CONVERSATION_STATUSES,
    JSON,
    Account,
    Conversation,
    Inbox,
    User,
    now,
)
from .base import (
    NotAuthorized,
    SourceNotUnique,
    blank,
    parse_time,
    str_or_none,
)
from .contacts import ContactOps
from .messages import MessageOps


class ConversationOps(ContactOps, MessageOps):
    """ConversationsController#create, toggle_status and toggle_typing_status."""

    def create_conversation(
        self, account: Account, params: JSON, user: User | None, can_access: Callable[[Inbox], bool]
    ) -> tuple[Conversation, bool]:
        """ConversationsController#create. Returns (conversation, created)."""
        inbox_id = cast_int(params.get("inbox_id"))
        contact_id = cast_int(params.get("contact_id"))
        source_id = str_or_none(params.get("source_id"))
        if inbox_id is not None and contact_id is not None:
            inbox = self.store.inboxes.get(inbox_id)
            contact = self.store.contacts.get(contact_id)
            if inbox is None or inbox.account_id != account.id:
                raise RecordNotFound("Couldn't find Inbox")
            if contact is None or contact.account_id != account.id:
                raise RecordNotFound("Couldn't find Contact")
            if not can_access(inbox):
                raise NotAuthorized
            try:
                ci = self.build_contact_inbox(contact, inbox, source_id)
            except RecordNotUnique:
                raise SourceNotUnique from None
        else:
            # Legacy path: ContactInbox.find_by!(source_id:) regardless of the inbox.
            found = next(
                (
                    c
                    for c in self.store.contact_inboxes.values()
                    if c.source_id == source_id and self.store.inboxes[c.inbox_id].account_id == account.id
                ),
                None,
            )
            if found is None:
                raise RecordNotFound("Couldn't find ContactInbox")
            ci = found
            inbox = self.store.inboxes[ci.inbox_id]
            contact = self.store.contacts[ci.contact_id]
            if not can_access(inbox):
                raise NotAuthorized
        if inbox.settings.get("lock_to_single_conversation"):
            existing = self.store.conversations_of_contact_inbox(ci.id)
            if existing:
                return existing[-1], False
        status = params.get("status") or "open"
        if status not in CONVERSATION_STATUSES:
            raise UnhandledError(f"'{status}' is not a valid status")
        if contact.blocked:
            status = "resolved"
        with self.bus.transaction():
            ts = now()
            conv = Conversation(
                id=self.store.next_id("conversations"),
                display_id=account.next_display_id,
                account_id=account.id,
                inbox_id=inbox.id,
                contact_id=contact.id,
                contact_inbox_id=ci.id,
                status=str(status),
                additional_attributes=as_dict(params.get("additional_attributes")),
                custom_attributes=as_dict(params.get("custom_attributes")),
                snoozed_until=parse_time(params.get("snoozed_until")) if status == "snoozed" else None,
                created_at=ts,
                updated_at=ts,
                last_activity_at=ts,
                waiting_since=ts,  # Conversation#ensure_waiting_since
            )
            assignee_id = cast_int(params.get("assignee_id"))
            if assignee_id is not None and assignee_id in account.roles:
                conv.assignee_id = assignee_id
            conv.team_id = cast_int(params.get("team_id"))
            account.next_display_id += 1
            self.store.add_conversation(conv)
            self._emit_conversation("conversation_created", conv)
            message = params.get("message")
            if isinstance(message, dict) and message:
                try:
                    self.create_message(conv, message, user)
                except Exception:
                    # The transaction rolls the conversation back; the display_id sequence
                    # (a PostgreSQL sequence) keeps its increment, as in Chatwoot.
                    self.store.remove_conversation(conv)
                    raise
        return conv, True

    def toggle_status(
        self, conv: Conversation, status: Any, snoozed_until: Any, user: User | None, role: str | None
    ) -> bool:
        if blank(status):
            new_status = "resolved" if conv.status == "open" else "open"
        else:
            new_status = str(status)
            if new_status not in CONVERSATION_STATUSES:
                raise UnhandledError(f"'{new_status}' is not a valid status")
        with self.bus.transaction():
            changes: dict[str, tuple[Any, Any]] = {}
            if new_status == "open" and user is not None and role == "agent" and conv.assignee_id != user.id:
                changes["assignee_id"] = (conv.assignee_id, user.id)
                conv.assignee_id = user.id
            until = parse_time(snoozed_until) if new_status == "snoozed" else None
            self._set_status(conv, new_status, changes, actor=user, snoozed_until=until)
        return True

    def set_typing(self, conv: Conversation, user: User | None, status: Any, is_private: Any) -> None:
        if status not in ("on", "off"):
            return
        event = f"conversation_typing_{status}"
        private = bool(cast_bool(is_private))
        user_data = (
            {"id": user.id, "name": user.name, "email": user.email, "type": "user"}
            if user is not None
            else None
        )

        def build() -> JSON:
            return {
                "event": event,
                "user": user_data,
                "conversation": self._conv_webhook(conv),
                "is_private": private,
            }

        self.bus.emit(PendingEvent(event, conv.inbox_id, conv.id, None, build))

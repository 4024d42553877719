"""Messages::MessageBuilder, the Message callbacks and message status changes."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from ..errors import RecordInvalid, UnhandledError
from ..params import Upload, as_dict, cast_bool, cast_int
from ..state import (
    JSON,
    MESSAGE_STATUSES,
    MESSAGE_TYPES,
    Attachment,
    Conversation,
    Message,
    User,
    now,
)
from ..views import iso
from .base import (
    CONTENT_LIMIT,
    CONTENT_TYPES,
    DELETED_CONTENT,
    Core,
    blank,
    file_type_for,
    status_activity,
    str_or_none,
)


class MessageOps(Core):
    """MessageBuilder, Message callbacks (reopen, activity, waiting_since), deletes, statuses."""

    def _set_status(
        self,
        conv: Conversation,
        new_status: str,
        changes: dict[str, tuple[Any, Any]],
        *,
        actor: User | None,
        snoozed_until: float | None = None,
        activity: str | None = None,
    ) -> None:
        old = conv.status
        if old != new_status:
            changes["status"] = (old, new_status)
            conv.status = new_status
        if conv.snoozed_until != snoozed_until:
            # Conversation#ensure_snooze_until_reset clears it for every non-snoozed status.
            changes["snoozed_until"] = (iso(conv.snoozed_until), iso(snoozed_until))
            conv.snoozed_until = snoozed_until
        if not changes:
            return
        self._touch(conv, changes)
        if "status" in changes:
            self._emit_conversation("conversation_status_changed", conv, changed=None)
            text = activity or status_activity(new_status, actor.name if actor else None)
            self._add_message(conv, content=text, message_type=2, sender=None)
        self._emit_conversation("conversation_updated", conv, changed=changes)

    def create_message(self, conv: Conversation, params: JSON, user: User | None) -> Message:
        """Messages::MessageBuilder#perform plus Message callbacks. Errors are plain
        exceptions; the route renders every one of them as 422 {"error": str(exc)}."""
        raw_type = params.get("message_type")
        if blank(raw_type):
            message_type = 1
        elif (
            isinstance(raw_type, int)
            and not isinstance(raw_type, bool)
            and 0 <= raw_type < len(MESSAGE_TYPES)
        ):
            message_type = raw_type
        elif isinstance(raw_type, str) and raw_type in MESSAGE_TYPES:
            message_type = MESSAGE_TYPES.index(raw_type)
        else:
            raise UnhandledError(f"'{raw_type}' is not a valid message_type")  # ArgumentError
        content_type = params.get("content_type") or "text"
        if content_type not in CONTENT_TYPES:
            raise UnhandledError(f"'{content_type}' is not a valid content_type")
        content = params.get("content")
        content = None if content is None else str(content)
        errors: list[tuple[str, str]] = []
        if content is not None and len(content) > CONTENT_LIMIT:
            errors.append(("content", f"Content is too long (maximum is {CONTENT_LIMIT} characters)"))
        if self._flooded(conv):
            errors.append(("base", "Too many messages"))
        if errors:
            raise RecordInvalid(errors)  # str() is "Validation failed: ..." like Rails
        attrs = as_dict(params.get("content_attributes"))
        additional = as_dict(params.get("additional_attributes"))
        if isinstance(params.get("template_params"), dict):
            additional["template_params"] = params["template_params"]
        uploads = params.get("attachments")
        files = [u for u in uploads if isinstance(u, Upload)] if isinstance(uploads, list) else []
        voice = bool(cast_bool(params.get("is_voice_message")))
        recorded = _recorded_names(params.get("is_recorded_audio"))
        # MessageBuilder#sender: ``message_type == 'outgoing' ? (message_sender || @user) :
        # @conversation.contact`` (app/builders/messages/message_builder.rb): an incoming, activity
        # or template message created through the API is the contact's
        if message_type != 1:
            sender: tuple[str, int] | None = ("Contact", conv.contact_id)
        elif user is not None:
            sender = ("User", user.id)
        else:
            sender = None
        private = bool(cast_bool(params.get("private")))
        with self.bus.transaction():
            msg = self._add_message(
                conv,
                content=content,
                message_type=message_type,
                sender=sender,
                content_type=str(content_type),
                content_attributes=attrs,
                additional_attributes=additional,
                private=private,
                source_id=str_or_none(params.get("source_id")),
                files=files,
                voice=voice,
                recorded=recorded,
            )
        return msg

    def _flooded(self, conv: Conversation) -> bool:
        horizon = time.monotonic() - 60.0
        while conv.recent and conv.recent[0] < horizon:
            conv.recent.popleft()
        return len(conv.recent) >= self.settings.message_per_minute_limit

    def _add_message(
        self,
        conv: Conversation,
        *,
        content: str | None,
        message_type: int,
        sender: tuple[str, int] | None,
        content_type: str = "text",
        content_attributes: JSON | None = None,
        additional_attributes: JSON | None = None,
        private: bool = False,
        source_id: str | None = None,
        files: list[Upload] | None = None,
        voice: bool = False,
        recorded: frozenset[str] = frozenset(),
    ) -> Message:
        ts = now()
        msg = Message(
            id=self.store.next_id("messages"),
            account_id=conv.account_id,
            inbox_id=conv.inbox_id,
            conversation_pk=conv.id,
            content=content,
            message_type=message_type,
            content_type=content_type,
            content_attributes=dict(content_attributes or {}),
            additional_attributes=dict(additional_attributes or {}),
            private=private,
            source_id=source_id,
            sender_type=sender[0] if sender else None,
            sender_id=sender[1] if sender else None,
            created_at=ts,
            updated_at=ts,
        )
        self._resolve_reply(conv, msg)
        for upload in files or []:
            msg.attachments.append(self._attachment(msg, upload, voice, upload.filename in recorded))
        self.store.messages[msg.id] = msg
        conv.message_ids.append(msg.id)
        conv.recent.append(time.monotonic())
        if source_id is not None:
            conv.first_by_source.setdefault(source_id, msg.id)
        if message_type == 0:
            conv.incoming_count += 1
            conv.last_incoming_at = ts
        if message_type == 2:
            conv.last_activity_at = ts
            return msg
        with self.bus.transaction():
            # after_create_commit order: reopen_conversation, set_conversation_activity,
            # dispatch_create_events, then update_waiting_since / first reply bookkeeping.
            if message_type == 0 and not conv.muted:
                if conv.status == "snoozed":
                    self._set_status(conv, "open", {}, actor=None)
                elif conv.status == "resolved":
                    self._set_status(
                        conv,
                        "open",
                        {},
                        actor=None,
                        activity="System reopened the conversation due to a new incoming message.",
                    )
            conv.last_activity_at = ts
            if sender and sender[0] == "Contact" and sender[1] in self.store.contacts:
                self.store.contacts[sender[1]].last_activity_at = ts
            self._emit_message("message_created", msg)
            changes: dict[str, tuple[Any, Any]] = {}
            if message_type == 0 and conv.waiting_since is None:
                changes["waiting_since"] = (None, iso(ts))
                conv.waiting_since = ts
            elif message_type == 1 and not private and msg.sender_type == "User":
                if conv.first_reply_created_at is None:
                    changes["first_reply_created_at"] = (None, iso(ts))
                    conv.first_reply_created_at = ts
                if conv.waiting_since is not None:
                    changes["waiting_since"] = (iso(conv.waiting_since), None)
                    conv.waiting_since = None
            if changes:
                self._touch(conv, changes)
                self._emit_conversation("conversation_updated", conv, changed=changes)
            if message_type == 0:
                self._greet(conv, msg)
        return msg

    def _greet(self, conv: Conversation, first: Message) -> None:
        """MessageTemplates::HookExecutionService: the inbox greeting, as a `template`
        message with no sender, after the conversation's first (incoming) message."""
        inbox = self.store.inboxes.get(conv.inbox_id)
        if inbox is None or not inbox.settings.get("greeting_enabled"):
            return
        greeting = inbox.settings.get("greeting_message")
        if blank(greeting):
            return
        chat = 0
        for mid in conv.message_ids:
            if self.store.messages[mid].message_type != 2:
                chat += 1
                if chat > 1:
                    return  # not the conversation's first message
        self._add_message(conv, content=str(greeting), message_type=3, sender=None)

    def _resolve_reply(self, conv: Conversation, msg: Message) -> None:
        """Messages::InReplyToMessageBuilder: look up inside the conversation, write both keys."""
        attrs = msg.content_attributes
        if "in_reply_to" not in attrs and "in_reply_to_external_id" not in attrs:
            return
        target: Message | None = None
        reply_id = cast_int(attrs.get("in_reply_to"))
        if reply_id is not None:
            found = self.store.messages.get(reply_id)
            if found is not None and found.conversation_pk == conv.id:
                target = found
        elif not blank(attrs.get("in_reply_to_external_id")):
            first_id = conv.first_by_source.get(str(attrs["in_reply_to_external_id"]))
            target = self.store.messages.get(first_id) if first_id is not None else None
        attrs["in_reply_to"] = target.id if target else None
        attrs["in_reply_to_external_id"] = target.source_id if target else None

    def _attachment(self, msg: Message, upload: Upload, voice: bool, recorded: bool = False) -> Attachment:
        file_type = file_type_for(upload.content_type)
        att = Attachment(
            id=self.store.next_id("attachments"),
            message_id=msg.id,
            account_id=msg.account_id,
            file_type=file_type,
            filename=upload.filename,
            content_type=upload.content_type,
            data=upload.data,
            signed_id=secrets.token_urlsafe(24),
            key=secrets.token_hex(14),
            created_monotonic=time.monotonic(),
        )
        if voice and file_type == "audio":
            att.meta["is_voice_message"] = True
        if recorded and file_type == "audio":
            # the dashboard's reply box names its recordings in is_recorded_audio; the attachment
            # keeps meta.is_recorded_audio (its webhook data, push_event_data, shows no meta)
            att.meta["is_recorded_audio"] = True
        self.store.attachments_by_signed_id[att.signed_id] = att
        self.store.attachments_by_key[att.key] = att
        return att

    def delete_message(self, msg: Message) -> Message:
        """MessagesController#destroy: a soft delete that fires message_updated."""
        with self.bus.transaction():
            for att in msg.attachments:
                self.store.attachments_by_signed_id.pop(att.signed_id, None)
                self.store.attachments_by_key.pop(att.key, None)
            msg.attachments = []
            msg.content = DELETED_CONTENT
            msg.content_type = "text"
            msg.content_attributes = {"deleted": True}
            msg.updated_at = now()
            self._emit_message("message_updated", msg)
        return msg

    def update_message_status(self, msg: Message, status: Any, external_error: Any) -> Message:
        """Messages::StatusUpdateService: unknown status or read -> delivered is ignored."""
        if status not in MESSAGE_STATUSES:
            return msg
        if msg.status == "read" and status == "delivered":
            return msg
        attrs = dict(msg.content_attributes)
        if status == "failed":
            attrs["external_error"] = external_error
        else:
            attrs.pop("external_error", None)
        self._update_message(msg, str(status), attrs)
        return msg

    def mark_webhook_failed(self, message_id: int, error: str) -> None:
        """Webhooks::Trigger#update_message_status: failed + external_error, once."""
        msg = self.store.messages.get(message_id)
        if msg is None:
            return
        attrs = {**msg.content_attributes, "external_error": error}
        self._update_message(msg, "failed", attrs)

    def _update_message(self, msg: Message, status: str, attrs: JSON) -> None:
        if msg.status == status and msg.content_attributes == attrs:
            return  # no previous_changes: Message#dispatch_update_event stays silent
        msg.status = status
        msg.content_attributes = attrs
        msg.updated_at = now()
        self._emit_message("message_updated", msg)


def _recorded_names(raw: object) -> frozenset[str]:
    """``is_recorded_audio``: the recorded uploads' file names, a JSON list (as a multipart field)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return frozenset()
    if isinstance(raw, list):
        return frozenset(str(name) for name in raw)
    return frozenset()

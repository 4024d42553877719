"""JSON shapes of Chatwoot's jbuilder views and `push_event_data`/`webhook_data` methods.

Timestamps follow the Rails views: integers in REST partials, a float `updated_at` on
conversations, ISO-8601 with milliseconds where Rails serialises a raw time column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .state import JSON, Attachment, Contact, ContactInbox, Conversation, Inbox, Message, Store, User

# The keys the web-widget and Twilio partials emit as null for an API inbox (§3).
_NULL_WIDGET_KEYS = (
    "allowed_domains",
    "widget_color",
    "website_url",
    "welcome_title",
    "welcome_tagline",
    "web_widget_script",
    "website_token",
    "selected_feature_flags",
    "reply_time",
    "messaging_service_sid",
    "phone_number",
)

INBOX_SETTING_DEFAULTS: JSON = {
    "greeting_enabled": False,
    "greeting_message": None,
    "working_hours_enabled": False,
    "enable_email_collect": True,
    "csat_survey_enabled": False,
    "csat_config": {},
    "enable_auto_assignment": True,
    "auto_assignment_config": {},
    "out_of_office_message": None,
    "timezone": "UTC",
    "allow_messages_after_resolved": True,
    "lock_to_single_conversation": False,
    "sender_name_type": "friendly",
    "business_name": None,
    "portal_id": None,
}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def ints(ts: float | None) -> int:
    return int(ts) if ts is not None else 0


def working_hours() -> list[JSON]:
    hours = []
    for day in range(7):
        weekend = day in (0, 6)
        hours.append(
            {
                "day_of_week": day,
                "closed_all_day": weekend,
                "open_hour": None if weekend else 9,
                "open_minutes": None if weekend else 0,
                "close_hour": None if weekend else 17,
                "close_minutes": None if weekend else 0,
                "open_all_day": False,
            }
        )
    return hours


# --- inboxes --------------------------------------------------------------------


def inbox_json(inbox: Inbox, *, admin: bool) -> JSON:
    s = inbox.settings
    body: JSON = {
        "id": inbox.id,
        "avatar_url": "",
        "channel_id": inbox.channel_id,
        "name": inbox.name,
        "channel_type": "Channel::Api",
        "greeting_enabled": s["greeting_enabled"],
        "greeting_message": s["greeting_message"],
        "working_hours_enabled": s["working_hours_enabled"],
        "enable_email_collect": s["enable_email_collect"],
        "csat_survey_enabled": s["csat_survey_enabled"],
        "csat_config": s["csat_config"],
        "enable_auto_assignment": s["enable_auto_assignment"],
        "auto_assignment_config": s["auto_assignment_config"],
        "out_of_office_message": s["out_of_office_message"],
        "working_hours": working_hours(),
        "timezone": s["timezone"],
        "callback_webhook_url": None,
        "allow_messages_after_resolved": s["allow_messages_after_resolved"],
        "lock_to_single_conversation": s["lock_to_single_conversation"],
        "sender_name_type": s["sender_name_type"],
        "business_name": s["business_name"],
    }
    for key in _NULL_WIDGET_KEYS:
        body[key] = None
    body["hmac_mandatory"] = inbox.hmac_mandatory
    if admin:
        body["hmac_token"] = inbox.hmac_token
        if inbox.secret:  # no `secret` column before Chatwoot 4.13 (webhook_signing off)
            body["secret"] = inbox.secret
    body["webhook_url"] = inbox.webhook_url
    body["inbox_identifier"] = inbox.identifier
    body["additional_attributes"] = inbox.additional_attributes
    body["provider"] = None
    return body


def inbox_brief(inbox: Inbox) -> JSON:
    """The inbox inside `contact_inboxes` (`_inbox_slim`-like partial)."""
    return {
        "id": inbox.id,
        "avatar_url": "",
        "channel_id": inbox.channel_id,
        "name": inbox.name,
        "channel_type": "Channel::Api",
        "provider": None,
    }


def inbox_record(inbox: Inbox) -> JSON:
    """`Inbox#as_json`: the raw table row, as rendered in the contact create response."""
    s = inbox.settings
    return {
        "id": inbox.id,
        "channel_id": inbox.channel_id,
        "account_id": inbox.account_id,
        "name": inbox.name,
        "created_at": iso(inbox.created_at),
        "updated_at": iso(inbox.created_at),
        "channel_type": "Channel::Api",
        "enable_auto_assignment": s["enable_auto_assignment"],
        "greeting_enabled": s["greeting_enabled"],
        "greeting_message": s["greeting_message"],
        "email_address": None,
        "working_hours_enabled": s["working_hours_enabled"],
        "out_of_office_message": s["out_of_office_message"],
        "timezone": s["timezone"],
        "enable_email_collect": s["enable_email_collect"],
        "csat_survey_enabled": s["csat_survey_enabled"],
        "allow_messages_after_resolved": s["allow_messages_after_resolved"],
        "auto_assignment_config": s["auto_assignment_config"],
        "lock_to_single_conversation": s["lock_to_single_conversation"],
        "portal_id": s["portal_id"],
        "sender_name_type": s["sender_name_type"],
        "business_name": s["business_name"],
        "csat_config": s["csat_config"],
    }


# --- contacts -------------------------------------------------------------------


def avatar_url(contact: Contact, base_url: str) -> str:
    """Avatarable#avatar_url: the attached avatar's URL under FRONTEND_URL, else "" (the emulator
    serves the original through the ActiveStorage redirect; Chatwoot a 250×250 representation)."""
    att = contact.avatar
    if att is None:
        return ""
    return f"{base_url}/rails/active_storage/blobs/redirect/{att.signed_id}/{quote(att.filename)}"


def contact_json(store: Store, contact: Contact, *, with_inboxes: bool = True, base_url: str = "") -> JSON:
    body: JSON = {
        "additional_attributes": contact.additional_attributes,
        "availability_status": "offline",
        "email": contact.email,
        "id": contact.id,
        "name": contact.name,
        "phone_number": contact.phone_number,
        "blocked": contact.blocked,
        "identifier": contact.identifier,
        "thumbnail": avatar_url(contact, base_url),
        "custom_attributes": contact.custom_attributes,
        "created_at": int(contact.created_at),
    }
    if contact.last_activity_at is not None:
        body["last_activity_at"] = int(contact.last_activity_at)
    if with_inboxes:
        body["contact_inboxes"] = [
            {"source_id": ci.source_id, "inbox": inbox_brief(store.inboxes[ci.inbox_id])}
            for ci in store.contact_inboxes_of(contact.id)
            if ci.inbox_id in store.inboxes
        ]
    return body


def contact_push(contact: Contact) -> JSON:
    return {
        "additional_attributes": contact.additional_attributes,
        "custom_attributes": contact.custom_attributes,
        "email": contact.email,
        "id": contact.id,
        "identifier": contact.identifier,
        "name": contact.name,
        "phone_number": contact.phone_number,
        "thumbnail": "",
        "blocked": contact.blocked,
        "type": "contact",
    }


def contact_webhook(store: Store, contact: Contact) -> JSON:
    account = store.accounts[contact.account_id]
    # Contact#webhook_data has no `type` key (unlike the user and bot variants).
    return {
        "account": {"id": account.id, "name": account.name},
        "additional_attributes": contact.additional_attributes,
        "avatar": "",
        "custom_attributes": contact.custom_attributes,
        "email": contact.email,
        "id": contact.id,
        "identifier": contact.identifier,
        "name": contact.name,
        "phone_number": contact.phone_number,
        "thumbnail": "",
        "blocked": contact.blocked,
    }


def contact_inbox_row(ci: ContactInbox) -> JSON:
    return {
        "id": ci.id,
        "contact_id": ci.contact_id,
        "inbox_id": ci.inbox_id,
        "source_id": ci.source_id,
        "created_at": iso(ci.created_at),
        "updated_at": iso(ci.updated_at),
        "hmac_verified": ci.hmac_verified,
        "pubsub_token": ci.pubsub_token,
    }


# --- users ----------------------------------------------------------------------


def user_push(user: User) -> JSON:
    return {
        "id": user.id,
        "name": user.name,
        "available_name": user.name,
        "avatar_url": "",
        "type": "user",
        "availability_status": "online",
        "thumbnail": "",
    }


def user_webhook(user: User) -> JSON:
    return {"id": user.id, "name": user.name, "email": user.email, "type": "user"}


def agent_json(user: User, role: str) -> JSON:
    return {
        "id": user.id,
        "account_id": None,
        "availability_status": "online",
        "auto_offline": True,
        "confirmed": True,
        "email": user.email,
        "available_name": user.name,
        "name": user.name,
        "role": role,
        "thumbnail": "",
    }


# --- attachments and messages ----------------------------------------------------


def data_url(base_url: str, att: Attachment) -> str:
    return f"{base_url}/rails/active_storage/blobs/redirect/{att.signed_id}/{att.filename}"


def attachment_push(base_url: str, att: Attachment) -> JSON:
    """`Attachment#push_event_data` (app/models/attachment.rb): no `meta` key for any file type,
    so a voice flag given at upload is never shown. Audio goes through `audio_metadata`: its
    `data_url` is `rails_storage_redirect_url(file, disposition: 'inline')`, the same redirect
    with `?disposition=inline`, and it adds `transcribed_text`."""
    url = data_url(base_url, att)
    body: JSON = {
        "id": att.id,
        "message_id": att.message_id,
        "file_type": att.file_type,
        "account_id": att.account_id,
        "extension": att.extension,
        "content_type": att.content_type,
        "data_url": url,
        "thumb_url": url if att.file_type == "image" else "",
        "file_size": len(att.data),
        "width": None,
        "height": None,
    }
    if att.file_type == "audio":
        body["data_url"] = url + "?disposition=inline"
        body["transcribed_text"] = ""
    return body


def _sender_push(store: Store, msg: Message) -> JSON | None:
    if msg.sender_type == "Contact" and msg.sender_id in store.contacts:
        return contact_push(store.contacts[msg.sender_id])
    if msg.sender_type == "User" and msg.sender_id in store.users:
        return user_push(store.users[msg.sender_id])
    return None


def message_json(store: Store, base_url: str, msg: Message, echo_id: str | None = None) -> JSON:
    """`api/v1/models/_message.json.jbuilder` (REST create/list/update responses).
    `echo_id` is not stored by Chatwoot: only the create response carries it back."""
    conv = store.conversations[msg.conversation_pk]
    body: JSON = {
        "id": msg.id,
        "content": msg.content,
        "inbox_id": msg.inbox_id,
    }
    if echo_id is not None:
        body["echo_id"] = echo_id
    body.update(
        {
            "conversation_id": conv.display_id,
            "message_type": msg.message_type,
            "content_type": msg.content_type,
            "status": msg.status,
            "content_attributes": msg.content_attributes,
            "created_at": int(msg.created_at),
            "private": msg.private,
            "source_id": msg.source_id,
        }
    )
    sender = _sender_push(store, msg)
    if sender is not None:
        body["sender"] = sender
    if msg.attachments:
        body["attachments"] = [attachment_push(base_url, a) for a in msg.attachments]
    return body


def message_push(store: Store, base_url: str, msg: Message) -> JSON:
    """`Message#push_event_data`: the row plus display conversation id and sub-objects."""
    conv = store.conversations[msg.conversation_pk]
    ci = store.contact_inboxes.get(conv.contact_inbox_id)
    body: JSON = {
        "id": msg.id,
        "content": msg.content,
        "account_id": msg.account_id,
        "inbox_id": msg.inbox_id,
        "conversation_id": conv.display_id,
        "message_type": msg.message_type,
        "created_at": int(msg.created_at),
        "updated_at": iso(msg.updated_at),
        "private": msg.private,
        "status": msg.status,
        "source_id": msg.source_id,
        "content_type": msg.content_type,
        "content_attributes": msg.content_attributes,
        "sender_type": msg.sender_type,
        "sender_id": msg.sender_id,
        "external_source_ids": {},
        "additional_attributes": msg.additional_attributes,
        "processed_message_content": msg.content,
        "sentiment": {},
        "conversation": {
            "assignee_id": conv.assignee_id,
            "unread_count": unread_count(store, conv),
            "last_activity_at": int(conv.last_activity_at),
            "contact_inbox": {"source_id": ci.source_id if ci else None},
        },
    }
    if msg.attachments:
        body["attachments"] = [attachment_push(base_url, a) for a in msg.attachments]
    sender = _sender_push(store, msg)
    if sender is not None:
        body["sender"] = sender
    return body


def message_webhook(store: Store, base_url: str, msg: Message) -> JSON:
    """`Message#webhook_data` (the top level of message_created/message_updated)."""
    conv = store.conversations[msg.conversation_pk]
    inbox = store.inboxes[msg.inbox_id]
    account = store.accounts[msg.account_id]
    sender: JSON | None = None
    if msg.sender_type == "Contact" and msg.sender_id in store.contacts:
        sender = contact_webhook(store, store.contacts[msg.sender_id])
    elif msg.sender_type == "User" and msg.sender_id in store.users:
        sender = user_webhook(store.users[msg.sender_id])
    body: JSON = {
        "id": msg.id,
        "content": normalize_webhook_content(msg.content),
        "content_type": msg.content_type,
        "content_attributes": msg.content_attributes,
        "additional_attributes": msg.additional_attributes,
        "message_type": msg.type_name,
        "private": msg.private,
        "source_id": msg.source_id,
        "created_at": iso(msg.created_at),
        "sender": sender,
        "inbox": {"id": inbox.id, "name": inbox.name},
        "account": {"id": account.id, "name": account.name},
        "conversation": conversation_webhook(store, base_url, conv),
    }
    if msg.attachments:
        body["attachments"] = [attachment_push(base_url, a) for a in msg.attachments]
    return body


def normalize_webhook_content(content: str | None) -> str | None:
    """Messages::WebhookContentNormalizer (v4.13+): drop markdown hard-break backslashes
    at line ends and trailing newlines."""
    if content is None:
        return None
    lines = [line[:-1] if line.endswith("\\") else line for line in content.split("\n")]
    return "\n".join(lines).rstrip("\n")


# --- conversations --------------------------------------------------------------


def unread_count(store: Store, conv: Conversation) -> int:
    """Incoming messages after agent_last_seen_at (never set here: agents "see" nothing)."""
    if conv.agent_last_seen_at is None:
        return conv.incoming_count
    seen = conv.agent_last_seen_at
    return sum(1 for m in store.messages_of(conv) if m.message_type == 0 and m.created_at > seen)


def can_reply(store: Store, conv: Conversation) -> bool:
    """The API inbox reply window (agent_reply_time_window hours since the last incoming)."""
    inbox = store.inboxes.get(conv.inbox_id)
    window = inbox.additional_attributes.get("agent_reply_time_window") if inbox else None
    if not isinstance(window, int) or window <= 0:
        return True
    if conv.last_incoming_at is None:
        return False
    return (conv.last_incoming_at + window * 3600) > datetime.now(tz=UTC).timestamp()


def _last_non_activity(store: Store, conv: Conversation, *, public_only: bool) -> Message | None:
    for mid in reversed(conv.message_ids):
        m = store.messages.get(mid)
        if m is None or m.message_type == 2:
            continue
        if public_only and m.private:
            continue
        return m
    return None


def conversation_json(store: Store, base_url: str, conv: Conversation) -> JSON:
    """`api/v1/conversations/partials/_conversation.json.jbuilder`."""
    contact = store.contacts[conv.contact_id]
    meta: JSON = {"sender": contact_json(store, contact, with_inboxes=False), "channel": "Channel::Api"}
    if conv.assignee_id is not None and conv.assignee_id in store.users:
        meta["assignee"] = agent_json(store.users[conv.assignee_id], "agent")
        meta["assignee_type"] = "User"
    meta["hmac_verified"] = False
    last = store.last_message(conv)
    last_na = _last_non_activity(store, conv, public_only=False)
    return {
        "meta": meta,
        "id": conv.display_id,
        "messages": [message_push(store, base_url, last)] if last else [],
        "account_id": conv.account_id,
        "uuid": conv.uuid,
        "additional_attributes": conv.additional_attributes,
        "agent_last_seen_at": ints(conv.agent_last_seen_at),
        "assignee_last_seen_at": ints(conv.assignee_last_seen_at),
        "can_reply": can_reply(store, conv),
        "contact_last_seen_at": ints(conv.contact_last_seen_at),
        "custom_attributes": conv.custom_attributes,
        "inbox_id": conv.inbox_id,
        "labels": conv.labels,
        "muted": conv.muted,
        "snoozed_until": iso(conv.snoozed_until),
        "status": conv.status,
        "created_at": int(conv.created_at),
        "updated_at": conv.updated_at,
        "timestamp": int(conv.last_activity_at),
        "first_reply_created_at": ints(conv.first_reply_created_at),
        "unread_count": unread_count(store, conv),
        "last_non_activity_message": message_push(store, base_url, last_na) if last_na else None,
        "last_activity_at": int(conv.last_activity_at),
        "priority": conv.priority,
        "waiting_since": ints(conv.waiting_since),
        "sla_policy_id": None,
    }


def conversation_webhook(store: Store, base_url: str, conv: Conversation) -> JSON:
    """`Conversations::EventDataPresenter#webhook_data`."""
    contact = store.contacts[conv.contact_id]
    account = store.accounts[conv.account_id]
    ci = store.contact_inboxes.get(conv.contact_inbox_id)
    last_public = _last_non_activity(store, conv, public_only=True)
    assignee: Any = None
    if conv.assignee_id is not None and conv.assignee_id in store.users:
        assignee = user_push(store.users[conv.assignee_id])
    return {
        "additional_attributes": conv.additional_attributes,
        "can_reply": can_reply(store, conv),
        "channel": "Channel::Api",
        "contact_inbox": contact_inbox_row(ci) if ci else None,
        "id": conv.display_id,
        "inbox_id": conv.inbox_id,
        "messages": [message_push(store, base_url, last_public)] if last_public else [],
        "labels": conv.labels,
        "meta": {
            "sender": contact_push(contact),
            "assignee": assignee,
            "assignee_type": "User" if assignee else None,
            "team": None,
            "hmac_verified": False,
        },
        "status": conv.status,
        "custom_attributes": conv.custom_attributes,
        "snoozed_until": iso(conv.snoozed_until),
        "unread_count": unread_count(store, conv),
        "first_reply_created_at": iso(conv.first_reply_created_at),
        "priority": conv.priority,
        "waiting_since": ints(conv.waiting_since),
        "agent_last_seen_at": ints(conv.agent_last_seen_at),
        "contact_last_seen_at": ints(conv.contact_last_seen_at),
        "last_activity_at": int(conv.last_activity_at),
        "timestamp": int(conv.last_activity_at),
        "created_at": int(conv.created_at),
        "updated_at": conv.updated_at,
        "account": {"id": account.id, "name": account.name},
    }

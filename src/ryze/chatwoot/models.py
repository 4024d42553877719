"""The fields of Chatwoot's answers the bridge reads (everything else is ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Inbox(_Model):
    id: int
    name: str
    channel_id: int | None = None
    channel_type: str | None = None
    webhook_url: str | None = None
    secret: str | None = None  # webhook signing secret (v4.13+, admins only)
    inbox_identifier: str | None = None
    additional_attributes: dict[str, Any] | None = None


class ContactInboxRef(_Model):
    source_id: str | None = None
    inbox: dict[str, Any] | None = None


class Contact(_Model):
    id: int
    name: str | None = None
    identifier: str | None = None
    phone_number: str | None = None
    email: str | None = None
    thumbnail: str | None = None  # the avatar's URL ("" when none)
    contact_inboxes: list[ContactInboxRef] = Field(default_factory=list)


class Conversation(_Model):
    id: int  # display_id
    inbox_id: int | None = None
    status: str = "open"
    account_id: int | None = None


class Message(_Model):
    id: int
    content: str | None = None
    message_type: int | str | None = None
    conversation_id: int | None = None
    source_id: str | None = None
    status: str | None = None
    private: bool = False
    content_attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: float | None = None  # unix seconds in the REST views (``created_at.to_i``)

    @field_validator("created_at", mode="before")
    @classmethod
    def _unix_seconds(cls, value: Any) -> Any:
        # Webhook-shaped payloads carry an ISO string here: not needed, so not a validation error.
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None


class ListedMessage(Message):
    """A message of ``GET …/conversations/{id}/messages`` with what a webhook of it would carry
    (``api/v1/models/_message.json.jbuilder``): the catch-up sweep rebuilds the webhook from it."""

    content_type: str | None = None
    sender: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)


class ConversationSummary(_Model):
    """A row of ``GET …/conversations`` (``conversations/partials/_conversation.json.jbuilder``)."""

    id: int  # display_id
    inbox_id: int | None = None
    last_activity_at: float | None = None  # unix seconds
    meta: dict[str, Any] = Field(default_factory=dict)  # meta.sender: the contact


class ToggleStatusResult(_Model):
    success: bool | None = None
    conversation_id: int | None = None
    current_status: str | None = None


class Attachment(_Model):
    """A file to upload with a message (multipart ``attachments[]``)."""

    filename: str
    content_type: str
    data: bytes


class ProfileAccount(_Model):
    """One entry of ``accounts`` in ``GET /api/v1/profile`` (``app/views/api/v1/models/_user.json.jbuilder``:
    one per ``account_user``, with that membership's ``role``)."""

    id: int
    role: str | None = None  # "administrator" or "agent" (a custom role is an agent with permissions)


class Profile(_Model):
    """``GET /api/v1/profile``: the token's user. Its ``access_token`` field is never read."""

    id: int
    name: str | None = None
    accounts: list[ProfileAccount] = Field(default_factory=list)


class ServerInfo(_Model):
    """``GET /api`` (``app/controllers/api_controller.rb#index``, no authentication):
    ``{"version": Chatwoot.config[:version], "timestamp": …}``."""

    version: str | None = None

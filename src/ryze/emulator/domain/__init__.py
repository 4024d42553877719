"""Chatwoot's models, builders and services: the behaviour behind the REST routes and the
agent actions. Both go through here so the dashboard and the API fire the same webhooks."""

from .base import (
    CONTENT_LIMIT,
    DELETED_CONTENT,
    E164,
    InboxLimitReached,
    NotAuthorized,
    Settings,
    SourceNotUnique,
    file_type_for,
    parse_time,
)
from .conversations import ConversationOps
from .inboxes import InboxOps


class Chatwoot(InboxOps, ConversationOps):
    """The behaviour of the Rails app over an in-memory `Store`."""


__all__ = [
    "CONTENT_LIMIT",
    "DELETED_CONTENT",
    "E164",
    "Chatwoot",
    "InboxLimitReached",
    "NotAuthorized",
    "Settings",
    "SourceNotUnique",
    "file_type_for",
    "parse_time",
]

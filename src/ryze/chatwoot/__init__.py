"""A typed asyncio client for the parts of the Chatwoot application API the bridge uses."""

from ryze.chatwoot.client import ChatwootClient, ChatwootSessions
from ryze.chatwoot.errors import (
    ChatwootAuthError,
    ChatwootError,
    ChatwootHTTPError,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootRefused,
    ChatwootServerError,
    ChatwootTimeout,
    ChatwootUnreachable,
    ChatwootValidationError,
    error_summary,
)
from ryze.chatwoot.port import ChatwootPort

__all__ = [
    "ChatwootAuthError",
    "ChatwootClient",
    "ChatwootError",
    "ChatwootHTTPError",
    "ChatwootNotFound",
    "ChatwootPort",
    "ChatwootRateLimited",
    "ChatwootRefused",
    "ChatwootServerError",
    "ChatwootSessions",
    "ChatwootTimeout",
    "ChatwootUnreachable",
    "ChatwootValidationError",
    "error_summary",
]

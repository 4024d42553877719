"""Chatwoot failures as typed exceptions, each carrying the status, the raw body and the endpoint."""

from __future__ import annotations

from typing import Any

import orjson


class ChatwootError(Exception):
    """Any failed Chatwoot call. ``endpoint`` is ``"METHOD /path"`` (never the token)."""

    status: int | None = None
    retryable: bool = False

    def __init__(self, message: str, *, endpoint: str = "", body: str = "") -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.body = body


class ChatwootUnreachable(ChatwootError):
    """DNS, connect, TLS or a dropped connection: no HTTP answer at all."""

    retryable = True


class ChatwootRefused(ChatwootError):
    """The outbound-fetch policy refused the base URL's address: no connection was made. Not
    retryable: only an operator changing the allow-list (and restarting) changes the answer."""


class ChatwootTimeout(ChatwootError):
    """No answer within the budget. The request may or may not have taken effect."""

    retryable = True


class ChatwootHTTPError(ChatwootError):
    """Chatwoot answered with a non-2xx status."""

    def __init__(self, status: int, body: str, *, endpoint: str) -> None:
        super().__init__(
            f"Chatwoot answered {status} to {endpoint}: {body[:300]}", endpoint=endpoint, body=body
        )
        self.status = status


class ChatwootAuthError(ChatwootHTTPError):
    """401: unknown token, not a member of the account, or not an administrator (Pundit denial)."""


class ChatwootNotFound(ChatwootHTTPError):
    """404: unknown account, inbox, contact, conversation or message."""


class ChatwootValidationError(ChatwootHTTPError):
    """422: ``{"message","attributes"}`` or ``{"error"}``."""


class ChatwootRateLimited(ChatwootHTTPError):
    """429, with the ``Retry-After`` seconds when Chatwoot sent them."""

    retryable = True

    def __init__(self, status: int, body: str, *, endpoint: str, retry_after: float | None) -> None:
        super().__init__(status, body, endpoint=endpoint)
        self.retry_after = retry_after


class ChatwootServerError(ChatwootHTTPError):
    """5xx."""

    retryable = True


def error_for(
    status: int, body: str, *, endpoint: str, retry_after: float | None = None
) -> ChatwootHTTPError:
    if status == 401:
        return ChatwootAuthError(status, body, endpoint=endpoint)
    if status == 404:
        return ChatwootNotFound(status, body, endpoint=endpoint)
    if status == 422:
        return ChatwootValidationError(status, body, endpoint=endpoint)
    if status == 429:
        return ChatwootRateLimited(status, body, endpoint=endpoint, retry_after=retry_after)
    if status >= 500:
        return ChatwootServerError(status, body, endpoint=endpoint)
    return ChatwootHTTPError(status, body, endpoint=endpoint)


# The keys of Chatwoot's error bodies (docs: chatwoot-api.md "Errors"): Rails' ``render_could_not_
# create_error`` / ``render_unauthorized`` give {"error"}, RecordInvalid gives {"message","attributes"},
# Rails' public exceptions {"status","error"}.
_ERROR_KEYS = frozenset({"error", "message", "attributes", "status", "errors"})
_MAX_SUMMARY = 300


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return None


def error_summary(body: str) -> str | None:
    """The error text of a body shaped like a Chatwoot error answer, or None for anything else.

    A base URL can point at any web server: what it answers is reflected to the caller only when
    it reads as Chatwoot's JSON error shape, so Ryze cannot be used to read another service's
    pages through the ``Detail`` of an activation error.
    """
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data or not set(data) <= _ERROR_KEYS:
        return None
    for key in ("error", "message", "errors"):
        text = _text(data.get(key))
        if text:
            text = " ".join(text.split())
            return text if len(text) <= _MAX_SUMMARY else text[:_MAX_SUMMARY] + "…"
    return None

"""Chatwoot failures as typed exceptions, each carrying the status, the raw body and the endpoint."""

from __future__ import annotations


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

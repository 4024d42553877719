"""Validation of the activation fields (``set`` body, or the inline ``chatwoot*`` block).

Messages name the field as the caller spelled it: ``invalid body: chatwootAccountId must be
greater than 0``. Types are strict (no "5" for 5, no 1 for true), like the rest of the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ryze.api.bridge_link.errors import ModuleError, invalid_body
from ryze.common.outbound import InvalidURL, parse_url
from ryze.protocol import is_header_token


@dataclass(frozen=True)
class FieldNames:
    base_url: str
    account_id: str
    api_token: str
    inbox_name: str
    sign_messages: str
    ignore_groups: str
    start_as_pending: str
    reopen_resolved: str
    history_days: str = "historyDays"


SET_FIELDS = FieldNames(
    "chatwootBaseUrl", "chatwootAccountId", "chatwootApiToken", "inboxName",
    "signMessages", "ignoreGroups", "startAsPending", "reopenResolved",
)  # fmt: skip
INLINE_FIELDS = FieldNames(
    "chatwootBaseUrl", "chatwootAccountId", "chatwootApiToken", "chatwootInboxName",
    "chatwootSignMessages", "chatwootIgnoreGroups", "chatwootStartAsPending", "chatwootReopenResolved",
    "chatwootHistoryDays",
)  # fmt: skip
_MAX_HISTORY_DAYS = 3650

_MAX_INBOX_NAME = 255


@dataclass(frozen=True)
class ActivationInput:
    base_url: str
    account_id: int
    api_token: str = field(repr=False)  # the Chatwoot token: never in a repr or a log line
    inbox_name: str
    sign_messages: bool = False
    ignore_groups: bool = False
    start_as_pending: bool = False
    reopen_resolved: bool = False
    history_days: int | None = None  # None: the bridge keeps what it has (7 for a new integration)


def _history_days(body: dict[str, Any], name: str) -> int | None:
    """Optional, additive to the documented body: days of WhatsApp history imported (0 = off)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_body(f"{name} must be an integer")
    if not 0 <= value <= _MAX_HISTORY_DAYS:
        raise invalid_body(f"{name} must be between 0 and {_MAX_HISTORY_DAYS}")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_body(f"{name} must be a boolean")
    return value


def _required_str(body: dict[str, Any], name: str) -> str:
    """The field as a non-blank string, stripped."""
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise invalid_body(f"{name} is required")
    if not isinstance(value, str):
        raise invalid_body(f"{name} must be a string")
    return value.strip()


def _base_url(body: dict[str, Any], name: str) -> str:
    value = _required_str(body, name)
    # The syntax check is the one the bridge's outbound-fetch policy parses with, so what passes
    # here is what the bridge will judge (and connect to): "[::1", a port above 65535, CR/LF or a
    # backslash are a 400 here instead of an exception further on. Whether the address may be
    # reached is the bridge's BRIDGE_FETCH_ALLOW decision; it is the one that connects.
    try:
        parsed = parse_url(value, allow_query=False)
    except InvalidURL as exc:
        raise invalid_body(f"{name} {exc}") from exc
    return parsed.url.rstrip("/")


def _account_id(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise invalid_body(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_body(f"{name} must be an integer")
    if value <= 0:
        raise invalid_body(f"{name} must be greater than 0")
    return value


def _token(body: dict[str, Any], name: str) -> str:
    value = _required_str(body, name)
    if not is_header_token(value):
        raise invalid_body(f"{name} must be printable ASCII without spaces (at most 512 characters)")
    return value


def _inbox_name(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise invalid_body(f"{name} must be a string")
    value = value.strip()
    if "\x00" in value:  # neither database of the bridge nor Chatwoot's PostgreSQL can store it
        raise invalid_body(f"{name} must not contain U+0000")
    if len(value) > _MAX_INBOX_NAME:
        raise invalid_body(f"{name} must be at most {_MAX_INBOX_NAME} characters")
    return value or default


def parse_activation(body: Any, *, instance_name: str, names: FieldNames = SET_FIELDS) -> ActivationInput:
    """Validate and normalise; raises ``ModuleError`` 400 ``invalid body: ...``."""
    if not isinstance(body, dict):
        raise ModuleError(400, "invalid body: expected a JSON object")
    return ActivationInput(
        base_url=_base_url(body, names.base_url),
        account_id=_account_id(body, names.account_id),
        api_token=_token(body, names.api_token),
        inbox_name=_inbox_name(body, names.inbox_name, instance_name),
        sign_messages=_flag(body, names.sign_messages),
        ignore_groups=_flag(body, names.ignore_groups),
        start_as_pending=_flag(body, names.start_as_pending),
        reopen_resolved=_flag(body, names.reopen_resolved),
        history_days=_history_days(body, names.history_days),
    )

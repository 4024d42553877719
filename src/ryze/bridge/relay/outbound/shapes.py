"""The types a Chatwoot webhook must have before the bridge acts on it.

Chatwoot's payloads come from ``Message#webhook_data``, ``Conversations::EventDataPresenter`` and
``Conversation#push_event_data`` (chatwoot-api.md §8). A body that is correctly signed can still
be of another shape: a Chatwoot version that changed a field, a proxy that rewrote it, a client
holding the inbox secret. Python's duck typing then misreads it quietly (``"id": true`` is the
integer 1, ``"deleted": "no"`` is truthy, ``"contact_inbox": "x"`` has no ``.get``), so every
event the bridge acts on is checked here against a table first: :func:`problem` names the first
field of the wrong type, and the receiver answers 400 (Chatwoot then marks the agent's message
failed, which is what the agent should see) instead of sending something nobody wrote.

Only the fields the bridge reads are checked, and only their type: extra keys, and keys absent
where absence is allowed, are Chatwoot's business. The readers (``filters.py``, ``worker.py``)
use :func:`as_int` / :func:`as_dict` / :func:`as_str` as well, so a stored job written before
this check existed is not misread either.
"""

from __future__ import annotations

from typing import Any

MESSAGE_EVENTS = ("message_created", "message_updated")
CONVERSATION_EVENTS = ("conversation_status_changed", "conversation_updated", "conversation_created")
TYPING_EVENTS = ("conversation_typing_on", "conversation_typing_off")
CONVERSATION_STATUSES = ("open", "resolved", "pending", "snoozed")  # Conversation.statuses enum

# One spec entry: (dotted path, the JSON types it may have, required). A path below a key that is
# absent or null is not looked at; "list" entries of the form "attachments[]" apply to each item.
_INT, _STR, _BOOL, _DICT, _LIST = "integer", "string", "boolean", "object", "array"
_NULL, _NUMBER = "null", "number"
Spec = tuple[tuple[str, tuple[str, ...], bool], ...]

_MESSAGE: Spec = (
    ("id", (_INT,), True),
    ("conversation", (_DICT,), True),
    ("conversation.id", (_INT,), True),
    ("conversation.contact_inbox", (_DICT, _NULL), False),
    ("conversation.contact_inbox.source_id", (_STR, _NULL), False),
    ("conversation.meta", (_DICT, _NULL), False),
    ("conversation.meta.sender", (_DICT, _NULL), False),
    ("conversation.meta.sender.identifier", (_STR, _NULL), False),
    ("conversation.meta.sender.phone_number", (_STR, _NULL), False),
    ("inbox", (_DICT, _NULL), False),
    ("inbox.id", (_INT, _NULL), False),
    ("private", (_BOOL, _NULL), False),
    ("source_id", (_STR, _NULL), False),
    ("content", (_STR, _NULL), False),
    ("content_attributes", (_DICT, _NULL), False),
    ("content_attributes.deleted", (_BOOL, _NULL), False),
    ("sender", (_DICT, _NULL), False),
    ("attachments", (_LIST, _NULL), False),
    ("attachments[]", (_DICT,), False),
    ("attachments[].data_url", (_STR, _NULL), False),
    ("attachments[].file_type", (_STR, _NULL), False),
    ("attachments[].content_type", (_STR, _NULL), False),
    ("attachments[].meta", (_DICT, _NULL), False),
)
_CONVERSATION: Spec = (
    ("id", (_INT,), True),
    ("status", (_STR,), True),
    ("updated_at", (_NUMBER, _INT, _NULL), False),
    ("inbox_id", (_INT, _NULL), False),
)
_TYPING: Spec = (
    ("conversation", (_DICT,), True),
    ("conversation.contact_inbox", (_DICT, _NULL), False),
    ("conversation.contact_inbox.source_id", (_STR, _NULL), False),
    ("conversation.meta", (_DICT, _NULL), False),
    ("conversation.meta.sender", (_DICT, _NULL), False),
    ("conversation.meta.sender.identifier", (_STR, _NULL), False),
    ("conversation.meta.sender.phone_number", (_STR, _NULL), False),
    ("is_private", (_BOOL, _NULL), False),
)


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (bool before int: ``True`` is an ``int`` in Python)."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, int):
        return _INT
    if isinstance(value, float):
        return _NUMBER
    if isinstance(value, str):
        return _STR
    if isinstance(value, list):
        return _LIST
    if isinstance(value, dict):
        return _DICT
    return type(value).__name__


def _values(payload: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    """Every (concrete path, value) a spec path names; parents that are absent or null yield none."""
    found: list[tuple[str, Any]] = [("", payload)]
    for part in path.split("."):
        each = part.endswith("[]")
        key = part[:-2] if each else part
        nxt: list[tuple[str, Any]] = []
        for where, node in found:
            if not isinstance(node, dict) or key not in node:
                continue
            child, here = node[key], f"{where}.{key}" if where else key
            if each:
                if isinstance(child, list):
                    nxt.extend((f"{here}[{i}]", item) for i, item in enumerate(child))
            else:
                nxt.append((here, child))
        found = nxt
    return found


def _check(payload: dict[str, Any], spec: Spec) -> str | None:
    for path, allowed, required in spec:
        values = _values(payload, path)
        if required and not values:
            parent = path.rpartition(".")[0]
            if not parent or _values(payload, parent):
                return f"{path}: missing"
        for where, value in values:
            kind = json_type(value)
            if kind not in allowed:
                return f"{where}: expected {' or '.join(allowed)}, got {kind}"
    return None


def problem(payload: dict[str, Any]) -> str | None:
    """Why this webhook cannot be acted on as it is, or None (also None for events not acted on)."""
    event = payload.get("event")
    if not isinstance(event, str):
        return f"event: expected string, got {json_type(event)}"
    if event in MESSAGE_EVENTS:
        return _check(payload, _MESSAGE)
    if event in CONVERSATION_EVENTS:
        found = _check(payload, _CONVERSATION)
        if found is None and payload["status"] not in CONVERSATION_STATUSES:
            return f"status: not a conversation status ({str(payload['status'])[:20]!r})"
        return found
    if event in TYPING_EVENTS:
        return _check(payload, _TYPING)
    return None


def as_int(value: Any) -> int | None:
    """An integer that is not a boolean, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None

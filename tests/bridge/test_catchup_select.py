"""Which listed Chatwoot messages the catch-up sweep sends (relay/outbound/catchup.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ryze.bridge.relay.outbound.catchup import wanted
from ryze.chatwoot.models import ListedMessage

SINCE = 1_000_000.0


def listed(**fields: Any) -> ListedMessage:
    values: dict[str, Any] = {
        "id": 5,
        "content": "hi",
        "message_type": 1,
        "status": "failed",
        "private": False,
        "source_id": None,
        "created_at": SINCE + 10,
        "content_attributes": {"external_error": "Failed to open TCP connection to 127.0.0.1:8090"},
    }
    values.update(fields)
    return ListedMessage.model_validate(values)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, True),  # the bridge was down
        ({"content_attributes": {"external_error": "500 Internal Server Error"}}, True),
        ({"content_attributes": {"external_error": "404 Not Found"}}, True),  # a runtime not loaded yet
        ({"status": "sent", "content_attributes": {}}, True),  # its webhook never came
        ({"message_type": 3}, True),  # a template
        ({"content_attributes": {"external_error": "400 Bad Request"}}, False),  # refused on purpose
        ({"status": "delivered"}, False),
        ({"private": True}, False),
        ({"message_type": 0}, False),  # incoming: the bridge wrote it
        ({"message_type": 2}, False),  # activity
        ({"source_id": "WAID:ABC"}, False),  # the bridge's mirror of a phone-sent message
        ({"content_attributes": {"deleted": True}}, False),
        ({"created_at": SINCE - 5}, False),  # before the sweep's start point
    ],
)
def test_only_agent_messages_whose_webhook_failed_or_never_came_are_sent(
    fields: dict[str, Any], expected: bool
) -> None:
    assert wanted(listed(**fields), SINCE) is expected

"""The event-log payload (what the link sends) is the envelope without the instance token, whatever
the serializer: the fast path must equal pydantic's ``model_dump_json(exclude_none=True)``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ryze.api.bridge_link.service import link_payload
from ryze.api.events import exchange_envelope, state_envelope, status_envelope, wa_message
from ryze.engines.base import Media, Party, ReceiptEvent, WhatsAppMessage
from ryze.protocol import EventEnvelope, EventName, InstanceData

WHEN = datetime(2026, 4, 28, 10, 30, tzinfo=UTC)


def _reference(envelope: EventEnvelope) -> Any:
    without = envelope.model_copy(
        update={"instanceData": envelope.instanceData.model_copy(update={"token": None})}
    )
    return json.loads(without.model_dump_json(exclude_none=True))


def _message() -> EventEnvelope:
    msg = WhatsAppMessage(
        id="3EB0A1", chat=Party(jid="5511999999999@s.whatsapp.net", name="João"),
        sender=Party(jid="5511999999999@s.whatsapp.net", name="João ✓"), from_me=False, timestamp=WHEN,
        kind="image", is_group=False, text="Olá 👋", media=Media(kind="image", mimetype="image/png", size=42),
    )  # fmt: skip
    payload = wa_message(msg, origin=None, media_url="http://ryze/internal/media/i/3EB0A1").model_dump(
        mode="json", exclude_none=True
    )
    return exchange_envelope("https://api.example.com", "suporte", "secret-token", payload)


def _receipt() -> EventEnvelope:
    receipt = ReceiptEvent(
        message_ids=("3EB0A1",), kind="read", chat=Party(jid="5511999999999@s.whatsapp.net"),
        sender=Party(jid="5511999999999@s.whatsapp.net"), timestamp=WHEN,
    )  # fmt: skip
    return status_envelope("https://api.example.com", "suporte", "secret-token", receipt)


@pytest.mark.parametrize(
    "envelope",
    [
        _message(),
        _receipt(),
        state_envelope("https://api.example.com", "suporte", "secret-token", "connected", None),
        state_envelope("https://api.example.com", "suporte", None, "disconnected", "lost"),
        # A value orjson refuses (beyond 64 bits) takes the pydantic path: same result.
        EventEnvelope(
            event=EventName.INSTANCE_STATE,
            data={"state": "connected", "big": 2**70},
            instanceData=InstanceData(baseUrl="u", instance="i", token="t"),
        ),
    ],
)
def test_link_payload_equals_the_envelope_without_its_token(envelope: EventEnvelope) -> None:
    text = link_payload(envelope)
    assert json.loads(text) == _reference(envelope)
    assert "secret-token" not in text and '"token"' not in text

"""The documented envelopes on the event bus, for traffic the simulated phone network brings."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ryze.protocol import EventEnvelope

from .harness import BASE, Api, make_settings, start_api


async def deliver(api: Api, token: str, *messages: dict[str, Any]) -> list[str]:
    resp = await api.client.post(
        "/_simulator/orion/messages", json={"messages": list(messages)}, headers={"token": token}
    )
    assert resp.status_code == 200, resp.text
    ids: list[str] = resp.json()["ids"]
    return ids


def exchanged(api: Api) -> list[dict[str, Any]]:
    return [e.data["message"] for e in api.of("message.exchange")]


async def test_incoming_text_envelope(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    [msg_id] = await deliver(api, token, {"from": "5511988887777", "pushName": "João Silva", "text": "Hello"})
    [envelope] = api.of("message.exchange")
    assert envelope.instanceData.model_dump() == {"baseUrl": BASE, "instance": "orion", "token": token}
    assert envelope.data["id"] == msg_id
    message = envelope.data["message"]
    assert message["id"] == msg_id
    assert message["direction"] == "incoming"
    assert message["type"] == "text"
    assert message["source"] == "contact"
    assert message["fromMe"] is False
    assert message["content"] == {"text": "Hello"}
    assert message["chat"] == {"jid": "5511988887777@s.whatsapp.net", "name": "João Silva", "type": "private"}
    assert message["sender"] == {"jid": "5511988887777@s.whatsapp.net", "name": "João Silva"}
    assert message["timestamp"].endswith("Z")
    EventEnvelope.model_validate(envelope.model_dump())  # round-trips through the contract model


async def test_group_message_from_a_lid_sender(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await deliver(
        api, token,
        {"from": "123456789@lid", "fromAlt": "5511977776666", "pushName": "Ana", "group": "120363000@g.us",
         "text": "oi grupo"},
    )  # fmt: skip
    [message] = exchanged(api)
    assert message["chat"] == {"jid": "120363000@g.us", "type": "group"}
    assert message["sender"] == {"jid": "123456789@lid", "pn": "5511977776666@s.whatsapp.net", "name": "Ana"}


async def test_private_lid_chat_carries_the_phone_number(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await deliver(api, token, {"from": "987@lid", "fromAlt": "5511955554444@s.whatsapp.net", "text": "x"})
    [message] = exchanged(api)
    assert message["chat"]["jid"] == "987@lid"
    assert message["chat"]["pn"] == "5511955554444@s.whatsapp.net"


async def test_own_messages_carry_their_source(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await deliver(api, token, {"fromMe": True, "to": "5511988887777", "text": "typed on the phone"})
    await api.client.post(
        "/api/message/text/orion",
        json={"number": "5511988887777", "message": "via api"},
        headers={"token": token},
    )
    await api.services.messaging.send_text(
        "orion", "5511988887777", "agent reply", source="chatwoot", command_id="cmd-1"
    )
    phone, via_api, via_chatwoot = exchanged(api)
    assert (phone["source"], phone["direction"], phone["fromMe"]) == ("phone", "outgoing", True)
    assert phone["sender"]["jid"] == "5511900000001@s.whatsapp.net"
    assert phone["chat"]["jid"] == "5511988887777@s.whatsapp.net"
    assert via_api["source"] == "api" and "commandId" not in via_api
    assert via_chatwoot["source"] == "chatwoot" and via_chatwoot["commandId"] == "cmd-1"


async def test_reactions_edits_revokes_and_replies(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    [original] = await deliver(api, token, {"from": "5511988887777", "text": "first"})
    await deliver(
        api, token,
        {"from": "5511988887777", "type": "reaction", "targetId": original, "emoji": "👍"},
        {"from": "5511988887777", "type": "reaction", "targetId": original, "emoji": ""},
        {"from": "5511988887777", "type": "edit", "targetId": original, "text": "first (edited)"},
        {"from": "5511988887777", "type": "revoke", "targetId": original},
        {"from": "5511988887777", "text": "quoting", "replyTo": original},
    )  # fmt: skip
    _, react, unreact, edit, revoke, reply = exchanged(api)
    assert react["type"] == "reaction" and react["reaction"] == {
        "messageId": original,
        "emoji": "👍",
        "fromMe": False,
    }
    assert unreact["reaction"]["emoji"] == ""
    assert edit["type"] == "message_edit" and edit["edit"] == {
        "messageId": original,
        "text": "first (edited)",
    }
    assert revoke["type"] == "message_revoke" and revoke["revoke"] == {"messageId": original}
    assert reply["replyTo"] == original
    stored = await api.services.messaging.get_message("orion", original)
    assert stored.text == "first (edited)"


async def test_incoming_media_without_bridge_has_no_url(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    data = b"\xff\xd8\xff fake jpeg"
    [msg_id] = await deliver(
        api, token,
        {"from": "5511988887777", "type": "image", "mediaBase64": base64.b64encode(data).decode(),
         "mimetype": "image/jpeg", "text": "look"},
    )  # fmt: skip
    [message] = exchanged(api)
    assert message["type"] == "image"
    assert message["content"] == {"text": "look"}
    assert message["media"] == {"type": "image", "mimetype": "image/jpeg", "size": len(data)}
    assert await api.services.messaging.get_media("orion", msg_id) == (data, "image/jpeg", None)


@pytest.fixture
async def bridged(tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(
        tmp_path, bridge_url="http://bridge.test", bridge_token="b" * 32,
        bridge_internal_ryzeapi_url="http://ryzeapi.internal:8080/",
    )  # fmt: skip
    async for api in start_api(settings):
        yield api


async def test_media_url_points_at_the_internal_route_when_the_bridge_is_enabled(bridged: Api) -> None:
    account = await bridged.account()
    token = await bridged.connected_instance(account)
    [msg_id] = await deliver(
        bridged, token,
        {"from": "5511988887777", "type": "ptt", "mediaBase64": base64.b64encode(b"OggS").decode(),
         "seconds": 3},
    )  # fmt: skip
    [message] = exchanged(bridged)
    assert message["type"] == "audio"
    assert message["media"]["type"] == "ptt"
    assert message["media"]["seconds"] == 3
    assert message["media"]["url"] == f"http://ryzeapi.internal:8080/internal/media/orion/{msg_id}"
    assert "base64" not in message["media"]


async def test_duplicates_are_stored_and_published_once(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await deliver(api, token, {"id": "DUP1", "from": "5511988887777", "text": "once"})
    await deliver(api, token, {"id": "DUP1", "from": "5511988887777", "text": "once"})
    assert [m["id"] for m in exchanged(api)] == ["DUP1"]


async def test_receipts_become_message_status(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    sent = await api.services.messaging.send_text("orion", "5511988887777", "hi")
    resp = await api.client.post(
        "/_simulator/orion/receipts",
        json={"chat": "5511988887777", "messageIds": [sent.id], "status": "read"},
        headers={"token": token},
    )
    assert resp.status_code == 200
    [status] = api.of("message.status")
    assert status.data["messageIds"] == [sent.id]
    assert status.data["status"] == "read"
    assert status.data["chat"]["jid"] == "5511988887777@s.whatsapp.net"
    assert status.data["messageSender"]["jid"] == "5511988887777@s.whatsapp.net"


async def test_instance_state_sequence(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await api.client.post("/_simulator/orion/disconnect", headers={"token": token})
    await api.client.get("/api/instance/connect/orion", headers={"token": token})
    await api.client.post("/_simulator/orion/unlink", headers={"token": token})
    await api.client.get("/api/instance/connect/orion", headers={"token": token})
    await api.client.post("/_simulator/orion/ban", json={"seconds": 60}, headers={"token": token})
    events = [e.data for e in api.of("instance.state")]
    # qr_ready carries the QR string, connected our number and name (the connection conversation
    # shows them): checked below, the sequence of states and reasons here
    states = [{k: v for k, v in s.items() if k in ("state", "reason")} for s in events]
    assert all(s["qr"].startswith("2@") for s in events if s["state"] == "qr_ready")
    assert all(s["number"].isdigit() and s["name"] for s in events if s["state"] == "connected")
    assert all(
        "qr" not in s and "number" not in s for s in events if s["state"] not in ("qr_ready", "connected")
    )
    assert states == [
        {"state": "connecting"},
        {"state": "qr_ready"},
        {"state": "connected"},
        {"state": "disconnected", "reason": "Connection to WhatsApp lost; reconnecting"},
        {"state": "connecting"},
        {"state": "connected"},
        {"state": "loggedout", "reason": "Logged out from the phone (logged_out)"},
        {"state": "connecting"},
        {"state": "qr_ready"},
        {"state": "temp_banned", "reason": "Temporarily banned: sent to too many people; expires in 60 s"},
    ]
    status = await api.client.get("/api/instance/status/orion", headers={"token": token})
    assert status.json()["instance"]["state"] == "temp_banned"


async def test_messages_wait_while_offline(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)
    await api.client.post("/_simulator/orion/disconnect", headers={"token": token})
    await deliver(api, token, {"from": "5511988887777", "text": "while you were away"})
    assert exchanged(api) == []
    await api.client.get("/api/instance/connect/orion", headers={"token": token})
    assert [m["content"]["text"] for m in exchanged(api)] == ["while you were away"]


async def test_a_failing_subscriber_does_not_stop_the_others(api: Api, account_token: str) -> None:
    token = await api.connected_instance(account_token)

    async def broken(_instance: str, _envelope: EventEnvelope) -> None:
        raise RuntimeError("subscriber bug")

    seen: list[str] = []

    async def after(_instance: str, envelope: EventEnvelope) -> None:
        seen.append(envelope.event.value)

    api.services.bus.subscribe(broken)
    api.services.bus.subscribe(after)
    resp = await api.client.post(
        "/_simulator/orion/messages", json={"from": "5511988887777", "text": "x"}, headers={"token": token}
    )
    assert resp.status_code == 503  # not acknowledged: the network will deliver it again
    assert seen == ["message.exchange"]


async def test_sends_reported_late_by_the_engine_are_stored_once_with_their_media(
    api: Api, account_token: str
) -> None:
    token = await api.connected_instance(account_token)
    session = api.engine.session("orion")
    assert session is not None
    held: list[Any] = []
    real_emit = session._emit

    async def hold_own_sends(event: Any) -> None:
        if getattr(event, "origin", None) is not None:
            held.append(event)
            return
        await real_emit(event)

    session._emit = hold_own_sends  # type: ignore[method-assign]
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n....").decode()
    resp = await api.client.post(
        "/api/message/media/orion",
        json={"number": "5511988887777", "mediaType": "image", "mediaBase64": png},
        headers={"token": token},
    )
    assert resp.status_code == 200, resp.text
    message_id = resp.json()["data"]["messageId"]
    assert [m["id"] for m in exchanged(api)] == [message_id]  # stored and published by the API path
    session._emit = real_emit  # type: ignore[method-assign]
    for event in held:  # now the engine's own report arrives: a duplicate, not re-published
        await real_emit(event)
    assert [m["id"] for m in exchanged(api)] == [message_id]
    data, mimetype, _ = await api.services.messaging.get_media("orion", message_id)
    assert data.startswith(b"\x89PNG") and mimetype == "image/png"


async def test_a_failed_publication_is_retried_by_the_redelivery(api: Api, account_token: str) -> None:
    """A subscriber that cannot persist (the Chatwoot module's durable log, say) must not turn the
    message into a silent loss: the delivery fails, and WhatsApp's redelivery publishes it."""
    token = await api.connected_instance(account_token)
    failures = [RuntimeError("log unavailable")]

    async def flaky(_instance: str, _envelope: EventEnvelope) -> None:
        if failures:
            raise failures.pop()

    api.services.bus.subscribe(flaky)
    message = {"id": "3EB0RETRY0000001", "from": "5511988887777", "text": "must arrive"}
    resp = await api.client.post("/_simulator/orion/messages", json=message, headers={"token": token})
    assert resp.status_code == 503
    assert [m["id"] for m in exchanged(api)] == ["3EB0RETRY0000001"]  # the other subscriber still got it

    await deliver(api, token, message)  # the redelivery
    assert [m["id"] for m in exchanged(api)] == ["3EB0RETRY0000001", "3EB0RETRY0000001"]
    await deliver(api, token, message)  # once published, a duplicate is dropped again
    assert len(exchanged(api)) == 2

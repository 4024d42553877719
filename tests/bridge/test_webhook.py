"""The Chatwoot webhook receiver: path secret, signature, filters, and answering before the work."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import orjson

from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, RunningBridge, eventually
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import conversations

CHAT = "5511999990005@s.whatsapp.net"


def _payload(message_id: int, display_id: int, inbox_id: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": "message_created",
        "id": message_id,
        "content": "hello from the agent",
        "message_type": "outgoing",
        "private": False,
        "source_id": None,
        "sender": {"id": 1, "name": "Acme Admin", "type": "user"},
        "inbox": {"id": inbox_id, "name": "WhatsApp Shop"},
        "conversation": {"id": display_id, "contact_inbox": {"source_id": CHAT}},
    }
    body.update(extra)
    return body


async def _post(
    bridge: RunningBridge, url: str, payload: dict[str, Any], secret: str | None, *, sig: str | None = None
) -> int:
    raw = orjson.dumps(payload)
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Chatwoot-Timestamp": ts}
    if secret is not None:
        headers["X-Chatwoot-Signature"] = sig or (
            "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
        )
    async with bridge.http.post(url, data=raw, headers=headers) as resp:
        return resp.status


async def _ready(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> tuple[dict[str, Any], Any, int]:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201
    await eventually(lambda: fake.connected("shop"))
    await fake.emit("shop", "message.exchange", text_message("H1", CHAT, "hi"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    return dict(view), emulator.emulator.state.inboxes[view["inbox_id"]], conv.display_id


async def test_path_secret_and_signature_are_enforced(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, inbox, display_id = await _ready(emulator, fake, bridge)
    payload = _payload(99_001, display_id, inbox.id)
    good_url = inbox.webhook_url
    base, _, _secret = good_url.rpartition("/")
    assert await _post(bridge, base + "/wrong-secret", payload, inbox.secret) == 404
    assert await _post(bridge, good_url.replace(view["id"], "0" * 32), payload, inbox.secret) == 404
    assert await _post(bridge, good_url, payload, None) == 401
    assert await _post(bridge, good_url, payload, inbox.secret, sig="sha256=" + "0" * 64) == 401
    assert await _post(bridge, good_url, payload, "another-secret") == 401
    assert fake.phone == []
    assert await _post(bridge, good_url, payload, inbox.secret) == 200
    await eventually(lambda: fake.phone)


async def test_webhook_answers_before_the_work_is_done(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, inbox, display_id = await _ready(emulator, fake, bridge)
    fake.hold_results = True  # RyzeAPI never answers the command: the webhook must not wait for it
    assert await _post(bridge, inbox.webhook_url, _payload(99_002, display_id, inbox.id), inbox.secret) == 200
    assert await _post(bridge, inbox.webhook_url, _payload(99_003, display_id, inbox.id), inbox.secret) == 200
    await eventually(lambda: fake.commands_seen)
    jobs = await bridge.services.repos.outbound.states(view["id"])
    assert jobs.get("pending", 0) == 2


async def test_filters_ignore_incoming_private_own_echoes_and_status_updates(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, inbox, display_id = await _ready(emulator, fake, bridge)
    ignored = [
        _payload(1, display_id, inbox.id, message_type="incoming"),
        _payload(2, display_id, inbox.id, private=True),
        _payload(3, display_id, inbox.id, source_id="WAID:ABC"),
        _payload(4, display_id, inbox.id, event="message_updated"),
        {"event": "conversation_typing_on", "conversation": {"id": display_id}},
        {"event": "conversation_status_changed", "id": display_id, "status": "resolved"},
    ]
    for payload in ignored:
        assert await _post(bridge, inbox.webhook_url, payload, inbox.secret) == 200
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "private note", private=True)
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "real reply")
    await eventually(lambda: fake.phone)
    await emulator.emulator.incoming_dispatch_idle()
    assert [p["text"] for _, _, p in fake.phone] == ["real reply"]


async def test_agent_delete_revokes_on_whatsapp(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, _inbox, display_id = await _ready(emulator, fake, bridge)
    reply = await emulator.emulator.agent_reply(ACCOUNT, display_id, "oops")
    await eventually(lambda: fake.phone)
    await eventually(lambda: not fake.unacked("shop"))
    await emulator.emulator.agent_delete(ACCOUNT, display_id, reply["id"])
    await eventually(lambda: len(fake.phone) == 2)
    action, params = fake.phone[1][1], fake.phone[1][2]
    assert action == "revoke" and params == {"chat": CHAT, "messageId": "WA-OUT-1"}


async def test_reply_to_a_whatsapp_message_carries_reply_to(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, inbox, display_id = await _ready(emulator, fake, bridge)
    payload = _payload(
        99_010, display_id, inbox.id, content_attributes={"in_reply_to_external_id": "WAID:H1"}
    )
    assert await _post(bridge, inbox.webhook_url, payload, inbox.secret) == 200
    await eventually(lambda: fake.phone)
    assert fake.phone[0][2]["replyTo"] == "H1"


async def test_attachments_become_send_media(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, _inbox, display_id = await _ready(emulator, fake, bridge)
    await emulator.emulator.agent_reply(
        ACCOUNT,
        display_id,
        "see attached",
        attachments=[("photo.jpg", b"\xff\xd8\xff" + b"0" * 64, "image/jpeg")],
    )
    await eventually(lambda: fake.phone)
    [(_, action, params)] = fake.phone
    assert action == "send_media" and params["mediaType"] == "image" and params["caption"] == "see attached"
    assert params["url"].startswith(emulator.url) and params["fileName"] == "photo.jpg"


async def test_agent_typing_becomes_presence(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, _inbox, display_id = await _ready(emulator, fake, bridge)
    await emulator.emulator.agent_typing(ACCOUNT, display_id, True)
    await emulator.emulator.agent_typing(
        ACCOUNT, display_id, True, private=True
    )  # a private note: not relayed
    await emulator.emulator.agent_typing(ACCOUNT, display_id, False)
    await emulator.emulator.incoming_dispatch_idle()
    await eventually(lambda: len(fake.phone) == 2)
    assert sorted((a, p["state"]) for _, a, p in fake.phone) == [
        ("presence", "composing"),
        ("presence", "paused"),
    ]


async def test_webhook_route_shapes(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _, inbox, _display_id = await _ready(emulator, fake, bridge)
    async with bridge.http.get(inbox.webhook_url) as resp:
        assert resp.status == 405
    async with bridge.http.post(bridge.url + "/v1/chatwoot/webhook/only-one-part", data=b"{}") as resp:
        assert resp.status == 404
    ts = str(int(time.time()))
    sig = "sha256=" + hmac.new(inbox.secret.encode(), ts.encode() + b".not json", hashlib.sha256).hexdigest()
    headers = {"X-Chatwoot-Timestamp": ts, "X-Chatwoot-Signature": sig}
    async with bridge.http.post(inbox.webhook_url, data=b"not json", headers=headers) as resp:
        assert resp.status == 400

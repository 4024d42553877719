"""Webhooks to the API inbox's webhook_url (§8), received by a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import uuid

import httpx

from ryze.emulator import ChatwootEmulator

from .conftest import A1, ADMIN, Api, Receiver

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def verify(secret: str, received_headers: dict[str, str], raw: bytes) -> bool:
    """The receiver-side recipe: HMAC-SHA256(secret, "<timestamp>.<raw body>") in hex."""
    ts = received_headers["x-chatwoot-timestamp"]
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received_headers["x-chatwoot-signature"], f"sha256={expected}")


async def test_signed_delivery_headers_and_hmac(emu: ChatwootEmulator, api: Api, receiver: Receiver) -> None:
    inbox_id, _, conv = await api.chat(webhook_url=receiver.url)
    await api.message(conv, content="hello <b> & co", message_type="incoming")
    await emu.incoming_dispatch_idle()
    secret = emu.state.inboxes[inbox_id].secret
    created = receiver.events("message_created")
    assert len(created) == 1
    hook = created[0]
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["accept"] == "application/json"
    uuid.UUID(hook.headers["x-chatwoot-delivery"])
    assert hook.headers["x-chatwoot-timestamp"].isdigit()
    assert verify(secret, hook.headers, hook.raw)
    assert not verify("wrong-secret", hook.headers, hook.raw)
    # Rails' to_json escapes <, > and &: verify over raw bytes, never a re-serialisation.
    assert b"\\u003cb\\u003e \\u0026 co" in hook.raw
    assert hook.json["content"] == "hello <b> & co"
    ids = {r.headers["x-chatwoot-delivery"] for r in receiver.received}
    assert len(ids) == len(receiver.received)  # a new delivery id per delivery


async def test_message_created_payload_shape(emu: ChatwootEmulator, api: Api, receiver: Receiver) -> None:
    inbox_id, contact_id, conv = await api.chat(webhook_url=receiver.url)
    msg = await api.message(conv, content="oi", message_type="incoming", source_id="WAID:1")
    await emu.incoming_dispatch_idle()
    body = receiver.events("message_created")[0].json
    assert body["event"] == "message_created"
    assert body["id"] == msg["id"]
    assert body["message_type"] == "incoming"
    assert ISO_MS.match(body["created_at"])
    assert "attachments" not in body and "conversation_id" not in body
    assert body["source_id"] == "WAID:1" and body["private"] is False
    assert body["inbox"] == {"id": inbox_id, "name": "WhatsApp"}
    assert body["account"] == {"id": 1, "name": "Acme"}
    assert body["sender"]["id"] == contact_id and "type" not in body["sender"]  # Contact#webhook_data
    c = body["conversation"]
    assert c["id"] == conv and c["channel"] == "Channel::Api"
    assert c["contact_inbox"]["source_id"] == "5511999999999"
    assert c["meta"]["sender"]["type"] == "contact"
    pushed = c["messages"][0]
    assert pushed["id"] == msg["id"] and pushed["message_type"] == 0 and isinstance(pushed["created_at"], int)
    assert pushed["conversation"]["contact_inbox"] == {"source_id": "5511999999999"}
    assert pushed["status"] == "sent"


async def test_outgoing_private_and_attachment_payloads(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    public = await api.message(conv, content="public reply")
    await api.message(conv, content="note", private=True)
    await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"content": "pic"},
        files=[("attachments[]", ("p.png", b"PNG", "image/png"))],
        headers=ADMIN,
    )
    await emu.incoming_dispatch_idle()
    created = [r.json for r in receiver.events("message_created")]
    assert [m["content"] for m in created] == ["public reply", "note", "pic"]
    assert all(m["message_type"] == "outgoing" for m in created)
    assert created[0]["sender"] == {"id": 1, "name": "Acme Admin", "email": "admin@acme.test", "type": "user"}
    note = created[1]
    assert note["private"] is True
    # conversation.messages holds the last *public* non-activity message.
    assert note["conversation"]["messages"][0]["id"] == public["id"]
    (att,) = created[2]["attachments"]
    assert att["file_type"] == "image" and att["content_type"] == "image/png"
    assert att["data_url"].startswith("http://emu.test/rails/active_storage/blobs/redirect/")


async def test_webhook_attachments_are_push_event_data_without_meta(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    """app/models/attachment.rb: `push_event_data` has no `meta` for any file type (a voice flag
    given at upload is not shown), and audio's `data_url` is `rails_storage_redirect_url(file,
    disposition: 'inline')`, plus `transcribed_text`."""
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"is_voice_message": "true"},
        files=[
            ("attachments[]", ("voice.ogg", b"OggS-voice", "audio/ogg")),
            ("attachments[]", ("p.png", b"PNG", "image/png")),
        ],
        headers=ADMIN,
    )
    await emu.incoming_dispatch_idle()
    [created] = [r.json for r in receiver.events("message_created")]
    audio, image = created["attachments"]
    assert "meta" not in audio and "meta" not in image
    assert audio["file_type"] == "audio" and audio["content_type"] == "audio/ogg"
    assert audio["extension"] == "ogg" and audio["transcribed_text"] == ""
    assert audio["data_url"].endswith("/voice.ogg?disposition=inline")
    assert "?" not in image["data_url"] and "transcribed_text" not in image
    blob = await client.get(audio["data_url"], follow_redirects=True)
    assert (blob.status_code, blob.content) == (200, b"OggS-voice")


async def test_conversation_events_and_no_activity_messages(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await client.post(f"{A1}/conversations/{conv}/toggle_status", json={"status": "resolved"}, headers=ADMIN)
    await emu.incoming_dispatch_idle()
    events = [r.event for r in receiver.received]
    assert events == ["conversation_created", "conversation_status_changed", "conversation_updated"]
    created, status_changed, updated = (r.json for r in receiver.received)
    assert created["id"] == conv and "changed_attributes" not in created
    assert status_changed["status"] == "resolved" and status_changed["changed_attributes"] is None
    changes = {k: v for d in updated["changed_attributes"] for k, v in d.items()}
    assert changes["status"] == {"previous_value": "open", "current_value": "resolved"}
    assert "updated_at" in changes
    # The activity message ("Conversation was marked resolved by ...") exists but is never sent.
    r = await client.get(f"{A1}/conversations/{conv}/messages", headers=ADMIN)
    assert r.json()["payload"][-1]["message_type"] == 2
    assert not receiver.events("message_created")


async def test_incoming_on_resolved_reopens_with_events(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await client.post(f"{A1}/conversations/{conv}/toggle_status", json={"status": "resolved"}, headers=ADMIN)
    await emu.incoming_dispatch_idle()
    receiver.received.clear()
    await api.message(conv, content="back", message_type="incoming")
    await emu.incoming_dispatch_idle()
    events = [r.event for r in receiver.received]
    assert events[:3] == ["conversation_status_changed", "conversation_updated", "message_created"]
    assert receiver.events("message_created")[0].json["conversation"]["status"] == "open"


async def test_first_reply_fires_conversation_updated(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await api.message(conv, content="agent reply")
    await emu.incoming_dispatch_idle()
    updated = receiver.events("conversation_updated")
    assert len(updated) == 1
    keys = {k for d in updated[0].json["changed_attributes"] for k in d}
    assert {"first_reply_created_at", "waiting_since"} <= keys


async def test_typing_events(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    url = f"{A1}/conversations/{conv}/toggle_typing_status"
    r = await client.post(url, json={"typing_status": "on", "is_private": True}, headers=ADMIN)
    assert r.status_code == 200
    await client.post(url, json={"typing_status": "off"}, headers=ADMIN)
    await emu.incoming_dispatch_idle()
    on, off = receiver.events("conversation_typing_on", "conversation_typing_off")
    assert on.json["event"] == "conversation_typing_on" and on.json["is_private"] is True
    assert on.json["user"] == {"id": 1, "name": "Acme Admin", "email": "admin@acme.test", "type": "user"}
    assert on.json["conversation"]["id"] == conv
    assert off.json["event"] == "conversation_typing_off" and off.json["is_private"] is False


async def test_delete_and_status_patch_fire_message_updated(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    r = await client.post(
        f"{A1}/conversations/{conv}/messages",
        data={"content": "bye"},
        files=[("attachments[]", ("a.txt", b"abc", "text/plain"))],
        headers=ADMIN,
    )
    mid = r.json()["id"]
    await client.patch(
        f"{A1}/conversations/{conv}/messages/{mid}", json={"status": "delivered"}, headers=ADMIN
    )
    await client.patch(f"{A1}/conversations/{conv}/messages/{mid}", json={"status": "bogus"}, headers=ADMIN)
    await client.delete(f"{A1}/conversations/{conv}/messages/{mid}", headers=ADMIN)
    await emu.incoming_dispatch_idle()
    updates = [r.json for r in receiver.events("message_updated")]
    assert len(updates) == 2  # the ignored status fires nothing
    assert updates[0]["conversation"]["messages"][0]["status"] == "delivered"
    deleted = updates[1]
    assert deleted["content"] == "This message was deleted"
    assert deleted["content_attributes"] == {"deleted": True}
    assert "attachments" not in deleted


async def test_non_2xx_marks_message_failed_and_emits_one_update(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await emu.incoming_dispatch_idle()
    receiver.status = 500
    msg = await api.message(conv, content="will fail")
    await emu.incoming_dispatch_idle()
    events = [(r.event, r.json["id"]) for r in receiver.received if r.event.startswith("message_")]
    # message_created fails -> failed + message_updated, which fails too -> nothing more (no retry).
    assert events == [("message_created", msg["id"]), ("message_updated", msg["id"])]
    r = await client.get(f"{A1}/conversations/{conv}/messages", headers=ADMIN)
    stored = next(m for m in r.json()["payload"] if m["id"] == msg["id"])
    assert stored["status"] == "failed"
    assert stored["content_attributes"]["external_error"] == "500 Internal Server Error"
    # Conversation events are only logged on failure; each was delivered exactly once.
    assert len(receiver.events("conversation_updated")) == 1


async def test_timeout_marks_failed(emu: ChatwootEmulator, api: Api, receiver: Receiver) -> None:
    _, _, conv = await api.chat()
    emu.configure(webhook_timeout=0.2)
    receiver.block = asyncio.Event()
    inbox = next(iter(emu.state.inboxes.values()))
    inbox.webhook_url = receiver.url
    msg = await api.message(conv, content="slow receiver", message_type="incoming")
    await emu.incoming_dispatch_idle()
    stored = emu.state.messages[msg["id"]]
    assert stored.status == "failed"
    assert stored.content_attributes["external_error"] == "Net::ReadTimeout"


async def test_delivery_does_not_block_the_api(emu: ChatwootEmulator, api: Api, receiver: Receiver) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await emu.incoming_dispatch_idle()
    receiver.received.clear()
    receiver.arrived.clear()
    receiver.block = asyncio.Event()
    msg = await api.message(conv, content="async", message_type="incoming")  # returns while the hook hangs
    assert msg["content"] == "async"
    await receiver.arrived.wait()  # the hook is being delivered while the API already answered
    receiver.block.set()
    await emu.incoming_dispatch_idle()
    assert emu.state.messages[msg["id"]].status == "sent"


async def test_no_webhook_url_means_no_delivery(emu: ChatwootEmulator, api: Api) -> None:
    _, _, conv = await api.chat(webhook_url="")
    await api.message(conv, content="quiet", message_type="incoming")
    await emu.incoming_dispatch_idle()
    assert emu.webhooks.deliveries == []


async def test_greeting_is_a_template_message_without_sender(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    inbox = await api.inbox(webhook_url=receiver.url, greeting_enabled=True, greeting_message="Welcome!")
    cid = await api.contact(inbox["id"], "+5511977777777", "5511977777777")
    conv = (await api.conversation(inbox["id"], cid, "5511977777777"))["id"]
    await api.message(conv, content="first", message_type="incoming")
    await api.message(conv, content="second", message_type="incoming")
    await emu.incoming_dispatch_idle()
    created = [r.json for r in receiver.events("message_created")]
    assert [(m["content"], m["message_type"]) for m in created] == [
        ("first", "incoming"),
        ("Welcome!", "template"),
        ("second", "incoming"),
    ]
    assert created[1]["sender"] is None


async def test_webhook_content_is_normalised_but_rest_content_is_raw(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    _, _, conv = await api.chat(webhook_url=receiver.url)
    raw = "line one\\\nline two\n\n"
    msg = await api.message(conv, content=raw, message_type="incoming")
    assert msg["content"] == raw
    await emu.incoming_dispatch_idle()
    # Messages::WebhookContentNormalizer (v4.13+): hard-break backslashes and trailing newlines go.
    assert receiver.events("message_created")[0].json["content"] == "line one\nline two"


async def test_connection_refused_marks_failed(emu: ChatwootEmulator, api: Api) -> None:
    from .conftest import free_port

    port = free_port()  # nothing listens there
    _, _, conv = await api.chat(webhook_url=f"http://127.0.0.1:{port}/hook")
    msg = await api.message(conv, content="nobody home", message_type="incoming")
    await emu.incoming_dispatch_idle()
    stored = emu.state.messages[msg["id"]]
    assert stored.status == "failed"
    assert stored.content_attributes["external_error"].startswith(
        f"Failed to open TCP connection to 127.0.0.1:{port}"
    )
    events = [(d.event, d.error is not None) for d in emu.webhooks.deliveries if d.message_id == msg["id"]]
    assert events == [("message_created", True), ("message_updated", True)]

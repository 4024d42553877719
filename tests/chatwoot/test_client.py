"""The typed Chatwoot client against the emulator (and a tiny server for transport failures)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from ryze.chatwoot import (
    ChatwootAuthError,
    ChatwootClient,
    ChatwootHTTPError,
    ChatwootNotFound,
    ChatwootRateLimited,
    ChatwootServerError,
    ChatwootSessions,
    ChatwootTimeout,
    ChatwootUnreachable,
    ChatwootValidationError,
)
from ryze.chatwoot.models import Attachment
from ryze.common.outbound import FetchPolicy
from ryze.common.outbound.policy import LOOPBACK_ALLOW
from ryze.emulator import RunningEmulator, run_emulator

# The emulator under test listens on loopback, which the policy refuses unless allowed.
LOOPBACK_POLICY = FetchPolicy.from_setting(LOOPBACK_ALLOW, setting="test")


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with run_emulator(host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
async def sessions() -> AsyncIterator[ChatwootSessions]:
    pool = ChatwootSessions(timeout=5.0, policy=LOOPBACK_POLICY)
    yield pool
    await pool.close()


def admin(sessions: ChatwootSessions, emulator: RunningEmulator) -> ChatwootClient:
    return sessions.client(emulator.url, 1, "cw-admin-token")


async def test_full_bridge_flow_is_conformant(emulator: RunningEmulator, sessions: ChatwootSessions) -> None:
    cw = admin(sessions, emulator)
    inbox = await cw.create_api_inbox("WhatsApp", "http://127.0.0.1:9/hook")
    assert inbox.secret and inbox.webhook_url == "http://127.0.0.1:9/hook"
    assert (await cw.show_inbox(inbox.id)).name == "WhatsApp"
    assert (await cw.update_inbox(inbox.id, name="Renamed")).name == "Renamed"
    assert [i.id for i in await cw.list_inboxes()] == [inbox.id]

    jid = "5511999990009@s.whatsapp.net"
    assert await cw.find_contact_by_source(inbox.id, jid) is None
    contact = await cw.create_contact(
        name="Ana", identifier=jid, phone_number="+5511999990009", inbox_id=inbox.id, source_id=jid
    )
    found = await cw.find_contact_by_source(inbox.id, jid)
    assert found is not None and found.id == contact.id
    assert [c.id for c in await cw.filter_contacts("identifier", [jid])] == [contact.id]
    assert (await cw.update_contact(contact.id, name="Ana B")).name == "Ana B"
    assert (await cw.show_contact(contact.id)).identifier == jid
    other = await cw.create_contact(name="Bob", identifier="bob@lid")
    assert await cw.create_contact_inbox(other.id, inbox.id, "bob@lid") == "bob@lid"

    conv = await cw.create_conversation(
        inbox_id=inbox.id, contact_id=contact.id, source_id=jid, status="pending"
    )
    assert conv.status == "pending"
    assert [c.id for c in await cw.contact_conversations(contact.id)] == [conv.id]
    toggled = await cw.toggle_status(conv.id, "open")
    assert toggled.current_status == "open"
    assert (await cw.show_conversation(conv.id)).status == "open"

    incoming = await cw.create_message(conv.id, content="hi", message_type="incoming", source_id="WAID:1")
    reply = await cw.create_message(
        conv.id, content="re", message_type="outgoing", content_attributes={"in_reply_to": incoming.id}
    )
    assert reply.content_attributes.get("in_reply_to") == incoming.id
    with_file = await cw.create_message(
        conv.id,
        content="file",
        message_type="incoming",
        source_id="WAID:2",
        attachments=[Attachment(filename="a.png", content_type="image/png", data=b"\x89PNG\r\n\x1a\n0000")],
    )
    assert with_file.source_id == "WAID:2"
    listed = await cw.list_messages(conv.id)
    assert [m.source_id for m in listed if m.source_id] == ["WAID:1", "WAID:2"]
    failed = await cw.update_message_status(conv.id, reply.id, "failed", external_error="not on WhatsApp")
    assert failed.status == "failed"
    await cw.toggle_typing(conv.id, True)
    await cw.delete_message(conv.id, reply.id)
    await cw.delete_inbox(inbox.id)
    assert emulator.emulator.recorder.conformance_errors() == []


async def test_error_bodies_become_typed_exceptions(
    emulator: RunningEmulator, sessions: ChatwootSessions
) -> None:
    bad = sessions.client(emulator.url, 1, "nope")
    with pytest.raises(ChatwootAuthError) as auth:
        await bad.list_inboxes()
    assert auth.value.status == 401 and "Invalid Access Token" in auth.value.body
    assert auth.value.endpoint == "GET /api/v1/accounts/1/inboxes"

    agent = sessions.client(emulator.url, 1, "cw-agent-token")
    with pytest.raises(ChatwootAuthError) as denied:
        await agent.create_api_inbox("x", "http://h")
    assert "not authorized to do this action" in denied.value.body

    cw = admin(sessions, emulator)
    with pytest.raises(ChatwootNotFound):
        await cw.show_inbox(12345)
    with pytest.raises(ChatwootNotFound):
        await sessions.client(emulator.url, 999, "cw-admin-token").list_inboxes()
    with pytest.raises(ChatwootValidationError) as invalid:
        await cw.create_contact(name="x", phone_number="12345")
    assert "e164" in invalid.value.body

    emulator.emulator.faults.add(method="GET", path=r".*/inboxes$", status=429, count=1, retry_after=7)
    with pytest.raises(ChatwootRateLimited) as limited:
        await cw.list_inboxes()
    assert limited.value.retry_after == 7.0 and limited.value.retryable
    emulator.emulator.faults.add(method="GET", path=r".*/inboxes$", status=500, count=1)
    with pytest.raises(ChatwootServerError) as server:
        await cw.list_inboxes()
    assert server.value.status == 500 and server.value.retryable
    emulator.emulator.faults.add(method="GET", path=r".*/inboxes$", status=402, count=1)
    with pytest.raises(ChatwootHTTPError) as other:
        await cw.list_inboxes()
    assert other.value.status == 402


async def test_transport_failures(sessions: ChatwootSessions) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed_port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ChatwootUnreachable):
        await sessions.client(f"http://127.0.0.1:{closed_port}", 1, "t").list_inboxes()

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"payload": []})

    app = web.Application()
    app.router.add_get("/api/v1/accounts/1/inboxes", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with pytest.raises(ChatwootTimeout):
            await sessions.client(f"http://127.0.0.1:{port}", 1, "t", timeout=0.3).list_inboxes()
    finally:
        await runner.cleanup()


async def test_one_session_per_base_url(sessions: ChatwootSessions) -> None:
    a = sessions.session("http://cw.example/")
    assert sessions.session("http://cw.example") is a
    assert sessions.session("http://other.example") is not a
    assert sessions.client("http://cw.example", 1, "t")._session is a

"""Chatwoot → WhatsApp with attachments, end to end: RyzeAPI (simulated WhatsApp), the bridge and
the Chatwoot emulator as real processes. What the phone network receives is compared byte for byte
(SHA-256) with what the agent uploaded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ryze.devstack import EMULATOR_ACCOUNT_ID, LocalSystem, start_system

from .helpers import OUTGOING, add_fault, clear_faults, faults_fired, sent_messages, wait_messages

pytestmark = pytest.mark.e2e

INSTANCE = "e2e-media"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(255, -1, -1)) * 30
OGG = b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead\x01\x01" + b"\x07" * 3000
PDF = b"%PDF-1.4\n" + b"quarterly numbers\n" * 200


@pytest.fixture(scope="module")
async def system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    # A data_url that never works fails after BRIDGE_MEDIA_RETRY_SECONDS: short here (default 30 s).
    workdir: Path = tmp_path_factory.mktemp("system")
    running = await start_system(workdir, api_env={"BRIDGE_MEDIA_RETRY_SECONDS": "3"})
    try:
        yield running
    finally:
        await running.aclose()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
async def inbox_id(system: LocalSystem) -> int:
    created = await system.create_instance(INSTANCE)
    return int(created["chatwoot"]["chatwoot_inbox_id"])


async def _conversation(system: LocalSystem, inbox_id: int, number: str) -> tuple[int, str]:
    """A customer's conversation (created by their first message); returns (id, their WhatsApp id)."""
    [wa_id] = await system.inject(INSTANCE, [{"from": number, "pushName": "Bea", "text": "hello"}])
    jid = f"{number}@s.whatsapp.net"

    async def found() -> int | None:
        for conv in await system.conversations():
            if conv["inbox_id"] == inbox_id and conv["meta"]["sender"]["identifier"] == jid:
                return int(conv["id"])
        return None

    conversation_id = await system.wait_for(found, what=f"the conversation of {number}")
    await wait_messages(system, conversation_id, 1)
    return conversation_id, wa_id


async def agent_send(
    system: LocalSystem,
    conversation_id: int,
    content: str | None,
    files: list[tuple[str, bytes, str]],
    *,
    content_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The agent's message with uploads, as the dashboard posts it (multipart ``attachments[]``)."""
    form = aiohttp.FormData()
    if content is not None:
        form.add_field("content", content)
    if content_attributes:
        form.add_field("content_attributes", json.dumps(content_attributes))
    for name, data, ctype in files:
        form.add_field("attachments[]", data, filename=name, content_type=ctype)
    url = f"{_thread(system, conversation_id)}/messages"
    async with system.http.post(url, data=form) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


def _thread(system: LocalSystem, conversation_id: int) -> str:
    return f"{system.emulator_url}/_emulator/accounts/{EMULATOR_ACCOUNT_ID}/conversations/{conversation_id}"


async def sent_bytes(system: LocalSystem, item: dict[str, Any]) -> bytes:
    url = f"{system.api_url}/_simulator/{INSTANCE}/media/{item['media']['handle']}"
    async with system.http.get(url, headers={"token": system.account_token}) as resp:
        assert resp.status == 200
        return await resp.read()


async def sent_here(system: LocalSystem) -> list[dict[str, Any]]:
    return await sent_messages(system, INSTANCE)


async def _new_outbox(
    system: LocalSystem, before: int, count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    async def ready() -> list[dict[str, Any]]:
        items = await sent_here(system)
        return items[before:] if len(items) >= before + count else []

    return await system.wait_for(ready, timeout=timeout, what=f"{count} more messages sent")


async def test_each_attachment_type_arrives_with_equal_bytes_in_order_text_once(
    system: LocalSystem, inbox_id: int
) -> None:
    conv_id, _ = await _conversation(system, inbox_id, "5511977770001")
    before = len(await sent_here(system))
    files = [
        ("photo.jpg", JPEG, "image/jpeg"),
        ("clip.mp4", MP4, "video/mp4"),
        ("report.pdf", PDF, "application/pdf"),
    ]
    await agent_send(system, conv_id, "here you go", files)
    items = await _new_outbox(system, before, 3)
    assert [i["kind"] for i in items] == ["image", "video", "document"]
    assert [i["text"] for i in items] == ["here you go", "", ""]  # the text once, as the first caption
    assert items[2]["media"]["fileName"] == "report.pdf"
    for item, (_, data, _) in zip(items, files, strict=True):
        assert sha(await sent_bytes(system, item)) == sha(data)
    outgoing = await wait_messages(system, conv_id, 1, message_type=OUTGOING)
    assert outgoing[-1]["status"] != "failed"
    assert len(await sent_here(system)) == before + 3  # nothing sent twice


async def test_a_voice_note_goes_as_ptt_after_its_text(system: LocalSystem, inbox_id: int) -> None:
    conv_id, _ = await _conversation(system, inbox_id, "5511977770002")
    before = len(await sent_here(system))
    await agent_send(system, conv_id, "listen to this", [("note.ogg", OGG, "audio/ogg")])
    text, voice = await _new_outbox(system, before, 2)
    assert text["kind"] == "text" and text["text"] == "listen to this"
    assert voice["media"]["kind"] == "ptt"
    assert sha(await sent_bytes(system, voice)) == sha(OGG)


async def test_a_quoted_reply_points_at_the_customers_message(system: LocalSystem, inbox_id: int) -> None:
    conv_id, wa_id = await _conversation(system, inbox_id, "5511977770003")
    [customer] = await wait_messages(system, conv_id, 1)
    before = len(await sent_here(system))
    await agent_send(
        system, conv_id, "answering this", [], content_attributes={"in_reply_to": customer["id"]}
    )
    [item] = await _new_outbox(system, before, 1)
    assert item["replyTo"] == wa_id

    # the reply marked the customer's messages read on WhatsApp
    async def read() -> list[dict[str, Any]]:
        return [
            i for i in await system.outbox(INSTANCE) if i["action"] == "read" and wa_id in i["messageIds"]
        ]

    [receipt] = await system.wait_for(read, what="the customer's message marked read")
    assert receipt["chat"] == item["to"]


async def test_a_reply_in_a_group_marks_each_participants_messages_read(
    system: LocalSystem, inbox_id: int
) -> None:
    group = "120363000000009077@g.us"
    ana, bob = "5511977771001", "5511977771002"
    ids = await system.inject(
        INSTANCE,
        [
            {"from": ana, "pushName": "Ana", "group": group, "text": "hi"},
            {"from": bob, "pushName": "Bob", "group": group, "text": "yo"},
            {"from": ana, "pushName": "Ana", "group": group, "text": "anyone?"},
        ],
    )

    async def found() -> int | None:
        for conv in await system.conversations():
            if conv["inbox_id"] == inbox_id and conv["meta"]["sender"]["identifier"] == group:
                return int(conv["id"])
        return None

    conv_id = await system.wait_for(found, what="the group's conversation")
    await wait_messages(system, conv_id, 3)
    await agent_send(system, conv_id, "hello team", [])

    async def reads() -> list[dict[str, Any]]:
        items = [i for i in await system.outbox(INSTANCE) if i["action"] == "read" and i["chat"] == group]
        return items if len(items) >= 2 else []

    marks = await system.wait_for(reads, what="a read mark per participant")
    # whatsmeow's MarkRead names one author per receipt: each participant's messages on their own
    assert sorted((m["sender"], m["messageIds"]) for m in marks) == [
        (f"{ana}@s.whatsapp.net", [ids[0], ids[2]]),
        (f"{bob}@s.whatsapp.net", [ids[1]]),
    ]


async def test_a_deleted_agent_message_is_revoked(system: LocalSystem, inbox_id: int) -> None:
    conv_id, _ = await _conversation(system, inbox_id, "5511977770004")
    before = len(await sent_here(system))
    reply = await agent_send(system, conv_id, "sent by mistake", [("oops.jpg", JPEG, "image/jpeg")])
    [sent] = await _new_outbox(system, before, 1)
    await system.call("DELETE", f"{_thread(system, conv_id)}/messages/{reply['id']}", expect=200)
    [revoke] = await _new_outbox(system, before + 1, 1)
    assert revoke["kind"] == "revoke" and revoke["targetId"] == sent["id"]


async def test_a_data_url_that_404s_for_a_while_is_delivered_once(system: LocalSystem, inbox_id: int) -> None:
    conv_id, _ = await _conversation(system, inbox_id, "5511977770005")
    before = len(await sent_here(system))
    await add_fault(system, method="GET", path=r"/rails/active_storage/.*/late\.jpg", status=404, count=3)
    try:
        await agent_send(system, conv_id, None, [("late.jpg", JPEG, "image/jpeg")])
        [item] = await _new_outbox(system, before, 1)
        assert await faults_fired(system) == 3
    finally:
        await clear_faults(system)
    assert sha(await sent_bytes(system, item)) == sha(JPEG)
    outgoing = await wait_messages(system, conv_id, 1, message_type=OUTGOING)
    assert outgoing[-1]["status"] != "failed"
    assert len(await sent_here(system)) == before + 1


async def test_a_data_url_that_never_works_marks_the_message_failed_with_a_reason(
    system: LocalSystem, inbox_id: int
) -> None:
    conv_id, _ = await _conversation(system, inbox_id, "5511977770006")
    before = len(await sent_here(system))
    await add_fault(system, method="GET", path=r"/rails/active_storage/.*/gone\.pdf", status=404)
    try:
        reply = await agent_send(system, conv_id, "the file", [("gone.pdf", PDF, "application/pdf")])

        async def failed() -> dict[str, Any] | None:
            for m in await system.messages(conv_id):
                if m["id"] == reply["id"] and m["status"] == "failed":
                    return dict(m)
            return None

        message = await system.wait_for(failed, timeout=60, what="the agent's message marked failed")
    finally:
        await clear_faults(system)
    reason = message["content_attributes"]["external_error"]
    assert "gone.pdf" in reason and "404" in reason
    assert len(await sent_here(system)) == before  # nothing reached WhatsApp

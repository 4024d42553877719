"""WhatsApp → Chatwoot with three real processes (RyzeAPI with the simulated engine, the bridge,
the Chatwoot emulator): files arrive byte for byte, replies, reactions, edits and revokes act on
their target, a group is one conversation."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import pytest

from ryze.devstack import LocalSystem

from .helpers import wait_conversation, wait_messages

pytestmark = pytest.mark.e2e

PHONE = "5511988887001"


def _file(size: int, seed: str) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


async def _download(system: LocalSystem, attachment: dict[str, Any]) -> bytes:
    async with system.http.get(attachment["data_url"]) as resp:  # Active Storage's redirect, followed
        assert resp.status == 200
        return await resp.read()


async def test_files_arrive_byte_for_byte_and_actions_hit_their_target(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-types")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    photo, voice, pdf = _file(100 * 1024, "photo"), _file(12 * 1024, "voice"), _file(30 * 1024, "pdf")
    b64 = base64.b64encode
    ids = await system.inject(
        "e2e-types",
        [
            {"from": PHONE, "pushName": "Ana", "text": "hello"},
            {"from": PHONE, "type": "image", "text": "a *photo*", "mimetype": "image/jpeg",
             "mediaBase64": b64(photo).decode()},
            {"from": PHONE, "type": "ptt", "mimetype": "audio/ogg; codecs=opus", "seconds": 3,
             "mediaBase64": b64(voice).decode()},
            {"from": PHONE, "type": "document", "mimetype": "application/pdf", "fileName": "Order 12.pdf",
             "mediaBase64": b64(pdf).decode()},
        ],
    )  # fmt: skip
    [conv] = await wait_conversation(system, inbox_id)
    msgs = await wait_messages(system, conv["id"], 4, timeout=60)
    by_source = {m["source_id"]: m for m in msgs}
    image = by_source[f"WAID:{ids[1]}"]
    assert image["content"] == "a **photo**"
    [att] = image["attachments"]
    assert att["file_type"] == "image"
    assert hashlib.sha256(await _download(system, att)).digest() == hashlib.sha256(photo).digest()
    [att] = by_source[f"WAID:{ids[2]}"]["attachments"]
    assert att["file_type"] == "audio"
    assert await _download(system, att) == voice
    [att] = by_source[f"WAID:{ids[3]}"]["attachments"]
    assert await _download(system, att) == pdf

    text_id = ids[0]
    more = await system.inject(
        "e2e-types",
        [
            {"from": PHONE, "text": "as I said", "replyTo": text_id},
            {"from": PHONE, "type": "reaction", "targetId": text_id, "emoji": "👍"},
            {"from": PHONE, "type": "edit", "targetId": text_id, "text": "hello again"},
            {"from": PHONE, "type": "revoke", "targetId": ids[1]},
        ],
    )
    target = by_source[f"WAID:{text_id}"]

    async def settled() -> list[dict[str, Any]]:
        now = await system.messages(conv["id"])
        revoked = [m for m in now if m["id"] == image["id"]]
        done = revoked and revoked[0]["content_attributes"].get("deleted") and len(now) >= 7
        return now if done else []

    now = {m["source_id"]: m for m in await system.wait_for(settled, timeout=60, what="actions applied")}
    assert now[f"WAID:{more[0]}"]["content_attributes"]["in_reply_to"] == target["id"]
    reaction = now[f"WAID:{more[1]}"]
    assert reaction["content"] == "👍" and reaction["content_attributes"]["in_reply_to"] == target["id"]
    edit = now[f"WAID:{more[2]}"]
    assert edit["content"] == "✏️ Edited: hello again"
    assert edit["content_attributes"]["in_reply_to"] == target["id"]
    assert f"WAID:{more[3]}" not in now  # a revoke adds nothing: its target is deleted
    assert not now[f"WAID:{ids[1]}"].get("attachments")  # the revoked photo's file is gone too


async def test_a_group_lands_in_one_conversation_with_participant_names(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-group")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    group = "120363000000009001@g.us"
    await system.inject(
        "e2e-group",
        [
            {"from": "5511988887101", "pushName": "Ana", "group": group, "text": "hi"},
            {"from": "5511988887102", "pushName": "Bob", "group": group, "text": "yo"},
        ],
    )
    [conv] = await wait_conversation(system, inbox_id)
    msgs = await wait_messages(system, conv["id"], 2)
    assert [m["content"] for m in msgs] == ["**Ana:**\nhi", "**Bob:**\nyo"]


async def test_group_changes_are_activity_lines_in_the_groups_conversation(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-group-changes")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    group = "120363000000009002@g.us"
    ana, bob = "5511988887201", "5511988887202"
    base = "/_simulator/e2e-group-changes/groups"
    # the group's full info (a create) names its members; later changes list bare JIDs
    members = [ana, {"jid": bob, "name": "Bob"}]
    await system.api(
        "POST", base, json={"jid": group, "subject": "Shop", "participants": members}, expect=200
    )
    await system.inject("e2e-group-changes", [{"from": ana, "pushName": "Ana", "group": group, "text": "hi"}])
    [conv] = await wait_conversation(system, inbox_id)
    await wait_messages(system, conv["id"], 1)
    remove = {"action": "remove", "actor": ana, "participants": [bob]}
    await system.api("POST", f"{base}/{group}/changes", json=remove, expect=200)
    add = {"action": "add", "actor": ana, "participants": [bob]}
    await system.api("POST", f"{base}/{group}/changes", json=add, expect=200)
    promote = {"action": "promote", "actor": ana, "participants": [bob]}
    await system.api("POST", f"{base}/{group}/changes", json=promote, expect=200)
    await system.api("PATCH", f"{base}/{group}", json={"subject": "Shop VIP", "actor": bob}, expect=200)
    # an activity (message_type 2): the dashboard's system line, never a webhook back to WhatsApp
    lines = await wait_messages(system, conv["id"], 4, message_type=2)
    assert [m["content"] for m in lines if m["content"].startswith("👥")] == [
        "👥 Ana removed Bob",
        "👥 Ana added Bob",
        "👥 Ana made Bob an admin",
        "👥 Bob changed the group name to “Shop VIP”",
    ]
    [current] = await wait_conversation(system, inbox_id)
    assert current["meta"]["sender"]["name"] == "Shop VIP"  # the conversation's name kept current
    outbox = await system.outbox("e2e-group-changes")
    assert [i for i in outbox if i["action"] == "message"] == []  # nothing sent to WhatsApp


async def test_a_live_locations_updates_do_not_flood_the_conversation(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-live")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    phone = "5511988887301"

    def live(lat: float, sequence: int, **extra: Any) -> dict[str, Any]:
        return {"from": phone, "pushName": "Lia", "type": "location", "latitude": lat, "longitude": -46.6,
                "live": True, "sequence": sequence, **extra}  # fmt: skip

    await system.inject("e2e-live", [live(-23.50, 1), live(-23.51, 2), live(-23.52, 3), live(-23.53, 4)])
    await system.inject("e2e-live", [{"from": phone, "pushName": "Lia", "text": "on my way"}])
    [conv] = await wait_conversation(system, inbox_id)
    msgs = await wait_messages(system, conv["id"], 2)
    # the bridge's default interval (5 minutes): the share's start, then nothing until it passes
    assert [m["content"].splitlines()[0] for m in msgs] == ["📍 Live location (started sharing)", "on my way"]
    if os.environ.get("SIMULATOR_WIRE") == "neonize":
        return  # whatsmeow reports no end of a share: the simulated one is not on neonize's wire
    await system.inject("e2e-live", [live(-23.54, 5, liveEnded=True)])
    msgs = await wait_messages(system, conv["id"], 3)
    end = msgs[-1]
    assert end["content"].startswith("📍 Live location ended · last position")
    assert "-23.540000, -46.600000" in end["content"]
    assert end["content_attributes"]["in_reply_to"] == msgs[0]["id"]

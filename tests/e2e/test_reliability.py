"""No loss, no duplicates: duplicated deliveries, a killed bridge, a dropped link, a failing Chatwoot."""

from __future__ import annotations

import asyncio

import pytest

from ryze.devstack import LocalSystem

from .helpers import (
    add_fault,
    clear_faults,
    faults_fired,
    redeliver_webhook,
    sent_messages,
    wait_conversation,
    wait_messages,
    wait_outbox,
)

pytestmark = pytest.mark.e2e


def _texts(messages: list[dict[str, object]]) -> list[object]:
    return [m["content"] for m in messages]


async def test_the_same_whatsapp_message_twice_appears_once(system: LocalSystem) -> None:
    created = await system.create_instance("rel-dup-wa")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    message = {"id": "3EB0DUPLICATE0001", "from": "5511977770001", "text": "only once"}
    await system.inject("rel-dup-wa", [message])
    await system.inject("rel-dup-wa", [message, {"from": "5511977770001", "text": "after"}])
    [conv] = await wait_conversation(system, inbox_id)
    msgs = await wait_messages(system, conv["id"], 2)
    await asyncio.sleep(0.5)  # give a duplicate the chance to appear: it must not
    assert _texts(await wait_messages(system, conv["id"], 2)) == ["only once", "after"]
    assert len(msgs) == 2


async def test_a_webhook_delivered_twice_sends_one_whatsapp_message(system: LocalSystem) -> None:
    created = await system.create_instance("rel-dup-hook")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    await system.inject("rel-dup-hook", [{"from": "5511977770002", "text": "hi"}])
    [conv] = await wait_conversation(system, inbox_id)
    await wait_messages(system, conv["id"], 1)
    reply = await system.agent_reply(conv["id"], "answer once")
    await wait_outbox(system, "rel-dup-hook", 1)
    assert await redeliver_webhook(system, inbox_id, reply["id"]) == 200
    await system.inject("rel-dup-hook", [{"from": "5511977770002", "text": "thanks"}])
    await wait_messages(system, conv["id"], 2)
    await asyncio.sleep(0.5)
    assert [m["text"] for m in await sent_messages(system, "rel-dup-hook")] == ["answer once"]


async def test_bridge_killed_mid_stream_loses_and_duplicates_nothing(system: LocalSystem) -> None:
    created = await system.create_instance("rel-kill")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    contacts = ["5511977770010", "5511977770011", "5511977770012"]
    expected = {c: [f"{c[-2:]}-{i}" for i in range(20)] for c in contacts}
    for i in range(10):
        await system.inject("rel-kill", [{"from": c, "text": expected[c][i]} for c in contacts])
    await system.stack.kill("bridge")
    for i in range(10, 20):
        await system.inject("rel-kill", [{"from": c, "text": expected[c][i]} for c in contacts])
    await system.stack.start(system.bridge_spec())

    convs = await wait_conversation(system, inbox_id, count=3)
    by_contact = {c["meta"]["sender"]["identifier"].split("@")[0]: c for c in convs}
    for contact in contacts:
        msgs = await wait_messages(system, by_contact[contact]["id"], 20, timeout=60)
        assert _texts(msgs) == expected[contact]
    assert len(await wait_conversation(system, inbox_id, count=3)) == 3


async def test_ryzeapi_restart_drops_the_link_and_the_bridge_resumes(system: LocalSystem) -> None:
    created = await system.create_instance("rel-link")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    await system.inject("rel-link", [{"from": "5511977770020", "text": f"m{i}"} for i in range(10)])
    await system.stack.kill("api")
    await system.stack.start(system.api_spec())
    await system.wait_for(lambda: system.is_connected("rel-link"), timeout=20, what="reconnected")
    await system.inject("rel-link", [{"from": "5511977770020", "text": f"m{i}"} for i in range(10, 20)])
    [conv] = await wait_conversation(system, inbox_id)
    msgs = await wait_messages(system, conv["id"], 20, timeout=60)
    assert _texts(msgs) == [f"m{i}" for i in range(20)]


@pytest.mark.parametrize("status", [500, 429])
async def test_chatwoot_failing_for_a_while_loses_and_duplicates_nothing(
    system: LocalSystem, status: int
) -> None:
    name = f"rel-fail-{status}"
    created = await system.create_instance(name)
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    await system.inject(name, [{"from": "5511977770030", "text": "before"}])
    [conv] = await wait_conversation(system, inbox_id)
    await wait_messages(system, conv["id"], 1)
    await add_fault(
        system, method="POST", path=r"/conversations/\d+/messages$", status=status, count=6, retry_after=1
    )
    try:
        await system.inject(name, [{"from": "5511977770030", "text": f"during {i}"} for i in range(5)])
        msgs = await wait_messages(system, conv["id"], 6, timeout=60)
        assert await faults_fired(system) == 6  # Chatwoot really refused six times
    finally:
        await clear_faults(system)
    assert _texts(msgs) == ["before"] + [f"during {i}" for i in range(5)]

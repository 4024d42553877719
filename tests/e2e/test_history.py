"""WhatsApp history into Chatwoot: per chat in order, original times shown, the integration's
window applied, media attached, nothing twice (live vs history, replays, a killed bridge)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from ryze.devstack import LocalSystem

from .helpers import add_fault, clear_faults, wait_conversation, wait_messages

pytestmark = pytest.mark.e2e

DAY = 86_400


async def _history(system: LocalSystem, instance: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = await system.api(
        "POST", f"/_simulator/{instance}/history", json={"messages": messages}, expect=200
    )
    return body


async def _import_done(system: LocalSystem, instance: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body = await system.api("GET", f"/api/chatwoot/list/{instance}", expect=200)
        history = body.get("history") or {}
        return history if history.get("state") == "done" else None

    result: dict[str, Any] = await system.wait_for(done, timeout=60, what=f"history import of {instance}")
    return result


def _body(message: dict[str, Any]) -> str:
    """The content after the history time line."""
    first, _, rest = str(message["content"]).partition("\n")
    assert first.startswith("🕓 ") and first.endswith("· from WhatsApp history"), message["content"]
    return rest


async def test_history_is_imported_per_chat_in_order_once_with_times_media_and_the_window(
    system: LocalSystem,
) -> None:
    created = await system.create_instance("hist-basic")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    ana, bia, old = "5511966660001", "5511966660002", "5511966660003"
    [live_id] = await system.inject("hist-basic", [{"from": ana, "text": "live first"}])
    [conv] = await wait_conversation(system, inbox_id)
    await wait_messages(system, conv["id"], 1)
    photo = b"\xff\xd8\xff\xe0" + b"history photo" * 50
    await _history(
        system,
        "hist-basic",
        [  # not in order: the phone groups per chat and the import orders by time
            {"from": ana, "text": "two days ago", "ageSeconds": 2 * DAY},
            {"from": ana, "text": "three days ago", "ageSeconds": 3 * DAY, "pushName": "Ana"},
            {"fromMe": True, "to": ana, "text": "my answer, yesterday", "ageSeconds": DAY},
            {"id": live_id, "from": ana, "text": "live first", "ageSeconds": 60},  # already relayed live
            {"from": bia, "type": "image", "text": "the photo", "mimetype": "image/jpeg",
             "mediaBase64": base64.b64encode(photo).decode(), "ageSeconds": 3600},
            {"from": old, "text": "ten days ago: outside the 7-day window", "ageSeconds": 10 * DAY},
        ],
    )  # fmt: skip
    history = await _import_done(system, "hist-basic")
    assert history["days"] == 7
    assert (history["imported"], history["duplicates"], history["skipped"]) == (4, 1, 1)

    convs = await wait_conversation(system, inbox_id, count=2)
    by_contact = {c["meta"]["sender"]["identifier"].split("@")[0]: c for c in convs}
    assert set(by_contact) == {ana, bia}  # the 10-day-old chat was not imported
    thread = await wait_messages(system, by_contact[ana]["id"], 4, message_type=None)
    assert thread[0]["content"] == "live first"  # once: the history copy was recognised
    assert [_body(m) for m in thread[1:]] == ["three days ago", "two days ago", "my answer, yesterday"]
    assert [m["message_type"] for m in thread[1:]] == [0, 0, 1]  # incoming, incoming, outgoing
    [image] = await wait_messages(system, by_contact[bia]["id"], 1)
    assert _body(image) == "the photo"
    [attachment] = image["attachments"]
    assert attachment["file_type"] == "image"

    # a resync asks the phone again: it answers with its last 7 days, all already in Chatwoot
    integration_id = created["chatwoot"]["bridge_integration_id"]
    status, answer = await system.call(
        "POST",
        f"{system.bridge_url}/v1/integrations/{integration_id}/history/resync",
        headers={"Authorization": f"Bearer {system.bridge_token}"},
    )
    assert status == 200 and "last 7 days" in answer["message"]
    assert [i["action"] for i in await system.outbox("hist-basic")].count("history_request") == 1

    async def second_import_done() -> dict[str, Any] | None:
        body = await system.api("GET", "/api/chatwoot/list/hist-basic", expect=200)
        again = body["history"]
        # (the first import counted 6 received; this one counts its own 5)
        return again if again["state"] == "done" and again["received"] != history["received"] else None

    again = await system.wait_for(second_import_done, timeout=60, what="the resync's import")
    assert (again["imported"], again["duplicates"], again["received"]) == (0, 5, 5)
    assert len(await system.messages(by_contact[ana]["id"])) == len(thread)
    assert len(await system.messages(by_contact[bia]["id"])) == 1


async def test_a_history_import_interrupted_by_a_bridge_kill_resumes_with_nothing_duplicated(
    system: LocalSystem,
) -> None:
    created = await system.create_instance("hist-kill")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    contacts = ["5511966660010", "5511966660011", "5511966660012"]
    per_chat = 30
    expected = {c: [f"{c[-2:]}-{i:02d}" for i in range(per_chat)] for c in contacts}
    items = [
        {"from": c, "text": expected[c][i], "ageSeconds": (per_chat - i) * 600}
        for i in range(per_chat)
        for c in contacts
    ]
    # Chatwoot slowed down so the import is still running when the bridge is killed
    await add_fault(system, method="POST", path=r"/conversations/\d+/messages$", latency=0.05)
    try:
        await _history(system, "hist-kill", items)

        async def some_imported() -> int:
            convs = [c for c in await system.conversations() if c["inbox_id"] == inbox_id]
            total = 0
            for conv in convs:
                total += len(await system.messages(conv["id"]))
            return total if total >= 10 else 0

        done_before = await system.wait_for(some_imported, timeout=30, what="the import under way")
        assert done_before < len(items)  # killed mid-import
        await system.stack.kill("bridge")
    finally:
        await clear_faults(system)
    await system.stack.start(system.bridge_spec())

    convs = await wait_conversation(system, inbox_id, count=3)
    by_contact = {c["meta"]["sender"]["identifier"].split("@")[0]: c for c in convs}
    for contact in contacts:
        msgs = await wait_messages(system, by_contact[contact]["id"], per_chat, timeout=90)
        assert [_body(m) for m in msgs] == expected[contact]  # each once, oldest first
    await _import_done(system, "hist-kill")
    for contact in contacts:  # still once each after the import reported its end
        assert [_body(m) for m in await system.messages(by_contact[contact]["id"])] == expected[contact]
    assert len(await wait_conversation(system, inbox_id, count=3)) == 3


async def test_the_window_is_set_per_integration_on_activation_and_zero_turns_the_import_off(
    system: LocalSystem,
) -> None:
    created = await system.create_instance("hist-window", historyDays=1)  # type: ignore[arg-type]
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    ana = "5511966660020"
    await _history(
        system,
        "hist-window",
        [
            {"from": ana, "text": "two days ago", "ageSeconds": 2 * DAY},
            {"from": ana, "text": "an hour ago", "ageSeconds": 3600},
        ],
    )
    history = await _import_done(system, "hist-window")
    assert (history["days"], history["imported"], history["skipped"]) == (1, 1, 1)
    [conv] = await wait_conversation(system, inbox_id)
    assert [_body(m) for m in await wait_messages(system, conv["id"], 1)] == ["an hour ago"]

    block = system.chatwoot_block()
    keys = ("chatwootBaseUrl", "chatwootAccountId", "chatwootApiToken")
    body = {**{key: block[key] for key in keys}, "historyDays": 0}
    await system.api("POST", "/api/chatwoot/set/hist-window", json=body, expect=201)
    listed = await system.api("GET", "/api/chatwoot/list/hist-window", expect=200)
    assert listed["history"]["days"] == 0
    status, _ = await system.call(
        "POST", f"{system.api_url}/api/chatwoot/set/hist-window", token=system.account_token,
        json={**body, "historyDays": -1},
    )  # fmt: skip
    assert status == 400

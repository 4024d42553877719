"""RyzeAPI (simulated WhatsApp), bridge and Chatwoot emulator as real processes: the relay as users see it."""

from __future__ import annotations

import pytest

from ryze.devstack import EMULATOR_ACCOUNT_ID, EMULATOR_ADMIN_TOKEN, LocalSystem

from .helpers import (
    INCOMING,
    OUTGOING,
    chatwoot_inbox,
    inbox_conversations,
    wait_conversation,
    wait_messages,
    wait_outbox,
    wait_webhook_answered,
)

pytestmark = pytest.mark.e2e


async def test_inline_activation_relays_text_both_ways(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-both-ways")
    assert created["chatwoot"]["status"] == "active"
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    assert inbox_id > 0

    [wa_id] = await system.inject(
        "e2e-both-ways", [{"from": "5511988880001", "pushName": "Ana", "text": "Hi there"}]
    )
    [conv] = await wait_conversation(system, inbox_id)
    [msg] = await wait_messages(system, conv["id"], 1)
    assert msg["content"] == "Hi there"
    assert msg["source_id"] == f"WAID:{wa_id}"
    assert conv["meta"]["sender"]["identifier"] == "5511988880001@s.whatsapp.net"
    assert conv["meta"]["sender"]["phone_number"] == "+5511988880001"

    await system.agent_reply(conv["id"], "Hello Ana, how can I help?")
    [sent] = await wait_outbox(system, "e2e-both-ways", 1)
    assert sent["to"] == "5511988880001@s.whatsapp.net"
    assert sent["text"] == "Hello Ana, how can I help?"
    # the agent's message is not mirrored back as a second outgoing message
    outgoing = await wait_messages(system, conv["id"], 1, message_type=OUTGOING)
    assert [m["content"] for m in outgoing] == ["Hello Ana, how can I help?"]
    assert outgoing[0]["status"] != "failed"


async def test_set_activates_an_existing_instance(system: LocalSystem) -> None:
    await system.create_instance("e2e-set", chatwoot=False)
    body = await system.api(
        "POST",
        "/api/chatwoot/set/e2e-set",
        json={
            "chatwootBaseUrl": system.emulator_url + "/",
            "chatwootAccountId": EMULATOR_ACCOUNT_ID,
            "chatwootApiToken": EMULATOR_ADMIN_TOKEN,
            "inboxName": "WhatsApp - e2e",
        },
        expect=201,
    )
    assert body["status"] == "active" and body["message"] == "chatwoot integration activated"
    info = await system.api("GET", "/api/chatwoot/list/e2e-set", expect=200)
    assert info["chatwoot_inbox_name"] == "WhatsApp - e2e"
    assert info["chatwoot_base_url"] == system.emulator_url
    assert "chatwoot_api_token" not in info
    status, inbox = await chatwoot_inbox(system, info["chatwoot_inbox_id"])
    assert status == 200 and inbox["name"] == "WhatsApp - e2e"

    await system.inject("e2e-set", [{"from": "5511988880002", "text": "via set"}])
    [conv] = await wait_conversation(system, info["chatwoot_inbox_id"])
    assert [m["content"] for m in await wait_messages(system, conv["id"], 1)] == ["via set"]


async def test_sign_messages_prefixes_the_agent_name(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-sign", signMessages=True)
    await system.inject("e2e-sign", [{"from": "5511988880003", "text": "hello"}])
    [conv] = await wait_conversation(system, created["chatwoot"]["chatwoot_inbox_id"])
    await wait_messages(system, conv["id"], 1)
    await system.agent_reply(conv["id"], "Signed reply")
    [sent] = await wait_outbox(system, "e2e-sign", 1)
    assert sent["text"] == "*Acme Admin*:\nSigned reply"


async def test_start_as_pending_creates_pending_conversations(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-pending", startAsPending=True)
    await system.inject("e2e-pending", [{"from": "5511988880004", "text": "hello"}])
    [conv] = await wait_conversation(system, created["chatwoot"]["chatwoot_inbox_id"])
    assert conv["status"] == "pending"


async def _resolve(system: LocalSystem, conversation_id: int) -> None:
    base = f"{system.emulator_url}/_emulator/accounts/{EMULATOR_ACCOUNT_ID}"
    url = f"{base}/conversations/{conversation_id}/toggle_status"
    await system.call("POST", url, json={"status": "resolved"}, expect=200)


@pytest.mark.parametrize("reopen", [True, False])
async def test_reopen_resolved_decides_between_reopening_and_a_new_conversation(
    system: LocalSystem, reopen: bool
) -> None:
    name = f"e2e-reopen-{str(reopen).lower()}"
    created = await system.create_instance(name, reopenResolved=reopen)
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    await system.inject(name, [{"from": "5511988880005", "text": "first"}])
    [first] = await wait_conversation(system, inbox_id)
    await wait_messages(system, first["id"], 1)
    await _resolve(system, first["id"])
    await wait_webhook_answered(system, "conversation_status_changed", first["id"])

    await system.inject(name, [{"from": "5511988880005", "text": "second"}])
    if reopen:
        msgs = await wait_messages(system, first["id"], 2)
        assert [m["content"] for m in msgs] == ["first", "second"]
        [conv] = await inbox_conversations(system, inbox_id)
        assert conv["status"] == "open"
    else:
        convs = await wait_conversation(system, inbox_id, count=2)
        newest = next(c for c in convs if c["id"] != first["id"])
        assert [m["content"] for m in await wait_messages(system, newest["id"], 1)] == ["second"]
        assert [
            m["content"] for m in await system.messages(first["id"]) if m["message_type"] == INCOMING
        ] == ["first"]


async def test_ignore_groups_keeps_group_chats_out_of_chatwoot(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-nogroups", ignoreGroups=True)
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    await system.inject(
        "e2e-nogroups",
        [
            {"from": "5511988880006", "group": "120363000000000001@g.us", "text": "in the group"},
            {"from": "5511988880006", "text": "in private"},
        ],
    )
    [conv] = await wait_conversation(system, inbox_id)
    assert [m["content"] for m in await wait_messages(system, conv["id"], 1)] == ["in private"]
    assert len(await inbox_conversations(system, inbox_id)) == 1


async def test_group_messages_share_one_conversation_with_participant_names(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-groups")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    group = "120363000000000002@g.us"
    await system.inject(
        "e2e-groups",
        [
            {"from": "5511988880007", "pushName": "Bia", "group": group, "text": "one"},
            {"from": "5511988880008", "pushName": "Caio", "group": group, "text": "two"},
        ],
    )
    [conv] = await wait_conversation(system, inbox_id)
    msgs = await wait_messages(system, conv["id"], 2)
    assert "Bia" in msgs[0]["content"] and msgs[0]["content"].endswith("one")
    assert "Caio" in msgs[1]["content"] and msgs[1]["content"].endswith("two")


async def test_own_messages_from_the_phone_are_mirrored_as_outgoing(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-own")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    await system.inject("e2e-own", [{"from": "5511988880009", "text": "question"}])
    [conv] = await wait_conversation(system, inbox_id)
    await wait_messages(system, conv["id"], 1)
    [own_id] = await system.inject(
        "e2e-own", [{"fromMe": True, "to": "5511988880009", "text": "typed on the phone"}]
    )
    [own] = await wait_messages(system, conv["id"], 1, message_type=OUTGOING)
    assert own["content"] == "typed on the phone"
    assert own["source_id"] == f"WAID:{own_id}"
    # a mirrored own message is not sent to WhatsApp again
    assert await system.outbox("e2e-own") == []


@pytest.mark.parametrize("keep", [False, True])
async def test_deactivation_deletes_or_keeps_the_inbox(system: LocalSystem, keep: bool) -> None:
    name = f"e2e-delete-{str(keep).lower()}"
    created = await system.create_instance(name)
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    query = "?keepInbox=true" if keep else ""
    body = await system.api("DELETE", f"/api/chatwoot/delete/{name}{query}", expect=200)
    assert body == {"message": "chatwoot integration deactivated"}
    status, _ = await chatwoot_inbox(system, inbox_id)
    assert status == (200 if keep else 404)
    await system.api("GET", f"/api/chatwoot/list/{name}", expect=404)

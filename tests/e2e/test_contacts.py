"""Contacts end to end (issue 14): names from WhatsApp that never undo an agent's edit, profile
pictures as avatars, and one contact for a person reached by phone number and by LID."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest

from e2e.helpers import inbox_conversations, wait_conversation, wait_messages, wait_outbox
from ryze.devstack import EMULATOR_ACCOUNT_ID, EMULATOR_ADMIN_TOKEN, LocalSystem
from ryze.engines.simulated.pictures import generated

HEADERS = {"api_access_token": EMULATOR_ADMIN_TOKEN}


def _contacts_url(system: LocalSystem, contact_id: int | None = None) -> str:
    base = f"{system.emulator_url}/api/v1/accounts/{EMULATOR_ACCOUNT_ID}/contacts"
    return base if contact_id is None else f"{base}/{contact_id}"


async def contact(system: LocalSystem, contact_id: int) -> tuple[int, dict[str, Any]]:
    status, body = await system.call("GET", _contacts_url(system, contact_id), headers=HEADERS)
    return status, (body or {}).get("payload", {})


async def wait_name(system: LocalSystem, contact_id: int, name: str) -> None:
    async def named() -> bool:
        return (await contact(system, contact_id))[1].get("name") == name

    await system.wait_for(named, what=f"contact {contact_id} named {name!r}")


@pytest.mark.skipif(
    os.environ.get("SIMULATOR_WIRE") == "neonize",
    reason="on neonize's wire the saved name is read from whatsmeow's contact store, which the "
    "simulated network does not fill (tests/engines/neonize/test_neonize_contacts.py covers it)",
)
async def test_the_saved_name_wins_and_an_agent_edit_is_never_undone(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-names")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    number = "5511977770001"
    await system.inject(
        "e2e-names",
        [
            {
                "from": number,
                "pushName": "Ana P",
                "savedName": "Ana (phone book)",
                "businessName": "Ana Ltd",
                "text": "1",
            }
        ],
    )
    [conv] = await wait_conversation(system, inbox_id)
    contact_id = conv["meta"]["sender"]["id"]
    assert conv["meta"]["sender"]["name"] == "Ana (phone book)"  # saved > push > business

    # WhatsApp's best name changes (no saved name now): the contact follows it
    await system.inject("e2e-names", [{"from": number, "pushName": "Ana Paula", "text": "2"}])
    await wait_name(system, contact_id, "Ana Paula")

    # an agent renames the contact in Chatwoot
    await system.call(
        "PATCH", _contacts_url(system, contact_id), headers=HEADERS, json={"name": "Ana — VIP"}, expect=200
    )
    await system.inject(
        "e2e-names", [{"from": number, "pushName": "Ana P.", "savedName": "Ana New", "text": "3"}]
    )
    await wait_messages(system, conv["id"], 3)
    # the third message went through the same renaming path as the second: the agent's name stays
    assert (await contact(system, contact_id))[1]["name"] == "Ana — VIP"


async def test_a_business_without_other_names_is_named_after_its_verified_name(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-business")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    await system.inject(
        "e2e-business", [{"from": "5511977770002", "businessName": "Padaria Sol", "text": "oi"}]
    )
    [conv] = await wait_conversation(system, inbox_id)
    assert conv["meta"]["sender"]["name"] == "Padaria Sol"


async def _avatar_bytes(system: LocalSystem, contact_id: int) -> bytes:
    async def thumbnail() -> str:
        return str((await contact(system, contact_id))[1].get("thumbnail") or "")

    url = await system.wait_for(thumbnail, what=f"contact {contact_id} has an avatar")
    async with aiohttp.ClientSession() as http, http.get(url) as resp:  # redirect to the blob
        assert resp.status == 200
        assert resp.content_type == "image/png"
        return await resp.read()


async def test_profile_pictures_become_contact_avatars_for_people_and_groups(system: LocalSystem) -> None:
    created = await system.create_instance("e2e-avatars")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    person, group = "5511977770003@s.whatsapp.net", "120363000000000077@g.us"
    await system.api(
        "POST",
        "/_simulator/e2e-avatars/groups",
        json={"jid": group, "subject": "Team", "participants": [{"jid": person}]},
    )
    await system.inject("e2e-avatars", [{"from": "5511977770003", "pushName": "Bia", "text": "hello"}])
    [conv] = await wait_conversation(system, inbox_id)
    assert await _avatar_bytes(system, conv["meta"]["sender"]["id"]) == generated(person).data

    await system.inject("e2e-avatars", [{"from": "5511977770003", "group": group, "text": "in the group"}])
    convs = await wait_conversation(system, inbox_id, count=2)
    [group_conv] = [c for c in convs if c["meta"]["sender"]["identifier"] == group]
    assert await _avatar_bytes(system, group_conv["meta"]["sender"]["id"]) == generated(group).data
    # the uploads are requests swagger.json describes (multipart `avatar` on the contact update)
    _, conformance = await system.call("GET", f"{system.emulator_url}/_emulator/conformance")
    assert [e for e in conformance["errors"] if "contacts" in e] == []


async def test_a_person_seen_by_lid_and_by_number_becomes_one_contact_keeping_both_conversations(
    system: LocalSystem,
) -> None:
    created = await system.create_instance("e2e-merge")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    lid, number = "204060801234567@lid", "5511977770004"
    await system.inject("e2e-merge", [{"from": lid, "pushName": "Lia", "text": "via lid"}])
    [lid_conv] = await wait_conversation(system, inbox_id)
    await system.inject("e2e-merge", [{"from": number, "pushName": "Lia", "text": "via number"}])
    convs = await wait_conversation(system, inbox_id, count=2)
    [pn_conv] = [c for c in convs if c["id"] != lid_conv["id"]]
    lid_contact, pn_contact = lid_conv["meta"]["sender"]["id"], pn_conv["meta"]["sender"]["id"]
    assert lid_contact != pn_contact  # WhatsApp has not said yet that they are one person

    # a message carrying both identities: Chatwoot's contact merge makes them one contact
    await system.inject(
        "e2e-merge", [{"from": lid, "fromAlt": f"{number}@s.whatsapp.net", "pushName": "Lia", "text": "both"}]
    )
    await wait_messages(system, lid_conv["id"], 2)

    async def merged() -> bool:
        return (await contact(system, lid_contact))[0] == 404

    await system.wait_for(merged, what="the LID contact merged away")
    status, survivor = await contact(system, pn_contact)
    assert status == 200 and survivor["phone_number"] == "+5511977770004"
    sources = {ci["source_id"] for ci in survivor["contact_inboxes"]}
    assert {lid, f"{number}@s.whatsapp.net"} <= sources

    convs = await inbox_conversations(system, inbox_id)
    assert {c["id"] for c in convs} == {lid_conv["id"], pn_conv["id"]}  # every conversation kept
    assert {c["meta"]["sender"]["id"] for c in convs} == {pn_contact}
    assert [m["content"] for m in await wait_messages(system, lid_conv["id"], 2)] == ["via lid", "both"]
    assert [m["content"] for m in await wait_messages(system, pn_conv["id"], 1)] == ["via number"]

    # later traffic on either identity continues the conversation of the chat that revealed
    # both (one person, one chat from now on); nothing is created again
    await system.inject("e2e-merge", [{"from": number, "pushName": "Lia", "text": "after"}])
    thread = await wait_messages(system, lid_conv["id"], 3)
    assert [m["content"] for m in thread] == ["via lid", "both", "after"]
    convs = await inbox_conversations(system, inbox_id)
    assert len(convs) == 2 and {c["meta"]["sender"]["id"] for c in convs} == {pn_contact}

    # the agent answers in the number's old conversation: it still goes to that WhatsApp chat
    await system.agent_reply(pn_conv["id"], "still here")
    [sent] = await wait_outbox(system, "e2e-merge", 1)
    assert sent["to"] == f"{number}@s.whatsapp.net" and sent["text"] == "still here"

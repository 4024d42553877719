"""Behaviours of a real installation a bridge must survive (reference §12), each as the Chatwoot
file named in the test does it: contact delete and merge, agent-started conversations, and the
asynchronous inbox deletion."""

from __future__ import annotations

import uuid

import httpx

from ryze.emulator import ChatwootEmulator

from .conftest import A1, ADMIN, Api, Receiver

NOT_FOUND = {"error": "Resource could not be found"}


async def test_deleting_a_contact_takes_its_conversations_and_contact_inboxes(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    """ContactsController#destroy (`@contact.destroy!`, `head :ok`); app/models/contact.rb has
    `dependent: :destroy_async` on conversations and contact_inboxes."""
    inbox_id, contact_id, conv = await api.chat()
    r = await client.delete(f"{A1}/contacts/{contact_id}", headers=ADMIN)
    assert (r.status_code, r.content) == (200, b"")
    assert (await client.get(f"{A1}/contacts/{contact_id}", headers=ADMIN)).json() == NOT_FOUND
    r = await client.get(f"{A1}/contacts/{contact_id}/conversations", headers=ADMIN)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await client.post(f"{A1}/conversations/{conv}/messages", json={"content": "x"}, headers=ADMIN)
    assert r.status_code == 404
    r = await client.post(
        f"{A1}/contact_inboxes/filter",
        json={"inbox_id": inbox_id, "source_id": "5511999999999"},
        headers=ADMIN,
    )
    assert (r.status_code, r.content) == (404, b"")
    # the phone number is free again
    assert await api.contact(inbox_id, "+5511999999999", "5511999999999")


async def test_contact_merge_moves_conversations_and_contact_inboxes_to_the_base(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    """app/actions/contact_merge_action.rb: conversations, messages and contact inboxes of the
    mergee move to the base contact, the mergee is destroyed, and the base gets the mergee's
    attributes where it has none (base wins)."""
    inbox = await api.inbox()
    base_id = await api.contact(inbox["id"], "+5511999990001", "5511999990001@s.whatsapp.net")
    mergee_id = await api.contact(
        inbox["id"],
        "+5511999990002",
        "5511999990002@s.whatsapp.net",
        identifier="5511999990002@s.whatsapp.net",
        additional_attributes={"city": "Recife", "company_name": "Mergee Ltd"},
    )
    await client.patch(
        f"{A1}/contacts/{base_id}", json={"additional_attributes": {"city": "Olinda"}}, headers=ADMIN
    )
    base_conv = await api.conversation(inbox["id"], base_id, "5511999990001@s.whatsapp.net")
    mergee_conv = await api.conversation(inbox["id"], mergee_id, "5511999990002@s.whatsapp.net")
    incoming = await api.message(mergee_conv["id"], content="from the mergee", message_type="incoming")
    r = await client.post(
        f"{A1}/actions/contact_merge",
        json={"base_contact_id": base_id, "mergee_contact_id": mergee_id},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["id"] == base_id
    assert merged["phone_number"] == "+5511999990001"  # the base's own value wins
    assert merged["identifier"] == "5511999990002@s.whatsapp.net"  # the base had none
    assert merged["additional_attributes"] == {"city": "Olinda", "company_name": "Mergee Ltd"}
    assert sorted(ci["source_id"] for ci in merged["contact_inboxes"]) == [
        "5511999990001@s.whatsapp.net",
        "5511999990002@s.whatsapp.net",
    ]
    assert (await client.get(f"{A1}/contacts/{mergee_id}", headers=ADMIN)).status_code == 404
    r = await client.get(f"{A1}/contacts/{base_id}/conversations", headers=ADMIN)
    assert sorted(c["id"] for c in r.json()["payload"]) == sorted([base_conv["id"], mergee_conv["id"]])
    r = await client.post(
        f"{A1}/contact_inboxes/filter",
        json={"inbox_id": inbox["id"], "source_id": "5511999990002@s.whatsapp.net"},
        headers=ADMIN,
    )
    assert r.json()["id"] == base_id
    # the moved conversation works on, and its messages' sender is the base contact now
    assert (await api.message(mergee_conv["id"], content="after", message_type="incoming"))["sender"][
        "id"
    ] == base_id
    assert emu.state.messages[incoming["id"]].sender_id == base_id
    r = await client.post(
        f"{A1}/actions/contact_merge",
        json={"base_contact_id": base_id, "mergee_contact_id": 999},
        headers=ADMIN,
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_an_agent_started_conversation_has_a_uuid_source_id(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    """app/services/contacts/contactable_inboxes_service.rb (api_contactable_inbox): the latest
    contact inbox's source id, else `SecureRandom.uuid`."""
    inbox = await api.inbox(webhook_url=receiver.url)
    contact_id = await api.contact(None, "+5511999990009")  # created by an agent: no contact inbox
    r = await client.get(f"{A1}/contacts/{contact_id}/contactable_inboxes", headers=ADMIN)
    [offer] = [o for o in r.json()["payload"] if o["inbox"]["id"] == inbox["id"]]
    uuid.UUID(offer["source_id"])  # a fresh UUID each time until a contact inbox exists
    conv = await emu.agent_start_conversation(1, contact_id, inbox["id"], "Hello from the shop")
    await emu.incoming_dispatch_idle()
    [created] = [r.json for r in receiver.events("message_created")]
    assert created["content"] == "Hello from the shop" and created["message_type"] == "outgoing"
    source_id = created["conversation"]["contact_inbox"]["source_id"]
    uuid.UUID(source_id)
    assert created["conversation"]["id"] == conv["id"]
    assert created["conversation"]["meta"]["sender"]["phone_number"] == "+5511999990009"
    # once the contact inbox exists, the dashboard offers that source id again
    r = await client.get(f"{A1}/contacts/{contact_id}/contactable_inboxes", headers=ADMIN)
    assert [o["source_id"] for o in r.json()["payload"] if o["inbox"]["id"] == inbox["id"]] == [source_id]
    r = await client.post(
        "/_emulator/accounts/1/conversations",
        json={"contact_id": contact_id, "inbox_id": inbox["id"], "content": "again"},
    )
    assert r.status_code == 200 and r.json()["id"] != conv["id"]


async def test_inbox_deletion_runs_later_and_webhooks_fire_until_then(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api, receiver: Receiver
) -> None:
    """InboxesController#destroy enqueues DeleteObjectJob (app/jobs/delete_object_job.rb): until a
    worker runs it the inbox, its conversations and its webhooks live on; then conversations and
    contact inboxes go first, the inbox last."""
    emu.configure(job_delay=3600)
    inbox_id, _contact_id, conv = await api.chat(webhook_url=receiver.url)
    r = await client.delete(f"{A1}/inboxes/{inbox_id}", headers=ADMIN)
    assert r.status_code == 200
    assert (await client.get(f"{A1}/inboxes/{inbox_id}", headers=ADMIN)).status_code == 200
    await api.message(conv, content="still here", message_type="incoming")
    await emu.incoming_dispatch_idle()
    assert [m.json["content"] for m in receiver.events("message_created")] == ["still here"]
    assert emu.jobs.pending == 1
    emu.configure(job_delay=0)
    await client.delete(f"{A1}/inboxes/{inbox_id}", headers=ADMIN)  # a second request: a second job
    await emu.jobs_idle()
    assert (await client.get(f"{A1}/inboxes/{inbox_id}", headers=ADMIN)).status_code == 404
    r = await client.post(f"{A1}/conversations/{conv}/messages", json={"content": "x"}, headers=ADMIN)
    assert r.status_code == 404
    assert not [c for c in emu.state.contact_inboxes.values() if c.inbox_id == inbox_id]

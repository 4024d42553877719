"""Conversations (§5)."""

from __future__ import annotations

import httpx

from ryze.emulator import ChatwootEmulator

from .conftest import A1, ADMIN, AGENT, Api


async def test_display_id_is_per_account_and_used_as_id_and_in_paths(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    inbox_id, contact_id, display = await api.chat()
    # Another account's conversations must not consume account 1's sequence.
    g = {"api_access_token": "globex-admin-token"}
    r = await client.post(
        "/api/v1/accounts/2/inboxes", json={"name": "G", "channel": {"type": "api"}}, headers=g
    )
    g_inbox = r.json()["id"]
    r = await client.post(
        "/api/v1/accounts/2/contacts", json={"name": "g", "inbox_id": g_inbox, "source_id": "g"}, headers=g
    )
    g_contact = r.json()["payload"]["contact"]["id"]
    r = await client.post(
        "/api/v1/accounts/2/conversations",
        json={"inbox_id": g_inbox, "contact_id": g_contact, "source_id": "g"},
        headers=g,
    )
    assert r.json()["id"] == 1
    conv2 = await api.conversation(inbox_id, contact_id, "5511999999999")
    assert (display, conv2["id"]) == (1, 2)
    pk = emu.state.conversation(1, 2)
    assert pk is not None and pk.id == 3  # the primary key is global and never shown
    r = await client.get(f"{A1}/conversations/2", headers=ADMIN)
    assert r.status_code == 200 and r.json()["id"] == 2
    assert r.json()["account_id"] == 1 and r.json()["inbox_id"] == inbox_id
    assert r.json()["meta"]["sender"]["id"] == contact_id
    assert r.json()["meta"]["channel"] == "Channel::Api"
    assert isinstance(r.json()["updated_at"], float) and isinstance(r.json()["created_at"], int)
    r = await client.get(f"{A1}/conversations/99", headers=ADMIN)
    assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})


async def test_legacy_source_id_fallback_and_unique_source(client: httpx.AsyncClient, api: Api) -> None:
    inbox = await api.inbox()
    ana = await api.contact(inbox["id"], "+5511911111111", "ana")
    bob = await api.contact(None, "+5511922222222")
    r = await client.post(f"{A1}/conversations", json={"source_id": "ana"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["meta"]["sender"]["id"] == ana
    r = await client.post(f"{A1}/conversations", json={"source_id": "unknown"}, headers=ADMIN)
    assert r.status_code == 404
    r = await client.post(
        f"{A1}/conversations",
        json={"inbox_id": inbox["id"], "contact_id": bob, "source_id": "ana"},
        headers=ADMIN,
    )
    assert r.status_code == 422
    assert r.json() == {"error": "source_id should be unique"}


async def test_lock_to_single_conversation_returns_last_conversation(
    client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox(lock_to_single_conversation=True)
    cid = await api.contact(inbox["id"], "+5511911111111", "ana")
    first = await api.conversation(inbox["id"], cid, "ana")
    await client.post(
        f"{A1}/conversations/{first['id']}/toggle_status", json={"status": "resolved"}, headers=ADMIN
    )
    again = await api.conversation(inbox["id"], cid, "ana")
    assert again["id"] == first["id"] and again["status"] == "resolved"
    # Without the lock, a new conversation is created every time.
    plain = await api.inbox(name="plain")
    cid2 = await api.contact(plain["id"], "+5511922222222", "bob")
    a = await api.conversation(plain["id"], cid2, "bob")
    b = await api.conversation(plain["id"], cid2, "bob")
    assert a["id"] != b["id"]


async def test_status_param_invalid_status_and_message_sub_object(
    client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox()
    cid = await api.contact(inbox["id"], "+5511911111111", "ana")
    conv = await api.conversation(inbox["id"], cid, "ana", status="pending")
    assert conv["status"] == "pending"
    snoozed = await api.conversation(inbox["id"], cid, "ana", status="snoozed")
    assert snoozed["status"] == "snoozed"
    r = await client.post(
        f"{A1}/conversations",
        json={"inbox_id": inbox["id"], "contact_id": cid, "source_id": "ana", "status": "archived"},
        headers=ADMIN,
    )
    assert r.status_code == 500 and r.json() == {"status": 500, "error": "Internal Server Error"}
    conv = await api.conversation(
        inbox["id"], cid, "ana", message={"content": "hi", "message_type": "incoming"}
    )
    assert conv["messages"][0]["content"] == "hi" and conv["messages"][0]["message_type"] == 0
    conv = await api.conversation(inbox["id"], cid, "ana", message={"content": "from agent"})
    assert conv["messages"][0]["message_type"] == 1


async def test_list_filters_by_inbox_and_status(client: httpx.AsyncClient, api: Api) -> None:
    _, _, conv_a = await api.chat()
    inbox_b = await api.inbox(name="other")
    cid = await api.contact(inbox_b["id"], "+5511922222222", "b")
    conv_b = (await api.conversation(inbox_b["id"], cid, "b"))["id"]
    await client.post(
        f"{A1}/conversations/{conv_b}/toggle_status", json={"status": "resolved"}, headers=ADMIN
    )
    r = await client.get(f"{A1}/conversations", headers=ADMIN)
    assert [c["id"] for c in r.json()["data"]["payload"]] == [conv_a]  # status defaults to open
    r = await client.get(f"{A1}/conversations", params={"status": "all"}, headers=ADMIN)
    assert r.json()["data"]["meta"]["all_count"] == 2
    r = await client.get(
        f"{A1}/conversations", params={"status": "resolved", "inbox_id": inbox_b["id"]}, headers=ADMIN
    )
    assert [c["id"] for c in r.json()["data"]["payload"]] == [conv_b]


async def test_toggle_status_with_and_without_status(client: httpx.AsyncClient, api: Api) -> None:
    _, _, conv = await api.chat()
    url = f"{A1}/conversations/{conv}/toggle_status"
    r = await client.post(url, headers=ADMIN)
    assert r.json() == {
        "meta": {},
        "payload": {
            "success": True,
            "conversation_id": conv,
            "current_status": "resolved",
            "snoozed_until": None,
        },
    }
    r = await client.post(url, headers=ADMIN)
    assert r.json()["payload"]["current_status"] == "open"
    r = await client.post(url, json={"status": "snoozed", "snoozed_until": 4102444800}, headers=ADMIN)
    assert r.json()["payload"]["current_status"] == "snoozed"
    assert r.json()["payload"]["snoozed_until"] == "2100-01-01T00:00:00.000Z"
    r = await client.post(url, headers=ADMIN)  # snoozed toggles to open and clears snoozed_until
    assert r.json()["payload"] | {} == {
        "success": True,
        "conversation_id": conv,
        "current_status": "open",
        "snoozed_until": None,
    }
    r = await client.post(url, json={"status": "bogus"}, headers=ADMIN)
    assert r.status_code == 500
    r = await client.post(f"{A1}/conversations/77/toggle_status", headers=ADMIN)
    assert r.status_code == 404


async def test_agent_reopening_self_assigns(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    inbox_id, _, conv = await api.chat()
    agent = emu.state.user_by_email("agent@acme.test")
    assert agent is not None
    emu.state.inboxes[inbox_id].members.add(agent.id)
    await client.post(f"{A1}/conversations/{conv}/toggle_status", json={"status": "resolved"}, headers=AGENT)
    r = await client.get(f"{A1}/conversations/{conv}", headers=ADMIN)
    assert "assignee" not in r.json()["meta"]
    await client.post(f"{A1}/conversations/{conv}/toggle_status", json={"status": "open"}, headers=AGENT)
    r = await client.get(f"{A1}/conversations/{conv}", headers=ADMIN)
    assert r.json()["meta"]["assignee"]["id"] == agent.id


async def test_agent_without_inbox_access_gets_401_on_conversation(
    client: httpx.AsyncClient, api: Api
) -> None:
    _, _, conv = await api.chat()
    r = await client.get(f"{A1}/conversations/{conv}", headers=AGENT)
    assert r.status_code == 401


async def test_invalid_message_sub_object_rolls_the_conversation_back(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox()
    cid = await api.contact(inbox["id"], "+5511911111111", "ana")
    body = {"inbox_id": inbox["id"], "contact_id": cid, "source_id": "ana"}
    r = await client.post(
        f"{A1}/conversations", json={**body, "message": {"content": "x" * 150_001}}, headers=ADMIN
    )
    assert r.status_code == 422
    assert r.json() == {
        "message": "Content is too long (maximum is 150000 characters)",
        "attributes": ["content"],
    }
    r = await client.post(
        f"{A1}/conversations",
        json={**body, "message": {"content": "x", "message_type": "nope"}},
        headers=ADMIN,
    )
    assert r.status_code == 500
    assert emu.state.conversations == {}
    assert (await api.conversation(inbox["id"], cid, "ana"))["id"] == 3  # the sequence moved on

"""What the bridge's self-check reads, as Chatwoot answers it: the version (``GET /api``), the
token's roles (``GET /api/v1/profile``), a role change, and SafeFetch refusing private webhook
hosts from 4.14 on (``lib/safe_fetch.rb``; ``SAFE_FETCH_ALLOW_PRIVATE_NETWORK`` since 4.14.1)."""

from __future__ import annotations

import httpx
import pytest

from ryze.emulator import ChatwootEmulator

from .conftest import A1, ADMIN, AGENT, Api, Receiver


async def test_api_index_is_public_and_names_the_version(
    emu: ChatwootEmulator, client: httpx.AsyncClient
) -> None:
    r = await client.get("/api")
    assert r.status_code == 200
    assert r.json()["version"] == "4.15.1" and r.json()["timestamp"]
    emu.configure(version="4.12.1")
    assert (await client.get("/api")).json()["version"] == "4.12.1"


async def test_profile_lists_each_membership_with_its_role(
    emu: ChatwootEmulator, client: httpx.AsyncClient
) -> None:
    r = await client.get("/api/v1/profile", headers=ADMIN)
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Acme Admin" and body["role"] == "administrator"
    assert [(a["id"], a["role"]) for a in body["accounts"]] == [(1, "administrator")]
    agent = (await client.get("/api/v1/profile", headers=AGENT)).json()
    assert [(a["id"], a["role"]) for a in agent["accounts"]] == [(1, "agent")]
    assert (await client.get("/api/v1/profile")).status_code == 401
    bad = await client.get("/api/v1/profile", headers={"api_access_token": "nope"})
    assert bad.status_code == 401 and bad.json() == {"error": "Invalid Access Token"}


async def test_a_demoted_administrator_gets_401_from_admin_only_inbox_calls(
    emu: ChatwootEmulator, client: httpx.AsyncClient, api: Api
) -> None:
    inbox = await api.inbox()
    emu.configure(role={"account_id": 1, "email": "admin@acme.test", "role": "agent"})
    r = await client.patch(f"{A1}/inboxes/{inbox['id']}", json={"name": "x"}, headers=ADMIN)
    assert r.status_code == 401 and r.json() == {"error": "You are not authorized to do this action"}
    profile = (await client.get("/api/v1/profile", headers=ADMIN)).json()
    assert profile["accounts"][0]["role"] == "agent"
    with pytest.raises(ValueError, match="not a member"):
        emu.set_role(1, "nobody@acme.test", "agent")


async def test_from_414_a_loopback_webhook_host_is_refused_and_the_message_marked_failed(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    emu.configure(safe_fetch_allow_private_network=False)
    _, _, conv = await api.chat(webhook_url=receiver.url)
    sent = await api.message(conv, content="hello", message_type="outgoing", private=True)
    await emu.incoming_dispatch_idle()
    assert receiver.events("message_created") == []  # no request at all: refused before connecting
    failed = emu.state.messages[sent["id"]]
    assert failed.status == "failed"
    assert failed.content_attributes["external_error"] == "Hostname '127.0.0.1' has no public ip addresses"


@pytest.mark.parametrize(("version", "delivered"), [("4.13.0", True), ("4.14.0", False)])
async def test_before_414_any_host_and_at_4140_no_escape(
    emu: ChatwootEmulator, api: Api, receiver: Receiver, version: str, delivered: bool
) -> None:
    # 4.14.0 has SafeFetch but not yet SAFE_FETCH_ALLOW_PRIVATE_NETWORK (added in 4.14.1)
    emu.configure(version=version, safe_fetch_allow_private_network=True)
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await api.message(conv, content="hello", message_type="outgoing")
    await emu.incoming_dispatch_idle()
    assert bool(receiver.events("message_created")) is delivered


async def test_with_the_setting_a_loopback_host_is_delivered(
    emu: ChatwootEmulator, api: Api, receiver: Receiver
) -> None:
    assert emu.settings_json()["safe_fetch_allow_private_network"] is True  # the emulator's default
    _, _, conv = await api.chat(webhook_url=receiver.url)
    await api.message(conv, content="hello", message_type="outgoing")
    await emu.incoming_dispatch_idle()
    assert [r.json["content"] for r in receiver.events("message_created")] == ["hello"]

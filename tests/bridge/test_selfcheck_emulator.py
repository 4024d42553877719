"""The self-check against the Chatwoot emulator, each failure mode produced the way real Chatwoot
produces it: a member demoted to agent, an inbox without a secret (Chatwoot < 4.13), a secret reset,
a webhook URL Chatwoot cannot reach, and SafeFetch (4.14+) refusing a loopback webhook host."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from ryze.bridge.runtime import IntegrationRuntime
from ryze.chatwoot import ChatwootClient
from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, ADMIN_TOKEN, RunningBridge, run_bridge
from .fake_ryzeapi import FakeRyzeAPI


class ControlRoomStandIn:
    """A stand-in for the connection conversation (the real one is built by the control package):
    a bot contact and its conversation in the integration's inbox."""

    def __init__(self, client: ChatwootClient, inbox_id: int) -> None:
        self.client = client
        self.inbox_id = inbox_id
        self.conversation = 0
        self.posted: list[str] = []

    async def conversation_id(self) -> int:
        if not self.conversation:
            contact = await self.client.create_contact(
                name="Ryze · shop",
                identifier="ryze-control:shop",
                inbox_id=self.inbox_id,
                source_id="ctl-shop",
            )
            conv = await self.client.create_conversation(
                inbox_id=self.inbox_id, contact_id=contact.id, source_id="ctl-shop"
            )
            self.conversation = conv.id
        return self.conversation

    async def post(self, text: str, *, private: bool = False) -> int:
        self.posted.append(text)
        message = await self.client.create_message(
            await self.conversation_id(), content=text, message_type="outgoing", private=private
        )
        return message.id


def wire_rooms(bridge: RunningBridge) -> dict[str, ControlRoomStandIn]:
    rooms: dict[str, ControlRoomStandIn] = {}

    def room_for(runtime: IntegrationRuntime) -> ControlRoomStandIn:
        if runtime.id not in rooms:
            rooms[runtime.id] = ControlRoomStandIn(runtime.client(), runtime.record.inbox_id)
        return rooms[runtime.id]

    bridge.services.selfchecks.rooms = room_for
    return rooms


async def activate_and_check(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge, *, wired: bool = False
) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    if not wired:
        wire_rooms(bridge)
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await bridge.services.selfchecks.idle()  # it runs in the background after the answer
    status, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
    assert status == 200
    return shown, by_name(shown)


def by_name(view: dict[str, Any]) -> dict[str, tuple[str, str]]:
    assert view["checks"] is not None, view
    return {c["name"]: (c["status"], c["message"]) for c in view["checks"]["checks"]}


async def on_demand(bridge: RunningBridge, integration_id: str) -> dict[str, tuple[str, str]]:
    status, view = await bridge.call("POST", f"/v1/integrations/{integration_id}/selfcheck")
    assert status == 200, view
    assert view["checks"]["trigger"] == "on_demand"
    return by_name(view)


def sent_texts(fake: FakeRyzeAPI) -> list[str]:
    return [str(params.get("text")) for _, action, params in fake.phone if action == "send_text"]


async def test_activation_runs_the_self_check_and_keeps_its_report(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    rooms = wire_rooms(bridge)
    view, checks = await activate_and_check(emulator, fake, bridge, wired=True)
    assert view["checks"]["status"] == "ok", checks
    assert view["checks"]["trigger"] == "activation"
    assert {name: status for name, (status, _) in checks.items()} == {
        "token_admin": "ok",
        "inbox": "ok",
        "signing_secret": "ok",
        "webhook_host": "ok",  # loopback, and the emulator (4.15.1) has SAFE_FETCH_ALLOW_PRIVATE_NETWORK
        "round_trip": "ok",
    }
    # the report was posted into the connection conversation; the test note went nowhere else
    [room] = rooms.values()
    assert room.posted[-1].startswith("✅ Self-check: all good")
    assert sent_texts(fake) == []
    # kept in the database: a restarted bridge shows the same report
    reports = await bridge.services.repos.selfchecks.all()
    assert view["id"] in reports


async def test_the_report_survives_a_restart_on_both_databases(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path, database_url: str
) -> None:
    async with run_bridge(tmp_path, database_url) as bridge:
        view, _ = await activate_and_check(emulator, fake, bridge)
        assert view["checks"]["status"] == "ok"
    async with run_bridge(tmp_path, database_url) as again:
        status, shown = await again.call("GET", f"/v1/integrations/{view['id']}")
        assert status == 200
        assert shown["checks"] == view["checks"]
        # a deleted integration takes its report with it
        assert (await again.call("DELETE", f"/v1/integrations/{view['id']}?keepInbox=true"))[0] == 200
        assert await again.services.repos.selfchecks.all() == {}


async def test_a_token_demoted_to_agent_fails_token_inbox_and_round_trip(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, _ = await activate_and_check(emulator, fake, bridge)
    emulator.emulator.set_role(ACCOUNT, "admin@acme.test", "agent")
    checks = await on_demand(bridge, view["id"])
    assert checks["token_admin"][0] == "fail" and "not an administrator" in checks["token_admin"][1]
    # an agent who is no member of the inbox: InboxPolicy#show answers 401
    assert checks["inbox"][0] == "fail" and "401" in checks["inbox"][1]
    assert checks["round_trip"][0] == "fail" and "could not post" in checks["round_trip"][1]


async def test_an_inbox_without_a_secret_is_a_warning(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    emulator.emulator.configure(webhook_signing=False)  # Chatwoot before 4.13: no Channel::Api secret
    view, checks = await activate_and_check(emulator, fake, bridge)
    status, message = checks["signing_secret"]
    assert status == "warn" and "no webhook signing secret" in message
    assert checks["round_trip"][0] == "ok"  # unsigned webhooks still arrive
    assert view["checks"]["status"] == "warn"


async def test_a_secret_reset_in_chatwoot_is_taken_by_the_round_trip(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, _ = await activate_and_check(emulator, fake, bridge)
    async with aiohttp.ClientSession() as http:
        url = f"{emulator.url}/api/v1/accounts/{ACCOUNT}/inboxes/{view['inbox_id']}/reset_secret"
        async with http.post(url, headers={"api_access_token": ADMIN_TOKEN}) as resp:
            assert resp.status == 200
    checks = await on_demand(bridge, view["id"])
    assert checks["signing_secret"] == (
        "ok",
        "The inbox's signing secret was reset in Chatwoot; the bridge has taken the new one.",
    )
    assert checks["round_trip"][0] == "ok"


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_public_url_fails_the_round_trip_with_chatwoots_error(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    async with run_bridge(tmp_path, public_url=dead, selfcheck_round_trip_timeout=2.0) as bridge:
        view, checks = await activate_and_check(emulator, fake, bridge)
    status, message = checks["round_trip"]
    assert status == "fail"
    assert f"cannot reach BRIDGE_PUBLIC_URL ({dead})" in message
    assert "Failed to open TCP connection" in message  # what Chatwoot stored on the failed note
    assert checks["webhook_host"][0] == "ok"  # Chatwoot tried to connect: not a SafeFetch refusal
    assert view["checks"]["status"] == "fail"


async def test_safe_fetch_refusing_a_loopback_host_is_named(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    emulator.emulator.configure(safe_fetch_allow_private_network=False)
    _, checks = await activate_and_check(emulator, fake, bridge)
    status, message = checks["webhook_host"]
    assert status == "fail" and "SAFE_FETCH_ALLOW_PRIVATE_NETWORK=true" in message and "4.15.1" in message
    status, message = checks["round_trip"]
    assert status == "fail" and "Hostname '127.0.0.1' has no public ip addresses" in message


async def test_an_older_chatwoot_delivers_to_loopback_and_the_check_says_so(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    emulator.emulator.configure(version="4.13.0", safe_fetch_allow_private_network=False)
    _, checks = await activate_and_check(emulator, fake, bridge)
    assert checks["webhook_host"][0] == "ok" and "4.13.0" in checks["webhook_host"][1]
    assert checks["round_trip"][0] == "ok"


async def test_the_runner_returns_the_text_to_post(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    rooms = wire_rooms(bridge)
    view, _ = await activate_and_check(emulator, fake, bridge, wired=True)
    runtime = bridge.services.manager.get(view["id"])
    assert runtime is not None
    run: Callable[[], Any] = bridge.services.selfchecks.runner(runtime, rooms[view["id"]])
    text = await run()
    assert text.startswith("✅ Self-check: all good") and "Round trip" in text
    _, shown = await bridge.call("GET", f"/v1/integrations/{view['id']}")
    assert shown["checks"]["trigger"] == "on_demand"

"""The catch-up sweep: agent messages written while the bridge was down, which Chatwoot marked
failed (its webhook could not be delivered, ``lib/webhooks/trigger.rb``), are sent when the bridge
starts again — once, in order, and a late webhook for one of them sends nothing more."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from ryze.emulator import RunningEmulator
from ryze.emulator.webhooks import rails_json, sign

from .conftest import ACCOUNT, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import conversations

A = "5511999990003@s.whatsapp.net"


async def _setup(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> dict[str, Any]:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    await fake.emit("shop", "message.exchange", text_message("C1", A, "hello"))
    await eventually(lambda: not fake.unacked("shop"))
    return dict(view)


def _texts(fake: FakeRyzeAPI) -> list[str]:
    return [str(params.get("text")) for _instance, action, params in fake.phone if action == "send_text"]


async def _post_again(emulator: RunningEmulator, message_id: int) -> int:
    """Chatwoot's failed webhook for the message, delivered late (as a Sidekiq retry would)."""
    [failed] = [
        d
        for d in emulator.emulator.webhooks.deliveries
        if d.event == "message_created" and d.message_id == message_id and d.error
    ]
    inbox = next(i for i in emulator.emulator.state.inboxes.values() if i.webhook_url == failed.url)
    body, ts = rails_json(failed.payload), str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Chatwoot-Timestamp": ts}
    if inbox.secret:
        headers["X-Chatwoot-Signature"] = sign(inbox.secret, ts, body)
    async with aiohttp.ClientSession() as http, http.post(failed.url, data=body, headers=headers) as resp:
        return resp.status


async def test_agent_messages_written_while_the_bridge_was_down_are_sent_once_in_order(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path) as bridge:
        view = await _setup(emulator, fake, bridge)
        port = bridge.settings.port
    [conv] = conversations(emulator, view["inbox_id"])
    first = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "written while down 1")
    second = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "written while down 2")
    await emulator.emulator.webhooks.idle()
    messages = emulator.emulator.state.messages
    assert messages[first["id"]].status == "failed"  # the webhook could not be delivered
    assert "Failed to open TCP connection" in messages[first["id"]].content_attributes["external_error"]
    assert _texts(fake) == []

    async with run_bridge(tmp_path, port=port) as bridge:
        await eventually(lambda: len(_texts(fake)) == 2)
        assert _texts(fake) == ["written while down 1", "written while down 2"]
        # the send's status PATCH took the messages out of failed, and the error with it
        await eventually(lambda: messages[second["id"]].status != "failed")
        assert messages[first["id"]].status != "failed"
        assert "external_error" not in messages[first["id"]].content_attributes
        # a late copy of the failed webhook is the job's duplicate: nothing is sent again
        assert await _post_again(emulator, first["id"]) == 200
        third = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "after the restart")
        await eventually(lambda: len(_texts(fake)) == 3)
        assert _texts(fake) == ["written while down 1", "written while down 2", "after the restart"]
        runtime = bridge.services.manager.get(view["id"])
        assert runtime is not None and runtime.catchup.sweeps >= 1
        jobs = await bridge.services.repos.outbound.states(view["id"])
        assert sum(jobs.values()) == 3
        assert messages[third["id"]].status != "failed"


async def test_no_sweep_when_the_window_is_zero(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    async with run_bridge(tmp_path) as bridge:
        view = await _setup(emulator, fake, bridge)
        port = bridge.settings.port
    [conv] = conversations(emulator, view["inbox_id"])
    reply = await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "stays failed")
    await emulator.emulator.webhooks.idle()
    async with run_bridge(tmp_path, port=port, catchup_window=0) as bridge:
        await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "live")
        await eventually(lambda: _texts(fake) == ["live"])
        assert emulator.emulator.state.messages[reply["id"]].status == "failed"
        runtime = bridge.services.manager.get(view["id"])
        assert runtime is not None and runtime.catchup.sweeps == 0


async def test_a_reply_written_after_the_restart_waits_for_the_caught_up_ones(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    """The sweep's listing fails twice (Chatwoot 500, tried again); a reply the agent writes
    meanwhile is not sent before the two written during the outage."""
    async with run_bridge(tmp_path) as bridge:
        view = await _setup(emulator, fake, bridge)
        port = bridge.settings.port
    [conv] = conversations(emulator, view["inbox_id"])
    await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "down 1")
    await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "down 2")
    await emulator.emulator.webhooks.idle()
    rule = emulator.emulator.faults.add(method="GET", path=r".*/conversations$", status=500, count=2)
    async with run_bridge(tmp_path, port=port) as bridge:
        await eventually(lambda: fake.connected("shop"))
        await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "live")
        await eventually(lambda: len(_texts(fake)) == 3)
        assert _texts(fake) == ["down 1", "down 2", "live"]
        assert rule.fired == 2  # the sweep's listing did fail, twice
        runtime = bridge.services.manager.get(view["id"])
        assert runtime is not None and runtime.catchup.sweeps >= 1

"""Webhooks as a real Chatwoot delivers them, end to end (emulator → bridge → fake RyzeAPI).

Each test pins one behaviour of Chatwoot's own code that the emulator now reproduces:
``reset_secret`` (``app/controllers/api/v1/accounts/inboxes_controller.rb``, ``channel.reset_secret!``),
unsigned webhooks before 4.13 (``lib/webhooks/trigger.rb`` signs only with a secret), Sidekiq's
concurrent delivery (``config/sidekiq.yml`` concurrency 10, ``app/listeners/webhook_listener.rb``:
out of order, sometimes twice), and text with U+0000 on both databases.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from ryze.bridge.relay.outbound.inbox_secret import STILL_FAILS, UNREACHABLE_INBOX, UNREADABLE
from ryze.bridge.runtime import INBOX_SECRET_AD
from ryze.emulator import RunningEmulator
from ryze.protocol import CommandFrame, ResultFrame

from .conftest import ACCOUNT, ADMIN_TOKEN, RunningBridge, eventually, run_bridge
from .fake_ryzeapi import FakeRyzeAPI, text_message
from .helpers import conversations

CHAT = "5511999990077@s.whatsapp.net"


async def _ready(emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge) -> tuple[Any, int]:
    status, view = await bridge.activate(fake, emulator.url)
    assert status == 201, view
    await eventually(lambda: fake.connected("shop"))
    await fake.emit("shop", "message.exchange", text_message("H1", CHAT, "hi"))
    await eventually(lambda: not fake.unacked("shop"))
    [conv] = conversations(emulator, view["inbox_id"])
    return view, conv.display_id


def _sent(fake: FakeRyzeAPI) -> list[str]:
    return [str(params.get("text")) for _, action, params in fake.phone if action == "send_text"]


async def _status(bridge: RunningBridge, integration_id: str) -> tuple[str, str]:
    _, view = await bridge.call("GET", f"/v1/integrations/{integration_id}")
    return view["status"], view["last_error"]


# ------------------------------------------------------------------ reset_secret


async def test_after_reset_secret_the_next_webhook_is_verified_with_the_new_secret(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, display_id = await _ready(emulator, fake, bridge)
    inbox = emulator.emulator.state.inboxes[view["inbox_id"]]
    old = inbox.secret
    async with aiohttp.ClientSession() as http:
        url = f"{emulator.url}/api/v1/accounts/{ACCOUNT}/inboxes/{inbox.id}/reset_secret"
        async with http.post(url, headers={"api_access_token": ADMIN_TOKEN}) as resp:
            assert resp.status == 200
            assert (await resp.json())["secret"] == inbox.secret != old
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "after the reset")
    await eventually(lambda: "after the reset" in _sent(fake))
    await emulator.emulator.incoming_dispatch_idle()
    created = [d for d in emulator.emulator.webhooks.deliveries if d.event == "message_created"]
    assert created[-1].status == 200
    # the new secret is the one kept, encrypted, for the next start
    services = bridge.services
    record = await services.repos.integrations.get(view["id"])
    assert record is not None
    stored = services.box.decrypt(record.inbox_secret_enc, INBOX_SECRET_AD.format(id=view["id"]))
    assert stored == inbox.secret
    assert await _status(bridge, view["id"]) == ("active", "")


async def test_a_signature_that_still_fails_is_reported_and_the_re_read_is_rate_limited(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, display_id = await _ready(emulator, fake, bridge)
    inbox = emulator.emulator.state.inboxes[view["inbox_id"]]
    recorder = emulator.emulator.recorder
    recorder.clear()
    for _ in range(5):
        assert await _forged_webhook(bridge, inbox.webhook_url, display_id) == 401
    # five failures, one look at the inbox (BRIDGE_WEBHOOK_SECRET_RECHECK_INTERVAL)
    assert len(recorder.find("GET", f"/inboxes/{inbox.id}")) == 1
    assert await _status(bridge, view["id"]) == ("error", STILL_FAILS)
    # Chatwoot's own next webhook verifies: the error is over
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "still here")
    await eventually(lambda: "still here" in _sent(fake))
    assert await _status(bridge, view["id"]) == ("active", "")


async def _forged_webhook(bridge: RunningBridge, webhook_url: str, display_id: int) -> int:
    body = orjson.dumps({"event": "conversation_typing_on", "conversation": {"id": display_id}})
    ts = str(int(time.time()))
    forged = "sha256=" + hmac.new(b"not-the-secret", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X-Chatwoot-Timestamp": ts, "X-Chatwoot-Signature": forged}
    async with bridge.http.post(webhook_url, data=body, headers=headers) as resp:
        return resp.status


@pytest.mark.parametrize("member", [True, False])
async def test_a_token_that_cannot_read_the_new_secret_is_reported(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge, member: bool
) -> None:
    """The bridge's Chatwoot user lost its administrator role: Chatwoot shows an agent the inbox
    without its ``secret`` (when the agent is a member) or refuses it (401, when not)."""
    view, display_id = await _ready(emulator, fake, bridge)
    state = emulator.emulator.state
    inbox = state.inboxes[view["inbox_id"]]
    admin = next(u for u in state.users.values() if u.access_token == ADMIN_TOKEN)
    state.accounts[ACCOUNT].roles[admin.id] = "agent"
    if member:
        inbox.members.add(admin.id)
    assert await _forged_webhook(bridge, inbox.webhook_url, display_id) == 401
    status, error = await _status(bridge, view["id"])
    assert status == "error"
    assert error == UNREADABLE if member else error.startswith(UNREACHABLE_INBOX + " (401")


# ------------------------------------------------------------------ unsigned (Chatwoot < 4.13)


async def test_an_inbox_without_a_secret_is_served_by_its_path_secret_alone(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    emulator.emulator.configure(webhook_signing=False)  # Chatwoot before 4.13
    view, display_id = await _ready(emulator, fake, bridge)
    inbox = emulator.emulator.state.inboxes[view["inbox_id"]]
    assert inbox.secret == ""
    async with aiohttp.ClientSession() as http:
        base = f"{emulator.url}/api/v1/accounts/{ACCOUNT}/inboxes/{inbox.id}"
        async with http.get(base, headers={"api_access_token": ADMIN_TOKEN}) as resp:
            assert "secret" not in await resp.json()
        async with http.post(base + "/reset_secret", headers={"api_access_token": ADMIN_TOKEN}) as resp:
            assert resp.status == 404  # no such route before 4.13
    assert bridge.services.manager.get(view["id"]).inbox_secret == ""  # type: ignore[union-attr]
    await emulator.emulator.agent_reply(ACCOUNT, display_id, "unsigned reply")
    await eventually(lambda: "unsigned reply" in _sent(fake))
    # and the webhook really came without signature headers: a forged path is still a 404
    base_url, _, _ = inbox.webhook_url.rpartition("/")
    async with bridge.http.post(base_url + "/wrong", data=b"{}") as resp:
        assert resp.status == 404


async def test_after_an_upgrade_to_4_13_the_secret_is_learnt_and_then_required(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    cw = emulator.emulator
    cw.configure(webhook_signing=False)  # the inbox is created on a Chatwoot before 4.13
    view, display_id = await _ready(emulator, fake, bridge)
    inbox = cw.state.inboxes[view["inbox_id"]]
    runtime = bridge.services.manager.get(view["id"])
    assert runtime is not None and runtime.inbox_secret == ""
    # the upgrade: 4.13's migration gives every API channel a secret, and webhooks are signed
    cw.configure(webhook_signing=True)
    inbox.secret = "backfilled-by-the-4.13-migration"
    await cw.agent_reply(ACCOUNT, display_id, "signed now")
    await eventually(lambda: "signed now" in _sent(fake))
    await eventually(lambda: runtime.inbox_secret == inbox.secret)
    # the path secret alone no longer admits anything
    body = orjson.dumps({"event": "conversation_typing_on", "conversation": {"id": display_id}})
    async with bridge.http.post(inbox.webhook_url, data=body) as resp:
        assert resp.status == 401
    await cw.agent_reply(ACCOUNT, display_id, "and signed again")
    await eventually(lambda: "and signed again" in _sent(fake))


# ------------------------------------------------------------------ Sidekiq delivery order


async def test_agent_messages_delivered_in_reverse_go_to_whatsapp_in_creation_order(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _view, display_id = await _ready(emulator, fake, bridge)
    webhooks = emulator.emulator.webhooks
    webhooks.hold()
    for n in range(1, 5):
        await emulator.emulator.agent_reply(ACCOUNT, display_id, f"part {n}")
    # "ordered" delivery: one conversation's events arrive exactly reversed (with the first reply's
    # conversation_updated among them)
    assert webhooks.release("reverse") >= 4
    await eventually(lambda: len(_sent(fake)) == 4)
    assert _sent(fake) == ["part 1", "part 2", "part 3", "part 4"]


async def test_sidekiq_delivery_concurrent_and_twice_sends_each_once_in_order(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    _view, display_id = await _ready(emulator, fake, bridge)
    emulator.emulator.configure(webhook_delivery="sidekiq", webhook_duplicate_rate=1.0)
    webhooks = emulator.emulator.webhooks
    webhooks.hold()
    for n in range(1, 7):
        await emulator.emulator.agent_reply(ACCOUNT, display_id, f"line {n}")
    assert webhooks.release("shuffle") >= 12  # every job twice, shuffled, ten workers at once
    await emulator.emulator.incoming_dispatch_idle()
    await eventually(lambda: len(_sent(fake)) >= 6)
    await emulator.emulator.incoming_dispatch_idle()
    assert _sent(fake) == [f"line {n}" for n in range(1, 7)]
    created = [d for d in webhooks.deliveries if d.event == "message_created" and d.message_id]
    assert len({d.delivery_id for d in created}) == len(created)  # each copy its own X-Chatwoot-Delivery


async def test_a_stale_status_snapshot_does_not_overwrite_a_newer_one(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    view, display_id = await _ready(emulator, fake, bridge)
    cw = emulator.emulator
    await cw.agent_toggle_status(ACCOUNT, display_id, "resolved")
    await cw.incoming_dispatch_idle()
    cw.webhooks.hold()
    await cw.agent_toggle_status(ACCOUNT, display_id, "open")
    await cw.agent_toggle_status(ACCOUNT, display_id, "resolved")
    cw.webhooks.release("reverse")  # the newer "resolved" arrives first, the older "open" after it
    await cw.incoming_dispatch_idle()
    assert cw.state.conversations[next(iter(cw.state.conversations))].status == "resolved"
    # resolved in Chatwoot (and no reopenResolved): the next WhatsApp message starts a new
    # conversation; a bridge that believed the late "open" would append it to the resolved one
    await fake.emit("shop", "message.exchange", text_message("H2", CHAT, "again"))
    await eventually(lambda: not fake.unacked("shop"))
    convs = conversations(emulator, view["inbox_id"])
    assert len(convs) == 2 and convs[0].display_id == display_id


# ------------------------------------------------------------------ U+0000, both databases


async def test_agent_text_with_nul_is_stored_and_relayed_as_written(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path, database_url: str
) -> None:
    async with run_bridge(tmp_path, database_url) as bridge:
        view, display_id = await _ready(emulator, fake, bridge)
        text = "a\u0000b **bold** and *it*"
        await emulator.emulator.agent_reply(ACCOUNT, display_id, text)
        await eventually(lambda: _sent(fake))
        assert _sent(fake) == ["a\u0000b *bold* and _it_"]  # the NUL is not taken for a bold marker
        await eventually(_states(bridge, view["id"], {"done": 1}))
        # a RyzeAPI refusal that quotes the text (NUL included) is kept on PostgreSQL as well
        fake.result_hook = _refuse
        await emulator.emulator.agent_reply(ACCOUNT, display_id, "second")
        await eventually(_states(bridge, view["id"], {"done": 1, "failed": 1}))
        failed = [m for m in emulator.emulator.state.messages.values() if m.content == "second"]
        assert [m.status for m in failed] == ["failed"]
        # WhatsApp's own reason reached the agent, and the job row kept it (NUL as U+FFFD) — not
        # "internal error" after PostgreSQL refused to store it
        assert failed[0].content_attributes.get("external_error") == "refused: a\u0000b"
        job = await bridge.services.repos.outbound.find_by_message(view["id"], failed[0].id)
        assert job is not None and job.last_error == "refused: a\ufffdb"


def _refuse(frame: CommandFrame) -> ResultFrame:
    return ResultFrame(id=frame.id, ok=False, retryable=False, error="refused: a\u0000b")


def _states(bridge: RunningBridge, integration_id: str, expected: dict[str, int]) -> Any:
    async def check() -> bool:
        return await bridge.services.repos.outbound.states(integration_id) == expected

    return check

"""The bridge as a real process, SIGKILLed mid-stream and restarted: every message exactly once, in order."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from ryze.common.outbound.policy import LOOPBACK_ALLOW
from ryze.emulator import RunningEmulator

from .conftest import ACCOUNT, ADMIN_TOKEN, eventually
from .fake_ryzeapi import TOKEN, FakeRyzeAPI, text_message
from .helpers import conversations

CHATS = [f"55119999901{i:02d}@s.whatsapp.net" for i in range(3)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def bridge_process(env: dict[str, str], url: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from ryze.bridge.server import serve; serve()",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                try:
                    async with http.get(url + "/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(up, timeout=30)
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_sigkill_mid_stream_and_restart(
    emulator: RunningEmulator, fake: FakeRyzeAPI, tmp_path: Path
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_PORT": str(port),
        "BRIDGE_TOKEN": TOKEN,
        "BRIDGE_PUBLIC_URL": url,
        "BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
        "BRIDGE_DATA_DIR": str(tmp_path),
        "BRIDGE_LOG_LEVEL": "WARNING",
        "BRIDGE_FETCH_ALLOW": LOOPBACK_ALLOW,  # the emulator (Chatwoot) listens on loopback
        "BRIDGE_CONTROL_ROOM": "false",  # the inbox holds only the chats of this test
        "BRIDGE_RETRY_BASE_SECONDS": "0.05",
        "BRIDGE_RETRY_MAX_SECONDS": "0.5",
        "BRIDGE_LINK_BACKOFF_BASE": "0.05",
        "BRIDGE_LINK_BACKOFF_MAX": "0.3",
        "BRIDGE_COMMAND_TIMEOUT": "2",
    }
    body: dict[str, Any] = {
        "instance": "shop",
        "ryzeapi_url": fake.url,
        "chatwoot_base_url": emulator.url,
        "chatwoot_account_id": ACCOUNT,
        "chatwoot_api_token": ADMIN_TOKEN,
        "inbox_name": "WhatsApp",
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    state = emulator.emulator.state
    async with bridge_process(env, url) as proc, aiohttp.ClientSession() as http:
        async with http.post(url + "/v1/integrations/activate", json=body, headers=headers) as resp:
            assert resp.status == 201
            view = await resp.json()
        await eventually(lambda: fake.connected("shop"))
        await fake.emit("shop", "message.exchange", text_message("k0", CHATS[0], "k0"))
        await eventually(lambda: not fake.unacked("shop"))
        [conv] = conversations(emulator, view["inbox_id"])
        fake.hold_results = True  # the agent's reply is sent, its result never arrives before the kill
        await emulator.emulator.agent_reply(ACCOUNT, conv.display_id, "agent says hi")
        await eventually(lambda: fake.commands_seen)
        emulator.emulator.faults.add(method="POST", path=r".*/messages$", latency=0.01, latency_max=0.05)
        for i in range(1, 31):
            await fake.emit("shop", "message.exchange", text_message(f"k{i}", CHATS[i % 3], f"k{i}"))
        await eventually(lambda: sum(1 for m in state.messages.values() if m.source_id) >= 8)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    for i in range(31, 41):  # WhatsApp keeps talking while the bridge is dead
        await fake.emit("shop", "message.exchange", text_message(f"k{i}", CHATS[i % 3], f"k{i}"))
    fake.hold_results = False
    async with bridge_process(env, url):
        await eventually(lambda: fake.connected("shop"))
        await eventually(lambda: not fake.unacked("shop"), timeout=60)
        await eventually(lambda: len(fake.phone) >= 1)
    for index, chat in enumerate(CHATS):
        expected = [f"k{i}" for i in range(41) if i % 3 == index]
        found = [
            m.content
            for m in sorted(state.messages.values(), key=lambda m: m.id)
            if m.inbox_id == view["inbox_id"]
            and m.message_type == 0
            and state.contact_inboxes[state.conversations[m.conversation_pk].contact_inbox_id].source_id
            == chat
        ]
        assert found == expected, chat
    assert [p["text"] for _, _, p in fake.phone] == ["agent says hi"]

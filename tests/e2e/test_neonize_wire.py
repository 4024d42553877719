"""The relay with RyzeAPI's simulated network on neonize's wire (``SIMULATOR_WIRE=neonize``): every
event the bridge gets was built as whatsmeow's protobuf and translated by the neonize engine's
translators. (The whole e2e suite also passes with ``SIMULATOR_WIRE=neonize`` in the environment.)"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ryze.devstack import LocalSystem, start_system

from .helpers import OUTGOING, wait_conversation, wait_messages, wait_outbox

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def wired(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalSystem]:
    workdir: Path = tmp_path_factory.mktemp("wired")
    running = await start_system(workdir, api_env={"SIMULATOR_WIRE": "neonize"})
    try:
        yield running
    finally:
        await running.aclose()


async def test_the_relay_runs_on_the_neonize_translation(wired: LocalSystem) -> None:
    created = await wired.create_instance("e2e-wire")
    inbox_id = created["chatwoot"]["chatwoot_inbox_id"]
    [first] = await wired.inject("e2e-wire", [{"from": "5511988889001", "pushName": "Ana", "text": "oi"}])
    [conv] = await wait_conversation(wired, inbox_id)
    await wait_messages(wired, conv["id"], 1)
    [reply] = await wired.inject("e2e-wire", [{"from": "5511988889001", "text": "isso", "replyTo": first}])
    quoted, threaded = await wait_messages(wired, conv["id"], 2)
    assert threaded["content"] == "isso" and threaded["source_id"] == f"WAID:{reply}"
    assert threaded["content_attributes"]["in_reply_to"] == quoted["id"]

    # Proof the events came through neonize's protobufs: a sticker cannot carry a caption there,
    # so the caption the simulated phone attached is gone (the domain wire would keep it).
    webp = base64.b64encode(b"RIFF\0\0\0\0WEBPVP8 ").decode()
    [sticker] = await wired.inject(
        "e2e-wire",
        [
            {
                "from": "5511988889001",
                "type": "sticker",
                "mediaBase64": webp,
                "mimetype": "image/webp",
                "text": "x",
            }
        ],
    )
    stored = await wired.api("GET", f"/api/chat/getMessage/e2e-wire?messageId={sticker}", expect=200)
    message = stored.get("data", stored)
    assert message["type"] == "sticker" and "text" not in message.get("content", {})

    await wired.agent_reply(conv["id"], "Olá Ana")
    [sent] = await wait_outbox(wired, "e2e-wire", 1)
    assert sent["text"] == "Olá Ana"
    assert [m["content"] for m in await wait_messages(wired, conv["id"], 1, message_type=OUTGOING)] == [
        "Olá Ana"
    ]

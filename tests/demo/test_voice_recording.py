"""The agent page records a voice message in headless Chromium (its fake microphone) and it
reaches the phone as a WhatsApp voice note: the recording is an OGG/Opus file, sent as Chatwoot's
dashboard sends one (an ``attachments[]`` upload named in ``is_recorded_audio``), and the bridge
sends OGG audio as a voice note (ptt)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from browser import FAKE_MICROPHONE, click_when_ready, headless_chromium, requires_chromium
from ryze.demo import Demo

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    requires_chromium,
]


def record_and_send(agent_url: str, conversation_id: int) -> None:
    """Blocking Selenium session (run in a thread): record, stop, send."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    with headless_chromium("voice", extra_args=FAKE_MICROPHONE) as (driver, wait):

        def ready(d: WebDriver) -> bool:
            return d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"

        driver.get(agent_url)
        wait.until(ready)
        click_when_ready(wait, f"conv-{conversation_id}")
        click_when_ready(wait, "record")
        # a few of the recorder's 250 ms chunks: about a second of the fake microphone's beep
        wait.until(lambda d: int(d.find_element(By.ID, "record").get_attribute("data-chunks") or 0) >= 4)
        click_when_ready(wait, "record")  # stop
        wait.until(lambda d: d.find_element(By.ID, "recorded").text.startswith("🎙 voice-"))
        assert driver.find_element(By.ID, "error").text == ""
        click_when_ready(wait, "send")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .msg.outgoing .media.audio"))
        assert driver.find_element(By.ID, "error").text == ""


def _probe(data: bytes, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "voice.ogg"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return dict(json.loads(out.stdout))


async def test_a_voice_message_recorded_on_the_agent_page_reaches_the_phone_as_a_voice_note(
    demo: Demo, tmp_path: Path
) -> None:
    assert demo.conversation_id is not None
    system = demo.system
    before = len(await system.outbox(demo.instance))
    await asyncio.to_thread(record_and_send, demo.agent_page_url, demo.conversation_id)

    # Chatwoot's side: one OGG audio attachment
    messages = await system.messages(demo.conversation_id)
    [sent] = [m for m in messages if m["message_type"] == 1 and m.get("attachments")][-1:]
    [attachment] = sent["attachments"]
    assert attachment["file_type"] == "audio"
    async with system.http.get(attachment["data_url"]) as resp:
        assert resp.status == 200
        recorded = await resp.read()
    assert recorded.startswith(b"OggS")

    # the phone's side: a voice note (ptt) with the same bytes
    async def voice_note() -> list[dict[str, Any]]:
        items = (await system.outbox(demo.instance))[before:]
        return [
            i for i in items if i.get("action") == "message" and (i.get("media") or {}).get("kind") == "ptt"
        ]

    [item] = await system.wait_for(voice_note, what="the recording on the phone as a voice note")
    url = f"{system.api_url}/_simulator/{demo.instance}/media/{item['media']['handle']}"
    async with system.http.get(url, headers={"token": system.account_token}) as resp:
        assert resp.status == 200
        on_phone = await resp.read()
    assert on_phone == recorded  # already OGG/Opus: sent as recorded, not re-encoded
    if shutil.which("ffprobe"):
        probe = _probe(on_phone, tmp_path)
        [stream] = probe["streams"]
        assert stream["codec_name"] == "opus"
        assert float(probe["format"]["duration"]) > 0.5

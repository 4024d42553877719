"""The connection conversation on the demo's agent page, in headless Chromium: the bot's posts are
shown, an agent types `status` and `help` there and reads the answers. The screenshots this test
takes are the ones `docs/control-room.md` shows: `make screenshots` runs it with
``RYZE_SCREENSHOT_DIR=docs/img``; otherwise they go to the test's temporary folder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from browser import click_when_ready, headless_chromium, requires_chromium
from ryze.demo import Demo

pytestmark = [pytest.mark.browser, pytest.mark.e2e, requires_chromium]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHOTS = ("control-room-connected.png", "control-room-commands.png")


def drive(agent_url: str, conversation_id: int, out: Path) -> dict[str, str]:
    """Open the connection conversation, screenshot it, type two commands, screenshot the answers;
    returns the thread's text after each step."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec

    seen: dict[str, str] = {}
    out.mkdir(parents=True, exist_ok=True)
    with headless_chromium("control-room") as (driver, wait):
        driver.set_window_size(1280, 900)

        def ready(d: WebDriver) -> bool:
            return d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"

        def command(text: str, answer: str) -> None:
            driver.find_element(By.ID, "content").send_keys(text)
            click_when_ready(wait, "send")
            wait.until(ec.text_to_be_present_in_element((By.ID, "thread"), answer))

        driver.get(agent_url)
        wait.until(ready)
        click_when_ready(wait, f"conv-{conversation_id}")
        wait.until(ec.text_to_be_present_in_element((By.ID, "thread"), "Connected to WhatsApp as +"))
        seen["opened"] = driver.find_element(By.ID, "thread").text
        driver.save_screenshot(str(out / SHOTS[0]))
        command("status", "WhatsApp")
        command("HELP", "`selfcheck`")
        seen["after"] = driver.find_element(By.ID, "thread").text
        driver.save_screenshot(str(out / SHOTS[1]))
        assert driver.find_element(By.ID, "error").text == ""
    return seen


async def test_connection_conversation_on_the_agent_page(demo: Demo, tmp_path: Path) -> None:
    async def room() -> dict[str, Any] | None:
        for conv in await demo.system.conversations():
            ident = str(conv["meta"]["sender"].get("identifier") or "")
            if conv["inbox_id"] == demo.inbox_id and ident == f"ryze-control:{demo.instance}":
                return conv
        return None

    conv = await demo.system.wait_for(room, what="the connection conversation")
    out = Path(os.environ.get("RYZE_SCREENSHOT_DIR") or tmp_path)
    seen = await asyncio.to_thread(drive, demo.agent_page_url, int(conv["id"]), out)

    assert f"Ryze · {demo.instance}" in seen["opened"] or "Connected to WhatsApp as +" in seen["opened"]
    # the commands were answered by the bridge in the same conversation, and never reached the phone
    assert "Commands (type them here" in seen["after"]
    await demo.phone.chat.sync()
    typed = [m["text"].strip().lower() for m in demo.phone.chat.messages if m["from"] == "business"]
    assert "status" not in typed and "help" not in typed
    for name in SHOTS:
        data = await asyncio.to_thread((out / name).read_bytes)
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000

"""Both pages of `ryze demo` in headless Chromium: the phone page shows the opening conversation, a
message typed on it reaches the emulator's agent page, and the agent's answer typed there reaches the
phone page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from browser import click_when_ready, headless_chromium, requires_chromium
from ryze.demo import Demo
from ryze.demo.script import OPENING

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    requires_chromium,
]

FROM_PHONE = "Typed on the phone page"
FROM_AGENT = "Typed on the agent page"


def drive(phone_url: str, agent_url: str, conversation_id: int) -> None:
    """Blocking Selenium session; runs in a thread so the demo's phone server (in this process's
    event loop) keeps serving."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec

    with headless_chromium("demo") as (driver, wait):

        def ready(d: WebDriver) -> bool:
            return d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"

        def click(element_id: str) -> None:
            click_when_ready(wait, element_id)

        # The phone page: the opening conversation, both ways.
        driver.get(phone_url)
        wait.until(ready)
        for step in OPENING:
            wait.until(ec.text_to_be_present_in_element((By.ID, "chat"), step.text))
        bubbles = driver.find_elements(By.CSS_SELECTOR, "#chat .bubble")
        assert [b.get_attribute("class").split()[1] for b in bubbles[:3]] == [
            "mine" if s.who == "contact" else "theirs" for s in OPENING
        ]
        driver.find_element(By.ID, "text").send_keys(FROM_PHONE)
        click("send")
        wait.until(ec.text_to_be_present_in_element((By.ID, "chat"), FROM_PHONE))
        assert driver.find_element(By.ID, "error").text == ""

        # The agent page: the message arrived in the conversation; answer it there.
        driver.get(agent_url)
        wait.until(ready)
        click(f"conv-{conversation_id}")
        wait.until(ec.text_to_be_present_in_element((By.ID, "thread"), FROM_PHONE))
        driver.find_element(By.ID, "content").send_keys(FROM_AGENT)
        click("send")
        wait.until(ec.text_to_be_present_in_element((By.ID, "thread"), FROM_AGENT))

        # Back on the phone: the agent's answer arrived over WhatsApp.
        driver.get(phone_url)
        wait.until(ready)
        wait.until(ec.text_to_be_present_in_element((By.ID, "chat"), FROM_AGENT))
        last = driver.find_elements(By.CSS_SELECTOR, "#chat .bubble")[-1]
        assert FROM_AGENT in last.text and "theirs" in (last.get_attribute("class") or "")


async def test_phone_and_agent_pages_in_headless_chromium(demo: Demo) -> None:
    assert demo.conversation_id is not None
    await asyncio.to_thread(drive, demo.phone_page_url, demo.agent_page_url, demo.conversation_id)

    async def on_phone() -> bool:
        return await demo.phone.chat.has_business_message(FROM_AGENT)

    assert await demo.system.wait_for(on_phone, what="the agent page's answer on the phone")

    # The phone page showed the answer: its read receipt moved the agent's message to "read".
    async def read_in_chatwoot() -> bool:
        msgs = await demo.system.messages(demo.conversation_id or 0)
        return any(m["content"] == FROM_AGENT and m["status"] == "read" for m in msgs)

    assert await demo.system.wait_for(read_in_chatwoot, what="the agent's message marked read")


AGENT_LINE = OPENING[1].text
REPLY = "Replying from the phone page"
TAKEN_BACK = "I take this one back"


def drive_rich(phone_url: str, files: dict[str, Path]) -> dict[str, str]:
    """The phone page sends a photo, a voice note, a document and a location, replies to the
    agent's message, reacts to it and deletes one of its own messages; returns the WhatsApp id of
    each (read from the page's bubbles)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec

    ids: dict[str, str] = {}
    with headless_chromium("demo-rich") as (driver, wait):
        driver.get(phone_url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        wait.until(ec.text_to_be_present_in_element((By.ID, "chat"), AGENT_LINE))

        def bubble_with(text: str) -> Any:
            def find(d: WebDriver) -> Any:
                for el in d.find_elements(By.CSS_SELECTOR, "#chat .bubble"):
                    try:
                        if text in el.text:
                            return el
                    except StaleElementReferenceException:
                        return None
                return None

            return wait.until(find)

        def click_in(text: str, selector: str) -> None:
            def attempt(d: WebDriver) -> bool:
                try:
                    bubble_with(text).find_element(By.CSS_SELECTOR, selector).click()
                    return True
                except StaleElementReferenceException:
                    return False

            wait.until(attempt)

        def last_mine(selector: str) -> str:
            def find(d: WebDriver) -> str | None:
                try:
                    mine = d.find_elements(By.CSS_SELECTOR, "#chat .bubble.mine")
                    if mine and mine[-1].find_elements(By.CSS_SELECTOR, selector):
                        return mine[-1].get_attribute("data-id")
                except StaleElementReferenceException:
                    return None
                return None

            return str(wait.until(find))

        ids["agent"] = str(bubble_with(AGENT_LINE).get_attribute("data-id"))
        # Reply to the agent's message: the bubble quotes it.
        click_in(AGENT_LINE, "button.reply")
        wait.until(ec.text_to_be_present_in_element((By.ID, "replying"), AGENT_LINE))
        driver.find_element(By.ID, "text").send_keys(REPLY)
        click_when_ready(wait, "send")
        ids["reply"] = last_mine(".quote")
        assert AGENT_LINE in bubble_with(REPLY).find_element(By.CSS_SELECTOR, ".quote").text
        # React to it.
        click_in(AGENT_LINE, "button.react")
        wait.until(lambda d: "👍" in bubble_with(AGENT_LINE).find_element(By.CSS_SELECTOR, ".reactions").text)
        # A photo, a voice note, a document.
        driver.find_element(By.ID, "file").send_keys(str(files["photo"]))
        ids["photo"] = last_mine("img.media.image")
        driver.find_element(By.ID, "file").send_keys(str(files["voice"]))
        ids["voice"] = last_mine("audio.media.ptt")
        driver.find_element(By.ID, "file").send_keys(str(files["document"]))
        ids["document"] = last_mine("a.file")
        assert files["document"].name in driver.find_elements(By.CSS_SELECTOR, "#chat .bubble.mine")[-1].text
        # A location.
        click_when_ready(wait, "location")
        ids["location"] = last_mine("a.location")
        # Send a message, then delete it for everyone.
        driver.find_element(By.ID, "text").send_keys(TAKEN_BACK)
        click_when_ready(wait, "send")
        ids["deleted"] = str(bubble_with(TAKEN_BACK).get_attribute("data-id"))
        click_in(TAKEN_BACK, "button.delete")
        wait.until(
            ec.text_to_be_present_in_element(
                (By.CSS_SELECTOR, f"#m-{ids['deleted']}"), "This message was deleted"
            )
        )
        assert driver.find_element(By.ID, "error").text == ""
    return ids


async def test_phone_page_sends_media_location_reply_reaction_and_delete(demo: Demo, tmp_path: Path) -> None:
    """Everything the phone page sends reaches Chatwoot as a message of the conversation (media as
    whatever the bridge makes of it), and the reply points at the agent's message."""
    files = {
        "photo": tmp_path / "mug.png",
        "voice": tmp_path / "note.ogg",
        "document": tmp_path / "invoice.pdf",
    }
    files["photo"].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(256))
    files["voice"].write_bytes(b"OggS" + bytes(256))
    files["document"].write_bytes(b"%PDF-1.4 " + bytes(256))
    ids = await asyncio.to_thread(drive_rich, demo.phone_page_url, files)
    conv = demo.conversation_id or 0

    async def mirrored() -> dict[str, dict[str, Any]] | None:
        by_source = {m.get("source_id"): m for m in await demo.system.messages(conv)}
        wanted = ("reply", "photo", "voice", "document", "location")
        found = {k: by_source.get(f"WAID:{ids[k]}") for k in wanted}
        return None if any(v is None for v in found.values()) else found  # type: ignore[return-value]

    found = await demo.system.wait_for(mirrored, what="the phone page's messages in Chatwoot")
    agent = next(m for m in await demo.system.messages(conv) if m["content"] == AGENT_LINE)
    assert found["reply"]["content"] == REPLY
    assert found["reply"]["content_attributes"]["in_reply_to"] == agent["id"]

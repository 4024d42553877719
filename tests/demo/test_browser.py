"""Both pages of `ryze demo` in headless Chromium: the phone page shows the opening conversation, a
message typed on it reaches the emulator's agent page, and the agent's answer typed there reaches the
phone page."""

from __future__ import annotations

import asyncio

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

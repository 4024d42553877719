"""Drives the agent page in headless Chromium: reply with attachment, private note,
delete, resolve/reopen — and checks the webhooks the bridge would receive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from browser import click_when_ready, headless_chromium, requires_chromium
from ryze.emulator import run_emulator

from .conftest import A1, ADMIN, Api, Receiver

pytestmark = [
    pytest.mark.browser,
    requires_chromium,
]


def drive(app_url: str, upload: Path) -> None:
    """Blocking Selenium session; runs in a thread so the emulator's loop keeps serving."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec

    with headless_chromium("emu") as (driver, wait):
        driver.get(app_url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")

        def click(element_id: str) -> None:
            click_when_ready(wait, element_id)

        click("conv-1")
        wait.until(ec.text_to_be_present_in_element((By.ID, "thread"), "hello from whatsapp"))

        driver.find_element(By.ID, "content").send_keys("reply from the browser")
        driver.find_element(By.ID, "files").send_keys(str(upload))
        click("send")
        wait.until(ec.text_to_be_present_in_element((By.ID, "thread"), "reply from the browser"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .msg.outgoing a.attachment"))

        driver.find_element(By.ID, "content").send_keys("secret note")
        click("private")
        click("send")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#thread .msg.private"))

        # Delete the browser reply. The page redraws on changes, so retry on stale elements.
        def click_delete(d: WebDriver) -> str | None:
            try:
                for el in d.find_elements(By.CSS_SELECTOR, "#thread .msg.outgoing"):
                    if "reply from the browser" in el.text:
                        msg_id = el.get_attribute("data-id")
                        el.find_element(By.CSS_SELECTOR, "button.delete").click()
                        return msg_id
            except StaleElementReferenceException:
                return None
            return None

        reply_id = wait.until(click_delete)
        wait.until(ec.text_to_be_present_in_element((By.ID, f"msg-{reply_id}"), "This message was deleted"))

        click("toggle-status")
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "resolved"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "toggle-status"), "Reopen"))
        click("toggle-status")
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "open"))
        assert driver.find_element(By.ID, "error").text == ""


async def test_agent_page_in_headless_chromium(receiver: Receiver, tmp_path: Path) -> None:
    upload = tmp_path / "photo.png"
    upload.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    async with run_emulator() as running:
        emu = running.emulator
        async with httpx.AsyncClient(base_url=running.url) as http:
            api = Api(http)
            _, _, conv = await api.chat(webhook_url=receiver.url)
            assert conv == 1
            await api.message(conv, content="hello from whatsapp", message_type="incoming")
            await asyncio.to_thread(drive, f"{running.url}/app", upload)
        await emu.incoming_dispatch_idle()

    created = [r.json for r in receiver.events("message_created") if r.json["message_type"] == "outgoing"]
    assert [(m["content"], m["private"]) for m in created] == [
        ("reply from the browser", False),
        ("secret note", True),
    ]
    (att,) = created[0]["attachments"]
    assert (att["file_type"], att["content_type"], att["file_size"]) == ("image", "image/png", 12)
    deleted = [
        r.json for r in receiver.events("message_updated") if r.json["content_attributes"].get("deleted")
    ]
    assert len(deleted) == 1 and deleted[0]["id"] == created[0]["id"]
    statuses = [r.json["status"] for r in receiver.events("conversation_status_changed")]
    assert statuses == ["resolved", "open"]


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def drive_rich_thread(app_url: str, ids: dict[str, int]) -> None:
    """The thread shows an image inline, audio and video with players, a document as a link named
    after its file, a reply with the quoted message above it, and a reaction on its target."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    with headless_chromium("emu-rich") as (driver, wait):
        driver.get(app_url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        click_when_ready(wait, "conv-1")
        wait.until(ec.text_to_be_present_in_element((By.ID, "thread"), "the contract"))

        def css(selector: str) -> str:
            return str(driver.find_element(By.CSS_SELECTOR, selector).get_attribute("src") or "")

        assert css(f"#msg-{ids['photo']} .media.image img").endswith("/photo.png")
        assert css(f"#msg-{ids['voice']} .media.audio audio").endswith("/voice.ogg?disposition=inline")
        assert css(f"#msg-{ids['video']} .media.video video").endswith("/clip.mp4")
        link = driver.find_element(By.CSS_SELECTOR, f"#msg-{ids['doc']} .media.file a.attachment")
        assert "contract.pdf" in link.text and str(link.get_attribute("href")).endswith("/contract.pdf")
        quote = driver.find_element(By.CSS_SELECTOR, f"#msg-{ids['reply']} .quote")
        assert quote.text == "the contract · 📎 contract.pdf"
        assert quote.get_attribute("data-reply-to") == str(ids["doc"])
        chips = driver.find_element(By.CSS_SELECTOR, f"#msg-{ids['photo']} .reactions")
        assert chips.text == "❤️"
        reaction = driver.find_element(By.ID, f"msg-{ids['reaction']}")
        assert "reaction" in (reaction.get_attribute("class") or "") and "reacted ❤️" in reaction.text
        # An emoji that replies to nothing is an ordinary message.
        plain = driver.find_element(By.ID, f"msg-{ids['plain']}")
        assert "reaction" not in (plain.get_attribute("class") or "") and "👍" in plain.text
        assert driver.find_element(By.ID, "error").text == ""


async def test_agent_page_shows_attachments_replies_and_reactions(receiver: Receiver) -> None:
    async with run_emulator() as running:
        async with httpx.AsyncClient(base_url=running.url) as http:
            api = Api(http)
            _, _, conv = await api.chat(webhook_url=receiver.url)
            url = f"{A1}/conversations/{conv}/messages"
            ids: dict[str, int] = {}
            # Multipart, as the bridge posts WhatsApp media into Chatwoot.
            for key, name, data, ctype, content in (
                ("photo", "photo.png", PNG, "image/png", "a photo"),
                ("voice", "voice.ogg", b"OggS" + bytes(32), "audio/ogg", ""),
                ("video", "clip.mp4", bytes(48), "video/mp4", ""),
                ("doc", "contract.pdf", b"%PDF-1.4", "application/pdf", "the contract"),
            ):
                resp = await http.post(
                    url,
                    data={"content": content, "message_type": "incoming"},
                    files={"attachments[]": (name, data, ctype)},
                    headers=ADMIN,
                )
                assert resp.status_code == 200, resp.text
                ids[key] = resp.json()["id"]
            for key, content, target in (
                ("reply", "see page 2", ids["doc"]),
                ("reaction", "❤️", ids["photo"]),
            ):
                msg = await api.message(
                    conv, content=content, message_type="incoming", content_attributes={"in_reply_to": target}
                )
                ids[key] = msg["id"]
            ids["plain"] = (await api.message(conv, content="👍", message_type="incoming"))["id"]
            await asyncio.to_thread(drive_rich_thread, f"{running.url}/app", ids)

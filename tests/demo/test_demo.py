"""`ryze demo`'s start-up function: the processes, the instance, the scripted opening conversation
(visible in the emulator and in the phone page's data endpoint) and the phone server's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ryze.demo import Demo, DemoError
from ryze.demo.runner import MARKER, prepare_workdir
from ryze.demo.script import OPENING

from .conftest import DemoRun

INCOMING, OUTGOING = 0, 1


def test_prepare_workdir_starts_fresh_but_never_wipes_foreign_folders(tmp_path: Path) -> None:
    ours = tmp_path / "demo"
    prepare_workdir(ours)
    (ours / "old.db").write_text("previous run")
    prepare_workdir(ours)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]

    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("do not delete")
    with pytest.raises(DemoError, match="not created by `ryze demo`"):
        prepare_workdir(foreign)
    assert (foreign / "thesis.txt").read_text() == "do not delete"


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        body = await resp.json(content_type=None) if "json" in resp.content_type else await resp.text()
        return resp.status, body


async def _post(url: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.mark.e2e
async def test_start_up_prints_the_urls_and_the_script(demo_run: DemoRun) -> None:
    demo, out = demo_run.demo, demo_run.output.getvalue()
    for url in (demo.agent_page_url, demo.phone_page_url, demo.api_docs_url):
        assert url in out
    for step in OPENING:
        assert step.text in out
    assert "relayed both ways" in out
    assert (demo.system.workdir / MARKER).exists()


@pytest.mark.e2e
async def test_pages_are_served(demo: Demo) -> None:
    for url in (demo.agent_page_url, demo.phone_page_url, demo.api_docs_url):
        status, body = await _get(url)
        assert status == 200, url
        assert "<html" in body.lower()


@pytest.mark.e2e
async def test_opening_conversation_is_in_the_emulator(demo: Demo) -> None:
    assert demo.conversation_id is not None
    [conv] = [
        c
        for c in await demo.system.conversations()
        if c["inbox_id"] == demo.inbox_id and not _is_connection_conversation(c)
    ]
    assert conv["id"] == demo.conversation_id
    assert conv["meta"]["sender"]["phone_number"] == "+" + demo.phone.chat.contact.number
    thread = [
        (m["message_type"], m["content"])
        for m in await demo.system.messages(conv["id"])
        if m["message_type"] in (INCOMING, OUTGOING)
    ]
    assert thread[:3] == [(INCOMING if step.who == "contact" else OUTGOING, step.text) for step in OPENING]


def _is_connection_conversation(conv: dict[str, Any]) -> bool:
    return str(conv["meta"]["sender"].get("identifier") or "").startswith("ryze-control:")


@pytest.mark.e2e
async def test_the_agent_page_has_the_connection_conversation(demo: Demo) -> None:
    """The demo inbox's connection conversation: the bot contact, and WhatsApp's state in words."""

    async def room() -> dict[str, Any] | None:
        for conv in await demo.system.conversations():
            if conv["inbox_id"] == demo.inbox_id and _is_connection_conversation(conv):
                return conv
        return None

    conv = await demo.system.wait_for(room, what="the connection conversation")
    assert conv["meta"]["sender"]["name"] == f"Ryze · {demo.instance}"

    async def connected() -> bool:
        texts = [m["content"] or "" for m in await demo.system.messages(conv["id"])]
        return any(t.startswith("✅ Connected to WhatsApp as +") for t in texts) or any(
            "WhatsApp is connected as +" in t for t in texts
        )

    assert await demo.system.wait_for(connected, what="the connected post")


@pytest.mark.e2e
async def test_opening_conversation_is_on_the_phone(demo: Demo) -> None:
    status, body = await _get(demo.phone_page_url + "/api/chat")
    assert status == 200
    assert body["instance"] == demo.instance
    assert "token" not in str(body).lower()  # the account token stays on the server
    said = [(m["from"], m["text"]) for m in body["messages"]][:3]
    assert said == [("contact" if s.who == "contact" else "business", s.text) for s in OPENING]


@pytest.mark.e2e
async def test_phone_api_sends_as_the_contact(demo: Demo) -> None:
    status, sent = await _post(demo.phone_page_url + "/api/messages", {"text": "  sent over HTTP  "})
    assert status == 200 and sent["from"] == "contact" and sent["text"] == "sent over HTTP"

    async def landed() -> bool:
        msgs = await demo.system.messages(demo.conversation_id or 0)
        return any(m["content"] == "sent over HTTP" and m["message_type"] == INCOMING for m in msgs)

    await demo.system.wait_for(landed, what="the phone's message in Chatwoot")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("body", "error"),
    [({"text": "   "}, "type a message first"), ({}, "field 'text' is required"), ([1], "field 'text'")],
)
async def test_phone_api_rejects_bad_input(demo: Demo, body: Any, error: str) -> None:
    status, answer = await _post(demo.phone_page_url + "/api/messages", body)
    assert status == 400
    assert error in answer["error"]

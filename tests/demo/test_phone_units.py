"""The phone server against a stand-in for RyzeAPI's simulator routes (no processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ryze.demo.phone import DemoContact, PhoneChat, PhoneServer

CONTACT = DemoContact()


@dataclass
class FakeSimulator:
    outbox: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    broken: bool = False

    def app(self) -> web.Application:
        async def messages(request: web.Request) -> web.Response:
            self.tokens.append(request.headers.get("token", ""))
            if self.broken:
                return web.Response(status=500, text="<html>oops</html>", content_type="text/html")
            body = await request.json()
            self.delivered.append(body)
            return web.json_response({"success": True, "ids": [f"IN{len(self.delivered)}"]})

        async def outbox(request: web.Request) -> web.Response:
            after = int(request.query.get("after", "0"))
            return web.json_response({"success": True, "items": [i for i in self.outbox if i["seq"] > after]})

        app = web.Application()
        app.router.add_post("/_simulator/demo/messages", messages)
        app.router.add_get("/_simulator/demo/outbox", outbox)
        return app

    def sent(self, action: str, **fields: Any) -> None:
        self.outbox.append({"seq": len(self.outbox) + 1, "action": action, **fields})


@pytest.fixture
async def sim() -> AsyncIterator[tuple[FakeSimulator, str]]:
    fake = FakeSimulator()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def phone(sim: tuple[FakeSimulator, str]) -> AsyncIterator[tuple[FakeSimulator, PhoneServer]]:
    fake, url = sim
    async with aiohttp.ClientSession() as http:
        server = PhoneServer(PhoneChat(http, url, "acc_secret", "demo", CONTACT))
        await server.start()
        try:
            yield fake, server
        finally:
            await server.aclose()


async def _call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_chat_in_the_order_the_phone_saw_it(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    fake, server = phone
    fake.sent("message", id="OUT1", to=CONTACT.jid, kind="text", text="earlier, from the business")
    fake.sent("message", id="OTHER", to="999@s.whatsapp.net", kind="text", text="another chat")
    status, sent = await _call("POST", server.url + "/api/messages", {"text": "hello"})
    assert status == 200 and sent["id"] == "IN1"
    assert fake.delivered == [{"from": CONTACT.number, "pushName": CONTACT.name, "text": "hello"}]
    assert fake.tokens == ["acc_secret"]  # the token is used server side ...
    fake.sent("presence", chat=CONTACT.jid, state="composing")
    status, state = await _call("GET", server.url + "/api/chat")
    assert "acc_secret" not in str(state)  # ... and never handed to the page
    assert state["typing"] is True
    fake.sent("read", chat=CONTACT.jid, messageIds=["IN1"])
    fake.sent("message", id="OUT2", to=CONTACT.jid, kind="image", text="", media={"kind": "image"})
    status, state = await _call("GET", server.url + "/api/chat")
    assert [(m["from"], m["text"]) for m in state["messages"]] == [
        ("business", "earlier, from the business"),
        ("contact", "hello"),
        ("business", "[image]"),
    ]
    assert state["messages"][1]["status"] == "read"
    assert state["typing"] is False


async def test_ryzeapi_errors_are_shown_not_raised(phone: tuple[FakeSimulator, PhoneServer]) -> None:
    fake, server = phone
    fake.broken = True
    status, body = await _call("POST", server.url + "/api/messages", {"text": "hello"})
    assert status == 502 and body["error"] == "RyzeAPI answered HTTP 500"
    status, body = await _call("POST", server.url + "/api/messages", {"text": "x" * 5000})
    assert status == 400 and "at most" in body["error"]


async def test_unreachable_ryzeapi_is_a_502() -> None:
    async with aiohttp.ClientSession() as http:
        server = PhoneServer(PhoneChat(http, "http://127.0.0.1:9", "t", "demo", CONTACT))
        await server.start()
        try:
            status, body = await _call("GET", server.url + "/api/chat")
        finally:
            await server.aclose()
    assert status == 502 and body["error"].startswith("RyzeAPI unreachable")

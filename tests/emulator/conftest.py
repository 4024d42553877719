"""Fixtures for the Chatwoot emulator tests: a fresh emulator per test, an httpx client
over ASGI, helpers to create Chatwoot records, and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from ryze.emulator import ChatwootEmulator, EmulatorSeed, SeedAccount, SeedUser

ADMIN = {"api_access_token": "cw-admin-token"}
AGENT = {"api_access_token": "cw-agent-token"}
A1 = "/api/v1/accounts/1"


def two_account_seed() -> EmulatorSeed:
    default = EmulatorSeed.default()
    other = SeedAccount(
        id=2,
        name="Globex",
        users=(SeedUser("boss@globex.test", "globex-admin-token", "administrator", "Globex Boss"),),
    )
    return EmulatorSeed(accounts=(*default.accounts, other))


@pytest.fixture
def emu() -> ChatwootEmulator:
    return ChatwootEmulator(seed=two_account_seed(), public_url="http://emu.test")


@pytest.fixture
async def client(emu: ChatwootEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(emu.app), base_url="http://emu.test") as c:
        yield c
    await emu.aclose()


class Api:
    """Small helpers that go through the REST API like a bridge would."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.c = client

    async def inbox(self, name: str = "WhatsApp", webhook_url: str = "", **extra: Any) -> dict[str, Any]:
        body = {"name": name, "channel": {"type": "api", "webhook_url": webhook_url}, **extra}
        r = await self.c.post(f"{A1}/inboxes", json=body, headers=ADMIN)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def contact(
        self, inbox_id: int | None, phone: str, source_id: str | None = None, **extra: Any
    ) -> int:
        body: dict[str, Any] = {"name": f"Contact {phone}", "phone_number": phone, **extra}
        if inbox_id is not None:
            body["inbox_id"] = inbox_id
        if source_id is not None:
            body["source_id"] = source_id
        r = await self.c.post(f"{A1}/contacts", json=body, headers=ADMIN)
        assert r.status_code == 200, r.text
        return int(r.json()["payload"]["contact"]["id"])

    async def conversation(
        self, inbox_id: int, contact_id: int, source_id: str, **extra: Any
    ) -> dict[str, Any]:
        body = {"inbox_id": inbox_id, "contact_id": contact_id, "source_id": source_id, **extra}
        r = await self.c.post(f"{A1}/conversations", json=body, headers=ADMIN)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def chat(self, webhook_url: str = "", phone: str = "+5511999999999") -> tuple[int, int, int]:
        """(inbox_id, contact_id, conversation display id) of a fresh WhatsApp-like chat."""
        inbox = await self.inbox(webhook_url=webhook_url)
        source = phone.lstrip("+")
        contact_id = await self.contact(inbox["id"], phone, source)
        conv = await self.conversation(inbox["id"], contact_id, source)
        return int(inbox["id"]), contact_id, int(conv["id"])

    async def message(self, conv: int, **body: Any) -> dict[str, Any]:
        r = await self.c.post(f"{A1}/conversations/{conv}/messages", json=body, headers=ADMIN)
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.raw)
        return data

    @property
    def event(self) -> str:
        return str(self.json["event"])


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1; `status` and `block` decide how it answers."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    status: int = 200
    block: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def events(self, *names: str) -> list[Received]:
        return [r for r in self.received if not names or r.event in names]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        rec.received.append(Received({k.lower(): v for k, v in request.headers.items()}, raw))
        rec.arrived.set()
        if rec.block is not None:
            await rec.block.wait()
        return web.Response(status=rec.status, text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        if rec.block is not None:
            rec.block.set()
        with contextlib.suppress(Exception):
            await runner.cleanup()

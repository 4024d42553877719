"""Property-based run over RyzeAPI's own OpenAPI: no request gets a 5xx, every error is the envelope.

Every documented operation gets ``RYZE_FUZZ_EXAMPLES`` generated requests per database (default
60, derandomized so `make test` is repeatable; raise it and set ``RYZE_FUZZ_RANDOM=1`` for a longer
hunt). The app
runs in-process on the simulated engine, on SQLite and on PostgreSQL, with the Chatwoot module on
(a fake bridge on 127.0.0.1) and a connected instance, a disconnected one and stored messages to
reach into. What a request may make RyzeAPI fetch is on 127.0.0.1 only (``openapi_fuzz``).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from openapi_fuzz import Fuzz, Operation, Request, run_settings
from ryze.api.app import create_app
from ryze.launcher import free_port

from .bridge_link.fake_bridge import BRIDGE_TOKEN, FakeBridge
from .harness import Api, make_settings, start_api

RUN = run_settings(60)  # per database: 120 per operation
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# 5xx answers the API documents (the engine's state, not a fault of RyzeAPI): anything else is a bug.
DOCUMENTED_5XX = {(503, "Instance is not connected to WhatsApp")}
# The Chatwoot `set` body is validated by the module, not by a pydantic model: its documented keys.
SET_KEYS = [
    "chatwootBaseUrl", "chatwootAccountId", "chatwootApiToken", "chatwootInboxName",
    "chatwootSignMessages", "chatwootIgnoreGroups", "chatwootStartAsPending", "chatwootReopenResolved",
    "inboxName", "signMessages", "ignoreGroups", "startAsPending", "reopenResolved", "enabled",
]  # fmt: skip
SIMULATOR_MESSAGE_KEYS = [
    "from", "pushName", "text", "type", "group", "fromMe", "to", "mediaBase64", "mimetype", "fileName",
    "replyTo", "targetId", "emoji", "id", "messages",
]  # fmt: skip


def _operations() -> list[Operation]:
    with tempfile.TemporaryDirectory() as tmp:
        settings_ = make_settings(Path(tmp), bridge_url="http://127.0.0.1:9", bridge_token=BRIDGE_TOKEN)
        spec = create_app(settings_).openapi()
    return Fuzz(spec, {}).operations()


OPERATIONS = _operations()


@dataclass
class World:
    api: Api
    fuzz: Fuzz
    account: str = ""
    instance_tokens: dict[str, str] = field(default_factory=dict)

    async def ensure(self) -> None:
        """Put back what earlier examples deleted, logged out or disconnected."""
        for name, number in (("orion", "5511900000001"), ("vega", None)):
            record = await self.api.services.instances.get(name)
            state = self.api.services.sessions.state_of(record) if record is not None else None
            if record is not None and (number is None or state == "connected"):
                continue
            if record is not None:
                await self.api.client.delete(f"/api/instance/delete/{name}", headers={"token": self.account})
            if number is None:
                token = await self.api.instance(self.account, name)
            else:
                token = await self.api.connected_instance(self.account, name, number)
            self.instance_tokens[name] = token
        self.fuzz.tokens["token"] = ["", "wrong-token", self.account, *self.instance_tokens.values()]
        self.fuzz.tokens["authorization"] = [
            "",
            f"Bearer {BRIDGE_TOKEN}",
            f"Bearer {self.account}",
            f"Bearer {self.instance_tokens['orion']}",
            "Basic abc",
        ]
        orion = self.instance_tokens["orion"]
        self.fuzz.good_tokens = [
            ("token", self.account), ("token", orion), ("authorization", f"Bearer {orion}"),
            ("authorization", f"Bearer {BRIDGE_TOKEN}"),  # /internal/media
        ]  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("fuzz")
    media = web.Application()
    media.router.add_get("/img.png", lambda _r: web.Response(body=PNG, content_type="image/png"))
    runner = web.AppRunner(media)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    media_base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    bridge = FakeBridge()
    await bridge.start()
    closed = f"http://127.0.0.1:{free_port()}"
    urls = [
        f"{media_base}/img.png", f"{media_base}/missing", closed, "HTTP://127.0.0.1:9/x", "ftp://127.0.0.1/x",
        "http://127.0.0.1", "", "not a url", "http://localhost:9/", "https://127.0.0.1:9/",
    ]  # fmt: skip
    try:
        if request.param == "postgres":
            async with _fresh_postgres_database() as url:
                async for world in _world(tmp, url, bridge, urls):
                    yield world
        else:
            async for world in _world(tmp, f"sqlite:///{tmp / 'fuzz.db'}", bridge, urls):
                yield world
    finally:
        await bridge.stop()
        await runner.cleanup()


async def _world(tmp: Path, database_url: str, bridge: FakeBridge, urls: list[str]) -> AsyncIterator[World]:
    settings_ = make_settings(
        tmp,
        database_url=database_url,
        bridge_url=bridge.url,
        bridge_token=BRIDGE_TOKEN,
        rate_limit_per_minute=0,
    )
    async for api in start_api(settings_):
        spec = api.app.openapi()
        fuzz = Fuzz(
            spec,
            tokens={},
            urls=urls,
            extra_body_keys={
                "POST /api/chatwoot/set/{instance}": SET_KEYS,
                "POST /_simulator/{instance}/messages": SIMULATOR_MESSAGE_KEYS,
            },
            required_keys={
                "POST /api/chatwoot/set/{instance}": [
                    "chatwootBaseUrl",
                    "chatwootAccountId",
                    "chatwootApiToken",
                ]
            },
            body_hints={
                "number": [
                    "5511988887777",
                    "+55 (11) 98888-7777",
                    "120363@g.us",
                    "99@lid",
                    "status@broadcast",
                ],
                "from": ["5511988887777", "123@lid"],
                "mediaType": ["image", "document", "audio", "video"],
                "mediaBase64": [
                    base64.b64encode(PNG).decode(),
                    "data:image/png;base64," + base64.b64encode(PNG).decode(),
                ],
                "chatwootAccountId": [1, 5],
                "chatwootApiToken": ["cw-token-0123456789"],
                "name": ["fuzz1", "fuzz-2", "orion"],
                "chat": ["5511988887777@s.whatsapp.net"],
                "messageIds": [["nope"]],
            },
        )
        world = World(api, fuzz)
        world.account = await api.account("fuzz")
        await world.ensure()
        sent = await api.client.post(
            "/api/message/text/orion",
            json={"number": "5511988887777", "message": "seed"},
            headers={"token": world.instance_tokens["orion"]},
        )
        image = await api.client.post(
            "/api/message/media/orion",
            json={
                "number": "5511988887777",
                "mediaType": "image",
                "mediaBase64": base64.b64encode(PNG).decode(),
            },
            headers={"token": world.instance_tokens["orion"]},
        )
        ids = [sent.json()["data"]["messageId"], image.json()["data"]["messageId"]]
        fuzz.path_values = {
            "instance": ["orion", "vega", "ghost", "Orion", "a" * 65],
            "message_id": [*ids, "nope"],
            "handle": ["nope"],
        }
        yield world


@asynccontextmanager
async def _fresh_postgres_database() -> AsyncIterator[str]:
    """A database of its own on the local server for the module's run, dropped afterwards (the
    ``database_url`` fixture is per test; this world lives for the whole module)."""
    admin_url = os.environ.get("RYZE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"ryze_fuzz_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def check(req: Request, status: int, content_type: str, body: bytes) -> None:
    where = req.describe()
    if status >= 400:
        assert content_type.startswith("application/json"), f"{status} {content_type!r}: {where}"
        parsed = json.loads(body)
        assert set(parsed) == {"success", "error"} and parsed["success"] is False, f"{parsed}: {where}"
        assert set(parsed["error"]) == {"message"} and isinstance(parsed["error"]["message"], str), where
        assert parsed["error"]["message"], where
        if status >= 500:
            assert (status, parsed["error"]["message"]) in DOCUMENTED_5XX, f"{status} {parsed}: {where}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.id for op in OPERATIONS])
@RUN
@given(data=st.data())
async def test_no_documented_operation_answers_5xx_or_an_undocumented_body(
    world: World, operation: Operation, data: st.DataObject
) -> None:
    await world.ensure()
    req = data.draw(world.fuzz.requests(operation))
    resp = await world.api.client.request(req.method, req.url, headers=req.headers, content=req.body)
    check(req, resp.status_code, resp.headers.get("content-type", ""), resp.content)
    if os.environ.get("RYZE_FUZZ_STATS"):
        STATS.setdefault(operation.id, {}).setdefault(resp.status_code, 0)
        STATS[operation.id][resp.status_code] += 1
        if resp.status_code == 400 and len(MESSAGES) < 400:
            MESSAGES.append(f"{operation.id}: {resp.json()['error']['message'][:90]}")


STATS: dict[str, dict[int, int]] = {}
MESSAGES: list[str] = []


def teardown_module() -> None:
    if STATS:
        print(json.dumps(STATS, indent=0))  # noqa: T201
        print("\n".join(sorted(set(MESSAGES))))  # noqa: T201

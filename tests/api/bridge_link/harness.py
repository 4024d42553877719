"""RyzeAPI (simulated engine) served by a real uvicorn on 127.0.0.1, random port, in this loop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ryze.api.app import create_app
from ryze.api.bridge_link.module import ChatwootModule
from ryze.api.services.container import ApiServices
from ryze.api.settings import ApiSettings
from ryze.common.crypto import generate_key
from ryze.engines.simulated import SimulatedEngine, SimulatedSession


@dataclass
class Ryze:
    settings: ApiSettings
    server: uvicorn.Server
    task: asyncio.Task[None]
    base_url: str
    engine: SimulatedEngine
    account_token: str = ""

    @property
    def app(self) -> Any:
        return self.server.config.app

    @property
    def services(self) -> ApiServices:
        services: ApiServices = self.app.state.services
        return services

    @property
    def module(self) -> ChatwootModule:
        module: ChatwootModule = self.app.state.chatwoot
        return module

    @property
    def ws_base(self) -> str:
        return "ws://" + self.base_url.removeprefix("http://")

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"token": token if token is not None else self.account_token}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)

    async def new_instance(self, name: str, **extra: Any) -> dict[str, Any]:
        async with self.client() as c:
            r = await c.post("/api/instance/new", json={"name": name, **extra})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def connect_phone(self, name: str) -> SimulatedSession:
        session = self.engine.session(name)
        if session is None:
            record = await self.services.instances.get(name)
            assert record is not None
            await self.services.sessions.get(record)
            session = self.engine.session(name)
        assert session is not None
        await session.connect()
        await session.scan()
        return session

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_ryze(
    database_url: str,
    data_dir: Path,
    *,
    bridge_url: str = "",
    bridge_token: str = "",
    encryption_key: str | None = None,
) -> Ryze:
    settings = ApiSettings(
        database_url=database_url,
        data_dir=data_dir,
        encryption_key=encryption_key or generate_key(),
        whatsapp_engine="simulated",
        simulator_auto_connect_seconds=-1,
        rate_limit_per_minute=0,
        bridge_url=bridge_url,
        bridge_token=bridge_token,
        bridge_internal_ryzeapi_url="http://ryzeapi.internal:8080",
    )
    engine = SimulatedEngine(auto_connect_seconds=None)
    app = create_app(settings, engine=engine)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_config=None, ws_ping_interval=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during start-up")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    ryze = Ryze(settings, server, task, f"http://127.0.0.1:{port}", engine)
    created = await ryze.services.accounts.create("tests")
    ryze.account_token = created.token
    return ryze

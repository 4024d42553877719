"""Bridge test harness: the Chatwoot emulator, a fake RyzeAPI link server, and the bridge itself,
all served in-process on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn

from ryze.bridge.app import create_app
from ryze.bridge.services import BridgeServices
from ryze.bridge.settings import BridgeSettings
from ryze.common.outbound.policy import LOOPBACK_ALLOW
from ryze.emulator import RunningEmulator, run_emulator

from .fake_ryzeapi import TOKEN, FakeRyzeAPI, run_fake_ryzeapi

ADMIN_TOKEN = "cw-admin-token"
AGENT_TOKEN = "cw-agent-token"
ACCOUNT = 1


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


@dataclass
class RunningBridge:
    url: str
    settings: BridgeSettings
    app: Any
    http: aiohttp.ClientSession

    @property
    def services(self) -> BridgeServices:
        value: BridgeServices = self.app.state.bridge
        return value

    async def call(
        self, method: str, path: str, *, json: Any = None, token: str | None = TOKEN
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.url + path, json=json, headers=headers) as resp:
            body = await resp.json(content_type=None)
            return resp.status, body

    async def activate(self, fake: FakeRyzeAPI, chatwoot_url: str, **overrides: Any) -> tuple[int, Any]:
        body = {
            "instance": "shop",
            "ryzeapi_url": fake.url,
            "chatwoot_base_url": chatwoot_url,
            "chatwoot_account_id": ACCOUNT,
            "chatwoot_api_token": ADMIN_TOKEN,
            "inbox_name": "WhatsApp Shop",
        }
        body.update(overrides)
        return await self.call("POST", "/v1/integrations/activate", json=body)


@contextlib.asynccontextmanager
async def run_bridge(
    tmp_path: Path, database_url: str | None = None, **overrides: Any
) -> AsyncIterator[RunningBridge]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(overrides.pop("port", 0))))  # a restart keeps its port (webhook URL)
    port = sock.getsockname()[1]
    data_dir = tmp_path / "bridge-data"
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "token": TOKEN,
        "public_url": f"http://127.0.0.1:{port}",
        "database_url": database_url or f"sqlite:///{data_dir / 'bridge.db'}",
        "data_dir": data_dir,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.4,
        "link_backoff_base": 0.05,
        "link_backoff_max": 0.3,
        "command_timeout": 5.0,
        "activate_link_wait": 3.0,
        "chatwoot_timeout": 5.0,
        "fetch_allow": LOOPBACK_ALLOW,  # the emulator (Chatwoot) listens on loopback
        # The connection conversation is tested on its own (test_control_room*.py); elsewhere an
        # inbox holds only the chats a test makes.
        "control_room": False,
    }
    values.update(overrides)
    settings = BridgeSettings(**values)
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, ws="none"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("bridge stopped during start-up")
            await asyncio.sleep(0.01)
        async with aiohttp.ClientSession() as http:
            yield RunningBridge(url=f"http://127.0.0.1:{port}", settings=settings, app=app, http=http)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with run_emulator(host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
async def fake() -> AsyncIterator[FakeRyzeAPI]:
    async with run_fake_ryzeapi() as server:
        yield server


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    async with run_bridge(tmp_path) as running:
        yield running


async def eventually(check: Callable[[], Any] | Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll until ``check`` returns something truthy (no timing is asserted, only the outcome)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        last = result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last value: {last!r})")
        await asyncio.sleep(0.02)

"""The whole system on loopback: Chatwoot emulator + bridge + RyzeAPI (simulated engine), each a
real process, plus a small client to play the three people involved — the operator (RyzeAPI's
public API), the WhatsApp contact (the simulated phone network) and the agent (the emulator).

Used by `ryze demo`, the end-to-end tests and the benchmarks, so all three exercise exactly what an
operator runs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from ryze.common.outbound.policy import LOOPBACK_ALLOW
from ryze.launcher import ServiceSpec, Stack, free_port

T = TypeVar("T")

EMULATOR_ACCOUNT_ID = 1
EMULATOR_ADMIN_TOKEN = "cw-admin-token"  # noqa: S105 — the emulator's default seed, not a secret


class ApiCallError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path} -> {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class LocalSystem:
    """Ports, folders and processes of one local system. Create with :func:`start_system`."""

    workdir: Path
    api_port: int = field(default_factory=free_port)
    bridge_port: int = field(default_factory=free_port)
    emulator_port: int = field(default_factory=free_port)
    bridge_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    api_env: dict[str, str] = field(default_factory=dict)
    bridge_env: dict[str, str] = field(default_factory=dict)
    # The bridge's connection conversation (BRIDGE_CONTROL_ROOM): the demo shows it; tests that do
    # not test it keep an inbox with only the chats they make.
    control_room: bool = False
    stack: Stack = field(default_factory=Stack)
    account_token: str = ""
    _http: aiohttp.ClientSession | None = None

    # -- addresses --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    # -- process specs ----------------------------------------------------------------------

    def emulator_spec(self) -> ServiceSpec:
        return ServiceSpec(
            name="emulator",
            command=["chatwoot-emulator"],
            env={"EMULATOR_HOST": "127.0.0.1", "EMULATOR_PORT": str(self.emulator_port)},
            health_url=f"{self.emulator_url}/_emulator/accounts",
            log_path=self.workdir / "logs" / "emulator.log",
        )

    def bridge_spec(self) -> ServiceSpec:
        env = {
            "BRIDGE_HOST": "127.0.0.1",
            "BRIDGE_PORT": str(self.bridge_port),
            "BRIDGE_TOKEN": self.bridge_token,
            "BRIDGE_PUBLIC_URL": self.bridge_url,
            "BRIDGE_DATABASE_URL": f"sqlite:///{self.workdir / 'bridge' / 'bridge.db'}",
            "BRIDGE_DATA_DIR": str(self.workdir / "bridge"),
            "BRIDGE_FETCH_ALLOW": LOOPBACK_ALLOW,  # the emulator listens on loopback
            "BRIDGE_CONTROL_ROOM": "true" if self.control_room else "false",
            **self.bridge_env,
        }
        return ServiceSpec(
            name="bridge",
            command=["bridge"],
            env=env,
            health_url=f"{self.bridge_url}/healthz",
            log_path=self.workdir / "logs" / "bridge.log",
        )

    def api_env_full(self) -> dict[str, str]:
        return {
            "HOST": "127.0.0.1",
            "PORT": str(self.api_port),
            "BASE_URL": self.api_url,
            "DATABASE_URL": f"sqlite:///{self.workdir / 'api' / 'ryzeapi.db'}",
            "DATA_DIR": str(self.workdir / "api"),
            "WHATSAPP_ENGINE": "simulated",
            "SIMULATOR_AUTO_CONNECT_SECONDS": "0.2",
            "RATE_LIMIT_PER_MINUTE": "0",
            "BRIDGE_URL": self.bridge_url,
            "BRIDGE_TOKEN": self.bridge_token,
            "FETCH_ALLOW": LOOPBACK_ALLOW,  # attachment URLs point at the emulator, on loopback
            **self.api_env,
        }

    def api_spec(self) -> ServiceSpec:
        return ServiceSpec(
            name="api",
            command=["api"],
            env=self.api_env_full(),
            health_url=f"{self.api_url}/healthz",
            log_path=self.workdir / "logs" / "api.log",
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await asyncio.gather(
            self.stack.start(self.emulator_spec()),
            self.stack.start(self.bridge_spec()),
            self.stack.start(self.api_spec()),
        )
        self.account_token = await asyncio.to_thread(self._create_account)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90))

    def _create_account(self) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "ryze", "account", "create", "--name", "local"],
            env={**os.environ, **self.api_env_full()},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip().splitlines()[-1].strip()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        await self.stack.aclose()

    # -- HTTP helpers -----------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "start() first"
        return self._http

    async def call(
        self, method: str, url: str, *, token: str | None = None, json: Any = None, expect: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:  # fmt: skip
        hdrs = dict(headers or {})
        if token:
            hdrs["token"] = token
        async with self.http.request(method, url, json=json, headers=hdrs) as resp:
            body: Any = await resp.json(content_type=None) if resp.content_length != 0 else None
            if expect is not None and resp.status != expect:
                raise ApiCallError(method, url, resp.status, body)
            return resp.status, body

    async def api(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                  expect: int | None = None) -> Any:  # fmt: skip
        _, body = await self.call(method, self.api_url + path, token=token or self.account_token, json=json,
                                  expect=expect)  # fmt: skip
        return body

    # -- the operator -----------------------------------------------------------------------

    def chatwoot_block(self, **flags: bool) -> dict[str, Any]:
        block: dict[str, Any] = {
            "chatwootEnabled": True,
            "chatwootBaseUrl": self.emulator_url,
            "chatwootAccountId": EMULATOR_ACCOUNT_ID,
            "chatwootApiToken": EMULATOR_ADMIN_TOKEN,
        }
        for key, value in flags.items():
            block["chatwoot" + key[0].upper() + key[1:]] = value
        return block

    async def create_instance(self, name: str, *, chatwoot: bool = True, **flags: bool) -> dict[str, Any]:
        """Create an instance (with inline Chatwoot activation) and connect it."""
        body: dict[str, Any] = {"name": name}
        if chatwoot:
            body |= self.chatwoot_block(**flags)
        created: dict[str, Any] = await self.api("POST", "/api/instance/new", json=body, expect=201)
        await self.api("GET", f"/api/instance/connect/{name}", expect=200)
        await self.wait_for(lambda: self.is_connected(name), timeout=15, what=f"{name} connected")
        return created

    async def is_connected(self, name: str) -> bool:
        body = await self.api("GET", f"/api/instance/list?instanceName={name}")
        items = body.get("instances") or []
        return any(i.get("connection", {}).get("state") == "connected" for i in items)

    # -- the WhatsApp contact (simulated phone network) ---------------------------------------

    async def inject(self, instance: str, messages: list[dict[str, Any]]) -> list[str]:
        """Deliver messages from the network to ``instance`` in order; returns their WhatsApp ids."""
        body = await self.api(
            "POST", f"/_simulator/{instance}/messages", json={"messages": messages}, expect=200
        )
        return list(body["ids"])

    async def outbox(self, instance: str) -> list[dict[str, Any]]:
        """What ``instance`` sent to WhatsApp, oldest first."""
        body = await self.api("GET", f"/_simulator/{instance}/outbox?limit=10000", expect=200)
        return list(body["items"])

    # -- the agent (Chatwoot emulator) --------------------------------------------------------

    async def conversations(self) -> list[dict[str, Any]]:
        _, body = await self.call(
            "GET", f"{self.emulator_url}/_emulator/accounts/{EMULATOR_ACCOUNT_ID}/conversations"
        )
        return list(body["payload"])

    def _thread_url(self, conversation_id: int) -> str:
        base = f"{self.emulator_url}/_emulator/accounts/{EMULATOR_ACCOUNT_ID}"
        return f"{base}/conversations/{conversation_id}/messages"

    async def messages(self, conversation_id: int) -> list[dict[str, Any]]:
        _, body = await self.call("GET", self._thread_url(conversation_id))
        return list(body["payload"])

    async def agent_reply(
        self, conversation_id: int, content: str, *, private: bool = False
    ) -> dict[str, Any]:
        _, body = await self.call(
            "POST",
            self._thread_url(conversation_id),
            json={"content": content, "private": private},
            expect=200,
        )
        return dict(body)

    # -- waiting ------------------------------------------------------------------------------

    @staticmethod
    async def wait_for(
        check: Callable[[], Awaitable[T]],
        *,
        timeout: float = 20.0,
        interval: float = 0.05,
        what: str = "condition",
    ) -> T:
        """Poll ``check`` until it returns something truthy; bounded in time."""
        deadline = time.monotonic() + timeout
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(interval)


async def start_system(workdir: Path, **kwargs: Any) -> LocalSystem:
    system = LocalSystem(workdir=workdir, **kwargs)
    try:
        await system.start()
    except BaseException:
        await system.aclose()
        raise
    return system

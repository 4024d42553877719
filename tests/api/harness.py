"""Test harness for RyzeAPI: an app on the simulated engine, driven in-process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from ryze.api.app import create_app
from ryze.api.services.container import ApiServices
from ryze.api.settings import ApiSettings
from ryze.common.crypto import generate_key
from ryze.engines.simulated import SimulatedEngine
from ryze.protocol import EventEnvelope

BASE = "http://ryze.test"


def make_settings(tmp_path: Path, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'ryzeapi.db'}",
        "data_dir": tmp_path / "data",
        "whatsapp_engine": "simulated",
        "simulator_auto_connect_seconds": -1,  # tests scan explicitly: no timing involved
        "encryption_key": generate_key(),
        "base_url": BASE,
        "bridge_url": "",
        "bridge_token": "",
    }
    values.update(overrides)
    return ApiSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    events: list[tuple[str, EventEnvelope]] = field(default_factory=list)

    @property
    def services(self) -> ApiServices:
        services: ApiServices = self.app.state.services
        return services

    @property
    def engine(self) -> SimulatedEngine:
        engine = self.services.engine
        assert isinstance(engine, SimulatedEngine)
        return engine

    async def account(self, name: str = "acme", quota: int | None = None) -> str:
        return (await self.services.accounts.create(name, instance_quota=quota)).token

    async def instance(self, account_token: str, name: str = "orion", **body: Any) -> str:
        resp = await self.client.post(
            "/api/instance/new", json={"name": name, **body}, headers={"token": account_token}
        )
        assert resp.status_code == 201, resp.text
        token: str = resp.json()["instance"]["token"]
        return token

    async def connected_instance(
        self, account_token: str, name: str = "orion", number: str = "5511900000001"
    ) -> str:
        token = await self.instance(account_token, name)
        resp = await self.client.get(f"/api/instance/connect/{name}", headers={"token": token})
        assert resp.status_code == 200, resp.text
        resp = await self.client.post(
            f"/_simulator/{name}/scan", json={"number": number}, headers={"token": token}
        )
        assert resp.status_code == 200, resp.text
        return token

    def of(self, event: str) -> list[EventEnvelope]:
        return [env for _, env in self.events if env.event.value == event]


async def start_api(settings: ApiSettings, engine: SimulatedEngine | None = None) -> AsyncIterator[Api]:
    """Run the app's lifespan around an httpx client; every published envelope lands in ``events``."""
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            api = Api(app, client)

            async def record(instance: str, envelope: EventEnvelope) -> None:
                api.events.append((instance, envelope))

            api.services.bus.subscribe(record)
            yield api

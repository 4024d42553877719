"""A small stand-in for the bridge's service API (aiohttp on 127.0.0.1, random port).

Tests script its answers: a classified failure for activate, a status or a delay for GET, a
status for DELETE. It records every request it got (headers and bodies) for assertions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from websockets.asyncio.client import connect

from ryze.protocol import BridgeErrorBody, BridgeFailure, IntegrationStatus, IntegrationView, SelfCheckReport

BRIDGE_TOKEN = "bridge-token-0123456789abcdef"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class FakeBridge:
    token: str = BRIDGE_TOKEN
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    integrations: dict[str, IntegrationView] = field(default_factory=dict)
    activate_failure: tuple[int, BridgeFailure] | None = None
    activate_raw: tuple[int, str] | None = None  # a non-contract answer (e.g. a proxy's HTML)
    activate_delay: float = 0.0
    get_status: int | None = None  # answer GET with this status instead of the view
    live_checks: SelfCheckReport | None = None  # the bridge's last self-check, shown by GET
    get_delay: float = 0.0
    live_status: str = "active"
    live_error: str = ""
    live_inbox_id: int | None = None  # None = the id handed out at activation
    delete_status: int = 200
    next_inbox_id: int = 41
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # Like the real bridge: dial the instance's link (at this ws:// base) before answering activate.
    dial_link_from: str | None = None
    dialed: list[dict[str, Any]] = field(default_factory=list)  # the `ready` frames it got

    def fail_activate(self, status: int, failure: BridgeFailure) -> None:
        self.activate_failure = (status, failure)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _record(self, request: web.Request) -> Recorded:
        raw = await request.read()
        rec = Recorded(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            json.loads(raw) if raw else None,
        )
        self.requests.append(rec)
        return rec

    @staticmethod
    def _error(status: int, failure: BridgeFailure) -> web.Response:
        return web.json_response(BridgeErrorBody(error=failure).model_dump(mode="json"), status=status)

    async def _activate(self, request: web.Request) -> web.StreamResponse:
        rec = await self._record(request)
        if not self._authorized(request):
            return self._error(401, BridgeFailure(kind="unauthorized", message="bad token"))
        if self.activate_delay:
            try:
                await asyncio.wait_for(self.release.wait(), self.activate_delay)
            except TimeoutError:
                pass
        if self.activate_raw is not None:
            status, text = self.activate_raw
            return web.Response(status=status, text=text, content_type="text/html")
        if self.activate_failure is not None:
            return self._error(*self.activate_failure)
        body = rec.body or {}
        if self.dial_link_from is not None:
            await self._dial(body["instance"])
        replace = body.get("replace_integration_id")
        old = self.integrations.get(replace) if replace else None
        if (
            old is not None
            and old.chatwoot_base_url == body["chatwoot_base_url"]
            and old.chatwoot_account_id == body["chatwoot_account_id"]
        ):
            integration_id, inbox_id = old.id, old.inbox_id
        else:
            if old is not None:
                self.integrations.pop(old.id, None)
            integration_id, inbox_id = f"int_{next(self._ids)}", self.next_inbox_id
            self.next_inbox_id += 1
        view = IntegrationView(
            id=integration_id,
            instance=body["instance"],
            status="active",
            inbox_id=inbox_id,
            inbox_name=body["inbox_name"],
            chatwoot_base_url=body["chatwoot_base_url"],
            chatwoot_account_id=body["chatwoot_account_id"],
        )
        self.integrations[integration_id] = view
        return web.json_response(view.model_dump(mode="json"), status=201)

    async def _dial(self, instance: str) -> None:
        url = f"{self.dial_link_from}/ws/chatwoot/{instance}"
        async with connect(url, additional_headers={"Authorization": f"Bearer {self.token}"}) as ws:
            await ws.send(json.dumps({"type": "resume", "after": 0}))
            self.dialed.append(json.loads(await ws.recv()))

    async def _get(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if not self._authorized(request):
            return self._error(401, BridgeFailure(kind="unauthorized", message="bad token"))
        if self.get_delay:
            try:
                await asyncio.wait_for(self.release.wait(), self.get_delay)
            except TimeoutError:
                pass
        integration_id = request.match_info["integration_id"]
        if self.get_status is not None:
            return self._error(self.get_status, BridgeFailure(kind="internal", message="scripted"))
        view = self.integrations.get(integration_id)
        if view is None:
            return self._error(404, BridgeFailure(kind="not_found", message="unknown integration"))
        live = view.model_copy(
            update={
                "status": IntegrationStatus(self.live_status),
                "last_error": self.live_error,
                "inbox_id": self.live_inbox_id if self.live_inbox_id is not None else view.inbox_id,
                "checks": self.live_checks,
            }
        )
        return web.json_response(live.model_dump(mode="json"))

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if not self._authorized(request):
            return self._error(401, BridgeFailure(kind="unauthorized", message="bad token"))
        if self.delete_status != 200:
            return self._error(self.delete_status, BridgeFailure(kind="internal", message="scripted failure"))
        self.integrations.pop(request.match_info["integration_id"], None)
        return web.json_response({"deleted": True, "inbox_deleted": request.query.get("keepInbox") != "true"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/integrations/activate", self._activate)
        app.router.add_get("/v1/integrations/{integration_id}", self._get)
        app.router.add_delete("/v1/integrations/{integration_id}", self._delete)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]

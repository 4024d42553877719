"""``chatwootBaseUrl`` under the bridge's outbound-fetch policy (BRIDGE_FETCH_ALLOW).

Before it, a base URL could point the bridge at any internal address, and the activation error
reflected up to 2,000 characters of whatever answered. Every server here is on loopback (the
emulator and small aiohttp servers); names are answered by a stand-in resolver that only returns
loopback addresses, so no request can leave the machine even with the guard broken.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from ryze.chatwoot import ChatwootRefused, ChatwootSessions
from ryze.common.outbound import FetchPolicy
from ryze.emulator import RunningEmulator

from .conftest import ADMIN_TOKEN, RunningBridge, run_bridge
from .fake_ryzeapi import FakeRyzeAPI

SECRET_PAGE = "<html>internal admin panel: db_password=hunter2</html>"


@pytest.fixture
async def strict_bridge(tmp_path: Path) -> AsyncIterator[RunningBridge]:
    async with run_bridge(tmp_path, fetch_allow="") as running:
        yield running


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0x7f000001", "2130706433", "127.1", "[::ffff:127.0.0.1]", "localhost"]
)
async def test_a_loopback_base_url_is_refused_naming_the_setting(
    emulator: RunningEmulator, fake: FakeRyzeAPI, strict_bridge: RunningBridge, host: str
) -> None:
    port = emulator.url.rsplit(":", 1)[1]
    emulator.emulator.recorder.clear()
    status, body = await strict_bridge.activate(fake, f"http://{host}:{port}")
    assert status == 400, body
    assert body["error"]["kind"] == "invalid_request"
    assert "BRIDGE_FETCH_ALLOW" in body["error"]["message"]
    assert body["error"]["message"].startswith("chatwootBaseUrl ")
    assert emulator.emulator.recorder.find() == []  # the emulator never saw a request


async def test_a_closed_port_and_a_chatwoot_read_the_same_when_refused(
    emulator: RunningEmulator, fake: FakeRyzeAPI, strict_bridge: RunningBridge
) -> None:
    _, open_port = await strict_bridge.activate(fake, emulator.url)
    _, closed_port = await strict_bridge.activate(fake, "http://127.0.0.1:9")
    assert open_port == closed_port


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[zz]/",
        "http://127.0.0.1:65536",
        "http://127.0.0.1:9\\@127.0.0.2",
        "http://a:b@127.0.0.1:9",
    ],
)
async def test_a_malformed_base_url_is_invalid_not_a_crash(
    fake: FakeRyzeAPI, strict_bridge: RunningBridge, url: str
) -> None:
    status, body = await strict_bridge.activate(fake, url)
    assert status == 400 and body["error"]["kind"] == "invalid_request", body


@pytest.fixture
async def not_chatwoot() -> AsyncIterator[str]:
    """A web server that is not Chatwoot: HTML for everything, and a Chatwoot-shaped 404 on one path."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(status=404, text=SECRET_PAGE, content_type="text/html")

    async def ok_html(_request: web.Request) -> web.Response:
        return web.Response(status=200, text=SECRET_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_post("/html404/api/v1/accounts/1/inboxes", page)
    app.router.add_post("/html200/api/v1/accounts/1/inboxes", ok_html)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("path", ["/html404", "/html200"])
async def test_bodies_from_a_server_that_is_not_chatwoot_are_not_reflected(
    fake: FakeRyzeAPI, bridge: RunningBridge, not_chatwoot: str, path: str
) -> None:
    status, body = await bridge.activate(fake, not_chatwoot + path)
    assert status == 502, body
    assert "hunter2" not in str(body) and "admin panel" not in str(body)
    assert body["error"]["detail"] == "(the answer is not a Chatwoot error body and is not shown)"


async def test_chatwoot_error_bodies_are_still_shown(
    emulator: RunningEmulator, fake: FakeRyzeAPI, bridge: RunningBridge
) -> None:
    status, body = await bridge.activate(fake, emulator.url, chatwoot_api_token="wrong-token")
    assert status == 502 and body["error"]["chatwoot_status"] == 401
    assert body["error"]["detail"] == "Invalid Access Token"
    assert ADMIN_TOKEN not in str(body)


class LoopbackDNS(AbstractResolver):
    """Resolves every name to one loopback address and counts the questions."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        fam = socket.AF_INET
        return [{"hostname": host, "host": self.address, "port": port, "family": fam, "proto": 6, "flags": 0}]

    async def close(self) -> None:
        return None


async def test_a_name_resolving_to_an_internal_address_is_refused_at_connection(
    emulator: RunningEmulator,
) -> None:
    """The name passes the parse-time check; the address it resolves to is judged by the resolver
    inside the Chatwoot session, which is the answer aiohttp then dials."""
    dns = LoopbackDNS("127.0.0.1")
    pool = ChatwootSessions(
        timeout=5.0, policy=FetchPolicy(setting="BRIDGE_FETCH_ALLOW"), resolver=lambda: dns
    )
    port = emulator.url.rsplit(":", 1)[1]
    emulator.emulator.recorder.clear()
    try:
        client = pool.client(f"http://chatwoot.test:{port}", 1, ADMIN_TOKEN)
        with pytest.raises(ChatwootRefused, match="BRIDGE_FETCH_ALLOW"):
            await client.list_inboxes()
    finally:
        await pool.close()
    assert dns.asked == ["chatwoot.test"]
    assert emulator.emulator.recorder.find() == []
    # Allowed by name, the same call goes through.
    allowed = ChatwootSessions(
        timeout=5.0, policy=FetchPolicy(["chatwoot.test"], setting="BRIDGE_FETCH_ALLOW"), resolver=lambda: dns
    )
    try:
        await allowed.client(f"http://chatwoot.test:{port}", 1, ADMIN_TOKEN).list_inboxes()
    finally:
        await allowed.close()


@pytest.mark.parametrize("mode", ["chunked", "declared", "gzip"])
async def test_an_endless_answer_does_not_fill_the_bridges_memory(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A base URL can point at any server: Chatwoot's answers are read within a cap."""
    import gzip

    from ryze.chatwoot import ChatwootError
    from ryze.chatwoot import client as client_module

    monkeypatch.setattr(client_module, "MAX_RESPONSE_BYTES", 256 * 1024)
    written = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal written
        if mode == "declared":
            return web.Response(body=b"[" + b" " * (512 * 1024) + b"]", content_type="application/json")
        if mode == "gzip":  # 300 KiB on the wire, 8 MiB once decompressed
            bomb = gzip.compress(b" " * (8 * 1024 * 1024))
            return web.Response(
                body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
            )
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            for _ in range(4096):  # 256 MiB at most, bounded even if the cap were broken
                await resp.write(b" " * 65536)
                written += 65536
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/accounts/1/inboxes", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    pool = ChatwootSessions(timeout=10.0, policy=FetchPolicy(["127.0.0.1"], setting="BRIDGE_FETCH_ALLOW"))
    try:
        with pytest.raises(ChatwootError, match="larger than"):
            await pool.client(f"http://127.0.0.1:{port}", 1, ADMIN_TOKEN).list_inboxes()
    finally:
        await pool.close()
        await runner.cleanup()
    assert written < 64 * 1024 * 1024

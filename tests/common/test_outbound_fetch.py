"""The fetcher against live servers, all on loopback: redirects re-checked per hop, DNS rebinding,
the size limit while streaming, the bound on concurrent downloads and the time-outs.

Host names are answered by a stand-in resolver that only ever returns loopback addresses, so even
a broken guard cannot send a request off the machine. 127.0.0.1 plays the "allowed" address and
127.0.0.2 the internal one the policy must keep us from (both are this machine's loopback).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from ryze.common.outbound import (
    Fetcher,
    FetchLimits,
    FetchPolicy,
    FetchTimeout,
    HTTPStatusError,
    TargetRefused,
    TooLarge,
    TooManyRedirects,
)

BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 12_000  # ~3 MiB: spills past the spool


@dataclass
class Server:
    url: str
    port: int
    hits: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    sent: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)


async def _serve(host: str, routes: Callable[[Server], list[web.RouteDef]]) -> AsyncIterator[Server]:
    app = web.Application()
    server = Server(url="", port=0)
    app.add_routes(routes(server))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://{host}:{server.port}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


def _routes(server: Server) -> list[web.RouteDef]:
    async def file(request: web.Request) -> web.StreamResponse:
        server.hits.append(request.path)
        resp = web.StreamResponse(headers={"Content-Type": "image/png; x=1"})
        await resp.prepare(request)
        for i in range(0, len(BODY), 32 * 1024):
            await resp.write(BODY[i : i + 32 * 1024])
        await resp.write_eof()
        return resp

    async def redirect(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        raise web.HTTPFound(request.query["to"])

    async def loop(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        raise web.HTTPFound("/loop")

    async def missing(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        return web.Response(status=404)

    async def endless(request: web.Request) -> web.StreamResponse:
        server.hits.append(request.path)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        chunk = b"\0" * 64 * 1024
        try:
            for _ in range(16_000):  # ~1 GiB at most: bounded even if the limit were broken
                await resp.write(chunk)
                server.sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what we expect
        return resp

    async def declared(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        return web.Response(body=b"\0" * 2_000_000)

    async def slow(request: web.Request) -> web.Response:
        server.hits.append(request.path)
        server.in_flight += 1
        server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            await asyncio.wait_for(server.release.wait(), timeout=30)
        finally:
            server.in_flight -= 1
        return web.Response(body=b"ok")

    async def stall(request: web.Request) -> web.StreamResponse:
        server.hits.append(request.path)
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"first bytes")
        await asyncio.wait_for(server.release.wait(), timeout=30)
        return resp

    async def trickle(request: web.Request) -> web.StreamResponse:
        server.hits.append(request.path)
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(600):  # one byte every 50 ms: never silent long enough for the read time-out
            if server.release.is_set():
                break
            await resp.write(b".")
            await asyncio.sleep(0.05)
        return resp

    return [
        web.get("/file.png", file),
        web.get("/redirect", redirect),
        web.get("/loop", loop),
        web.get("/missing", missing),
        web.get("/endless", endless),
        web.get("/declared", declared),
        web.get("/slow", slow),
        web.get("/stall", stall),
        web.get("/trickle", trickle),
    ]


@pytest.fixture
async def allowed() -> AsyncIterator[Server]:
    async for server in _serve("127.0.0.1", _routes):
        yield server


@pytest.fixture
async def internal() -> AsyncIterator[Server]:
    async for server in _serve("127.0.0.2", _routes):
        yield server


class LoopbackDNS(AbstractResolver):
    """Answers names with loopback addresses only, in turn per name (the DNS-rebinding attacker's
    short-TTL trick), and records each question."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        turn = self.answers[host]
        address = turn.pop(0) if len(turn) > 1 else turn[0]
        assert address.startswith("127."), "the stand-in DNS only answers loopback"
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 6,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


def fetcher(allow: str, dns: LoopbackDNS | None = None, **limits: Any) -> Fetcher:
    policy = FetchPolicy.from_setting(allow, setting="FETCH_ALLOW")
    return Fetcher(policy, FetchLimits(**limits), resolver=(lambda: dns) if dns else None)


async def test_an_allowed_loopback_server_is_fetched_in_full(allowed: Server) -> None:
    got = await fetcher("127.0.0.1", spool_bytes=256 * 1024).get(f"{allowed.url}/file.png")
    assert got.data == BODY
    assert got.content_type == "image/png"


@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "0x7f000001", "2130706433", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "localhost"],
)
async def test_loopback_in_disguise_is_refused_before_connecting(allowed: Server, spelling: str) -> None:
    with pytest.raises(TargetRefused, match="FETCH_ALLOW"):
        await fetcher("").get(f"http://{spelling}:{allowed.port}/file.png")
    assert allowed.hits == []


@pytest.mark.parametrize("spelling", ["0x7f000001", "2130706433", "127.1", "[::ffff:127.0.0.1]"])
async def test_loopback_in_disguise_is_fetched_when_its_range_is_allowed(
    allowed: Server, spelling: str
) -> None:
    got = await fetcher("127.0.0.0/8").get(f"http://{spelling}:{allowed.port}/file.png")
    assert got.data == BODY


async def test_localhost_allowed_by_name_is_fetched(allowed: Server) -> None:
    dns = LoopbackDNS({"localhost": ["127.0.0.1"]})
    got = await fetcher("localhost", dns).get(f"http://localhost:{allowed.port}/file.png")
    assert got.data == BODY


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/file.png",
        "http://0x7f000002:{port}/file.png",
        "http://[::ffff:127.0.0.2]:{port}/file.png",
        "http://inside.test:{port}/file.png",  # a name that resolves to the internal address
    ],
)
async def test_a_redirect_from_an_allowed_host_to_an_internal_one_is_refused(
    allowed: Server, internal: Server, target: str
) -> None:
    dns = LoopbackDNS({"inside.test": ["127.0.0.2"]})
    to = target.format(port=internal.port)
    with pytest.raises(TargetRefused, match="loopback"):
        await fetcher("127.0.0.1", dns).get(f"{allowed.url}/redirect?to={to}")
    assert allowed.hits == ["/redirect"]
    assert internal.hits == []  # never reached


async def test_a_redirect_chain_between_allowed_hosts_is_followed(allowed: Server) -> None:
    dns = LoopbackDNS({"cdn.test": ["127.0.0.1"]})
    final = f"http://cdn.test:{allowed.port}/file.png"
    hop2 = f"http://127.0.0.1:{allowed.port}/redirect?to={final}"
    got = await fetcher("127.0.0.1", dns).get(f"{allowed.url}/redirect?to={hop2}")
    assert got.data == BODY and got.url == final
    assert allowed.hits == ["/redirect", "/redirect", "/file.png"]


async def test_redirects_are_bounded(allowed: Server) -> None:
    with pytest.raises(TooManyRedirects):
        await fetcher("127.0.0.1", max_redirects=3).get(f"{allowed.url}/loop")
    assert len(allowed.hits) == 4


async def test_dns_rebinding_is_refused_at_the_connection(allowed: Server) -> None:
    """First answer the allowed address, then the internal one: the second connection's lookup is
    the address it would dial, and it is judged (no check-then-lookup-again window)."""
    dns = LoopbackDNS({"rebind.test": ["127.0.0.1", "127.0.0.2"]})
    # Same port on both addresses: the rebinding target is the same URL, only DNS changed.
    async for twin in _serve_on("127.0.0.2", allowed.port):
        with pytest.raises(TargetRefused, match="loopback"):
            await fetcher("127.0.0.1", dns).get(f"http://rebind.test:{allowed.port}/redirect?to=/file.png")
        assert allowed.hits == ["/redirect"]
        assert twin.hits == []
    assert dns.asked == ["rebind.test", "rebind.test"]


async def _serve_on(host: str, port: int) -> AsyncIterator[Server]:
    app = web.Application()
    server = Server(url=f"http://{host}:{port}", port=port)
    app.add_routes(_routes(server))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


async def test_an_endless_body_stops_at_the_limit(allowed: Server) -> None:
    limit = 1024 * 1024
    with pytest.raises(TooLarge):
        await fetcher("127.0.0.1", max_bytes=limit).get(f"{allowed.url}/endless")
    # The server stops writing soon after we hang up: socket buffers, not the whole stream.
    for _ in range(200):
        if allowed.sent < limit * 64:
            break
        await asyncio.sleep(0.01)
    assert allowed.sent < limit * 64


async def test_a_declared_length_over_the_limit_is_refused_without_reading(allowed: Server) -> None:
    with pytest.raises(TooLarge):
        await fetcher("127.0.0.1", max_bytes=1_000_000).get(f"{allowed.url}/declared")


async def test_http_errors_are_reported_by_status(allowed: Server) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        await fetcher("127.0.0.1").get(f"{allowed.url}/missing")
    assert caught.value.status == 404


async def test_no_more_than_the_bound_download_at_once(allowed: Server) -> None:
    client = fetcher("127.0.0.1", concurrency=2)
    tasks = [asyncio.create_task(client.get(f"{allowed.url}/slow")) for _ in range(5)]
    for _ in range(500):
        if allowed.in_flight == 2:
            break
        await asyncio.sleep(0.01)
    for _ in range(20):  # give a third request every chance to slip through
        await asyncio.sleep(0.01)
    assert allowed.in_flight == 2 and client.active == 2
    allowed.release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    assert [r.data for r in results] == [b"ok"] * 5
    assert allowed.most_in_flight == 2 and client.active == 0


async def test_a_silent_server_hits_the_read_timeout(allowed: Server) -> None:
    with pytest.raises(FetchTimeout):
        await fetcher("127.0.0.1", read_timeout=0.2, total_timeout=30).get(f"{allowed.url}/stall")


async def test_a_trickling_server_hits_the_total_timeout(allowed: Server) -> None:
    with pytest.raises(FetchTimeout):
        await fetcher("127.0.0.1", read_timeout=10, total_timeout=0.5).get(f"{allowed.url}/trickle")

"""The fault matrix's TCP proxy: passes bytes both ways, resets on drop, holds bytes in a blackhole
and lets them through after the heal. Loopback only; every wait is bounded."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `bench` lives at the repository root, next to `src`
    sys.path.insert(0, str(REPO))

from bench.chaos.proxy import LinkProxy  # noqa: E402


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[LinkProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    link = LinkProxy("127.0.0.1", int(server.sockets[0].getsockname()[1]))
    await link.start()
    try:
        yield link
    finally:
        await link.aclose()
        server.close()
        await server.wait_closed()


async def _connect(proxy: LinkProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def test_bytes_pass_both_ways(proxy: LinkProxy) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    writer.close()


async def test_drop_resets_open_and_new_connections_until_restored(proxy: LinkProxy) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"x")
    await asyncio.wait_for(reader.readexactly(1), 5)
    proxy.drop()
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    new_reader, new_writer = await _connect(proxy)  # accepted, then reset at once
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        new_writer.write(b"y")
        await asyncio.wait_for(new_reader.readexactly(1), 5)
    proxy.restore()
    reader, writer = await _connect(proxy)
    writer.write(b"back")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"back"
    writer.close()


async def test_blackhole_holds_bytes_and_releases_them_on_heal(proxy: LinkProxy) -> None:
    reader, writer = await _connect(proxy)
    proxy.blackhole()
    writer.write(b"held")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.5)  # nothing through, nothing closed
    proxy.restore()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
    writer.close()

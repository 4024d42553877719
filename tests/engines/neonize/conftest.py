"""Fixtures for tests that start real neonize clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
async def loopback_proxy() -> AsyncIterator[str]:
    """An HTTP "proxy" on 127.0.0.1 that hangs up on every connection. A real client configured
    with it dials only this listener (never WhatsApp, not even a DNS lookup of web.whatsapp.com)
    and fails fast, as it would with no network."""

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()

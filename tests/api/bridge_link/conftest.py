from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ryze.api.db import Database

from .fake_bridge import FakeBridge
from .harness import Ryze, start_ryze


@pytest.fixture
async def fake_bridge() -> AsyncIterator[FakeBridge]:
    bridge = FakeBridge()
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.stop()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated RyzeAPI database (core + Chatwoot tables) on SQLite and on PostgreSQL."""
    database = Database(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.aclose()


@pytest.fixture
async def ryze(database_url: str, tmp_path: Path, fake_bridge: FakeBridge) -> AsyncIterator[Ryze]:
    """RyzeAPI with the module enabled, pointing at the fake bridge."""
    server = await start_ryze(
        database_url, tmp_path / "data", bridge_url=fake_bridge.url, bridge_token=fake_bridge.token
    )
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def ryze_lite(sqlite_url: str, tmp_path: Path, fake_bridge: FakeBridge) -> AsyncIterator[Ryze]:
    """The same on SQLite only, for tests about wording and protocol rather than storage."""
    server = await start_ryze(
        sqlite_url, tmp_path / "data", bridge_url=fake_bridge.url, bridge_token=fake_bridge.token
    )
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def ryze_off(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Ryze]:
    """RyzeAPI with the module disabled (no BRIDGE_URL / BRIDGE_TOKEN)."""
    server = await start_ryze(sqlite_url, tmp_path / "data")
    try:
        yield server
    finally:
        await server.stop()

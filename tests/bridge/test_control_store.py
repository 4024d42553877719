"""The connection conversation's row on both back ends (SQLite and PostgreSQL), through the
migrations, and removed with its integration."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ryze.bridge.control.store import ControlRoomState, ControlRoomStore
from ryze.bridge.store.db import BridgeDB
from ryze.bridge.store.repositories import Repositories

from .test_storage import _record


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[BridgeDB]:
    database = BridgeDB(database_url)
    await database.migrate()
    database.start()
    yield database
    await database.close()


async def test_the_room_row_round_trips_and_goes_with_its_integration(db: BridgeDB) -> None:
    repos = Repositories.create(db)
    record = _record()
    await repos.integrations.insert(record)
    store = ControlRoomStore(db, record.id)
    assert await store.load() == ControlRoomState()
    await store.save(ControlRoomState(11, 12, "connected:5511", [30, 31]))
    await store.save(ControlRoomState(11, 13, "qr:abc", [32]))  # the latest wins
    assert await store.load() == ControlRoomState(11, 13, "qr:abc", [32])
    other = ControlRoomStore(db, "b" * 32)
    assert await other.load() == ControlRoomState()  # one row per integration
    await repos.integrations.delete(record.id)
    assert await store.load() == ControlRoomState()
